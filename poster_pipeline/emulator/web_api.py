"""The Poster Web API itself: ``GET /api/{method}?token=…`` for the synced entities.

Order of checks, each answered the way Poster answers it: the call is counted; an unknown
(or wrong-case) method gets HTTP 405 with error 30 (docs/poster-api.md §1.1); a missing or unknown
token gets error 10 or 11 at HTTP 200 (§1.4); a fault switched on for the call applies; then
the list or single getter answers. ``format`` is accepted and ignored: the answer is always
JSON.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import AsyncIterator, Callable, Mapping
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from poster_pipeline.emulator.config import EmulatorAccount
from poster_pipeline.emulator.entities import LEFTOVERS, METHODS, PRODUCTS, SUPPLIES, EntitySpec
from poster_pipeline.emulator.faults import Fault
from poster_pipeline.emulator.services import Services
from poster_pipeline.emulator.state import ListCache, NotFound, envelope
from poster_pipeline.emulator.wire import dumps, single_object

__all__ = ["WebApi", "json_response", "poster_error"]

Record = dict[str, Any]

_LEADING_INTEGER = re.compile(r"\s*([+-]?\d+)")
# menu.getProducts?type= (docs/poster-api.md §2.8): "products" are type 3, "batchtickets" dishes.
_PRODUCT_TYPES = {"products": 3, "batchtickets": 2}


def json_response(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status, media_type="application/json")


def poster_error(code: int, message: str, status: int = 200) -> Response:
    """Poster's standard error envelope, at HTTP 200 like Poster (§1.4)."""
    return json_response({"error": {"code": code, "message": message}}, status)


def _php_int(text: str) -> int:
    """PHP's ``(int)`` cast, which Poster applies to id parameters: "12abc" → 12, "x" → 0."""
    match = _LEADING_INTEGER.match(text)
    return int(match.group(1)) if match else 0


def _error_page(status: int) -> Response:
    """The short HTML a proxy in front of Poster answers with (nginx style)."""
    title = f"{status} {HTTPStatus(status).phrase}"
    page = (
        f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
        "<hr><center>nginx</center></body></html>"
    )
    return Response(page, status, media_type="text/html")


async def _stalled(body: bytes, seconds: float) -> AsyncIterator[bytes]:
    """A list answer read now, its first half sent at once and the rest ``seconds`` later."""
    half = len(body) // 2
    yield body[:half]
    await asyncio.sleep(seconds)
    yield body[half:]


def _fault_response(fault: Fault) -> Response | None:
    """The answer a fault replaces the real one with, or None to answer normally."""
    if fault.kind == "http_status":
        return _error_page(fault.status)
    if fault.kind == "rate_limit":
        response = _error_page(429)
        response.headers["Retry-After"] = str(fault.retry_after)
        return response
    if fault.kind == "response_false":
        return json_response({"response": False})
    if fault.kind == "error":
        # The three error shapes seen in the wild (§1.4): object, flat int, bare string.
        if fault.form == "int":
            return json_response({"error": fault.code, "message": fault.message})
        if fault.form == "string":
            return json_response({"error": fault.message})
        return poster_error(fault.code, fault.message)
    return None


def _product_filter(params: Mapping[str, str]) -> Callable[[Record], bool] | None:
    wanted_type = _PRODUCT_TYPES.get(params.get("type", ""))
    category = params.get("category_id")
    category_id = None if category in (None, "") else _php_int(category)
    if wanted_type is None and category_id is None:
        return None
    return lambda r: (
        (wanted_type is None or r["type"] == wanted_type)
        and (category_id is None or r["menu_category_id"] == category_id)
    )


def _ymd(params: Mapping[str, str], name: str) -> datetime.date | None:
    text = params.get(name, "").strip()
    if not text:
        return None
    try:
        return datetime.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise ValueError(f"{name} must be a date as Ymd, e.g. 20260131") from None


def _supply_window(
    params: Mapping[str, str], today: datetime.date
) -> tuple[Callable[[Record], bool], slice]:
    """storage.getSupplies' filter: ``dateFrom`` (default a month ago) to ``dateTo`` (default
    today), both inclusive; ``limit``/``offset`` page the answer only when neither date is
    given (the docs: they are ignored with dates)."""
    first, last = _ymd(params, "dateFrom"), _ymd(params, "dateTo")
    page = slice(None)
    if first is None and last is None:
        offset = _php_int(params.get("offset", "0") or "0")
        limit = params.get("limit", "").strip()
        page = slice(offset, offset + _php_int(limit) if limit else None)
    first = first or _month_before(today)
    last = last or today
    low, high = first.isoformat(), (last + datetime.timedelta(days=1)).isoformat()
    return (lambda r: low <= r["date"] < high), page


