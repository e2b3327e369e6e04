"""Alerts about failed Dagster runs: what failed (asset, partition, error), de-duplicated.

:class:`FailedRun` reads what a person needs out of the run and its event log once;
:func:`notify_run_failure` decides per (asset, partition) whether the window allows an alert,
sends one alert for everything that may be alerted, and gives the claims back if no target
took it. Time is a parameter, so the window is tested without waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.alerts.alert import Alert
from poster_pipeline.alerts.notifiers import Delivery, Notifier, deliver
from poster_pipeline.warehouse.alerts_sent import AlertClaim, claim_alert, release_alert

__all__ = [
    "FAILED_SYNCS",
    "FailedRun",
    "RunAlertOutcome",
    "StepFailure",
    "alert_for_run",
    "dedup_key",
    "entity_name",
    "notify_run_failure",
]

PARTITION_TAG = "dagster/partition"
ASSET_PREFIX = "poster/"  # the catalogue's asset keys: poster/<entity>
SHOWN_TAG_PREFIXES = ("dagster/", "poster/")
# Dagster wraps an exception raised by user code in this; the user's exception is its cause.
_STEP_WRAPPER = "DagsterExecutionStepExecutionError"


#: Metadata of a ``dg.Failure`` that names its failed syncs (the webhook drain's: one run for
#: many partitions): a JSON list of ``{"asset": …, "partition": …, "error": …}``.
FAILED_SYNCS = "failed_syncs"


@dataclass(frozen=True)
class StepFailure:
    """A failed step: its key, the asset keys it materializes (none for a plain op) and
    the error a person can act on (a ``dg.Failure``'s description, else the exception).
    ``partition`` is set when the failure is of one partition other than the run's (a failed
    group of a webhook drain run)."""

    step_key: str
    assets: tuple[str, ...]
    error: str
    partition: str | None = None


@dataclass(frozen=True)
class FailedRun:
    """What an alert says about a failed run.

    ``message`` is Dagster's summary of the run failure (``Steps failed: [...]`` or why the
    run did not start); ``steps`` hold the real errors. ``selected_assets`` is the run's
    asset selection (empty when the whole job ran), the fallback when no step failed.
    """

    run_id: str
    job_name: str
    partition: str | None
    message: str
    steps: tuple[StepFailure, ...] = ()
    selected_assets: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_context(cls, context: dg.RunFailureSensorContext) -> FailedRun:
        run = context.dagster_run
        assets_of = _assets_by_step(context.instance, run)
        steps = tuple(
            failure
            for event in context.get_step_failure_events()
            for failure in _failed_syncs(event)
            or [
                StepFailure(
                    step_key=event.step_key or "",
                    assets=assets_of.get(event.step_key or "", ()),
                    error=_step_error(event),
                )
            ]
        )
        return cls(
            run_id=run.run_id,
            job_name=run.job_name,
            partition=run.tags.get(PARTITION_TAG),
            message=context.failure_event.message or "the run failed",
            steps=steps,
            selected_assets=tuple(sorted(k.to_user_string() for k in run.asset_selection or ())),
            tags={k: v for k, v in run.tags.items() if k.startswith(SHOWN_TAG_PREFIXES)},
        )

    def failures(self) -> dict[tuple[str, str | None], str]:
        """(what failed, its partition) → its error. What failed is an asset key
        (``poster/ingredients``); a step of an op job is ``<job>.<step>``; a run that failed
        before any step failed (it did not start, its worker died) stands for its assets, or
        for its job. The partition is the run's, unless the failure names its own."""
        failed: dict[tuple[str, str | None], str] = {}
        for step in self.steps:
            for label in step.assets or (f"{self.job_name}.{step.step_key}",):
                failed[(label, step.partition or self.partition)] = step.error
        if not failed:
            for label in self.selected_assets or (self.job_name,):
                failed[(label, self.partition)] = self.message
        return failed


def _assets_by_step(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, tuple[str, ...]]:
    """The asset keys each step of the run materializes, from the run's execution plan."""
    if run.execution_plan_snapshot_id is None:
        return {}
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    return {
        step.key: tuple(
            output.properties.asset_key.to_user_string()
            for output in step.outputs
            if output.properties is not None and output.properties.asset_key is not None
        )
        for step in plan.steps
    }


def _failed_syncs(event: dg.DagsterEvent) -> list[StepFailure]:
    """The syncs a step's ``dg.Failure`` names in its :data:`FAILED_SYNCS` metadata."""
    data = event.step_failure_data.user_failure_data
    named = data.metadata.get(FAILED_SYNCS) if data is not None else None
    value = named.value if named is not None else None
    if not isinstance(value, list):
        return []
    return [
        StepFailure(
            step_key=event.step_key or "",
            assets=(str(item["asset"]),),
            error=str(item.get("error") or "the sync failed"),
            partition=item.get("partition"),
        )
        for item in value
        if isinstance(item, Mapping) and item.get("asset")
    ]


