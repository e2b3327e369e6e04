"""Reading a list method's answer as a stream of objects.

Poster answers a list method with the whole list in one body (not paginated, docs/poster-api.md
§2): 45 MB of JSON for 100,000 ingredients. Parsed whole, the body, its text and every object
are alive at once (~240 MB); read as a stream with ijson's C backend (as fast as ``json.loads``
here), one object at a time is, so a sync into PostgreSQL, which stages each object as it
comes, does not grow with the catalogue.

Only the plain success envelope ``{"response": [ … ]}`` is streamed; its first key decides, and
keys after the list are not read (Poster's envelope has no other). Any other answer (an error
envelope, an id-keyed object, ``response: false``, a body that is not JSON) is small, and is
handed back whole so the client judges it by its one set of envelope rules.

Numbers come back as ``json.loads`` gives them (int, or a float for a fraction); yajl refuses a
few that the stdlib takes (integers beyond 64 bits, ``NaN``), which Poster does not send.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

import ijson

__all__ = ["ListAnswer", "StreamError", "open_list"]

#: The parse events that open ``{"response": [``.
_LIST_ENVELOPE = [
    ("", "start_map", None),
    ("", "map_key", "response"),
    ("response", "start_array", None),
]
_CHUNK_BYTES = 64 * 1024
#: An answer that has not opened a list within this many bytes is judged whole.
_PEEK_LIMIT_BYTES = 1024 * 1024

#: ijson's error for a body that breaks off or is not JSON (the stream's own failures).
StreamError = ijson.JSONError


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class ListAnswer:
    """Either ``objects``, the list's elements parsed one by one as they are iterated, or
    ``body``, the whole answer when it is not a plain list envelope."""

    objects: Iterator[Any] | None = None
    body: bytes | None = None


def open_list(source: Readable) -> ListAnswer:
    """Read just enough of ``source`` to tell whether it is ``{"response": [ … ]}``.

    Iterating :attr:`ListAnswer.objects` reads the rest; it raises :data:`StreamError` when
    the body breaks off or stops being JSON, and whatever ``source.read`` raises.
    """
    head = b""
    while True:
        chunk = source.read(_CHUNK_BYTES)
        head += chunk
        is_list = _opens_list(head, complete=not chunk or len(head) >= _PEEK_LIMIT_BYTES)
        if is_list is not None:
            break
    if not is_list:
        return ListAnswer(body=head + b"".join(iter(lambda: source.read(_CHUNK_BYTES), b"")))
    # use_float: an int or a float, never a Decimal (orjson serialises ``raw`` for COPY).
    return ListAnswer(objects=ijson.items(_Prefixed(head, source), "response.item", use_float=True))


def _opens_list(head: bytes, *, complete: bool) -> bool | None:
    """Whether ``head`` opens a list envelope; ``None`` while too little of it has arrived."""
    try:
        first = list(islice(ijson.parse(io.BytesIO(head)), len(_LIST_ENVELOPE)))
    except ijson.IncompleteJSONError:
        return False if complete else None
    except (ijson.JSONError, UnicodeError):
        return False
    return first == _LIST_ENVELOPE


class _Prefixed:
    """``head`` (the bytes already read while peeking), then the rest of ``source``."""

    def __init__(self, head: bytes, source: Readable) -> None:
        self._head = memoryview(head)
        self._source = source

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._source.read(size)
        if size < 0:
            size = len(self._head)
        chunk, self._head = self._head[:size], self._head[size:]
        return bytes(chunk)
