"""The run-failure sensor end to end: a partitioned asset fails in a real (in-process) run, the
sensor is evaluated on it, and the alert reaches a real SMTP server and an HTTP sink."""

# No `from __future__ import annotations`: Dagster reads the asset functions' annotations.
import logging
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from poster_pipeline.alerts import AlertsResource, FailedRun, notify_run_failure
from poster_pipeline.alerts.run_failure import FAILED_SYNCS
from poster_pipeline.orchestration.resources import WarehouseResource
from sensors.alerts import run_failure_alert
from tests.alerts.conftest import PG_SUFFIX
from tests.databases import postgres_url

accounts = dg.DynamicPartitionsDefinition(name="accounts")
log = logging.getLogger("tests.alerts.run_failure")


@dg.asset(key=["poster", "ingredients"], partitions_def=accounts)
def ingredients(context: dg.AssetExecutionContext) -> None:
    raise dg.Failure(
        description=f"ingredients sync of account {context.partition_key} failed: "
        "Poster answered HTTP 500 to menu.getIngredients"
    )


@dg.asset(key=["poster", "products"], partitions_def=accounts)
def products(context: dg.AssetExecutionContext) -> None:
    raise ValueError("products exploded")


@pytest.fixture(scope="module")
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


@pytest.fixture(scope="module")
def warehouse(pg_engine) -> WarehouseResource:
    return WarehouseResource(database_url=postgres_url(PG_SUFFIX))


def fail(instance: dg.DagsterInstance, account: str, *assets: dg.AssetsDefinition):
    """Run ``assets`` for ``account`` and return the sensor's view of the failed run."""
    instance.add_dynamic_partitions("accounts", [account])
    result = dg.materialize(
        list(assets) or [ingredients],
        partition_key=account,
        instance=instance,
        tags={"poster/sync": "full"},
        raise_on_error=False,
    )
    assert not result.success
    return result


def evaluate(instance, result, alerts: AlertsResource, warehouse: WarehouseResource):
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources={"alerts": alerts, "warehouse": warehouse},
    ).for_run_failure()
    return context, run_failure_alert(context)


@pytest.fixture
def alerts(inbox, sink) -> AlertsResource:
    return AlertsResource(
        email_to="ops@example.com",
        smtp_url=f"smtp://127.0.0.1:{inbox.port}?from=alerts@example.com",
        webhook_url=sink.url,
        dagster_url="http://dagster.local:3000",
        window_minutes=60,
    )


def test_a_failed_sync_is_alerted_by_email_and_webhook(
    instance, warehouse, alerts, inbox, sink, account
):
    result = fail(instance, account)
    run_id = result.dagster_run.run_id

    _, outcome = evaluate(instance, result, alerts, warehouse)

    assert outcome is None  # a run-status sensor must return nothing (see the sensor)
    [message] = inbox.messages
    assert message["Subject"] == f"poster-pipeline: ingredients sync failed for account {account}"
    [text] = sink.texts
    for body in (message.get_content(), text):
        assert f"Account: {account}" in body
        assert "Entity: ingredients" in body
        assert "Poster answered HTTP 500 to menu.getIngredients" in body  # the dg.Failure text
        assert f"Run: {run_id}" in body
        assert f"dagster/partition={account}" in body
        assert "poster/sync=full" in body
        assert f"Link: http://dagster.local:3000/runs/{run_id}" in body
    assert sink.received[0]["json"]["poster_pipeline"]["entities"] == ["ingredients"]


def test_repeated_failures_of_one_asset_and_partition_alert_once(
    instance, warehouse, alerts, inbox, sink, account, capfd
):
    first, second = fail(instance, account), fail(instance, account)
    evaluate(instance, first, alerts, warehouse)
    _, outcome = evaluate(instance, second, alerts, warehouse)

    assert outcome is None
    assert len(inbox.envelopes) == len(sink.received) == 1
    log = capfd.readouterr().err  # the sensor's log (Dagster's console handler)
    assert "poster/ingredients already alerted within the last 60 minutes" in log

    other = fail(instance, f"{account}-2")
    evaluate(instance, other, alerts, warehouse)
    assert len(inbox.envelopes) == len(sink.received) == 2
    assert f"for account {account}-2" in sink.texts[1]