def _step_error(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description  # a dg.Failure: written for a person
    error = data.error
    if error is None:
        return event.message or "the step failed"
    while error.cls_name == _STEP_WRAPPER and error.cause is not None:
        error = error.cause
    return error.message.strip()


def entity_name(asset: str) -> str:
    """``poster/ingredients`` → ``ingredients``; other keys are shown whole."""
    name = asset.removeprefix(ASSET_PREFIX)
    return name if "/" not in name else asset


def dedup_key(failed: str, partition: str | None) -> str:
    """The de-duplication key of a failure of ``failed`` (an asset key) in ``partition``.

    Asset key components cannot contain ``:``, so the key is unambiguous."""
    return f"run-failure:{failed}:{partition or ''}"


def alert_for_run(
    run: FailedRun,
    failures: Mapping[tuple[str, str | None], str],
    *,
    suppressed: int = 0,
    link: str | None = None,
) -> Alert:
    """The alert about ``failures`` (a subset of ``run.failures()``: those not suppressed)."""
    entities = tuple(dict.fromkeys(entity_name(label) for label, _ in failures))
    accounts = tuple(dict.fromkeys(p for _, p in failures if p))
    what = f"{entities[0]} sync" if len(failures) == 1 else f"{len(failures)} syncs"
    subject = f"poster-pipeline: {what} failed"
    if len(accounts) == 1:
        subject += f" for account {accounts[0]}"
    elif accounts:
        subject += f" for {len(accounts)} accounts"
    if len(entities) > 1:
        subject += f" ({', '.join(entities)})"
    if len(failures) == 1:
        [error] = failures.values()
    else:
        error = "\n".join(
            f"{entity_name(label)}{f' ({p})' if len(accounts) > 1 and p else ''}: {text}"
            for (label, p), text in failures.items()
        )
    return Alert(
        subject=subject,
        account=", ".join(accounts) or None,
        entities=entities,
        error=error,
        run_id=run.run_id,
        link=link,
        tags=run.tags,
        suppressed=suppressed,
    )


@dataclass(frozen=True)
class RunAlertOutcome:
    """What :func:`notify_run_failure` did: the alert it sent (None if everything was
    suppressed), where it went, and what was suppressed."""

    alert: Alert | None
    delivery: Delivery | None
    suppressed: tuple[str, ...]


def notify_run_failure(
    run: FailedRun,
    *,
    notifiers: Sequence[Notifier],
    engine: Engine,
    window: timedelta,
    now: datetime,
    log: logging.Logger,
    link: str | None = None,
) -> RunAlertOutcome:
    """Alert about ``run`` unless every failure in it was alerted within ``window``.

    If the de-duplication state cannot be read (the warehouse is down, which may be why the
    run failed; or ``db upgrade`` was not run), the alert goes out anyway: a duplicate is
    better than silence.
    """
    failures = run.failures()
    claims: dict[tuple[str, str | None], AlertClaim] = {}
    allowed: dict[tuple[str, str | None], str] = {}
    suppressed: list[str] = []
    for (label, partition), error in failures.items():
        try:
            claim = claim_alert(engine, dedup_key(label, partition), now=now, window=window)
        except sa.exc.SQLAlchemyError as exc:
            log.warning(f"alert de-duplication unavailable, alerting anyway: {_short(exc)}")
            allowed[(label, partition)] = error
            continue
        if claim is None:
            own = partition in (None, run.partition)  # the run's: no need to repeat it
            suppressed.append(label if own else f"{label} ({partition})")
        else:
            claims[(label, partition)] = claim
            allowed[(label, partition)] = error
    if not allowed:
        log.info(
            f"run {run.run_id}: not alerted, {', '.join(suppressed)} already alerted "
            f"within the last {window.total_seconds() / 60:g} minutes"
        )
        return RunAlertOutcome(None, None, tuple(suppressed))
    alert = alert_for_run(
        run, allowed, suppressed=sum(c.suppressed for c in claims.values()), link=link
    )
    delivery = deliver(alert, notifiers, log)
    if not delivery.delivered:
        log.warning(f"run {run.run_id}: no target took the alert; the next failure alerts again")
        for claim in claims.values():
            try:
                release_alert(engine, claim)
            except sa.exc.SQLAlchemyError as exc:
                log.warning(f"could not release the alert claim {claim.key}: {_short(exc)}")
    return RunAlertOutcome(alert, delivery, tuple(suppressed))


def _short(exc: BaseException) -> str:
    """The first line of a database error (SQLAlchemy appends the statement and a URL)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
