"""The Poster Web API client.

Reads are ``GET {base_url}/{method}?token=...`` (the token must be a query parameter; Poster
accepts no header, docs/poster-api.md §1.2). Network errors, timeouts, 5xx and 429 are retried by
urllib3's ``Retry`` with exponential backoff and jitter, up to ``max_retries``; errors Poster
reports in the body are mapped to typed exceptions by :mod:`poster_pipeline.poster.errors` and
never retried. Because the token travels in the URL, nothing the client raises or logs carries
the URL: messages name the method and the account instead, and urllib3's own retry log lines
are redacted by :class:`TokenRedactingFilter`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as TransportTimeout
from urllib3.util.retry import Retry

from poster_pipeline.catalogue import Entity, entity
from poster_pipeline.poster.errors import (
    PosterConnectionError,
    PosterError,
    PosterNotFoundError,
    PosterProtocolError,
    PosterTimeoutError,
    error_for_body,
    error_for_status,
    unwrap_response,
)
from poster_pipeline.poster.records import PosterRecord, RecordError, to_record
from poster_pipeline.poster.stream import StreamError, open_list
from poster_pipeline.poster.throttle import throttle_for_token

__all__ = ["DEFAULT_API_URL", "ClientSettings", "PosterClient", "TokenRedactingFilter"]

DEFAULT_API_URL = "https://joinposter.com/api"
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})

log = logging.getLogger(__name__)

_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s'\"]+")


def redact(text: str) -> str:
    """``text`` with any ``token=...`` query value replaced."""
    return _TOKEN_IN_TEXT.sub(r"\1***", text)


class TokenRedactingFilter(logging.Filter):
    """Redacts ``token=`` query values from records of loggers that print URLs (urllib3)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = redact(message), None
        return True


for _name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, TokenRedactingFilter) for f in _logger.filters):
        _logger.addFilter(TokenRedactingFilter())


@dataclass(frozen=True)
class ClientSettings:
    """How the client talks to Poster; the defaults suit the real API.

    ``read_timeout`` is generous because Poster's first call after idle can take 4–5 s
    (docs/poster-api.md §1.1). ``backoff_factor`` and ``backoff_jitter`` feed urllib3's ``Retry``:
    the n-th retry waits about ``backoff_factor * 2**(n-1)`` seconds plus up to
    ``backoff_jitter``, capped by ``backoff_max``; a 429's ``Retry-After`` is respected.
    """

    base_url: str = DEFAULT_API_URL
    requests_per_second: float = 5.0
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_retries: int = 4
    backoff_factor: float = 0.5
    backoff_jitter: float = 0.5
    backoff_max: float = 30.0

    def retry(self) -> Retry:
        return Retry(
            total=self.max_retries,
            connect=self.max_retries,
            read=self.max_retries,
            status=self.max_retries,
            other=0,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=RETRIED_STATUSES,
            backoff_factor=self.backoff_factor,
            backoff_jitter=self.backoff_jitter,
            backoff_max=self.backoff_max,
            respect_retry_after_header=True,
            retry_after_max=int(self.backoff_max),
            raise_on_status=False,
        )


