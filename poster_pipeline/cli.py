"""The ``poster-pipeline`` command line."""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import sqlalchemy as sa

from poster_pipeline import __version__
from poster_pipeline.demo_ports import DAGSTER_UI_PORT
from poster_pipeline.emulator import EmulatorConfig, emulator_command, start_in_thread
from poster_pipeline.emulator.cli import DEFAULT_PORT as EMULATOR_PORT
from poster_pipeline.http.cli import DEFAULT_PORT as RECEIVER_PORT
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
                client.fetch_list("workshops")
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
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help=f"Dagster UI port [default: {DAGSTER_UI_PORT}, or a free one when it is taken; "
    "0: a free one].",
)
@click.option(
    "--emulator-port",
    type=click.IntRange(0, 65535),
    default=None,
    help=f"Poster emulator port [default: {EMULATOR_PORT}, or a free one when taken; "
    "--once: a free one].",
)
@click.option(
    "--receiver-port",
    type=click.IntRange(0, 65535),
    default=None,
    help=f"Webhook receiver port [default: {RECEIVER_PORT}, or a free one when it is taken].",
)
@click.option(
    "--changes-every",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Change a random ingredient in the emulator this often (webhook-driven syncs).",
)
@click.pass_context
def demo(
    ctx: click.Context,
    once: bool,
    host: str,
    port: int | None,
    emulator_port: int | None,
    receiver_port: int | None,
    changes_every: float | None,
) -> None:
    """Try the pipeline on the Poster emulator's demo restaurant (no Poster account needed).

    Everything it keeps (the SQLite warehouse, the token key, Dagster's home) is in
    POSTER_DATA_DIR; one demo runs per data folder. `--once` beside a running demo syncs into
    a temporary data folder instead.
    """
    settings = Settings.from_env()
    try:
        settings.require_supported()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if once:
        _demo_once(settings, emulator_port or 0)
    else:
        verbose = bool(ctx.find_root().params.get("verbose"))
        try:
            _demo_ui(settings, host, port, emulator_port, receiver_port, changes_every, verbose)
        except KeyboardInterrupt:  # Ctrl-C while starting: what started is stopped already
            click.echo("demo stopped")


def _demo_once(settings: Settings, emulator_port: int) -> None:
    from poster_pipeline.demo import connect_demo_account, format_summary, sync_once
    from poster_pipeline.demo_lock import running_demo, warehouse_fingerprint

    with contextlib.ExitStack() as stack:
        running = running_demo(settings.data_dir)
        if running is not None:
            if settings.database_url is not None:
                if running.warehouse in (None, warehouse_fingerprint(settings.warehouse_url)):
                    raise click.ClickException(
                        f"{running.describe()}, on the same warehouse: --once would overwrite "
                        "its data with a second emulator's. Stop it (Ctrl-C), or set "
                        "POSTER_DATABASE_URL to another database"
                    )
            else:
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="demo-")))
                click.echo(
                    f"{running.describe()}: this sync uses a temporary data folder, "
                    f"{folder}, deleted at exit"
                )
                settings = replace(settings, data_dir=folder)
        try:
            emulator = stack.enter_context(start_in_thread(EmulatorConfig(), port=emulator_port))
        except OSError as exc:
            raise click.ClickException(
                f"the Poster emulator cannot listen on port {emulator_port}: {exc.strerror}; "
                "choose another with --emulator-port (0 picks a free one)"
            ) from None
        settings = replace(settings, api_url=emulator.api_url)
        account = connect_demo_account(settings, emulator)
        click.echo(f"Poster emulator: {emulator.api_url} (demo account {account})")
        click.echo(f"warehouse: {_redacted(settings.warehouse_url)}")
        success, summaries = sync_once(settings, account)
        click.echo(format_summary(summaries))
        if not success:
            raise click.ClickException("some entities failed to sync (see the log above)")


def _demo_ui(
    settings: Settings,
    host: str,
    port: int | None,
    emulator_port: int | None,
    receiver_port: int | None,
    changes_every: float | None,
    verbose: bool,
) -> None:
    from poster_pipeline.demo import (
        DemoServices,
        connect_demo_account,
        demo_api_key,
        format_banner,
        run_ui,
        start_changes,
    )
    from poster_pipeline.demo_lock import DemoRunning, demo_lock
    from poster_pipeline.demo_ports import PortTaken, choose_port

    try:
        ui = choose_port(host, port, usual=DAGSTER_UI_PORT, what="Dagster UI", option="--port")
        hooks = choose_port(
            "127.0.0.1",
            receiver_port,
            usual=RECEIVER_PORT,
            what="webhook receiver",
            option="--receiver-port",
        )
        poster = choose_port(
            "127.0.0.1",
            emulator_port,
            usual=EMULATOR_PORT,
            what="Poster emulator",
            option="--emulator-port",
        )
    except PortTaken as exc:
        raise click.ClickException(str(exc)) from None
    api_key, generated = demo_api_key(settings)
    services = DemoServices(host, ui.port, hooks.port, api_key, generated)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(
                demo_lock(
                    settings.data_dir, ui_url=services.ui_url, warehouse_url=settings.warehouse_url
                )
            )
        except DemoRunning as exc:
            raise click.ClickException(
                f"{exc}: use it, stop it (Ctrl-C in its terminal), or set POSTER_DATA_DIR to "
                "another folder for a second demo"
            ) from None
        for choice in (ui, hooks, poster):
            if choice.note:
                click.echo(choice.note)
        config = EmulatorConfig(webhook_url=services.webhook_url)
        try:
            emulator = stack.enter_context(start_in_thread(config, port=poster.port))
        except OSError as exc:
            raise click.ClickException(
                f"the Poster emulator cannot listen on port {poster.port}: {exc.strerror}; "
                "choose another with --emulator-port (0 picks a free one)"
            ) from None
        settings = replace(settings, api_url=emulator.api_url)
        account = connect_demo_account(settings, emulator)
        click.echo(f"Poster emulator: {emulator.api_url} (demo account {account})")
        click.echo(f"warehouse: {_redacted(settings.warehouse_url)}")
        click.echo("starting the webhook receiver and Dagster (about half a minute)…")
        if changes_every:
            stack.callback(start_changes(emulator, account, changes_every).set)
        code = run_ui(
            settings,
            emulator,
            account,
            services,
            verbose=verbose,
            on_ready=lambda: click.echo(format_banner(services, emulator.url, account)),
        )
    if code:
        raise click.ClickException("the demo stopped because one of its services did")
    click.echo("demo stopped")
