"""The warehouse tables, derived from the entity catalogue (SQLAlchemy Core).

Every entity table is keyed by (account, Poster id), keeps Poster's id column name, one typed
column per catalogue field, the raw record as JSON, and the bookkeeping columns:

- ``is_deleted`` / ``deleted_at``: Poster flagged the object deleted, or stopped listing it;
  rows are never dropped, and a row that comes back is restored.
- ``first_seen_at``: when a sync first stored the object.
- ``updated_at``: when the object's content (its typed fields) last changed in Poster, not when
  it was last seen; a deletion or a restore changes state, not content.
- ``synced_at``: when a sync last wrote the row (a content change, a deletion or a restore).
  An unchanged object is not rewritten, so the time of the last sync of a table is in
  ``sync_status``, not here.

Migrations (``poster_pipeline/warehouse/migrations``) create these tables; a test checks that
the migrated schema equals this module's metadata, so a catalogue change needs a migration.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from poster_pipeline.catalogue import ENTITIES, Entity, FieldType

__all__ = [
    "BOOKKEEPING_COLUMNS",
    "EVENT_STATUSES",
    "REQUEST_STATUSES",
    "EventStatus",
    "RequestStatus",
    "accounts",
    "alerts_sent",
    "entity_table",
    "metadata",
    "oauth_states",
    "sync_requests",
    "sync_status",
    "webhook_events",
]

metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

JSON_TYPE = sa.JSON().with_variant(JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
QUANTITY = sa.Numeric(20, 5)

_COLUMN_TYPES: Mapping[FieldType, sa.types.TypeEngine] = {
    FieldType.INTEGER: sa.BigInteger(),
    FieldType.TEXT: sa.Text(),
    FieldType.FLAG: sa.Boolean(),
    FieldType.MONEY: sa.BigInteger(),
    FieldType.QUANTITY: QUANTITY,
    FieldType.JSON: JSON_TYPE,
    FieldType.DATETIME: sa.DateTime(timezone=False),
}

BOOKKEEPING_COLUMNS = (
    "raw",
    "is_deleted",
    "deleted_at",
    "first_seen_at",
    "updated_at",
    "synced_at",
)


def _entity_table(spec: Entity) -> sa.Table:
    clash = set(spec.field_names) & {"account", *BOOKKEEPING_COLUMNS}
    if clash:
        raise ValueError(f"{spec.name}: fields {sorted(clash)} clash with warehouse columns")
    columns = [
        sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
        *(
            sa.Column(
                field.name,
                _COLUMN_TYPES[field.type],
                nullable=field.name not in spec.keys,
                autoincrement=False,
                comment=field.description or None,
            )
            for field in spec.fields
        ),
        sa.Column("raw", JSON_TYPE, nullable=False, comment="the object as Poster sent it"),
        sa.Column("is_deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("deleted_at", TIMESTAMP),
        sa.Column("first_seen_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False, comment="last change of content"),
        sa.Column("synced_at", TIMESTAMP, nullable=False, comment="last write by a sync"),
    ]
    # In key order (stock: account, storage_id, ingredient_id), so a scope's rows are one
    # range of the primary key's index.
    key = sa.PrimaryKeyConstraint("account", *spec.keys)
    # A sync of a date window (supplies) judges absence by date: one range of this index.
    window = [sa.Index(None, "account", spec.window_field)] if spec.window_field else []
    return sa.Table(spec.table, metadata, *columns, key, *window, comment=spec.description)


_ENTITY_TABLES: Mapping[str, sa.Table] = {spec.name: _entity_table(spec) for spec in ENTITIES}


def entity_table(spec: Entity | str) -> sa.Table:
    """The warehouse table of an entity."""
    return _ENTITY_TABLES[spec if isinstance(spec, str) else spec.name]


sync_status = sa.Table(
    "sync_status",
    metadata,
    sa.Column("account", sa.Text(), primary_key=True),
    sa.Column("entity", sa.Text(), primary_key=True),
    sa.Column("last_full_sync_at", TIMESTAMP, comment="last successful full sync"),
    sa.Column("last_partial_sync_at", TIMESTAMP, comment="last successful partial sync"),
    sa.Column("last_attempt_at", TIMESTAMP, nullable=False),
    sa.Column("last_full_attempt_at", TIMESTAMP, comment="last full sync, successful or not"),
    sa.Column(
        "last_success", sa.Boolean(), nullable=False, comment="no full or partial error stands"
    ),
    sa.Column(
        "last_error",
        sa.Text(),
        comment="the newer of last_full_error and last_partial_error; NULL when neither",
    ),
    sa.Column("last_full_error", sa.Text(), comment="why a full sync failed; NULL once one works"),
    sa.Column("last_full_error_at", TIMESTAMP, comment="when that failed full sync started"),
    sa.Column(
        "last_partial_error",
        sa.Text(),
        comment="why a partial sync failed; NULL once a partial or full sync works",
    ),
    sa.Column("last_partial_error_at", TIMESTAMP, comment="when that failed partial sync started"),
    sa.Column("full_sync_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("partial_sync_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("failure_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("rows_active", sa.Integer(), comment="rows not deleted after the last success"),
    sa.Column("rows_total", sa.Integer(), comment="all rows after the last success"),
    sa.Column("last_run_id", sa.Text(), comment="the Dagster run of the last attempt"),
    comment="One row per account and entity: the state of its syncs.",
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account", sa.Text(), primary_key=True, comment="Poster account login"),
    sa.Column("account_number", sa.Text(), comment="Poster's numeric account id"),
    sa.Column("token_encrypted", sa.Text(), nullable=False, comment="Fernet token"),
    sa.Column("auth_method", sa.Text(), nullable=False, comment="personal or oauth"),
    sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("connected_at", TIMESTAMP, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    sa.Column("time_zone", sa.Text(), comment="IANA time zone of the restaurant"),
    sa.CheckConstraint("auth_method IN ('personal', 'oauth')", name="auth_method"),
    comment="Connected Poster accounts; each active one is a Dagster partition.",
)


class EventStatus(StrEnum):
    """Where a webhook event is: pending → claimed → done, back to pending after a failure,
    dead after its last attempt; ignored when there is nothing to sync (stored with a reason)."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    IGNORED = "ignored"
    DEAD = "dead"


