"""Dagster resources: the I/O that assets and sensors ask for by parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypedDict

import dagster as dg
from sqlalchemy.engine import Engine

from poster_pipeline.alerts import AlertsResource
from poster_pipeline.catalogue import Entity
from poster_pipeline.poster.client import ClientSettings, PosterClient
from poster_pipeline.settings import DEFAULT_DATA_DIR, Settings, environment_holds
from poster_pipeline.sync import SyncServices
from poster_pipeline.sync.drain import DrainLimits
from poster_pipeline.warehouse.accounts import AccountStore, cipher_for
from poster_pipeline.warehouse.engine import default_database_url, shared_engine
from poster_pipeline.warehouse.guard import DeletionGuard
from poster_pipeline.warehouse.queue import Claim, ClaimedEvent, RetryPolicy

__all__ = [
    "PipelineResources",
    "PosterApiResource",
    "WarehouseResource",
    "WebhookQueueResource",
    "resources_for",
    "sync_services",
]

# A resource field that configures a dataclass's field takes that field's default, read from
# the dataclass rather than copied, so the two cannot drift apart; a comment marks the few
# that differ on purpose.
_CLIENT = ClientSettings()
_GUARD = DeletionGuard()
_RETRY = RetryPolicy()
_DRAIN = DrainLimits()


class PosterApiResource(dg.ConfigurableResource):
    """Makes :class:`PosterClient`s for connected accounts.

    One resource serves every account: the token differs per account (it comes from the
    accounts table), the transport settings do not. Tests point ``base_url`` at the emulator.
    """

    base_url: str = _CLIENT.base_url
    requests_per_second: float = _CLIENT.requests_per_second
    connect_timeout: float = _CLIENT.connect_timeout
    read_timeout: float = _CLIENT.read_timeout
    max_retries: int = _CLIENT.max_retries

    def client(self, token: str, account: str) -> PosterClient:
        return PosterClient(
            token,
            account=account,
            settings=ClientSettings(
                base_url=self.base_url,
                requests_per_second=self.requests_per_second,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                max_retries=self.max_retries,
            ),
        )


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse database and the accounts stored in it.

    ``database_url`` unset means the embedded SQLite file under ``data_dir``; ``token_key``
    unset means a key generated in ``data_dir`` (fine for a demo, not for production).
    A full sync refuses to mark deleted more than ``mass_delete_max_share`` of
    ``mass_delete_min_rows`` or more active rows (``list_only_*`` for entities Poster can only
    list), and first asks Poster for ``absence_sample_size`` of the vanished rows one by one.
    A supplies sync reads the last ``supplies_window_days`` days (Poster lists them only by
    date) and marks deleted only supplies dated inside them.
    """

    database_url: str | None = None
    data_dir: str = DEFAULT_DATA_DIR
    token_key: str | None = None
    mass_delete_max_share: float = _GUARD.max_share
    mass_delete_min_rows: int = _GUARD.min_rows
    list_only_max_share: float = 0.2
    list_only_min_rows: int = 5
    absence_sample_size: int = _GUARD.sample_size
    supplies_window_days: int = Settings().supplies_window_days  # POSTER_SUPPLIES_WINDOW_DAYS

    @property
    def url(self) -> str:
        return self.database_url or default_database_url(Path(self.data_dir))

    def engine(self) -> Engine:
        return shared_engine(self.url)

    def accounts(self, *, with_tokens: bool = False) -> AccountStore:
        """The accounts; ``with_tokens`` loads the cipher, which only reading a token needs."""
        cipher = cipher_for(self.token_key, Path(self.data_dir)) if with_tokens else None
        return AccountStore(self.engine(), cipher)

    def deletion_guard(self, spec: Entity) -> DeletionGuard:
        """The guard of ``spec``'s full syncs: stricter for entities Poster can only list
        (suppliers, spots), whose vanished rows no single getter can vouch for. Stock has no
        single getter either, but a storage's rows go together with the storage, which the
        storages list and ``storage.getStorage`` vouch for (:mod:`poster_pipeline.sync.listing`):
        it keeps the usual share, without sampling rows."""
        if spec.scope is not None:
            return DeletionGuard(self.mass_delete_max_share, self.mass_delete_min_rows, 0)
        if spec.single_method is None:
            return DeletionGuard(self.list_only_max_share, self.list_only_min_rows, 0)
        return DeletionGuard(
            self.mass_delete_max_share, self.mass_delete_min_rows, self.absence_sample_size
        )


