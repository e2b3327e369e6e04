"""The HTTP side: ``poster-pipeline serve``'s ASGI app (webhook receiver, sync API, OAuth,
dashboard) and its command.

The receiver verifies a webhook, stores it in the ``webhook_events`` queue and answers; the
Dagster sensor drains the queue. Nothing here syncs data.
"""

from poster_pipeline.http.app import create_app
from poster_pipeline.http.intake import Classification, classify
from poster_pipeline.http.settings import ReceiverConfigError, ReceiverSettings

__all__ = [
    "Classification",
    "ReceiverConfigError",
    "ReceiverSettings",
    "classify",
    "create_app",
]
