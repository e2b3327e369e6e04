"""Settings read from the environment: the fixed variable names of docs/design.md, with defaults.

Only this module reads ``os.environ``; everything else receives values from here (or, inside
Dagster, from resources configured with ``EnvVar``).

The seed project's names are understood too, so that its ``.env`` files are not silently
ignored: ``POSTER_APP_ID`` and ``POSTER_APP_SECRET`` are aliases of ``POSTER_APPLICATION_ID``
and ``POSTER_APPLICATION_SECRET`` (used with a warning; the real name wins when both are set).
``POSTER_ACCESS_TOKEN`` cannot be one: tokens are per account and stored encrypted in the
warehouse. :meth:`Settings.require_supported` refuses it; the commands that start services
(``serve``, ``demo``) call it, and the Dagster code location logs its message as an error
instead (see ``poster_pipeline/definitions.py``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from poster_pipeline.poster.client import DEFAULT_API_URL
from poster_pipeline.warehouse.engine import default_database_url

__all__ = [
    "DEFAULT_DATA_DIR",
    "SEED_ALIASES",
    "SEED_TOKEN_MESSAGE",
    "SEED_TOKEN_VARIABLE",
    "Settings",
    "SettingsError",
    "environment_holds",
]

log = logging.getLogger(__name__)
N = TypeVar("N", int, float)

DEFAULT_DATA_DIR = ".poster-pipeline"
#: The seed project's variable names → the names they stand for.
SEED_ALIASES: Mapping[str, str] = {
    "POSTER_APP_ID": "POSTER_APPLICATION_ID",
    "POSTER_APP_SECRET": "POSTER_APPLICATION_SECRET",
}
SEED_TOKEN_VARIABLE = "POSTER_ACCESS_TOKEN"
SEED_TOKEN_MESSAGE = (
    f"{SEED_TOKEN_VARIABLE} is set, but this pipeline does not read a token from the "
    "environment: tokens are per account (restaurant) and stored encrypted in the warehouse. "
    "Connect the account with `poster-pipeline accounts add --account NAME` (it asks for the "
    f"token), or through OAuth (/api/poster/oauth/authorize), then unset {SEED_TOKEN_VARIABLE}"
)
# Messages already logged by this process: settings may be read more than once in a process
# (the code location, then its sensors' modules), a warning once is enough.
_reported: set[str] = set()


class SettingsError(ValueError):
    """A setting this pipeline refuses; the message says what to do instead."""


def _warn_once(message: str) -> None:
    if message not in _reported:
        _reported.add(message)
        log.warning(message)


def _application_variable(env: Mapping[str, str], name: str) -> str | None:
    """``name``'s value, else its seed alias's, with a warning naming the variable to use.

    The warnings name variables, never their values (the secret is one)."""
    [alias] = [seed for seed, real in SEED_ALIASES.items() if real == name]
    value, seed_value = env.get(name) or None, env.get(alias) or None
    if seed_value is None:
        return value
    if value is None:
        _warn_once(
            f"{alias} is the seed project's name: its value is used as {name}; "
            f"rename the variable to {name}"
        )
        return seed_value
    _warn_once(
        f"both {name} and {alias} (the seed project's name) are set: {name} is used; unset {alias}"
    )
    return value


def _positive(env: Mapping[str, str], name: str, kind: type[N], default: N) -> N:
    """``name`` as a positive number, ``default`` when unset; a clear error when it is not."""
    text = env.get(name) or ""
    if not text.strip():
        return default
    try:
        value = kind(text)
    except ValueError:
        value = kind(0)
    if not math.isfinite(value) or value <= 0:
        unit = "a whole number" if kind is int else "a number"
        raise SettingsError(f"{name} must be {unit} greater than 0, got {text!r}")
    return value


def environment_holds(variable: str, value: str) -> bool:
    """Whether ``variable`` holds exactly ``value`` in this process's environment.

    A Dagster resource configured with a secret takes it as ``dg.EnvVar(variable)`` when this
    holds, so that the UI shows the variable's name, never its value; :class:`Settings` built
    or changed in code (tests, the demo) carry values the environment does not hold, and those
    are passed as they are."""
    return os.environ.get(variable) == value


@dataclass(frozen=True)
class Settings:
    """What an operator configures. Secrets are excluded from ``repr``."""

    api_url: str = DEFAULT_API_URL
    database_url: str | None = field(default=None, repr=False)  # may hold a password
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    token_key: str | None = field(default=None, repr=False)
    application_id: str | None = None
    application_secret: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timezone: str = "UTC"
    smart_sync_window_hours: float = 24.0
    #: Minimum seconds between webhook-queue sensor ticks (``sensors/webhooks.py``).
    webhook_sensor_interval_s: int = 1
    supplies_window_days: int = 62
    alert_email_to: str | None = None
    smtp_url: str | None = field(default=None, repr=False)  # may hold a password
    alert_webhook_url: str | None = field(default=None, repr=False)  # often holds a token
    dagster_url: str | None = None
    #: ``POSTER_ACCESS_TOKEN`` is set (its value is never kept): see :meth:`require_supported`.
    seed_access_token: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        default = cls()  # an unset variable means the field's default, stated once above
        return cls(
            api_url=env.get("POSTER_API_URL") or default.api_url,
            database_url=env.get("POSTER_DATABASE_URL") or None,
            data_dir=Path(env.get("POSTER_DATA_DIR") or default.data_dir),
            token_key=env.get("POSTER_TOKEN_KEY") or None,
            application_id=_application_variable(env, "POSTER_APPLICATION_ID"),
            application_secret=_application_variable(env, "POSTER_APPLICATION_SECRET"),
            redirect_uri=env.get("POSTER_REDIRECT_URI") or None,
            api_key=env.get("POSTER_API_KEY") or None,
            timezone=env.get("POSTER_TIMEZONE") or default.timezone,
            smart_sync_window_hours=_positive(
                env, "POSTER_SMART_SYNC_HOURS", float, default.smart_sync_window_hours
            ),
            supplies_window_days=_positive(
                env, "POSTER_SUPPLIES_WINDOW_DAYS", int, default.supplies_window_days
            ),
            webhook_sensor_interval_s=_positive(
                env, "POSTER_WEBHOOK_SENSOR_INTERVAL", int, default.webhook_sensor_interval_s
            ),
            alert_email_to=env.get("POSTER_ALERT_EMAIL_TO") or None,
            smtp_url=env.get("POSTER_SMTP_URL") or None,
            alert_webhook_url=env.get("POSTER_ALERT_WEBHOOK_URL") or None,
            dagster_url=env.get("POSTER_DAGSTER_URL") or None,
            seed_access_token=bool(env.get(SEED_TOKEN_VARIABLE)),
        )

    @property
    def refusal(self) -> str | None:
        """Why a service must not start with these settings, or ``None``."""
        return SEED_TOKEN_MESSAGE if self.seed_access_token else None

    def require_supported(self) -> None:
        """Raise :class:`SettingsError` when a variable is set that this pipeline refuses
        (``POSTER_ACCESS_TOKEN``): a service started anyway would sync nothing for it."""
        if self.refusal is not None:
            raise SettingsError(self.refusal)

    @property
    def warehouse_url(self) -> str:
        """``POSTER_DATABASE_URL``, or the embedded SQLite file in the data folder."""
        return self.database_url or default_database_url(self.data_dir)
