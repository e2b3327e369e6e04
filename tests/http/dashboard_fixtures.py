"""What the dashboard tests share: a warehouse filled through the pipeline's own writers,
and a logged-in client."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.http import ReceiverSettings, create_app
from poster_pipeline.warehouse.schema import accounts, sync_requests, sync_status, webhook_events
from poster_pipeline.warehouse.status import record_failure, record_success
from tests.http.conftest import TestClient

API_KEY = "dashboard-test-key-8d41c7e2"
LOGIN = "/dashboard/login"
LOGOUT = "/dashboard/logout"
DASHBOARD = "/dashboard"


def empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (webhook_events, sync_requests, sync_status, accounts):
            conn.execute(sa.delete(table))


def add_accounts(engine: Engine, names: Iterable[str], *, active: bool = True) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "account": name,
            "token_encrypted": "not-a-token",
            "auth_method": "personal",
            "is_active": active,
            "connected_at": now,
            "updated_at": now,
        }
        for name in names
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(accounts), rows)


def synced(engine: Engine, account: str, entity: str, *, ago: timedelta, rows: int = 10) -> None:
    with engine.begin() as conn:
        record_success(
            conn,
            entity,
            account,
            "full",
            now=datetime.now(UTC) - ago,
            active=rows,
            total=rows,
            run_id=None,
        )


def failed(engine: Engine, account: str, entity: str, message: str, *, kind: Any = "full") -> None:
    record_failure(engine, entity, account, message, now=datetime.now(UTC), kind=kind)


def add_event(
    engine: Engine,
    account: str,
    entity: str | None,
    status: str,
    *,
    received_ago: timedelta = timedelta(0),
    error: str | None = None,
) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        next_id = conn.execute(sa.select(sa.func.count()).select_from(webhook_events)).scalar_one()
        conn.execute(
            sa.insert(webhook_events).values(
                dedup_key=f"{account}-{entity}-{status}-{next_id}",
                account=account,
                object=entity or "unknown",
                object_id=next_id + 1,
                action="changed",
                event_time=int(now.timestamp()),
                entity=entity,
                status=status,
                attempts=8 if status == "dead" else 0,
                next_attempt_at=now,
                last_error=error,
                received_at=now - received_ago,
                updated_at=now,
                payload={},
            )
        )


def app_client(
    engine: Engine, *, base_url: str = "http://testserver", **settings: Any
) -> TestClient:
    settings = {"application_secret": "webhook-secret", "api_key": API_KEY, **settings}
    return TestClient(create_app(ReceiverSettings(**settings), engine), base_url=base_url)


def form_token(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def log_in(client: TestClient, key: str = API_KEY) -> Any:
    """Fill in and send the login form as a browser would; returns the POST's answer."""
    form = client.get(LOGIN)
    assert form.status_code == 200, form.text
    return client.post(
        LOGIN, data={"token": form_token(form.text), "key": key}, follow_redirects=False
    )
