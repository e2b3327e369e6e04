"""Building Poster webhooks for the receiver's tests, and reading back what it queued."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from poster_pipeline.poster.webhooks import sign
from poster_pipeline.warehouse.schema import webhook_events

SECRET = "c0ffee-test-application-secret"
ACCOUNT = "api-demo"  # connected and active in every test's warehouse
INACTIVE_ACCOUNT = "closed-cafe"  # connected, then deactivated
WEBHOOKS = "/api/poster/webhooks"

_ids = itertools.count(1000)


def hook(secret: str = SECRET, **fields: Any) -> dict[str, Any]:
    """A webhook as Poster sends it, signed with ``secret``; ``fields`` override the defaults
    (an ingredient change of ``ACCOUNT`` with a fresh object id)."""
    payload: dict[str, Any] = {
        "account": ACCOUNT,
        "account_number": "813932",
        "object": "ingredient",
        "object_id": next(_ids),
        "action": "changed",
        "time": str(int(time.time())),
    }
    payload.update(fields)
    payload["verify"] = sign(
        account=payload["account"],
        object=payload["object"],
        object_id=payload["object_id"],
        action=payload["action"],
        time=payload["time"],
        secret=secret,
        data=payload.get("data"),
    )
    return payload


def stored(engine: Engine) -> list[Row[Any]]:
    """Every queued event, oldest first."""
    with engine.connect() as conn:
        return list(conn.execute(sa.select(webhook_events).order_by(webhook_events.c.id)))


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Poll ``condition`` until it holds; returns the seconds it took, fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start
