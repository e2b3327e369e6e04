"""``poster-pipeline serve``: run the webhook receiver with uvicorn.

It checks what would otherwise fail on every request before it listens: the application
secret is set, and the warehouse answers and has the ``webhook_events`` table.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import click
import sqlalchemy as sa
import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from uvicorn.config import LOGGING_CONFIG

from poster_pipeline.http.app import create_app
from poster_pipeline.http.database import describe_error, queue_table_exists, receiver_engine
from poster_pipeline.http.settings import ReceiverConfigError, ReceiverSettings

__all__ = ["APP_FACTORY", "DEFAULT_PORT", "serve_command"]

#: What each uvicorn worker process imports when ``--workers`` is above 1: the receiver, in a
#: process that exits when this one does, even by SIGKILL (see :mod:`poster_pipeline.http.worker`).
APP_FACTORY = "poster_pipeline.http.worker:create_worker_app"
DEFAULT_PORT = 8080
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _redacted(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _check_warehouse(settings: ReceiverSettings) -> None:
    assert settings.warehouse_url is not None  # from_settings always fills it
    engine = receiver_engine(
        settings.warehouse_url, pool_size=1, timeout=settings.database_timeout_seconds
    )
    where = _redacted(settings.warehouse_url)
    try:
        exists = queue_table_exists(engine)
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"cannot reach the warehouse {where}: {describe_error(exc)}"
        ) from None
    finally:
        engine.dispose()
    if not exists:
        raise click.ClickException(
            f"the warehouse {where} has no webhook_events table: "
            "run `poster-pipeline db upgrade` first"
        )


def _log_config(level: str) -> dict[str, Any]:
    # uvicorn's own configuration plus the receiver's loggers, so that its warnings (bad
    # signatures, the warehouse going down) reach the console in every worker process.
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["poster_pipeline"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="TCP port.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes; each has its own connection pool.",
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log one line per request.",
)
def serve_command(host: str, port: int, workers: int, log_level: str, access_log: bool) -> None:
    """Receive Poster's webhooks on POST /api/poster/webhooks and queue them.

    Needs POSTER_APPLICATION_SECRET and a migrated warehouse (POSTER_DATABASE_URL). Poster
    only calls HTTPS URLs: put a TLS proxy in front.
    """
    try:
        settings = ReceiverSettings.from_env()
    except ReceiverConfigError as exc:
        raise click.ClickException(str(exc)) from None
    _check_warehouse(settings)
    logging.getLogger("poster_pipeline").setLevel(log_level.upper())
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "log_config": _log_config(log_level),
        "access_log": access_log,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
    else:
        # Several processes need an import string; each worker reads the same environment.
        uvicorn.run(APP_FACTORY, factory=True, workers=workers, **options)
