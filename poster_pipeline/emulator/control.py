"""The control API under ``/control``: change data, switch faults on, watch calls and hooks.

It is the emulator's own surface (Poster has nothing like it), JSON in and out. Errors are
``{"error": "message"}`` with 400 (body is not JSON), 404 (unknown account, entity, object or
fault), 409 (removing a removed object, restoring a live one) or 422 (a field that does not
fit). docs/emulator.md lists every route with a curl example.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from poster_pipeline.emulator.coerce import FieldError
from poster_pipeline.emulator.services import Services
from poster_pipeline.emulator.state import Change, Conflict, NotFound
from poster_pipeline.emulator.webhook_sender import webhook_payload

__all__ = ["control_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


class _BadRequest(ValueError):
    """The body is not JSON."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _handles_errors(endpoint: Endpoint) -> Endpoint:
    """Map the state's exceptions to the control API's status codes."""

    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except _BadRequest as exc:
            return _error(400, str(exc))
        except NotFound as exc:
            return _error(404, str(exc))
        except Conflict as exc:
            return _error(409, str(exc))
        except FieldError as exc:
            return _error(422, str(exc))

    return wrapped


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise _BadRequest("the body is not JSON") from None


class _Control:
    """The control endpoints over one emulator's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    # -- service ----------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def accounts(self, request: Request) -> Response:
        return JSONResponse(
            [
                {
                    "name": a.name,
                    "number": a.number,
                    "token": a.token,
                    "tokens": self.services.state.tokens_of(a),
                }
                for a in self.services.state.accounts.values()
            ]
        )

    # -- objects ----------------------------------------------------------------------------

    def _object(self, account: str, entity: str, object_id: int) -> dict[str, Any]:
        store = self.services.state.store(account, entity)
        return {
            "object": self.services.state.record(account, entity, object_id),
            "removed": store.is_removed(object_id),
        }

    def _changed(self, change: Change, status: int = 200) -> JSONResponse:
        delivery = self.services.announce(change)
        body = self._object(
            change.account.name, change.spec.name, change.record[change.spec.id_field]
        )
        body["webhook"] = None if delivery is None else delivery.to_json()
        return JSONResponse(body, status_code=status)

    async def list_objects(self, request: Request) -> Response:
        account, entity = request.path_params["account"], request.path_params["entity"]
        store = self.services.state.store(account, entity)
        with_removed = request.query_params.get("include_removed", "") in ("1", "true")
        records = store.records.values() if with_removed else store.listed()
        return JSONResponse(list(records))

    async def create(self, request: Request) -> Response:
        p = request.path_params
        change = self.services.state.create(p["account"], p["entity"], await _body(request))
        return self._changed(change, status=201)

    async def read(self, request: Request) -> Response:
        p = request.path_params
        return JSONResponse(self._object(p["account"], p["entity"], p["object_id"]))

    async def update(self, request: Request) -> Response:
        p = request.path_params
        body = await _body(request)
        return self._changed(
            self.services.state.update(p["account"], p["entity"], p["object_id"], body)
        )

    async def remove(self, request: Request) -> Response:
        p = request.path_params
        return self._changed(self.services.state.remove(p["account"], p["entity"], p["object_id"]))

    async def restore(self, request: Request) -> Response:
        p = request.path_params
        return self._changed(self.services.state.restore(p["account"], p["entity"], p["object_id"]))

    # -- stock --------------------------------------------------------------------------------

    async def stock(self, request: Request) -> Response:
        p = request.path_params
        balances = self.services.state.balances(p["account"], p["storage_id"])
        return JSONResponse({str(k): v for k, v in balances.items()})

    async def move_stock(self, request: Request) -> Response:
        """Set or move one balance and send the ``stock`` hook: ``object_id`` the ingredient,
        ``data`` with ``type``, ``element_id``, ``storage_id``, ``value_relative`` and
        ``value_absolute`` (§3.3)."""
        p = request.path_params
        body = await _body(request)
        if not isinstance(body, dict) or set(body) - {"value_relative", "value_absolute"}:
            raise FieldError('the body must be {"value_absolute": N} or {"value_relative": N}')
        values = {}
        for name in ("value_relative", "value_absolute"):
            value = body.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise FieldError(f"{name} must be a number")
            values[name[len("value_") :]] = value
        change = self.services.state.move_stock(
            p["account"], p["storage_id"], p["ingredient_id"], **values
        )
        data = {
            "type": 1,
            "element_id": change.ingredient_id,
            "storage_id": change.storage_id,
            "value_relative": change.relative,
            "value_absolute": change.absolute,
        }
        payload = webhook_payload(
            change.account,
            object="stock",
            object_id=change.ingredient_id,
            action="changed",
            secret=self.services.config.application_secret,
            data=json.dumps(data, separators=(",", ":")),
        )
        delivery = self.services.webhooks.enqueue(change.account.name, payload)
        return JSONResponse({**data, "webhook": delivery.to_json()})

    # -- faults and calls ---------------------------------------------------------------------

    async def faults(self, request: Request) -> Response:
        if request.method == "POST":
            spec = await _body(request)
            if isinstance(spec, dict) and spec.get("account") is not None:
                self.services.state.account(spec["account"])  # 404 for an unknown account
            return JSONResponse(self.services.faults.add(spec).to_json(), status_code=201)
        if request.method == "DELETE":
            count = len(self.services.faults.all())
            self.services.faults.clear()
            return JSONResponse({"cleared": count})
        return JSONResponse([f.to_json() for f in self.services.faults.all()])

    async def fault(self, request: Request) -> Response:
        fault_id = request.path_params["fault_id"]
        if not self.services.faults.remove(fault_id):
            raise NotFound(f"no fault {fault_id}")
        return JSONResponse({"cleared": 1})

    async def calls(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.services.calls.reset()
        return JSONResponse(self.services.calls.snapshot())

    # -- webhooks -----------------------------------------------------------------------------

    async def webhooks(self, request: Request) -> Response:
        if request.method == "DELETE":
            return JSONResponse({"cleared": self.services.webhooks.forget_finished()})
        return JSONResponse([d.to_json() for d in self.services.webhooks.deliveries()])

    async def send_webhook(self, request: Request) -> Response:
        body = await _body(request)
        if not isinstance(body, dict):
            raise FieldError("the body must be a JSON object")
        if not isinstance(body.get("account"), str):
            raise FieldError("account is required (an account name)")
        account = self.services.state.account(body["account"])
        for name in ("object", "action"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise FieldError(f"{name} is required (a string)")
        object_id = body.get("object_id")
        if isinstance(object_id, str) and object_id.isdigit():
            object_id = int(object_id)
        if isinstance(object_id, bool) or not isinstance(object_id, int):
            raise FieldError("object_id is required (an integer)")
        data = body.get("data")
        if data is not None and not isinstance(data, str):
            # Poster sends `data` as a JSON-encoded string (docs/poster-api.md §3.2).
            data = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        payload = webhook_payload(
            account,
            object=body["object"],
            object_id=object_id,
            action=body["action"],
            secret=self.services.config.application_secret,
            data=data,
        )
        return JSONResponse(self.services.webhooks.enqueue(account.name, payload).to_json(), 202)

    async def webhook_url(self, request: Request) -> Response:
        if request.method == "PUT":
            body = await _body(request)
            url = body.get("url") if isinstance(body, dict) else None
            if not isinstance(body, dict) or "url" not in body:
                raise FieldError('the body must be {"url": "http://…"} or {"url": null}')
            if url is not None and (
                not isinstance(url, str) or not url.startswith(("http://", "https://"))
            ):
                raise FieldError("url must be an http(s) URL or null")
            self.services.webhooks.url = url
        return JSONResponse({"url": self.services.webhooks.url})


def control_routes(services: Services) -> list[Route]:
    """The ``/control`` routes; fixed paths come before the ``{account}/{entity}`` ones."""
    c = _Control(services)

    def route(path: str, endpoint: Endpoint, methods: list[str]) -> Route:
        return Route(f"/control{path}", _handles_errors(endpoint), methods=methods)

    objects = "/{account}/{entity}"
    one = objects + "/{object_id:int}"
    return [
        route("/health", c.health, ["GET"]),
        route("/accounts", c.accounts, ["GET"]),
        route("/calls", c.calls, ["GET", "DELETE"]),
        route("/faults", c.faults, ["GET", "POST", "DELETE"]),
        route("/faults/{fault_id:int}", c.fault, ["DELETE"]),
        route("/webhooks", c.webhooks, ["GET", "DELETE"]),
        route("/webhooks/send", c.send_webhook, ["POST"]),
        route("/webhook-url", c.webhook_url, ["GET", "PUT"]),
        route("/{account}/stock/{storage_id:int}", c.stock, ["GET"]),
        route("/{account}/stock/{storage_id:int}/{ingredient_id:int}", c.move_stock, ["PATCH"]),
        route(objects, c.list_objects, ["GET"]),
        route(objects, c.create, ["POST"]),
        route(one, c.read, ["GET"]),
        route(one, c.update, ["PATCH"]),
        route(one, c.remove, ["DELETE"]),
        route(one + "/restore", c.restore, ["POST"]),
    ]
