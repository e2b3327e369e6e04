"""Settings read from the environment: the fixed variable names of design.md, with defaults.

Only this module reads ``os.environ``; everything else receives values from here (or, inside
Dagster, from resources configured with ``EnvVar``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from poster_pipeline.poster.client import DEFAULT_API_URL
from poster_pipeline.warehouse.engine import default_database_url

__all__ = ["DEFAULT_DATA_DIR", "Settings"]

DEFAULT_DATA_DIR = ".poster-pipeline"


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
    alert_email_to: str | None = None
    smtp_url: str | None = field(default=None, repr=False)  # may hold a password
    alert_webhook_url: str | None = field(default=None, repr=False)  # often holds a token

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            api_url=env.get("POSTER_API_URL") or DEFAULT_API_URL,
            database_url=env.get("POSTER_DATABASE_URL") or None,
            data_dir=Path(env.get("POSTER_DATA_DIR") or DEFAULT_DATA_DIR),
            token_key=env.get("POSTER_TOKEN_KEY") or None,
            application_id=env.get("POSTER_APPLICATION_ID") or None,
            application_secret=env.get("POSTER_APPLICATION_SECRET") or None,
            redirect_uri=env.get("POSTER_REDIRECT_URI") or None,
            api_key=env.get("POSTER_API_KEY") or None,
            timezone=env.get("POSTER_TIMEZONE") or "UTC",
            smart_sync_window_hours=float(env.get("POSTER_SMART_SYNC_HOURS") or 24),
            alert_email_to=env.get("POSTER_ALERT_EMAIL_TO") or None,
            smtp_url=env.get("POSTER_SMTP_URL") or None,
            alert_webhook_url=env.get("POSTER_ALERT_WEBHOOK_URL") or None,
        )

    @property
    def warehouse_url(self) -> str:
        """``POSTER_DATABASE_URL``, or the embedded SQLite file in the data folder."""
        return self.database_url or default_database_url(self.data_dir)
