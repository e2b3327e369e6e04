"""The Poster side: Web API client, typed records, OAuth and webhook helpers."""

from poster_pipeline.poster.client import DEFAULT_API_URL, ClientSettings, PosterClient
from poster_pipeline.poster.errors import (
    PosterApiError,
    PosterAuthError,
    PosterConnectionError,
    PosterError,
    PosterNotFoundError,
    PosterPlanRestrictionError,
    PosterProtocolError,
    PosterRateLimitError,
    PosterServerError,
    PosterTimeoutError,
    PosterTransientError,
)
from poster_pipeline.poster.records import PosterRecord

__all__ = [
    "DEFAULT_API_URL",
    "ClientSettings",
    "PosterApiError",
    "PosterAuthError",
    "PosterClient",
    "PosterConnectionError",
    "PosterError",
    "PosterNotFoundError",
    "PosterPlanRestrictionError",
    "PosterProtocolError",
    "PosterRateLimitError",
    "PosterRecord",
    "PosterServerError",
    "PosterTimeoutError",
    "PosterTransientError",
]
