"""The newcomer's demo: the emulator with a demo restaurant, the warehouse, and Dagster.

``poster-pipeline demo --once`` syncs everything once in this process and prints what landed;
``poster-pipeline demo`` starts the webhook receiver (with the sync API and OAuth connect on,
against the emulator) and Dagster's webserver and daemon (``dagster dev``) on the same setup,
with the emulator sending its webhooks to the receiver, and leaves the clicking to you. It
prints a banner once everything answers, keeps Dagster's services at warning level, and stops
its children cleanly on Ctrl-C. Ports: :mod:`poster_pipeline.demo_ports`; one demo per data
folder: :mod:`poster_pipeline.demo_lock`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import dagster as dg
import requests

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.demo_output import StoppingOutput
from poster_pipeline.emulator import RunningEmulator
from poster_pipeline.http.oauth_routes import AUTHORIZE_PATH, CALLBACK_PATH
from poster_pipeline.orchestration.assets import entity_asset_key, entity_assets
from poster_pipeline.orchestration.partitions import ACCOUNTS
from poster_pipeline.orchestration.resources import resources_for
from poster_pipeline.settings import SEED_ALIASES, Settings
from poster_pipeline.warehouse.accounts import AccountStore, cipher_for
from poster_pipeline.warehouse.engine import create_warehouse_engine
from poster_pipeline.warehouse.migrate import upgrade
from poster_pipeline.warehouse.row_counts import row_counts

__all__ = [
    "DemoServices",
    "SyncSummary",
    "connect_demo_account",
    "demo_api_key",
    "format_banner",
    "format_summary",
    "run_ui",
    "service_env",
    "start_changes",
    "sync_once",
]

log = logging.getLogger(__name__)


def connect_demo_account(settings: Settings, emulator: RunningEmulator) -> str:
    """Migrate the warehouse and connect the emulator's first account; returns its name."""
    engine = create_warehouse_engine(settings.warehouse_url)
    try:
        upgrade(engine)
        account = emulator.config.accounts[0]
        store = AccountStore(engine, cipher_for(settings.token_key, settings.data_dir))
        store.add(account.name, account.token, now=datetime.now(UTC))
        return account.name
    finally:
        engine.dispose()


@dataclass(frozen=True)
class SyncSummary:
    entity: str
    fetched: int
    active: int
    deleted: int


def sync_once(settings: Settings, account: str) -> tuple[bool, list[SyncSummary]]:
    """Materialize every entity asset for ``account`` in this process (ephemeral instance)."""
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ACCOUNTS, [account])
    result = dg.materialize(
        entity_assets(),
        partition_key=account,
        instance=instance,
        resources=resources_for(settings),
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )
    fetched: dict[dg.AssetKey, int] = {
        event.asset_key: int(str(event.materialization.metadata["rows_fetched"].value))
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }
    engine = create_warehouse_engine(settings.warehouse_url)
    try:
        counts = row_counts(engine, account, ENTITIES)
    finally:
        engine.dispose()
    summaries = [
        SyncSummary(
            spec.name,
            fetched.get(entity_asset_key(spec), 0),
            counts[spec.name].active,
            counts[spec.name].deleted,
        )
        for spec in ENTITIES
    ]
    return result.success, summaries


def format_summary(summaries: list[SyncSummary]) -> str:
    lines = [f"{'entity':<24}{'fetched':>9}{'active':>9}{'deleted':>9}"]
    lines += [f"{s.entity:<24}{s.fetched:>9}{s.active:>9}{s.deleted:>9}" for s in summaries]
    return "\n".join(lines)


#: Used when the working directory has no dagster.yaml of its own (the demo run elsewhere
#: than this repository): Dagster's telemetry notice alone is a dozen lines at every start.
_MINIMAL_DAGSTER_YAML = "telemetry:\n  enabled: false\n"
#: Warnings the demo's Dagster processes print that no user can act on: ``dagster dev``'s hint
#: to use ``dg dev`` (a separate package), and Dagster 1.13 warning about the beta ``owners``
#: parameter whenever it copies a sensor that targets a job, though none of ours sets it.
#: Python's -W syntax: action:message prefix (comma-separated, so no comma inside).
_QUIET_WARNINGS = (
    "ignore:Function `dev_command` is superseded",
    "ignore:Parameter `owners` of initializer `SensorDefinition.__init__` is currently in beta",
)
#: How long the runs in progress get to end once cancelled (a run's step notices within
#: seconds), and the demo's services to stop after that before they are terminated.
CANCEL_GRACE_SECONDS = 15.0
STOP_GRACE_SECONDS = 30.0


