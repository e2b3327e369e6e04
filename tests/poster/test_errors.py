"""Every shape in which Poster reports an error maps to the exception a caller can act on."""

import pytest

from poster_pipeline.poster.errors import (
    PosterApiError,
    PosterAuthError,
    PosterNotFoundError,
    PosterPlanRestrictionError,
    PosterProtocolError,
    PosterRateLimitError,
    PosterServerError,
    error_for_body,
    error_for_status,
    unwrap_response,
)

WHERE = {"method": "menu.getIngredients", "account": "api-demo"}


@pytest.mark.parametrize(
    ("body", "kind", "code"),
    [
        ({"error": {"code": 11, "message": "Bad access token"}}, PosterAuthError, 11),
        ({"error": {"code": "12", "message": "expired"}}, PosterAuthError, 12),
        ({"error": 10, "message": "Access token is not given"}, PosterAuthError, 10),
        ({"error": {"code": 20, "message": "no rights"}}, PosterAuthError, 20),
        ({"error": {"code": 54, "message": "Access denied"}}, PosterAuthError, 54),
        (
            {"error": {"code": 700, "message": "Ограничение по тарифу"}},
            PosterPlanRestrictionError,
            700,
        ),
        ({"error": {"code": 32, "message": "id does not exist"}}, PosterNotFoundError, 32),
        ({"error": 404, "message": "not found"}, PosterNotFoundError, 404),
        ({"error": 42, "message": "transaction_id is undefined"}, PosterApiError, 42),
        ({"error": "42", "message": "undefined"}, PosterApiError, 42),
        ({"error": "Something went wrong"}, PosterApiError, None),
        ({"response": {"err_code": 155, "message": "bad value"}}, PosterApiError, 155),
    ],
)
def test_error_bodies_map_to_typed_errors(body, kind, code):
    error = error_for_body(body, **WHERE)
    assert type(error) is kind
    assert error.code == code
    assert "menu.getIngredients" in str(error) and "api-demo" in str(error)
    with pytest.raises(kind):
        unwrap_response(body, **WHERE)


@pytest.mark.parametrize(
    "body",
    [{"response": []}, {"response": [{"a": 1}]}, {"response": 0}, {"error": 0, "response": {}}],
)
def test_success_bodies_are_not_errors(body):
    assert error_for_body(body, **WHERE) is None
    assert unwrap_response(body, **WHERE) == body["response"]


def test_response_false_means_not_found():
    with pytest.raises(PosterNotFoundError):
        unwrap_response({"response": False}, **WHERE)


@pytest.mark.parametrize("body", [[1, 2], "text", {"result": 1}])
def test_bodies_outside_the_envelope_are_protocol_errors(body):
    with pytest.raises(PosterProtocolError):
        unwrap_response(body, **WHERE)


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (429, PosterRateLimitError, True),
        (500, PosterServerError, True),
        (503, PosterServerError, True),
        (401, PosterAuthError, False),
        (403, PosterAuthError, False),
        (404, PosterApiError, False),
    ],
)
def test_bare_http_statuses_map_to_typed_errors(status, kind, retryable):
    error = error_for_status(status, **WHERE)
    assert type(error) is kind
    assert error.retryable is retryable
    assert error.http_status == status
