"""Faults switched on at run time to make Web API calls misbehave the ways Poster can.

A fault matches a method (or ``*``) and optionally one account, applies to the next ``times``
matching calls (or to all), then expires; ``after`` lets that many matching calls through
first (so the third storage's stock call fails, not the first). The first matching fault, in
the order they were added, is the one applied. The kinds cover what a sync must survive: slow
and hung answers (the first call after idle takes 4–5 s, docs/poster-api.md §1.1), 5xx and 429
pages, the three shapes of error bodies at HTTP 200 (§1.4), ``{"response": false}`` (§1.3),
and lists that come back empty or cut short (the case the warehouse's deletion guard exists
for), and a list read at once but sent slowly (a sync whose data is older than the moment it
commits).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from poster_pipeline.emulator.coerce import FieldError

__all__ = ["ERROR_MESSAGES", "FAULT_KINDS", "Fault", "FaultBook"]

FAULT_KINDS: tuple[str, ...] = (
    "latency",
    "http_status",
    "error",
    "hang",
    "truncate",
    "empty",
    "rate_limit",
    "response_false",
    "stall",
)
_LIST_ONLY = frozenset({"truncate", "empty", "stall"})

# Parameters each kind accepts beyond method/account/kind/times.
_PARAMS: Mapping[str, frozenset[str]] = {
    "latency": frozenset({"seconds"}),
    "hang": frozenset({"seconds"}),
    "http_status": frozenset({"status"}),
    "error": frozenset({"code", "message", "form"}),
    "truncate": frozenset({"keep"}),
    "empty": frozenset(),
    "rate_limit": frozenset({"retry_after"}),
    "response_false": frozenset(),
    "stall": frozenset({"seconds"}),
}

# Texts of Poster's error codes (docs/poster-api.md §1.5), used when a fault gives no message.
ERROR_MESSAGES: Mapping[int, str] = {
    10: "Access token is not given",
    11: "Bad access token",
    12: "Access token is expired",
    20: "Application has no rights to use this method",
    32: "Object with this id does not exist",
    34: "Required field is empty",
    42: "Variable does not exist",
    44: "Error while saving data",
    54: "Access denied",
    400: "Bad request",
    404: "Record not found",
    503: "Account is archived",
    700: "Ограничение по тарифу",
}


@dataclass
class Fault:
    """One switched-on fault; ``remaining`` None means it never expires."""

    id: int
    method: str
    kind: str
    account: str | None = None
    remaining: int | None = None
    seconds: float | None = None
    status: int = 500
    code: int = 0
    message: str = ""
    form: str = "object"
    keep: int | None = None
    retry_after: int = 1
    after: int = 0
    applied: int = 0

    def to_json(self) -> dict[str, Any]:
        """The fault with only the parameters its kind uses."""
        shown = {
            "id",
            "method",
            "kind",
            "account",
            "remaining",
            "applied",
            *_PARAMS[self.kind],
            *(("after",) if self.after else ()),  # calls still let through
        }
        return {k: v for k, v in asdict(self).items() if k in shown}


def _number(spec: Mapping[str, Any], name: str, *, integer: bool = False) -> Any:
    value = spec[name]
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
        what = "a non-negative integer" if integer else "a non-negative number"
        raise FieldError(f"{name} must be {what}, got {value!r}")
    return value


class FaultBook:
    """The faults in force. ``methods`` maps each Web API method to whether it is a list."""

    def __init__(self, methods: Mapping[str, bool]) -> None:
        self._methods = methods
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: Any) -> Fault:
        """Validate a control-API fault body and switch it on; raises :class:`FieldError`."""
        if not isinstance(spec, Mapping):
            raise FieldError("the body must be a JSON object")
        method, kind = spec.get("method"), spec.get("kind")
        if not isinstance(method, str) or (method != "*" and method not in self._methods):
            raise FieldError(
                f"method must be '*' or one of {sorted(self._methods)}, got {method!r}"
            )
        if not isinstance(kind, str) or kind not in FAULT_KINDS:
            raise FieldError(f"kind must be one of {list(FAULT_KINDS)}, got {kind!r}")
        if kind in _LIST_ONLY and method != "*" and not self._methods[method]:
            raise FieldError(f"{kind} applies to list methods only; {method} is a single getter")
        unknown = set(spec) - {"method", "kind", "account", "times", "after"} - _PARAMS[kind]
        if unknown:
            raise FieldError(f"{kind} takes no parameter(s) {sorted(unknown)}")
        account = spec.get("account")
        if account is not None and not isinstance(account, str):
            raise FieldError("account must be an account name")
        fault = Fault(id=next(self._ids), method=method, kind=kind, account=account)
        if spec.get("times") is not None:
            fault.remaining = _number(spec, "times", integer=True)
            if fault.remaining == 0:
                raise FieldError("times must be at least 1 (omit it for no limit)")
        if spec.get("after") is not None:
            fault.after = _number(spec, "after", integer=True)
        self._set_params(fault, spec)
        self._faults.append(fault)
        return fault

    @staticmethod
    def _set_params(fault: Fault, spec: Mapping[str, Any]) -> None:
        if fault.kind in ("latency", "stall") and "seconds" not in spec:
            raise FieldError(f"{fault.kind} needs seconds")
        if "seconds" in spec:
            fault.seconds = float(_number(spec, "seconds"))
        if "status" in spec:
            fault.status = _number(spec, "status", integer=True)
            if not 400 <= fault.status <= 599:
                raise FieldError("status must be an HTTP error status (400–599)")
        if fault.kind == "error":
            if "code" not in spec:
                raise FieldError("error needs code (a Poster error code, e.g. 20 or 700)")
            fault.code = _number(spec, "code", integer=True)
            fault.message = str(spec.get("message") or ERROR_MESSAGES.get(fault.code, "Error"))
            fault.form = spec.get("form", "object")
            if fault.form not in ("object", "int", "string"):
                raise FieldError("form must be object, int or string")
        if "keep" in spec:
            fault.keep = _number(spec, "keep", integer=True)
        if "retry_after" in spec:
            fault.retry_after = _number(spec, "retry_after", integer=True)

    def take(self, method: str, account: str, *, is_list: bool) -> Fault | None:
        """The fault for this call, if any, counting the call against its ``times``."""
        for fault in self._faults:
            if fault.method not in ("*", method):
                continue
            if fault.account not in (None, account):
                continue
            if fault.kind in _LIST_ONLY and not is_list:
                continue
            if fault.after:
                fault.after -= 1
                return None
            fault.applied += 1
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
            return fault
        return None

    def all(self) -> list[Fault]:
        return list(self._faults)

    def remove(self, fault_id: int) -> bool:
        """Switch one fault off; False if there was none with that id."""
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) != before

    def clear(self) -> None:
        self._faults.clear()
