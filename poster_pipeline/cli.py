"""The ``poster-pipeline`` command line."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import click
import sqlalchemy as sa

from poster_pipeline import __version__
from poster_pipeline.emulator import EmulatorConfig, emulator_command, start_in_thread
from poster_pipeline.http.cli import serve_command
from poster_pipeline.poster.client import ClientSettings, PosterClient
from poster_pipeline.poster.errors import PosterError
from poster_pipeline.settings import Settings, SettingsError
from poster_pipeline.time_zones import time_zone as check_time_zone
from poster_pipeline.warehouse.accounts import AccountError, AccountStore, cipher_for
from poster_pipeline.warehouse.engine import create_warehouse_engine
from poster_pipeline.warehouse.migrate import upgrade
from poster_pipeline.warehouse.queue import purge, queue_counts, retry_dead


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="poster-pipeline")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Keep a restaurant's Poster POS back-office data fresh in PostgreSQL."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)


main.add_command(emulator_command, name="emulator")
main.add_command(serve_command, name="serve")


def _redacted(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _account_store(settings: Settings) -> AccountStore:
    engine = create_warehouse_engine(settings.warehouse_url)
    if not sa.inspect(engine).has_table("accounts"):
        raise click.ClickException(
            f"the warehouse {_redacted(settings.warehouse_url)} has no tables yet: "
            "run `poster-pipeline db upgrade` first"
        )
    return AccountStore(engine, cipher_for(settings.token_key, settings.data_dir))


@main.group()
def db() -> None:
    """The warehouse schema (POSTER_DATABASE_URL, or SQLite in POSTER_DATA_DIR)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the warehouse tables to the latest schema."""
    settings = Settings.from_env()
    engine = create_warehouse_engine(settings.warehouse_url)
    upgrade(engine)
    click.echo(f"warehouse {_redacted(settings.warehouse_url)} is up to date")


@main.group()
def accounts() -> None:
    """Connected Poster accounts (restaurants); each active one is a Dagster partition."""


@accounts.command("add")
@click.option("--account", required=True, help="The Poster account login, e.g. api-demo.")
@click.option(
    "--token",
    prompt="Personal-integration token",
    hide_input=True,
    help="The access token, {account_number}:{32 hex}; asked for when omitted, which keeps "
    "it out of your shell history.",
)
@click.option(
    "--time-zone",
    default=None,
    help="The restaurant's IANA time zone, e.g. Europe/Kyiv: its nightly full sync runs at "
    "03:00 there. Omitted: keep the stored one (a new account uses POSTER_TIMEZONE).",
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Check the token with one Poster call (menu.getWorkshops) before storing it.",
)
def accounts_add(account: str, token: str, time_zone: str | None, verify: bool) -> None:
    """Connect an account with a personal-integration token (stored encrypted)."""
    if time_zone is not None:
        try:
            check_time_zone(time_zone)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--time-zone") from None
    settings = Settings.from_env()
    store = _account_store(settings)
    if verify:
        try:
            with PosterClient(
                token, account=account, settings=ClientSettings(base_url=settings.api_url)
            ) as client:
                client.get_workshops()
        except PosterError as exc:
            raise click.ClickException(f"the token was not accepted: {exc}") from None
    try:
        added = store.add(account, token, now=datetime.now(UTC), time_zone=time_zone)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"connected {added.account} (account number {added.account_number or 'unknown'}); "
        "Dagster adds its partition within a minute (sensor account_partitions)"
    )


@accounts.command("list")
def accounts_list() -> None:
    """List connected accounts (tokens are never shown)."""
    settings = Settings.from_env()
    rows = _account_store(settings).list()
    if not rows:
        click.echo("no account is connected: poster-pipeline accounts add --account NAME")
        return
    click.echo(
        f"{'account':<24}{'number':<12}{'auth':<10}{'active':<8}{'time zone':<24}connected at"
    )
    for row in rows:
        connected = row.connected_at.strftime("%Y-%m-%d %H:%M")
        active = "yes" if row.is_active else "no"
        number = row.account_number or "-"
        zone = row.time_zone or f"({settings.timezone})"  # POSTER_TIMEZONE applies
        click.echo(
            f"{row.account:<24}{number:<12}{row.auth_method:<10}{active:<8}{zone:<24}{connected}"
        )


@accounts.command("deactivate")
@click.option("--account", required=True, help="The Poster account login.")
def accounts_deactivate(account: str) -> None:
    """Stop syncing an account; its rows and its partition's history stay."""
    try:
        _account_store(Settings.from_env()).deactivate(account, now=datetime.now(UTC))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"deactivated {account}")


