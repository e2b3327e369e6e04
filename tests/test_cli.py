"""The command line an operator uses: db upgrade and accounts, on the embedded default."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.fernet import Fernet

from poster_pipeline.cli import main


@pytest.fixture
def env(tmp_path, emulator) -> dict[str, str]:
    return {
        "POSTER_DATA_DIR": str(tmp_path / "data"),
        "POSTER_API_URL": emulator.api_url,
        "POSTER_TOKEN_KEY": Fernet.generate_key().decode(),
        "POSTER_DATABASE_URL": "",
    }


def run(env: dict[str, str], *args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def test_db_upgrade_creates_the_warehouse(env, tmp_path):
    result = run(env, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'warehouse.db'}")
    assert {"ingredients", "accounts", "sync_status"} <= set(sa.inspect(engine).get_table_names())
    assert run(env, "db", "upgrade").exit_code == 0


def test_accounts_need_the_schema_first(env):
    result = run(env, "accounts", "list")
    assert result.exit_code != 0
    assert "poster-pipeline db upgrade" in result.output


def test_an_account_is_verified_stored_and_listed_without_its_token(env, demo_account):
    run(env, "db", "upgrade")
    token = demo_account.token
    added = run(env, "accounts", "add", "--account", "api-demo", "--token", token)
    assert added.exit_code == 0, added.output
    assert "connected api-demo" in added.output and "813932" in added.output
    listed = run(env, "accounts", "list")
    assert "api-demo" in listed.output and "personal" in listed.output
    for output in (added.output, listed.output):
        assert token.split(":")[1] not in output


def test_a_token_poster_refuses_is_not_stored(env):
    run(env, "db", "upgrade")
    bad = "813932:" + "0" * 32
    result = run(env, "accounts", "add", "--account", "api-demo", "--token", bad)
    assert result.exit_code != 0
    assert "not accepted" in result.output and "Poster error 11" in result.output
    assert "0" * 32 not in result.output
    assert "no account is connected" in run(env, "accounts", "list").output


def test_the_token_can_be_typed_at_a_hidden_prompt(env, demo_account):
    run(env, "db", "upgrade")
    result = run(env, "accounts", "add", "--account", "api-demo", input=demo_account.token + "\n")
    assert result.exit_code == 0, result.output
    assert demo_account.token not in result.output


def test_an_account_can_be_deactivated(env, demo_account):
    run(env, "db", "upgrade")
    run(env, "accounts", "add", "--account", "api-demo", "--token", demo_account.token)
    assert run(env, "accounts", "deactivate", "--account", "api-demo").exit_code == 0
    assert "api-demo" in run(env, "accounts", "list").output
    assert "no" in run(env, "accounts", "list").output.splitlines()[1]
    missing = run(env, "accounts", "deactivate", "--account", "never-added")
    assert missing.exit_code != 0 and "never-added" in missing.output


def test_without_a_token_key_the_demo_key_is_generated_with_a_warning(
    env, demo_account, tmp_path, caplog
):
    env = {**env, "POSTER_TOKEN_KEY": ""}
    run(env, "db", "upgrade")
    result = run(env, "accounts", "add", "--account", "api-demo", "--token", demo_account.token)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "token.key").exists()
    assert "POSTER_TOKEN_KEY is not set" in caplog.text


def test_queue_commands_report_retry_and_purge(env):
    from datetime import UTC, datetime, timedelta

    from poster_pipeline.poster.webhooks import WebhookEvent
    from poster_pipeline.warehouse.engine import create_warehouse_engine
    from poster_pipeline.warehouse.queue import enqueue
    from poster_pipeline.warehouse.schema import webhook_events

    assert "db upgrade" in run(env, "queue", "status").output
    run(env, "db", "upgrade")
    engine = create_warehouse_engine(f"sqlite:///{env['POSTER_DATA_DIR']}/warehouse.db")
    long_ago = datetime.now(UTC) - timedelta(days=60)
    with engine.begin() as conn:
        for n, status in enumerate(["dead", "dead", "done", "ignored", "pending"]):
            event = WebhookEvent(
                "api-demo", "ingredient", n, "changed", str(1_700_000_000 + n), "0"
            )
            enqueue(conn, event, {}, entity="ingredients", now=long_ago)
            conn.execute(
                sa.update(webhook_events)
                .where(webhook_events.c.object_id == n)
                .values(status=status)
            )
    status = run(env, "queue", "status")
    assert "dead             2" in status.output and "retry-dead" in status.output
    assert "2 dead events are pending again" in run(env, "queue", "retry-dead").output
    assert "deleted 2 settled events" in run(env, "queue", "purge", "--older-than", "30d").output
    assert "pending          3" in run(env, "queue", "status").output
    bad = run(env, "queue", "purge", "--older-than", "soon")
    assert bad.exit_code != 0 and "30d" in bad.output


def test_an_account_keeps_its_time_zone_and_the_list_shows_it(env, demo_account):
    run(env, "db", "upgrade")
    add = ("accounts", "add", "--account", "api-demo", "--token", demo_account.token)
    assert run(env, *add).exit_code == 0
    assert "(UTC)" in run(env, "accounts", "list").output.splitlines()[1]  # POSTER_TIMEZONE
    assert run(env, *add, "--time-zone", "Europe/Kyiv").exit_code == 0
    assert run(env, *add).exit_code == 0  # a new token, the zone stays
    assert "Europe/Kyiv" in run(env, "accounts", "list").output.splitlines()[1]

    refused = run(env, *add, "--time-zone", "Kyiv")
    assert refused.exit_code != 0 and "'Kyiv' is not an IANA time zone" in refused.output
    assert "Europe/Kyiv" in run(env, "accounts", "list").output.splitlines()[1]