def test_after_the_window_the_next_alert_counts_the_suppressed(
    instance, warehouse, alerts, sink, account
):
    context, _ = evaluate(instance, fail(instance, account), alerts, warehouse)
    run = FailedRun.from_context(context)
    now = datetime.now(UTC)

    def notify(at: datetime):
        return notify_run_failure(
            run,
            notifiers=alerts.notifiers(log),
            engine=warehouse.engine(),
            window=alerts.window,
            now=at,
            log=log,
        )

    assert notify(now + timedelta(minutes=20)).alert is None
    assert notify(now + timedelta(minutes=40)).alert is None
    later = notify(now + timedelta(minutes=61))
    assert later.alert is not None and later.alert.suppressed == 2
    assert len(sink.texts) == 2
    assert "2 more failures were not alerted" in sink.texts[1]


def test_several_failed_assets_of_one_run_make_one_alert(
    instance, warehouse, alerts, sink, account
):
    result = fail(instance, account, ingredients, products)
    evaluate(instance, result, alerts, warehouse)

    [text] = sink.texts
    assert text.startswith(
        f"poster-pipeline: 2 syncs failed for account {account} (ingredients, products)"
    )
    assert "ingredients: ingredients sync of account" in text
    assert "products: ValueError: products exploded" in text  # the exception, not Dagster's wrapper


def drain_failing(accounts_failed: list[str]) -> dg.JobDefinition:
    """A job shaped like the webhook drain: one op, failed syncs of several partitions."""

    @dg.op(name="drain_webhooks")
    def drain_op() -> None:
        raise dg.Failure(
            description=f"{len(accounts_failed)} partial syncs failed",
            metadata={
                FAILED_SYNCS: [
                    {"asset": "poster/ingredients", "partition": a, "error": f"HTTP 500 for {a}"}
                    for a in accounts_failed
                ]
            },
        )

    @dg.job(name="webhook_drain", tags={"poster/sync": "partial"})
    def drain_job() -> None:
        drain_op()

    return drain_job


def test_a_drain_run_alerts_once_per_asset_and_partition(
    instance, warehouse, alerts, sink, account
):
    accounts_failed = [f"{account}-a", f"{account}-b"]
    result = drain_failing(accounts_failed).execute_in_process(
        instance=instance, raise_on_error=False
    )
    evaluate(instance, result, alerts, warehouse)
    [text] = sink.texts
    assert text.startswith("poster-pipeline: 2 syncs failed for 2 accounts\n")
    for failed in accounts_failed:
        assert f"ingredients ({failed}): HTTP 500 for {failed}" in text

    # A later drain failing for one of them and a new account alerts only about the new one.
    again = drain_failing([accounts_failed[0], f"{account}-c"]).execute_in_process(
        instance=instance, raise_on_error=False
    )
    evaluate(instance, again, alerts, warehouse)
    assert len(sink.texts) == 2
    assert sink.texts[1].startswith(
        f"poster-pipeline: ingredients sync failed for account {account}-c"
    )


def test_the_alert_goes_out_when_the_warehouse_is_down(
    instance, alerts, sink, account, refused_port, capfd
):
    down = WarehouseResource(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{refused_port}/x"
    )
    _, outcome = evaluate(instance, fail(instance, account), alerts, down)
    assert outcome is None
    assert len(sink.texts) == 1
    # the sensor's log (Dagster's console handler, not the logging tree)
    assert "alert de-duplication unavailable, alerting anyway" in capfd.readouterr().err


def test_an_undelivered_alert_is_sent_on_the_next_failure(
    instance, warehouse, inbox, sink, account, refused_port, capfd
):
    dead = AlertsResource(webhook_url=f"http://127.0.0.1:{refused_port}/hook", webhook_retries=0)
    _, outcome = evaluate(instance, fail(instance, account), dead, warehouse)
    assert outcome is None
    assert "no target took the alert; the next failure alerts again" in capfd.readouterr().err

    working = AlertsResource(webhook_url=sink.url)
    evaluate(instance, fail(instance, account), working, warehouse)
    [text] = sink.texts
    assert "1 more failure was not alerted" in text


def test_without_targets_the_sensor_only_says_so(instance, account, refused_port, capfd):
    # the warehouse is unreachable: proof that an unconfigured sensor does not touch it
    nowhere = WarehouseResource(database_url=f"postgresql+psycopg://x@127.0.0.1:{refused_port}/x")
    _, outcome = evaluate(instance, fail(instance, account), AlertsResource(), nowhere)
    assert outcome is None
    assert "no alert target is configured" in capfd.readouterr().err
