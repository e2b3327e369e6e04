"""Streaming a list answer: the list envelope is read object by object, anything else whole."""

from __future__ import annotations

import io
import json

import pytest

from poster_pipeline.poster.stream import ListAnswer, StreamError, open_list


class Trickle:
    """A source that hands out at most ``size`` bytes per read, as a slow network does."""

    def __init__(self, data: bytes, size: int = 3) -> None:
        self._data, self._size, self.reads = data, size, 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        chunk, self._data = self._data[: self._size], self._data[self._size :]
        return chunk


OBJECTS = [{"ingredient_id": "1", "ingredient_name": "Молоко", "weight": 1.5}, {"id": 2}]


def body(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


@pytest.mark.parametrize("source", [io.BytesIO, Trickle], ids=["whole", "3 bytes a read"])
def test_a_list_envelope_is_streamed_with_the_values_json_gives(source):
    answer = open_list(source(body({"response": OBJECTS})))
    assert answer.body is None and answer.objects is not None
    assert list(answer.objects) == OBJECTS  # 1.5 a float, as json.loads gives it


def test_only_the_start_of_a_long_list_is_read_before_the_first_object():
    data = body({"response": [{"id": i, "name": "x" * 100} for i in range(5000)]})
    source = Trickle(data, size=64 * 1024)
    answer = open_list(source)
    assert answer.objects is not None
    assert next(answer.objects) == {"id": 0, "name": "x" * 100}
    assert source.reads < len(data) // (64 * 1024)


@pytest.mark.parametrize(
    "value",
    [
        {"error": {"code": 30, "message": "Method Not Allowed"}},
        {"error": 0, "response": OBJECTS},  # not an error, but not the plain envelope either
        {"response": {"1": OBJECTS[0]}},  # an id-keyed object
        {"response": False},
        {"response": {"err_code": 5, "message": "nope"}},
        [],
    ],
    ids=["error", "error first", "id-keyed", "false", "err_code", "bare list"],
)
@pytest.mark.parametrize("source", [io.BytesIO, Trickle], ids=["whole", "3 bytes a read"])
def test_any_other_answer_is_handed_back_whole(source, value):
    data = body(value)
    assert open_list(source(data)) == ListAnswer(body=data)


@pytest.mark.parametrize("data", [b"", b"<html>502 Bad Gateway</html>", b'{"respo'])
def test_a_body_that_is_not_a_json_envelope_is_handed_back_whole(data):
    assert open_list(io.BytesIO(data)) == ListAnswer(body=data)


def test_a_long_body_that_opens_no_list_is_handed_back_whole():
    data = b"{" + b" " * (2 * 1024 * 1024) + b'"error": 1}'
    assert open_list(Trickle(data, size=64 * 1024)) == ListAnswer(body=data)


@pytest.mark.parametrize(
    "cut", [b'{"response":[{"id":1},{"id":', b'{"response":[{"id":1},{"id":2}'], ids=str
)
def test_a_list_that_breaks_off_raises_after_its_whole_objects(cut):
    answer = open_list(io.BytesIO(cut))
    assert answer.objects is not None
    assert next(answer.objects) == {"id": 1}
    with pytest.raises(StreamError):
        list(answer.objects)
