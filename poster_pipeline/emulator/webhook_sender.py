"""Signed change webhooks, delivered the way Poster delivers them.

A hook is a JSON POST of ``account, account_number, object, object_id, action, time,
[data,] verify`` (docs/poster-api.md §3.2) signed with the application secret (§3.5). Delivery is
one FIFO per account: the head is re-sent after each of ``retry_delays`` until a 2xx answer,
and newer hooks of that account wait behind it, because Poster stops sending new hooks while
old ones are unanswered (§3.6). After the last retry the hook is dropped (logged) and the
queue moves on. Re-sends repeat the first send's body byte for byte, ``time`` and ``verify``
included (which ``time`` Poster really re-sends is undocumented, §3.5).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import requests

from poster_pipeline.emulator.config import EmulatorAccount
from poster_pipeline.emulator.wire import dumps
from poster_pipeline.poster.webhooks import sign

__all__ = ["Delivery", "WebhookSender", "webhook_payload"]

log = logging.getLogger(__name__)

DeliveryStatus = Literal["pending", "delivered", "failed", "skipped"]
POST_TIMEOUT = (3.0, 10.0)  # (connect, read) seconds of one delivery attempt


def webhook_payload(
    account: EmulatorAccount,
    *,
    object: str,
    object_id: int,
    action: str,
    secret: str,
    data: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The body Poster would POST, ``verify`` included; ``data`` is signed as given."""
    sent = str(int(time.time() if now is None else now))
    payload: dict[str, Any] = {
        "account": account.name,
        "account_number": str(account.number),
        "object": object,
        "object_id": object_id,
        "action": action,
        "time": sent,
    }
    if data is not None:
        payload["data"] = data
    payload["verify"] = sign(
        account=account.name,
        object=object,
        object_id=object_id,
        action=action,
        time=sent,
        secret=secret,
        data=data,
    )
    return payload


@dataclass
class Delivery:
    """One hook and what became of it.

    ``status``: ``pending`` (queued or being retried), ``delivered`` (a 2xx answer),
    ``failed`` (every retry used up) or ``skipped`` (no webhook URL when it was raised).
    """

    id: int
    account: str
    payload: dict[str, Any]
    body: bytes = field(repr=False)
    status: DeliveryStatus = "pending"
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "payload": self.payload,
            "status": self.status,
            "delivered": self.status == "delivered",
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }


class WebhookSender:
    """Per-account delivery queues; must be used from one running event loop.

    ``url`` may be changed at any time; the next attempt uses the new value.
    """

    def __init__(self, url: str | None, retry_delays: tuple[float, ...]) -> None:
        self.url = url
        self.retry_delays = retry_delays
        self._ids = itertools.count(1)
        self._log: list[Delivery] = []
        self._queues: dict[str, asyncio.Queue[Delivery]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    def enqueue(self, account: str, payload: dict[str, Any]) -> Delivery:
        """Queue ``payload`` behind the account's undelivered hooks."""
        delivery = Delivery(next(self._ids), account, payload, dumps(payload))
        self._log.append(delivery)
        if self.url is None:
            delivery.status = "skipped"
            delivery.finished_at = time.time()
            return delivery
        if account not in self._queues:
            self._queues[account] = asyncio.Queue()
            self._workers[account] = asyncio.get_running_loop().create_task(
                self._deliver_forever(self._queues[account]), name=f"webhooks-{account}"
            )
        self._queues[account].put_nowait(delivery)
        return delivery

    def deliveries(self) -> list[Delivery]:
        return list(self._log)

    def forget_finished(self) -> int:
        """Drop finished deliveries from the log; pending ones stay. Returns how many went."""
        before = len(self._log)
        self._log = [d for d in self._log if d.status == "pending"]
        return before - len(self._log)

    async def aclose(self) -> None:
        """Stop delivering (pending hooks are abandoned, as when Poster gives up)."""
        for task in self._workers.values():
            task.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
        self._workers.clear()
        self._queues.clear()

    async def _deliver_forever(self, queue: asyncio.Queue[Delivery]) -> None:
        while True:
            delivery = await queue.get()
            await self._deliver(delivery)

    async def _deliver(self, delivery: Delivery) -> None:
        for delay in (None, *self.retry_delays):
            if delay is not None:
                await asyncio.sleep(delay)
            if await self._attempt(delivery):
                delivery.status = "delivered"
                delivery.finished_at = time.time()
                return
        delivery.status = "failed"
        delivery.finished_at = time.time()
        log.warning(
            "webhook %s %s:%s %s for account %s dropped after %d attempts (last: %s)",
            delivery.id,
            delivery.payload["object"],
            delivery.payload["object_id"],
            delivery.payload["action"],
            delivery.account,
            delivery.attempts,
            delivery.last_error or f"HTTP {delivery.last_status}",
        )

    async def _attempt(self, delivery: Delivery) -> bool:
        delivery.attempts += 1
        url = self.url
        if url is None:
            delivery.last_status, delivery.last_error = None, "no webhook URL is set"
            return False
        try:
            status = await asyncio.to_thread(_post, url, delivery.body)
        except requests.RequestException as exc:
            delivery.last_status, delivery.last_error = None, f"{type(exc).__name__}: {exc}"
            return False
        delivery.last_status = status
        delivery.last_error = None if 200 <= status < 300 else f"HTTP {status}"
        return delivery.last_error is None


def _post(url: str, body: bytes) -> int:
    response = requests.post(
        url, data=body, headers={"Content-Type": "application/json"}, timeout=POST_TIMEOUT
    )
    response.close()
    return response.status_code
