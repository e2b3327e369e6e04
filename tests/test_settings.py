"""Settings from the environment: the seed project's variable names (two aliases, one refusal)
and their warnings, which name variables and never their values."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from poster_pipeline import settings as settings_module
from poster_pipeline.cli import main
from poster_pipeline.http.settings import ReceiverConfigError, ReceiverSettings
from poster_pipeline.settings import SEED_TOKEN_MESSAGE, Settings, SettingsError
from tests.processes import clean_env

SEED_TOKEN = "813932:" + "5eed" * 8


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test as a new process: no warning logged yet (they are logged once per process)."""
    monkeypatch.setattr(settings_module, "_reported", set())


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_the_seeds_application_names_are_used_with_a_warning_naming_the_right_ones(caplog):
    settings = Settings.from_env({"POSTER_APP_ID": "seed-app", "POSTER_APP_SECRET": "seed-secret"})
    assert (settings.application_id, settings.application_secret) == ("seed-app", "seed-secret")
    assert warnings(caplog) == [
        "POSTER_APP_ID is the seed project's name: its value is used as POSTER_APPLICATION_ID; "
        "rename the variable to POSTER_APPLICATION_ID",
        "POSTER_APP_SECRET is the seed project's name: its value is used as "
        "POSTER_APPLICATION_SECRET; rename the variable to POSTER_APPLICATION_SECRET",
    ]
    assert "seed-secret" not in caplog.text and "seed-secret" not in repr(settings)


def test_the_real_name_wins_over_the_seeds_with_a_warning(caplog):
    settings = Settings.from_env(
        {
            "POSTER_APPLICATION_ID": "real-app",
            "POSTER_APP_ID": "seed-app",
            "POSTER_APPLICATION_SECRET": "real-secret",
            "POSTER_APP_SECRET": "seed-secret",
        }
    )
    assert (settings.application_id, settings.application_secret) == ("real-app", "real-secret")
    assert warnings(caplog) == [
        "both POSTER_APPLICATION_ID and POSTER_APP_ID (the seed project's name) are set: "
        "POSTER_APPLICATION_ID is used; unset POSTER_APP_ID",
        "both POSTER_APPLICATION_SECRET and POSTER_APP_SECRET (the seed project's name) are "
        "set: POSTER_APPLICATION_SECRET is used; unset POSTER_APP_SECRET",
    ]
    assert "real-secret" not in caplog.text and "seed-secret" not in caplog.text


def test_without_the_seeds_names_nothing_is_said(caplog):
    settings = Settings.from_env(
        {"POSTER_APPLICATION_SECRET": "real-secret", "POSTER_APP_SECRET": "", "POSTER_APP_ID": ""}
    )
    assert (settings.application_id, settings.application_secret) == (None, "real-secret")
    assert warnings(caplog) == []
    settings.require_supported()


def test_a_warning_is_logged_once_per_process(caplog):
    for _ in range(3):  # Dagster's automation reads the settings on every evaluation
        assert Settings.from_env({"POSTER_APP_SECRET": "seed-secret"}).application_secret
    assert len(warnings(caplog)) == 1


def test_the_receiver_verifies_with_the_seeds_secret():
    receiver = ReceiverSettings.from_env({"POSTER_APP_SECRET": "seed-secret"})
    assert receiver.application_secret == "seed-secret"


def test_the_seeds_access_token_is_refused_naming_what_to_do(caplog):
    settings = Settings.from_env({"POSTER_ACCESS_TOKEN": SEED_TOKEN})
    assert settings.seed_access_token and settings.refusal == SEED_TOKEN_MESSAGE
    with pytest.raises(SettingsError) as refused:
        settings.require_supported()
    message = str(refused.value)
    assert message.startswith("POSTER_ACCESS_TOKEN is set, but this pipeline does not read")
    assert "poster-pipeline accounts add --account NAME" in message
    assert "unset POSTER_ACCESS_TOKEN" in message
    with pytest.raises(ReceiverConfigError, match="poster-pipeline accounts add"):
        ReceiverSettings.from_settings(settings)
    assert SEED_TOKEN not in message + repr(settings) + caplog.text


