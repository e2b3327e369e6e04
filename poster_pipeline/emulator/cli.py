"""``poster-pipeline emulator``: serve the Poster emulator in the foreground."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import uvicorn

from poster_pipeline.emulator.app import build_app
from poster_pipeline.emulator.config import (
    DEFAULT_RETRY_DELAYS,
    ENTITY_NAMES,
    EmulatorConfig,
    parse_account,
)

__all__ = ["DEFAULT_PORT", "emulator_command"]

DEFAULT_PORT = 8765


def _size_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One ``--<entity> N`` option per entity (``--ingredients``, ``--product-categories``…)."""
    for entity in reversed(ENTITY_NAMES):
        command = click.option(
            f"--{entity.replace('_', '-')}",
            entity,
            type=click.IntRange(min=0),
            default=None,
            help=f"Number of {entity.replace('_', ' ')} per account.",
        )(command)
    return command


def _delays(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...]:
    if value is None:
        return DEFAULT_RETRY_DELAYS
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("a comma-separated list of seconds, e.g. 1,2,5") from None


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port to listen on."
)
@click.option("--seed", default=42, show_default=True, type=int, help="Seed of the demo data.")
@click.option(
    "--account",
    "accounts",
    multiple=True,
    metavar="NAME[:NUMBER:TOKEN]",
    help="An account to serve (repeatable); default: api-demo.",
)
@_size_options
@click.option("--webhook-url", default=None, help="Where change webhooks are POSTed.")
@click.option(
    "--webhook-retry-delays",
    callback=_delays,
    default=None,
    metavar="S,S,…",
    help="Seconds before each re-send of an undelivered webhook (Poster: 15 over two days).",
)
@click.option(
    "--application-id",
    envvar="POSTER_APPLICATION_ID",
    default="demo-app",
    show_default=True,
    help="OAuth application id.",
)
@click.option(
    "--application-secret",
    envvar="POSTER_APPLICATION_SECRET",
    default="demo-secret",
    show_default=True,
    help="Application secret: signs webhooks, authenticates the token exchange.",
)
@click.option(
    "--hang-seconds",
    default=300.0,
    show_default=True,
    type=float,
    help="How long a 'hang' fault holds a response.",
)
def emulator_command(
    host: str,
    port: int,
    seed: int,
    accounts: tuple[str, ...],
    webhook_url: str | None,
    webhook_retry_delays: tuple[float, ...],
    application_id: str,
    application_secret: str,
    hang_seconds: float,
    **sizes: int | None,
) -> None:
    """Serve an emulated Poster API with deterministic demo data.

    Prints the API URL, each account's token and the control URL, then serves until Ctrl-C.
    """
    try:
        config = EmulatorConfig(
            accounts=tuple(parse_account(spec, seed) for spec in accounts),
            seed=seed,
            sizes={name: size for name, size in sizes.items() if size is not None},
            application_id=application_id,
            application_secret=application_secret,
            webhook_url=webhook_url,
            webhook_retry_delays=webhook_retry_delays,
            hang_seconds=hang_seconds,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    app = build_app(config)
    base = f"http://{host}:{port}"
    click.echo(f"Poster API emulator: {base}/api")
    for account in config.accounts:
        click.echo(f"  account {account.name} (number {account.number}) token {account.token}")
    click.echo(f"Control API: {base}/control  (see docs/emulator.md)")
    if webhook_url:
        click.echo(f"Webhooks go to {webhook_url}")
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=1)