def _dagster_home(data_dir: Path) -> Path:
    """The demo's Dagster instance folder, with this project's dagster.yaml when there is one."""
    home = data_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        if Path("dagster.yaml").exists():
            shutil.copy("dagster.yaml", target)
        else:
            target.write_text(_MINIMAL_DAGSTER_YAML, encoding="utf-8")
    return home


@dataclass(frozen=True)
class DemoServices:
    """Where the demo's services listen, and the sync API's key.

    ``api_key_generated``: the key was made up for this demo (``POSTER_API_KEY`` unset), so
    the banner may show it; a key the user set is only ever named, never printed.
    """

    host: str
    ui_port: int
    receiver_port: int
    api_key: str = field(repr=False)
    api_key_generated: bool

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.receiver_url}/api/poster/webhooks"

    @property
    def redirect_uri(self) -> str:
        return f"{self.receiver_url}{CALLBACK_PATH}"

    @property
    def connect_url(self) -> str:
        return f"{self.receiver_url}{AUTHORIZE_PATH}"


def demo_api_key(settings: Settings) -> tuple[str, bool]:
    """``POSTER_API_KEY``, else a fresh key for this demo; and whether it was generated."""
    if settings.api_key:
        return settings.api_key, False
    return secrets.token_urlsafe(24), True


