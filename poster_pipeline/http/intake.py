"""What becomes of a verified webhook: queued for a sync, or recorded as ignored.

Poster blocks newer hooks while an older one is unanswered (docs/poster-api.md §3.6), so nothing
decided here is ever an error: a hook the pipeline cannot use is stored as ``ignored`` with a
reason a person can read, and answered 200 like any other.
"""

from __future__ import annotations

from collections.abc import Container
from typing import NamedTuple

from poster_pipeline.catalogue import entity_for_webhook_object
from poster_pipeline.poster.webhooks import WebhookEvent, data_id

__all__ = ["CHANGE_ACTIONS", "TEST_ACTION", "Classification", "classify"]

#: The documented actions (docs/poster-api.md §3.2); Poster also sends ``closed`` for transactions.
CHANGE_ACTIONS = frozenset({"added", "changed", "removed", "transformed"})
#: Probably what the "Check" button of the application settings sends (docs/poster-api.md §3.4).
TEST_ACTION = "test"


class Classification(NamedTuple):
    """``entity`` is the catalogue entity the object belongs to (kept for ignored events too,
    so the queue shows which entity they concern); ``ignore_reason`` is ``None`` for an event
    to sync."""

    entity: str | None
    ignore_reason: str | None


def classify(event: WebhookEvent, active_accounts: Container[str]) -> Classification:
    """Decide whether ``event`` is queued for a sync; the first rule that applies wins.

    1. the object is not in the catalogue (``transaction``, ``client``…): not synced;
    2. action ``test``: a test hook;
    3. an action other than added/changed/removed/transformed (``closed``…): unknown;
    4. the account is not among ``active_accounts``: not connected;
    5. the entity's hooks name their object in ``data`` (stock: ``data.storage_id``) and this
       one does not: nothing to re-fetch.
    """
    spec = entity_for_webhook_object(event.object)
    entity = None if spec is None else spec.name
    if spec is None:
        reason: str | None = f"object {event.object} is not synced"
    elif event.action == TEST_ACTION:
        reason = "test hook"
    elif event.action not in CHANGE_ACTIONS:
        reason = f"unknown action {event.action}"
    elif event.account not in active_accounts:
        reason = f"account {event.account} is not connected"
    elif spec.webhook_data_id and data_id(event, spec.webhook_data_id) is None:
        reason = f"{event.object} hook without data.{spec.webhook_data_id}"
    else:
        reason = None
    return Classification(entity, reason)
