"""What the webhook receiver is configured with, checked when it is built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from poster_pipeline.http.client_faults import BODY_TIMEOUT_SECONDS
from poster_pipeline.settings import Settings

__all__ = ["ReceiverConfigError", "ReceiverSettings"]


class ReceiverConfigError(ValueError):
    """The receiver cannot run with this configuration; the message names the fix."""


@dataclass(frozen=True)
class ReceiverSettings:
    """The receiver's settings. Secrets and the database URL are left out of ``repr``.

    - ``application_secret``: the Poster application's secret (``POSTER_APPLICATION_SECRET``);
      every webhook's signature is checked with it, so it is required.
    - ``warehouse_url``: the warehouse to queue into; may be ``None`` only when
      :func:`~poster_pipeline.http.app.create_app` is given an engine.
    - ``max_body_bytes``: a larger body is refused with 413 (Poster's hooks are well under
      1 KiB; ``data`` is the biggest field).
    - ``body_timeout_seconds``: a body still arriving this long after its request's headers
      is refused with 408 (see :mod:`~poster_pipeline.http.client_faults`).
    - ``accounts_cache_seconds``: how long the list of active accounts is trusted.
    - ``database_timeout_seconds``: a webhook whose storage takes longer is answered 503.
    - ``database_concurrency``: warehouse calls in flight at once (the pool size of the
      receiver's own engine). A webhook holds a connection for one round trip, so a few
      threads keep up with thousands a second; more would only contend for the GIL.

    The sync API and OAuth connect (``docs/sync-api.md``):

    - ``api_key``: the bearer key of the sync API (``POSTER_API_KEY``); unset, the sync API
      answers 503 and the webhook endpoint works as before.
    - ``application_id``, ``redirect_uri``: the Poster application's OAuth settings; unset,
      the OAuth routes answer 503 naming the variable.
    - ``api_url``: Poster's Web API base (the emulator's in tests and the demo).
    - ``token_key``, ``data_dir``: how stored access tokens are encrypted, as in Dagster's
      ``WarehouseResource`` (both sides must use the same key).
    - ``smart_sync_window_hours``: smart sync's freshness window, for ``needsSync``.
    - ``force_interval_seconds``: the least time between two forced syncs of one account
      and entity.

    The operators' page (``docs/dashboard.md``) is protected by ``api_key`` too (503 when it
    is unset) and links each cell to ``dagster_url`` (``POSTER_DAGSTER_URL``, the Dagster
    UI's base URL; unset, no links).
    """

    application_secret: str = field(repr=False)
    warehouse_url: str | None = field(default=None, repr=False)
    max_body_bytes: int = 65536
    body_timeout_seconds: float = BODY_TIMEOUT_SECONDS
    accounts_cache_seconds: float = 5.0
    database_timeout_seconds: float = 3.0
    database_concurrency: int = 4
    api_key: str | None = field(default=None, repr=False)
    application_id: str | None = None
    redirect_uri: str | None = None
    api_url: str = Settings.api_url
    token_key: str | None = field(default=None, repr=False)
    data_dir: Path = Settings.data_dir
    smart_sync_window_hours: float = Settings.smart_sync_window_hours
    force_interval_seconds: float = 60.0
    dagster_url: str | None = None

    def __post_init__(self) -> None:
        if not self.application_secret:
            raise ReceiverConfigError(
                "POSTER_APPLICATION_SECRET is not set: the receiver needs the Poster "
                "application's secret to verify webhook signatures"
            )
        if self.max_body_bytes < 1:
            raise ReceiverConfigError("max_body_bytes must be positive")
        if self.body_timeout_seconds <= 0:
            raise ReceiverConfigError("body_timeout_seconds must be positive")
        if self.accounts_cache_seconds < 0:
            raise ReceiverConfigError("accounts_cache_seconds must not be negative")
        if self.database_timeout_seconds <= 0:
            raise ReceiverConfigError("database_timeout_seconds must be positive")
        if self.database_concurrency < 1:
            raise ReceiverConfigError("database_concurrency must be at least 1")
        if self.smart_sync_window_hours <= 0:
            raise ReceiverConfigError("smart_sync_window_hours must be positive")
        if self.force_interval_seconds < 0:
            raise ReceiverConfigError("force_interval_seconds must not be negative")
        if self.dagster_url and not self.dagster_url.strip().startswith(("http://", "https://")):
            raise ReceiverConfigError(
                "POSTER_DAGSTER_URL must be the Dagster UI's http:// or https:// URL, "
                "e.g. http://127.0.0.1:3000"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> ReceiverSettings:
        """The receiver's part of ``settings``; :class:`ReceiverConfigError` when they set a
        variable the pipeline refuses (see :meth:`Settings.require_supported`)."""
        if settings.refusal is not None:
            raise ReceiverConfigError(settings.refusal)
        return cls(
            application_secret=settings.application_secret or "",
            warehouse_url=settings.warehouse_url,
            api_key=settings.api_key,
            application_id=settings.application_id,
            redirect_uri=settings.redirect_uri,
            api_url=settings.api_url,
            token_key=settings.token_key,
            data_dir=settings.data_dir,
            smart_sync_window_hours=settings.smart_sync_window_hours,
            dagster_url=settings.dagster_url,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReceiverSettings:
        """From the ``POSTER_*`` variables (see :class:`~poster_pipeline.settings.Settings`)."""
        return cls.from_settings(Settings.from_env(environ))