def _month_before(day: datetime.date) -> datetime.date:
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    for candidate in range(day.day, 0, -1):  # 31 March → 28/29 February
        try:
            return day.replace(year=year, month=month, day=candidate)
        except ValueError:
            continue
    return day - datetime.timedelta(days=30)


class WebApi:
    """The ``/api/{method}`` endpoint over one emulator's services."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def handle(self, request: Request) -> Response:
        method = request.path_params["method"]
        params: dict[str, str] = dict(request.query_params)
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and content_type.startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        token = params.get("token", "")
        account = self._services.state.account_for_token(token) if token else None
        self._services.calls.record(method, account.name if account else None)

        if method not in METHODS:
            return poster_error(30, "Method Not Allowed", status=405)
        if not token:
            return poster_error(10, "Access token is not given")
        if account is None:
            return poster_error(11, "Bad access token")
        spec, is_list = METHODS[method]

        fault = self._services.faults.take(method, account.name, is_list=is_list)
        if fault is not None:
            if fault.kind in ("latency", "hang"):
                seconds = fault.seconds
                await asyncio.sleep(
                    self._services.config.hang_seconds if seconds is None else seconds
                )
            replaced = _fault_response(fault)
            if replaced is not None:
                return replaced
        if is_list:
            return self._list(account, spec, params, fault)
        return self._single(account, spec, params)

    def _list(
        self,
        account: EmulatorAccount,
        spec: EntitySpec,
        params: Mapping[str, str],
        fault: Fault | None,
    ) -> Response:
        if spec is LEFTOVERS:
            raw_storage = params.get("storage_id", "").strip()
            storage_id = _php_int(raw_storage) if raw_storage else None
            zero = params.get("zero_leftovers", "").strip().lower() == "true"
            try:
                cached = self._services.state.leftovers(account.name, storage_id, zero=zero)
            except NotFound:
                return poster_error(32, f"storage_id {storage_id} does not exist")
        else:
            cached = self._services.state.listing(account.name, spec.name)
        return self._answer(cached, spec, params, fault)

    def _answer(
        self, cached: ListCache, spec: EntitySpec, params: Mapping[str, str], fault: Fault | None
    ) -> Response:
        fragments = cached.fragments
        keep = _product_filter(params) if spec is PRODUCTS else None
        if spec is SUPPLIES:
            try:
                keep, page = _supply_window(params, datetime.date.today())
            except ValueError as exc:
                return poster_error(34, str(exc))
            # Newest first, as the docs' example lists them.
            order = sorted(
                range(len(cached.records)),
                key=lambda i: (cached.records[i]["date"], cached.records[i]["supply_id"]),
                reverse=True,
            )
            fragments = [cached.fragments[i] for i in order if keep(cached.records[i])]
            fragments = fragments[page]
        elif keep is not None:
            fragments = [f for r, f in zip(cached.records, fragments, strict=True) if keep(r)]
        if fault is not None and fault.kind == "empty":
            fragments = []
        elif fault is not None and fault.kind == "truncate":
            fragments = fragments[: len(fragments) // 2 if fault.keep is None else fault.keep]
        body = cached.body if fragments is cached.fragments else envelope(fragments)
        if fault is not None and fault.kind == "stall":
            return StreamingResponse(
                _stalled(body, fault.seconds or 0.0), media_type="application/json"
            )
        return Response(body, media_type="application/json")

    def _single(
        self, account: EmulatorAccount, spec: EntitySpec, params: Mapping[str, str]
    ) -> Response:
        assert spec.single_param is not None
        raw_id = params.get(spec.single_param, "")
        if not raw_id.strip():
            return poster_error(34, f"{spec.single_param} is required")
        object_id = _php_int(raw_id)
        store = self._services.state.store(account.name, spec.name)
        record = store.records.get(object_id)
        hidden = spec.single_hides_deleted and record is not None and record.get("delete")
        if (record is None and spec.missing_is_error) or hidden:
            return poster_error(32, f"{spec.single_param} {object_id} does not exist")
        if record is None or (not spec.soft_delete and store.is_removed(object_id)):
            return json_response({"response": False})
        return json_response({"response": single_object(spec, record)})