def format_banner(services: DemoServices, emulator_url: str, account: str) -> str:
    """What the demo prints once everything answers: where to click, what to try."""
    key = services.api_key if services.api_key_generated else "$POSTER_API_KEY"
    key_origin = (
        "a key made up for this demo; set POSTER_API_KEY to choose your own"
        if services.api_key_generated
        else "the key in POSTER_API_KEY"
    )
    sync_url = f"{services.receiver_url}/api/poster/sync"
    return "\n".join(
        [
            "",
            f"Dagster UI: {services.ui_url}",
            f"  Assets → group 'poster' → Materialize all → partition '{account}' fills every "
            "table (smart sync also does it by itself within a minute).",
            "  Change an ingredient and watch a partial sync run (Runs, tag poster/sync):",
            f"    curl -X PATCH {emulator_url}/control/{account}/ingredients/1 "
            "-H 'Content-Type: application/json' -d '{\"ingredient_name\": \"Мёд\"}'",
            f"Sync API: {sync_url} ({key_origin})",
            f"    curl -H 'Authorization: Bearer {key}' '{sync_url}?account={account}'",
            "Connect a restaurant through OAuth (the emulator approves at once), in a browser:",
            f"    {services.connect_url}",
            f"Webhook receiver: {services.webhook_url}",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def service_env(
    settings: Settings, emulator: RunningEmulator, services: DemoServices, dagster_home: Path
) -> dict[str, str]:
    """The environment of the demo's receiver and Dagster: everything pointed at the emulator,
    the sync API and OAuth switched on."""
    env = {k: v for k, v in os.environ.items() if k not in SEED_ALIASES}
    warnings_filter = ",".join(filter(None, [env.get("PYTHONWARNINGS"), *_QUIET_WARNINGS]))
    return {
        **env,
        "DAGSTER_HOME": str(dagster_home),
        "POSTER_API_URL": settings.api_url,
        "POSTER_DATA_DIR": str(settings.data_dir.resolve()),
        "POSTER_APPLICATION_ID": emulator.config.application_id,
        "POSTER_APPLICATION_SECRET": emulator.config.application_secret,
        "POSTER_REDIRECT_URI": services.redirect_uri,
        "POSTER_API_KEY": services.api_key,
        "PYTHONWARNINGS": warnings_filter,
    }


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies, awaiting a reaper that some
    containers lack, do not count: they hold no port)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _stop_group(child: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait for ``child``'s process group to end by ``deadline``, then terminate and kill it;
    ``True`` when it ended by itself."""
    while time.monotonic() < deadline:
        child.poll()
        if child.returncode is not None and not _group_alive(child.pid):
            return True
        time.sleep(0.2)
    for signum in (signal.SIGTERM, signal.SIGKILL):
        _signal_group(child.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
    return False


_RUNNING = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
_ENDING = [*_RUNNING, dg.DagsterRunStatus.CANCELING]


def _cancel_runs_in_flight(dagster_home: Path, deadline: float) -> None:
    """Cancel the runs in progress, as the UI's Terminate button does, and wait for them to
    end (until ``deadline``).

    Interrupted by a signal instead, a run fails with a stack trace and its log-mirroring
    helpers print ``KeyboardInterrupt`` tracebacks. A cancelled drain loses nothing: its claim
    expires and its events run again (docs/drain.md); queued runs wait for the next start.
    """
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=_RUNNING)):
            try:
                instance.run_launcher.terminate(run.run_id)
            except Exception as exc:  # best effort: stopping goes on whatever happens here
                log.warning("could not cancel run %s: %s", run.run_id, exc)
        while time.monotonic() < deadline:
            if not instance.get_runs_count(filters=dg.RunsFilter(statuses=_ENDING)):
                return
            time.sleep(0.5)


class _StopRequested:
    """Ctrl-C and SIGTERM set :attr:`event` instead of raising in the middle of a wait."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __enter__(self) -> threading.Event:
        def handle(_signum: int, _frame: FrameType | None) -> None:
            self.event.set()

        self._previous = {
            signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        return self.event

    def __exit__(self, *_exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def run_ui(
    settings: Settings,
    emulator: RunningEmulator,
    account: str,
    services: DemoServices,
    *,
    verbose: bool = False,
    on_ready: Callable[[], None] = lambda: None,
) -> int:
    """Run the webhook receiver and ``dagster dev`` on the demo setup until Ctrl-C or SIGTERM.

    Each child runs in its own process group, so a terminal's Ctrl-C reaches only this
    process, which then stops them in order: Dagster's runs in progress are cancelled, then
    ``dagster dev`` and the receiver get SIGINT and stop their own processes; whatever is left
    of their process groups after :data:`STOP_GRACE_SECONDS` is terminated, then killed.
    ``on_ready`` runs once the UI and the receiver answer. Returns 0 when stopped by a
    signal, 1 when a service ended by itself.
    """
    dagster_home = _dagster_home(settings.data_dir.resolve())
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        if account not in instance.get_dynamic_partitions(ACCOUNTS):
            instance.add_dynamic_partitions(ACCOUNTS, [account])
    env = service_env(settings, emulator, services, dagster_home)
    bin_dir = Path(sys.executable).parent
    level = "info" if verbose else "warning"
    receiver_argv = [
        str(bin_dir / "poster-pipeline"),
        "serve",
        *("--host", "127.0.0.1", "--port", str(services.receiver_port)),
        *("--log-level", level, "--access-log" if verbose else "--no-access-log"),
    ]
    dagster_argv = [
        str(bin_dir / "dagster"),
        "dev",
        *("-m", "poster_pipeline.definitions"),
        *("-h", services.host, "-p", str(services.ui_port), "--log-level", level),
    ]
    local_host = "127.0.0.1" if services.host in ("0.0.0.0", "::", "") else services.host
    checks = {
        "the Dagster UI": f"http://{local_host}:{services.ui_port}/server_info",
        "the webhook receiver": f"{services.receiver_url}/health/ready",
    }
    with _StopRequested() as stop:
        children = {
            "the webhook receiver": subprocess.Popen(receiver_argv, env=env, process_group=0),
            "Dagster": subprocess.Popen(
                dagster_argv,
                env=env,
                process_group=0,
                stdout=None if verbose else subprocess.PIPE,
                stderr=None if verbose else subprocess.STDOUT,
            ),
        }
        dagster_out = children["Dagster"].stdout
        output = None if dagster_out is None else StoppingOutput(dagster_out, stop)
        code = 0
        try:
            waiting = dict(checks)
            while not stop.wait(1):
                ended = [name for name, child in children.items() if child.poll() is not None]
                if ended:
                    log.error("%s stopped unexpectedly: stopping the demo", ended[0])
                    code = 1
                    break
                if waiting:
                    waiting = {name: url for name, url in waiting.items() if not _answers(url)}
                    if not waiting:
                        on_ready()
        finally:
            _cancel_runs_in_flight(dagster_home, time.monotonic() + CANCEL_GRACE_SECONDS)
            for child in children.values():
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGINT)
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for name, child in children.items():
                if not _stop_group(child, deadline):
                    log.warning("%s did not stop within %.0f s: killed", name, STOP_GRACE_SECONDS)
            if output is not None:
                output.close()
                if (note := output.note()) is not None:
                    log.info("%s", note)
    return code


def start_changes(emulator: RunningEmulator, account: str, every: float) -> threading.Event:
    """Change a random ingredient's stock in the emulator every ``every`` seconds, so webhook-
    driven partial syncs show up in the UI; set the returned event to stop."""
    stop = threading.Event()
    randomizer = random.Random(1)

    def loop() -> None:
        with requests.Session() as session:
            while not stop.wait(every):
                listed = session.get(f"{emulator.url}/control/{account}/ingredients", timeout=10)
                ingredient = randomizer.choice(listed.json())
                left = f"{randomizer.uniform(0, 500):.5f}"
                session.patch(
                    f"{emulator.url}/control/{account}/ingredients/{ingredient['ingredient_id']}",
                    json={"ingredient_left": left},
                    timeout=10,
                )

    threading.Thread(target=loop, name="demo-changes", daemon=True).start()
    return stop