EVENT_STATUSES = tuple(EventStatus)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("dedup_key", sa.Text(), nullable=False, comment="hash of the signed fields"),
    sa.Column("account", sa.Text(), nullable=False),
    sa.Column("account_number", sa.Text()),
    sa.Column("object", sa.Text(), nullable=False, comment="Poster's webhook object"),
    sa.Column("object_id", sa.BigInteger(), nullable=False),
    sa.Column("action", sa.Text(), nullable=False),
    sa.Column("event_time", sa.BigInteger(), nullable=False, comment="Poster's time, Unix s"),
    sa.Column("entity", sa.Text(), comment="the catalogue entity; NULL when not synced"),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("ignore_reason", sa.Text()),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
    sa.Column("claim_id", sa.Text(), comment="the claim (one run) that holds the event"),
    sa.Column("claimed_until", TIMESTAMP, comment="the claim expires then"),
    sa.Column("last_error", sa.Text()),
    sa.Column("settled_by_run", sa.Text(), comment="the Dagster run that settled it"),
    sa.Column("received_at", TIMESTAMP, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    sa.Column("payload", JSON_TYPE, nullable=False, comment="the webhook body as received"),
    sa.UniqueConstraint("dedup_key"),
    sa.CheckConstraint(
        "status IN ({})".format(", ".join(f"'{s}'" for s in EVENT_STATUSES)), name="status"
    ),
    sa.Index(
        "ix_webhook_events_due",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
    sa.Index(
        "ix_webhook_events_claims",
        "account",
        "entity",
        "claimed_until",
        postgresql_where=sa.text("status = 'claimed'"),
        sqlite_where=sa.text("status = 'claimed'"),
    ),
    sa.Index("ix_webhook_events_received_at", "received_at"),
    comment="Poster webhooks as received: the queue the webhook sensor drains.",
)

alerts_sent = sa.Table(
    "alerts_sent",
    metadata,
    sa.Column("key", sa.Text(), primary_key=True, comment="what the alerts are about"),
    sa.Column(
        "last_sent_at",
        sa.DateTime(timezone=True),
        nullable=False,
        comment="when the last alert about the key went out",
    ),
    sa.Column(
        "count_suppressed",
        sa.Integer(),
        nullable=False,
        server_default="0",
        comment="alerts held back since last_sent_at",
    ),
    comment="Alert de-duplication: at most one alert per key and window.",
)


class RequestStatus(StrEnum):
    """A sync request is pending until the sensor has seen its run launched."""

    PENDING = "pending"
    LAUNCHED = "launched"


REQUEST_STATUSES = tuple(RequestStatus)

sync_requests = sa.Table(
    "sync_requests",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("account", sa.Text(), nullable=False, comment="Poster account login"),
    sa.Column("entity", sa.Text(), nullable=False, comment="the catalogue entity"),
    sa.Column("force", sa.Boolean(), nullable=False, comment="asked as forced, not smart"),
    sa.Column("requested_at", TIMESTAMP, nullable=False),
    sa.Column("requested_by", sa.Text(), nullable=False, comment="who asked, e.g. api"),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("launched_at", TIMESTAMP, comment="when the sensor requested its run"),
    sa.Column("run_key", sa.Text(), comment="the run key of the Dagster run that serves it"),
    sa.CheckConstraint(
        "status IN ({})".format(", ".join(f"'{s}'" for s in REQUEST_STATUSES)), name="status"
    ),
    sa.Index(
        "ix_sync_requests_pending",
        "id",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
    sa.Index("ix_sync_requests_recent", "account", "entity", "force", "requested_at"),
    comment="Full syncs requested through the sync API; the sync_requests sensor launches them.",
)

oauth_states = sa.Table(
    "oauth_states",
    metadata,
    sa.Column(
        "state_hash",
        sa.Text(),
        primary_key=True,
        comment="SHA-256 of the state, hex; the state itself is never stored",
    ),
    sa.Column(
        "browser_hash",
        sa.Text(),
        nullable=False,
        comment="SHA-256 of the browser key in the cookie of the browser that started it",
    ),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
    sa.Column("used_at", TIMESTAMP, comment="when a callback spent it; NULL while unused"),
    comment="OAuth states of authorizations in progress: single-use, short-lived.",
)