class WebhookQueueResource(dg.ConfigurableResource):
    """How the webhook sensor and the drain treat the queue.

    ``claim_lease_s`` must exceed the wait of a drain run in the run queue: a claim older than
    that is taken for a lost run and its events are claimed again. The drain renews the lease
    when it starts and as it goes. ``drain_workers`` accounts are synced at once;
    ``lock_wait_s`` is how long a partial sync waits for another sync of its pair before its
    events are given back for a later drain.

    A drain run keeps claiming newly due events for ``drain_take_for_s`` seconds, or until
    none came for ``drain_idle_s``, so a steady stream of webhooks needs no new run per sensor
    tick (0 takes only the sensor's claim). While a drain run is active the sensor launches
    another only when a due event has waited ``drain_handoff_s``: the active run is lost,
    stuck or saturated.
    """

    max_attempts: int = _RETRY.max_attempts
    backoff_base_s: float = _RETRY.base.total_seconds()
    backoff_cap_s: float = _RETRY.cap.total_seconds()
    claim_lease_s: float = 600.0
    claim_batch: int = 10_000
    single_fetch_limit: int = _DRAIN.single_fetch_limit
    #: More than DrainLimits' 8: a code location's drain serves every account at once.
    drain_workers: int = 32
    lock_wait_s: float = _DRAIN.lock_wait
    #: DrainLimits takes one claim by default; a run keeps taking so a stream needs no new run.
    drain_take_for_s: float = 300.0
    drain_idle_s: float = _DRAIN.idle_for
    drain_handoff_s: float = 30.0

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            base=timedelta(seconds=self.backoff_base_s),
            cap=timedelta(seconds=self.backoff_cap_s),
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.claim_lease_s)

    def claim(self, engine: Engine, claim_id: str) -> Claim:
        """The claim ``claim_id`` (taken by the sensor), to settle or release its events."""
        return Claim(claim_id, engine, self.lease, self.retry_policy())

    def take(self, engine: Engine) -> tuple[Claim, list[ClaimedEvent]]:
        """A new claim on up to ``claim_batch`` due events."""
        return Claim.take(
            engine,
            lease=self.lease,
            policy=self.retry_policy(),
            limit=self.claim_batch,
            now=datetime.now(UTC),
        )

    def drain_limits(self) -> DrainLimits:
        return DrainLimits(
            workers=self.drain_workers,
            single_fetch_limit=self.single_fetch_limit,
            lock_wait=self.lock_wait_s,
            take_for=self.drain_take_for_s,
            idle_for=self.drain_idle_s,
        )


def sync_services(poster_api: PosterApiResource, warehouse: WarehouseResource) -> SyncServices:
    """What :mod:`poster_pipeline.sync` needs, from the configured resources."""
    return SyncServices(
        engine=warehouse.engine(),
        token_for=warehouse.accounts(with_tokens=True).token,
        client_for=poster_api.client,
    )


class PipelineResources(TypedDict):
    """The resources the code location's assets, sensors and conditions ask for, by key."""

    poster_api: PosterApiResource
    warehouse: WarehouseResource
    webhook_queue: WebhookQueueResource
    alerts: AlertsResource


def _secret(variable: str, value: str | None) -> str | dg.EnvVar | None:
    """``value``, as ``dg.EnvVar(variable)`` when the environment holds it: the UI then shows
    the variable's name, never the secret."""
    if value and environment_holds(variable, value):
        return dg.EnvVar(variable)
    return value


def resources_for(settings: Settings) -> PipelineResources:
    """The resources configured by ``settings``: the one mapping from settings to resources,
    used by the code location (``poster_pipeline/definitions.py``), the demo's one-off sync and,
    through the warehouse, smart sync's condition. Settings not named here keep the resource's
    default."""
    return PipelineResources(
        poster_api=PosterApiResource(base_url=settings.api_url),
        warehouse=WarehouseResource(
            database_url=_secret("POSTER_DATABASE_URL", settings.database_url),
            data_dir=str(settings.data_dir),
            token_key=_secret("POSTER_TOKEN_KEY", settings.token_key),
            supplies_window_days=settings.supplies_window_days,
        ),
        webhook_queue=WebhookQueueResource(),
        alerts=AlertsResource(
            email_to=settings.alert_email_to,
            smtp_url=_secret("POSTER_SMTP_URL", settings.smtp_url),
            webhook_url=_secret("POSTER_ALERT_WEBHOOK_URL", settings.alert_webhook_url),
            dagster_url=settings.dagster_url,
        ),
    )