def run(env: dict[str, str | None], *args: str):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_serve_refuses_the_seeds_access_token(tmp_path: Path):
    env = {
        "POSTER_ACCESS_TOKEN": SEED_TOKEN,
        "POSTER_APPLICATION_SECRET": "real-secret",
        "POSTER_DATA_DIR": str(tmp_path),
        "POSTER_DATABASE_URL": "",
    }
    result = run(env, "serve")
    assert result.exit_code != 0
    assert SEED_TOKEN_MESSAGE in result.output
    assert SEED_TOKEN not in result.output


def test_serve_takes_the_seeds_secret(tmp_path: Path, caplog):
    env = {
        "POSTER_APPLICATION_SECRET": None,
        "POSTER_APP_SECRET": "seed-secret",
        "POSTER_DATA_DIR": str(tmp_path),
        "POSTER_DATABASE_URL": "",
    }
    result = run(env, "serve")
    # Past the secret's check, on to the warehouse's: the seed's name was used.
    assert "POSTER_APPLICATION_SECRET is not set" not in result.output
    assert "no webhook_events table" in result.output
    assert "rename the variable to POSTER_APPLICATION_SECRET" in caplog.text
    assert "seed-secret" not in result.output + caplog.text


def test_the_demo_refuses_the_seeds_access_token(tmp_path: Path):
    env = {"POSTER_ACCESS_TOKEN": SEED_TOKEN, "POSTER_DATA_DIR": str(tmp_path)}
    result = run(env, "demo", "--once")
    assert result.exit_code != 0
    assert SEED_TOKEN_MESSAGE in result.output
    assert "Poster emulator" not in result.output  # refused before anything started


def test_commands_that_start_no_service_ignore_the_seeds_access_token(tmp_path: Path):
    env = {
        "POSTER_ACCESS_TOKEN": SEED_TOKEN,
        "POSTER_DATA_DIR": str(tmp_path),
        "POSTER_DATABASE_URL": "",
    }
    assert run(env, "db", "upgrade").exit_code == 0
    assert "no account is connected" in run(env, "accounts", "list").output


def test_the_code_location_loads_and_logs_the_refusal_as_an_error(tmp_path: Path):
    env = clean_env(POSTER_ACCESS_TOKEN=SEED_TOKEN, POSTER_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import poster_pipeline.definitions as d; print(len(d.defs.assets))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0
    assert SEED_TOKEN_MESSAGE in result.stderr
    assert SEED_TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("POSTER_SMART_SYNC_HOURS", "a day"),
        ("POSTER_SMART_SYNC_HOURS", "nan"),
        ("POSTER_SMART_SYNC_HOURS", "inf"),
        ("POSTER_SMART_SYNC_HOURS", "-1"),
        ("POSTER_WEBHOOK_SENSOR_INTERVAL", "0"),
        ("POSTER_WEBHOOK_SENSOR_INTERVAL", "1.5"),
    ],
)
def test_a_number_that_is_not_one_is_refused_naming_the_variable(variable: str, value: str):
    with pytest.raises(SettingsError, match=f"{variable} must be .* greater than 0, got '{value}'"):
        Settings.from_env({variable: value})


def test_numbers_are_read_and_blank_means_the_default():
    settings = Settings.from_env(
        {"POSTER_SMART_SYNC_HOURS": "6.5", "POSTER_WEBHOOK_SENSOR_INTERVAL": " "}
    )
    assert settings.smart_sync_window_hours == 6.5
    assert settings.webhook_sensor_interval_s == Settings().webhook_sensor_interval_s


def test_the_supplies_window_is_a_whole_number_of_days():
    assert Settings.from_env({}).supplies_window_days == 62
    assert Settings.from_env({"POSTER_SUPPLIES_WINDOW_DAYS": "400"}).supplies_window_days == 400
    for bad in ("0", "-5", "two months", "1.5"):
        with pytest.raises(SettingsError, match="POSTER_SUPPLIES_WINDOW_DAYS"):
            Settings.from_env({"POSTER_SUPPLIES_WINDOW_DAYS": bad})


def test_an_empty_environment_gives_every_default():
    """An unset (or empty) variable means the field's default: one place states each."""
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"POSTER_SMART_SYNC_HOURS": "", "POSTER_TIMEZONE": ""}) == Settings()
