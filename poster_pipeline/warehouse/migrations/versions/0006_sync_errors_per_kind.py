"""Keep the last full and the last partial sync error apart, so each clears on its own success

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00

Until now ``last_error`` held the last failure of either kind and only a full sync cleared
it, so after a failed partial sync the status stayed failed through every later successful
partial sync. The upgrade files each standing error under its kind:

- a message the partial sync wrote (they all start with ``partial sync of``) becomes the
  partial error, dated by the last attempt (the closest time the old columns keep);
- any other message becomes the full error, dated by the last full attempt;
- when a partial error replaced the message of a full sync that has failed since its last
  success, the full error is kept, with a message saying that its text was not kept.

The downgrade folds them back into ``last_error`` (the newer one) and ``last_success``, the
meaning those columns have kept since this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)
LOST_FULL_MESSAGE = (
    "the last full sync failed; its message was not kept "
    "(a later partial sync's error replaced it before migration 0006)"
)

# The table as this revision sees it, not as the code's schema may later grow.
status = sa.table(
    "sync_status",
    sa.column("last_success", sa.Boolean()),
    sa.column("last_error", sa.Text()),
    sa.column("last_attempt_at", TIMESTAMP),
    sa.column("last_full_attempt_at", TIMESTAMP),
    sa.column("last_full_sync_at", TIMESTAMP),
    sa.column("last_full_error", sa.Text()),
    sa.column("last_full_error_at", TIMESTAMP),
    sa.column("last_partial_error", sa.Text()),
    sa.column("last_partial_error_at", TIMESTAMP),
)
s = status.c

# (column, its type, its comment from this revision on, its comment before)
COMMENTS = (
    ("last_success", sa.Boolean(), "no full or partial error stands", None),
    (
        "last_error",
        sa.Text(),
        "the newer of last_full_error and last_partial_error; NULL when neither",
        "why the last attempt failed; NULL after success",
    ),
)


def _comment(*, upgrading: bool) -> None:
    if not op.get_context().dialect.supports_comments:  # SQLite keeps no comments
        return
    for name, type_, new, old in COMMENTS:
        op.alter_column(
            "sync_status",
            name,
            existing_type=type_,
            existing_nullable=name != "last_success",
            comment=new if upgrading else old,
            existing_comment=old if upgrading else new,
        )


def upgrade() -> None:
    with op.batch_alter_table("sync_status") as batch:
        batch.add_column(
            sa.Column(
                "last_full_error",
                sa.Text(),
                nullable=True,
                comment="why a full sync failed; NULL once one works",
            )
        )
        batch.add_column(
            sa.Column(
                "last_full_error_at",
                TIMESTAMP,
                nullable=True,
                comment="when that failed full sync started",
            )
        )
        batch.add_column(
            sa.Column(
                "last_partial_error",
                sa.Text(),
                nullable=True,
                comment="why a partial sync failed; NULL once a partial or full sync works",
            )
        )
        batch.add_column(
            sa.Column(
                "last_partial_error_at",
                TIMESTAMP,
                nullable=True,
                comment="when that failed partial sync started",
            )
        )
    failed = sa.not_(s.last_success) & s.last_error.is_not(None)
    by_partial = s.last_error.like("partial sync of %")
    op.execute(
        sa.update(status)
        .where(failed, sa.not_(by_partial))
        .values(
            last_full_error=s.last_error,
            last_full_error_at=sa.func.coalesce(s.last_full_attempt_at, s.last_attempt_at),
        )
    )
    op.execute(
        sa.update(status)
        .where(failed, by_partial)
        .values(last_partial_error=s.last_error, last_partial_error_at=s.last_attempt_at)
    )
    full_failed_since_success = s.last_full_attempt_at.is_not(None) & (
        s.last_full_sync_at.is_(None) | (s.last_full_attempt_at > s.last_full_sync_at)
    )
    op.execute(
        sa.update(status)
        .where(failed, by_partial, full_failed_since_success)
        .values(
            last_full_error=sa.literal(LOST_FULL_MESSAGE, sa.Text()),
            last_full_error_at=s.last_full_attempt_at,
        )
    )
    _comment(upgrading=True)


def downgrade() -> None:
    _comment(upgrading=False)
    full, partial = s.last_full_error, s.last_partial_error
    op.execute(
        sa.update(status).values(
            last_success=full.is_(None) & partial.is_(None),
            last_error=sa.case(
                (full.is_(None), partial),
                (partial.is_(None), full),
                (s.last_partial_error_at > s.last_full_error_at, partial),
                else_=full,
            ),
        )
    )
    with op.batch_alter_table("sync_status") as batch:
        batch.drop_column("last_partial_error_at")
        batch.drop_column("last_partial_error")
        batch.drop_column("last_full_error_at")
        batch.drop_column("last_full_error")
