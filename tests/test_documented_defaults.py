"""The defaults the README and docs/ state are the code's: each documented figure is read from
the page and compared with the setting it describes, so a changed default fails here until
the docs follow."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from pathlib import Path

import pytest

from poster_pipeline.alerts.silence import LISTED_PAIRS, SILENCE_FACTOR, silence_threshold
from poster_pipeline.http.client_faults import BODY_TIMEOUT_SECONDS
from poster_pipeline.http.settings import ReceiverSettings
from poster_pipeline.orchestration.resources import WarehouseResource, WebhookQueueResource
from poster_pipeline.orchestration.schedules import NIGHTLY_LOOKBACK, NIGHTLY_TICK
from poster_pipeline.settings import Settings
from sensors.alerts import SILENCE_CHECK_SECONDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DRAIN = (ROOT / "docs" / "drain.md").read_text()
RECEIVER = (ROOT / "docs" / "receiver.md").read_text()
ALERTS = (ROOT / "docs" / "alerts.md").read_text()
QUEUE = WebhookQueueResource()


def table_after(page: str, heading: str) -> dict[str, str]:
    """First column (without backticks) → second column of the first table under ``heading``."""
    section = page.split(heading, 1)[1]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        name = cells[0].strip("`")
        if name and not set(name) <= set("-") and name not in ("variable", "setting", "field"):
            rows[name] = cells[1]
    return rows


def number(text: str) -> float:
    return float(text.strip("`").replace(",", ""))


def test_every_webhook_queue_setting_is_documented_with_its_default():
    documented = table_after(DRAIN, "## Settings")
    assert set(documented) == set(WebhookQueueResource.model_fields)
    for name, default in documented.items():
        assert number(default) == getattr(QUEUE, name), name


ENV_DEFAULTS = {
    "POSTER_API_URL": Settings().api_url,
    "POSTER_TIMEZONE": Settings().timezone,
    "POSTER_SMART_SYNC_HOURS": Settings().smart_sync_window_hours,
    "POSTER_WEBHOOK_SENSOR_INTERVAL": Settings().webhook_sensor_interval_s,
    "POSTER_SUPPLIES_WINDOW_DAYS": Settings().supplies_window_days,
}


@pytest.mark.parametrize("variable", sorted(ENV_DEFAULTS))
def test_the_readme_states_the_defaults_of_the_variables(variable):
    documented = table_after(README, "## Configuration")[variable]
    [value] = re.findall(r"`([^`]*)`", documented)
    expected = ENV_DEFAULTS[variable]
    assert (number(value) if isinstance(expected, int | float) else value) == expected


def test_variables_documented_as_unset_have_no_default():
    unset = Settings.from_env({})
    fields = {
        "POSTER_DATABASE_URL": unset.database_url,
        "POSTER_TOKEN_KEY": unset.token_key,
        "POSTER_REDIRECT_URI": unset.redirect_uri,
        "POSTER_API_KEY": unset.api_key,
        "POSTER_ALERT_EMAIL_TO": unset.alert_email_to,
        "POSTER_SMTP_URL": unset.smtp_url,
        "POSTER_ALERT_WEBHOOK_URL": unset.alert_webhook_url,
        "POSTER_DAGSTER_URL": unset.dagster_url,
    }
    documented = table_after(README, "## Configuration")
    for variable, value in fields.items():
        assert documented[variable].startswith("unset"), variable
        assert value is None, variable


def test_the_readme_states_the_queue_retry_rules_of_the_code():
    policy = QUEUE.retry_policy()
    first, second = (policy.base * 2**n for n in range(2))
    assert (
        f"growing delay ({first.seconds} s, {second.seconds} s, … up to an hour)" in README
        and policy.cap.total_seconds() == 3600
    )
    assert f"after {QUEUE.max_attempts} attempts an event is dead" in README
    assert f"expires after {QUEUE.claim_lease_s / 60:g} minutes" in README


def test_every_receiver_setting_is_documented_with_its_default():
    documented = table_after(RECEIVER, "`ReceiverSettings` fields:")
    fields = {f.name: f for f in dataclasses.fields(ReceiverSettings)}
    assert set(documented) == set(fields)
    for name, default in documented.items():
        if default == "required":
            assert fields[name].default is dataclasses.MISSING, name
        elif default == "`None`":
            assert fields[name].default is None, name
        elif isinstance(fields[name].default, int | float):
            assert number(default) == fields[name].default, name
        else:
            assert default.strip("`") == str(fields[name].default), name
    assert f"within {BODY_TIMEOUT_SECONDS:g} s" in RECEIVER


def test_the_readme_states_the_deletion_guards_defaults():
    warehouse = WarehouseResource()
    share, rows = warehouse.mass_delete_max_share, warehouse.mass_delete_min_rows
    strict_share, strict_rows = warehouse.list_only_max_share, warehouse.list_only_min_rows
    text = " ".join(README.split())
    assert f"more than {share:.0%} of at least {rows} active rows".replace("%", " %") in text
    assert f"more than {strict_share:.0%} of at least {strict_rows})".replace("%", " %") in text
    assert f"up to {warehouse.absence_sample_size} of them one by one" in text


def test_the_readme_states_the_nightly_schedules_tick_and_lookback():
    hours = NIGHTLY_LOOKBACK / timedelta(hours=1)
    minutes = NIGHTLY_TICK / timedelta(minutes=1)
    assert f"ticks every {minutes:g} minutes" in README
    assert f"within {hours:g} hours" in README


def test_the_docs_state_the_silence_alerts_threshold_interval_and_limits():
    window = timedelta(hours=Settings().smart_sync_window_hours)
    hours = f"{silence_threshold(window) / timedelta(hours=1):g} h"
    section = " ".join(ALERTS.split("## Silence", 1)[1].split("\n## ", 1)[0].split())
    [row] = [line for line in ALERTS.splitlines() if line.startswith("| `sync_silence_alert`")]
    assert SILENCE_FACTOR == 2 and "twice the smart-sync window" in section
    assert f"every {SILENCE_CHECK_SECONDS / 60:g} minutes" in row
    assert f"Every {SILENCE_CHECK_SECONDS / 60:g} minutes the sensor" in section
    assert f"the first {LISTED_PAIRS} one per line" in section
    tuning = "`POSTER_SMART_SYNC_HOURS=12` makes the threshold {} h".format(
        f"{silence_threshold(timedelta(hours=12)) / timedelta(hours=1):g}"
    )
    assert tuning in section
    readme = " ".join(README.split("**Alerts**", 1)[1].split("\n\n", 1)[0].split())
    # Every other figure in hours is the default threshold.
    for text in (section.replace(tuning, ""), row, readme):
        figures = set(re.findall(r"\b(\d+) h\b", text))
        assert figures <= {hours.split()[0]}, figures
    assert f"no successful full sync for {hours}" in row
    assert f"twice the smart-sync window ({hours})" in readme