class CallStats:
    """What a client did: logical calls by method, and the HTTP retries they needed.

    Syncs report these figures; the emulator counts the same calls server-side.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.retries = 0

    def record(self, method: str, retries: int = 0) -> None:
        with self._lock:
            self.calls[method] += 1
            self.retries += retries

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class PosterClient:
    """A client for one Poster account's token.

    ``account`` is only a label for messages and logs (it defaults to the account number, the
    token's prefix); the token selects the account on Poster's side. Thread-safe for
    concurrent calls: the session is pooled and the throttle is shared per token.
    """

    def __init__(
        self,
        token: str,
        *,
        account: str | None = None,
        settings: ClientSettings | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if not token:
            raise ValueError("a Poster access token is required")
        self._token = token
        self.settings = settings or ClientSettings()
        self.account = account or (token.split(":", 1)[0] if ":" in token else "unnamed")
        self.stats = CallStats()
        self._throttle = throttle_for_token(token, self.settings.requests_per_second)
        self._session = session or requests.Session()
        adapter = HTTPAdapter(max_retries=self.settings.retry())
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def __repr__(self) -> str:
        return f"PosterClient(account={self.account!r}, base_url={self.settings.base_url!r})"

    def __enter__(self) -> PosterClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # -- transport -------------------------------------------------------------------------

    def call(self, method: str, **params: Any) -> Any:
        """GET ``method`` and return the unwrapped ``response``; raise a typed error otherwise."""
        return self._unwrap(method, self._get(method, params))

    def _get(
        self, method: str, params: Mapping[str, Any], *, stream: bool = False
    ) -> requests.Response:
        """GET ``method`` (retried by urllib3), counted; ``stream``: only the headers are read."""
        url = f"{self.settings.base_url.rstrip('/')}/{method}"
        query = {"token": self._token, **{k: v for k, v in params.items() if v is not None}}
        self._throttle.wait()
        started = time.perf_counter()
        failure: PosterError | None = None
        try:
            response = self._session.get(
                url,
                params=query,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                stream=stream,
            )
        except requests.RequestException as exc:
            failure = self._transport_error(method, exc)
        if failure is not None:
            self.stats.record(method)
            # Raised outside the except block so the original exception, whose text holds the
            # URL and so the token, is not chained to it.
            log.warning("%s", failure)
            raise failure
        retry_state = response.raw.retries
        self.stats.record(method, len(retry_state.history) if retry_state is not None else 0)
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug(
            "Poster %s for account %s: HTTP %s in %.0f ms",
            method,
            self.account,
            response.status_code,
            elapsed_ms,
        )
        return response

    def _transport_error(self, method: str, exc: requests.RequestException) -> PosterError:
        """The typed error for a failure to get any answer, its text redacted (requests puts
        the URL, token included, in its messages)."""
        reason: Any = exc.args[0] if exc.args else exc
        reason = getattr(reason, "reason", None) or reason  # MaxRetryError wraps the cause
        attempts = self.settings.max_retries + 1
        detail = redact(f"{type(reason).__name__}: {reason}").replace(self._token, "***")
        # urllib3 2 still derives NewConnectionError (refused, DNS) from its timeout class.
        timed_out = isinstance(exc, requests.Timeout) or isinstance(reason, TransportTimeout)
        if timed_out and not isinstance(reason, NewConnectionError):
            return PosterTimeoutError(
                f"no answer within {self.settings.read_timeout:g} s after {attempts} attempts "
                f"({type(reason).__name__})",
                method=method,
                account=self.account,
            )
        return PosterConnectionError(
            f"unreachable after {attempts} attempts ({detail})", method=method, account=self.account
        )

    def _unwrap(
        self, method: str, response: requests.Response, content: bytes | None = None
    ) -> Any:
        """The ``response`` value of an answer whose body is ``content`` (default: all of it)."""
        content = response.content if content is None else content
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        if not response.ok:
            error = None
            if isinstance(body, Mapping):
                error = error_for_body(
                    body, method=method, account=self.account, http_status=response.status_code
                )
            raise error or error_for_status(
                response.status_code, method=method, account=self.account
            )
        if body is None:
            raise PosterProtocolError(
                f"HTTP {response.status_code} with a body that is not JSON ({len(content)} bytes)",
                method=method,
                account=self.account,
                http_status=response.status_code,
            )
        return unwrap_response(body, method=method, account=self.account)

    # -- catalogue-driven reads --------------------------------------------------------------

    def fetch_list(self, entity_or_name: Entity | str, **params: Any) -> list[PosterRecord]:
        """Every object of an entity, typed (Poster lists are not paginated, §2)."""
        return list(self.iter_list(entity_or_name, **params))

    def iter_list(
        self, entity_or_name: Entity | str, **params: Any
    ) -> Generator[PosterRecord, None, None]:
        """Every object of an entity, typed one by one as the answer streams in, so a long list
        is never held whole (:mod:`poster_pipeline.poster.stream`).

        ``params`` go to Poster with the entity's own ``list_params``: an entity listed by
        scope needs its scope (``storage_id=3`` for stock), one listed by date window may pass
        ``dateFrom``/``dateTo``.

        The call is made on the first ``next()``. A typed error may come at any point: at the
        start for an error answer, later for a body that breaks off, is not JSON or holds an
        object that cannot be typed; consume it inside one transaction so a bad list changes
        nothing.
        """
        spec = _entity(entity_or_name)
        method = spec.list_method
        scope_id = None
        if spec.scope is not None:
            if params.get(spec.scope) is None:
                raise ValueError(f"{spec.name} is listed one {spec.scope} at a time: pass it")
            scope_id = int(params[spec.scope])
        query = {**dict(spec.list_params), **params}
        with self._get(method, query, stream=True) as response:
            try:
                for raw in self._listed(method, response):
                    yield self._record(spec, method, raw, scope_id)
            except (StreamError, UnicodeError) as exc:
                raise PosterProtocolError(
                    f"the list broke off or is not JSON ({str(exc).splitlines()[0]})",
                    method=method,
                    account=self.account,
                ) from None
            except (HTTPError, OSError) as exc:  # requests' errors are OSErrors too
                failure = self._read_error(method, exc)
            else:
                return
        raise failure  # outside the except block: the original's text may hold the URL

    def _listed(self, method: str, response: requests.Response) -> Iterable[Any]:
        """The objects of a list answer: streamed from a plain list envelope, or judged whole
        by the envelope rules (an error, an id-keyed object)."""
        if not response.ok:
            self._unwrap(method, response)  # raises the typed error
        response.raw.decode_content = True  # gzip, as requests would decode it
        answer = open_list(response.raw)
        if answer.objects is not None:
            return answer.objects
        return self._as_list(method, self._unwrap(method, response, answer.body))

    def _as_list(self, method: str, response: Any) -> list[Any]:
        if isinstance(response, Mapping) and all(isinstance(v, Mapping) for v in response.values()):
            return list(response.values())  # some methods answer an id-keyed object (§1.3)
        if not isinstance(response, list):
            raise PosterProtocolError(
                f"expected a list, got {type(response).__name__}",
                method=method,
                account=self.account,
            )
        return response

    def _read_error(self, method: str, exc: Exception) -> PosterError:
        """The typed error for a connection that failed while the answer was being read
        (not retried: a list is read once; the next sync tries again)."""
        # requests wraps urllib3's errors when it reads a whole body (an error answer's).
        cause = exc.args[0] if isinstance(exc, requests.RequestException) and exc.args else exc
        if isinstance(cause, TransportTimeout) or isinstance(exc, requests.Timeout):
            return PosterTimeoutError(
                f"no data for {self.settings.read_timeout:g} s while reading the answer",
                method=method,
                account=self.account,
            )
        return PosterConnectionError(
            f"the connection broke off while reading the answer ({type(exc).__name__})",
            method=method,
            account=self.account,
        )

    def fetch_one(self, entity_or_name: Entity | str, object_id: int) -> PosterRecord:
        """One object by id through the single getter; :class:`PosterNotFoundError` if absent."""
        spec = _entity(entity_or_name)
        if spec.single_method is None or spec.single_param is None:
            raise ValueError(f"Poster has no single getter for {spec.name}; fetch the list")
        response = self.call(spec.single_method, **{spec.single_param: object_id})
        if isinstance(response, list):  # menu.getProduct has been seen answering [object] (§1.3)
            if not response:
                raise PosterNotFoundError(
                    "empty answer", method=spec.single_method, account=self.account
                )
            response = response[0]
        return self._record(spec, spec.single_method, response, major_units=spec.single_major_units)

    def _record(
        self,
        spec: Entity,
        method: str,
        raw: Any,
        scope_id: int | None = None,
        major_units: tuple[str, ...] = (),
    ) -> PosterRecord:
        try:
            return to_record(spec, raw, scope_id=scope_id, major_units=major_units)
        except RecordError as exc:
            raise PosterProtocolError(str(exc), method=method, account=self.account) from None


def _entity(entity_or_name: Entity | str) -> Entity:
    return entity(entity_or_name) if isinstance(entity_or_name, str) else entity_or_name
