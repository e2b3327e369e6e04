"""Settings read from the environment: the fixed variable names of design.md, with defaults.

Only this module reads ``os.environ``; everything else receives values from here (or, inside
Dagster, from resources configured with ``EnvVar``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from poster_pipeline.poster.client import DEFAULT_API_URL

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """What an operator configures. Secrets are excluded from ``repr``."""

    api_url: str = DEFAULT_API_URL
    application_id: str | None = None
    application_secret: str | None = field(default=None, repr=False)
    redirect_uri: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            api_url=env.get("POSTER_API_URL") or DEFAULT_API_URL,
            application_id=env.get("POSTER_APPLICATION_ID") or None,
            application_secret=env.get("POSTER_APPLICATION_SECRET") or None,
            redirect_uri=env.get("POSTER_REDIRECT_URI") or None,
        )