def _warehouse_engine(settings: Settings) -> sa.Engine:
    engine = create_warehouse_engine(settings.warehouse_url)
    if not sa.inspect(engine).has_table("webhook_events"):
        raise click.ClickException(
            f"the warehouse {_redacted(settings.warehouse_url)} has no webhook queue yet: "
            "run `poster-pipeline db upgrade` first"
        )
    return engine


_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    match = _DURATION.match(value.strip())
    if not match:
        raise click.BadParameter("a number and a unit: 30d, 12h, 90m or 45s")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@main.group()
def queue() -> None:
    """The webhook queue (webhook_events) that the webhook_queue sensor drains."""


@queue.command("status")
def queue_status() -> None:
    """Count events by status; dead events need an operator."""
    counts = queue_counts(_warehouse_engine(Settings.from_env()))
    for status, count in counts.items():
        click.echo(f"{status:<8}{count:>10}")
    if counts["dead"]:
        click.echo(f"{counts['dead']} dead events: `poster-pipeline queue retry-dead` retries them")


@queue.command("retry-dead")
def queue_retry_dead() -> None:
    """Give every dead event a fresh set of attempts."""
    count = retry_dead(_warehouse_engine(Settings.from_env()), now=datetime.now(UTC))
    click.echo(f"{count} dead events are pending again")


@queue.command("purge")
@click.option(
    "--older-than",
    required=True,
    callback=_duration,
    help="Age of the settled events to delete, e.g. 30d or 12h.",
)
def queue_purge(older_than: timedelta) -> None:
    """Delete done and ignored events older than the given age (pending and dead stay)."""
    cutoff = datetime.now(UTC) - older_than
    count = purge(_warehouse_engine(Settings.from_env()), older_than=cutoff)
    click.echo(f"deleted {count} settled events received before {cutoff:%Y-%m-%d %H:%M} UTC")


@main.command()
@click.option("--once", is_flag=True, help="Sync everything once, print a table and exit.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Dagster UI interface.")
@click.option("--port", default=3000, show_default=True, type=int, help="Dagster UI port.")
@click.option(
    "--emulator-port", default=8765, show_default=True, type=int, help="0 picks a free port."
)
@click.option(
    "--receiver-port", default=8080, show_default=True, type=int, help="Webhook receiver port."
)
@click.option(
    "--changes-every",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Change a random ingredient in the emulator this often (webhook-driven syncs).",
)
def demo(
    once: bool,
    host: str,
    port: int,
    emulator_port: int,
    receiver_port: int,
    changes_every: float | None,
) -> None:
    """Try the pipeline on the Poster emulator's demo restaurant (no Poster account needed)."""
    from poster_pipeline.demo import (
        connect_demo_account,
        format_summary,
        run_ui,
        start_changes,
        sync_once,
    )

    settings = Settings.from_env()
    try:
        settings.require_supported()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    webhook_url = None if once else f"http://127.0.0.1:{receiver_port}/api/poster/webhooks"
    with start_in_thread(EmulatorConfig(webhook_url=webhook_url), port=emulator_port) as emulator:
        settings = replace(settings, api_url=emulator.api_url)
        account = connect_demo_account(settings, emulator)
        click.echo(f"Poster emulator: {emulator.api_url} (demo account {account})")
        click.echo(f"warehouse: {_redacted(settings.warehouse_url)}")
        if once:
            success, summaries = sync_once(settings, account)
            click.echo(format_summary(summaries))
            if not success:
                raise click.ClickException("some entities failed to sync (see the log above)")
            return
        click.echo(
            f"webhook receiver: {webhook_url}\n"
            f"\nDagster UI: http://{host}:{port}\n"
            f"  Assets → group 'poster' → Materialize all → partition '{account}' fills every "
            "table.\n"
            "  Change an ingredient and watch a partial sync run (Runs, tag poster/sync):\n"
            f"    curl -X PATCH {emulator.url}/control/{account}/ingredients/1 "
            "-H 'Content-Type: application/json' -d '{\"ingredient_name\": \"Мёд\"}'\n"
            "  Ctrl-C stops everything.\n"
        )
        if changes_every:
            start_changes(emulator, account, changes_every)
        raise SystemExit(
            run_ui(settings, emulator, account, host=host, port=port, receiver_port=receiver_port)
        )
