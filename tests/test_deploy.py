"""The deployment files agree with the code: what can be checked without Docker or a cluster.

The Dockerfile, ``.dockerignore``, the Helm values and the Kubernetes manifests under
``deploy/kubernetes/`` and ``docs/deploy.md`` name ports, commands, variables, modules and
versions that the code defines; each test reads both sides, so renaming one side without the
other fails here rather than in a cluster. No test builds the image (there is no Docker daemon
on these machines) or talks to Kubernetes.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import dagster as dg
import jsonschema
import pytest
import yaml
from dagster._core.definitions.run_request import InstigatorType
from sqlalchemy.engine import make_url

from poster_pipeline.cli import main as cli
from poster_pipeline.demo_ports import DAGSTER_UI_PORT
from poster_pipeline.http.app import create_app
from poster_pipeline.http.receiver import WEBHOOK_PATH
from poster_pipeline.http.settings import ReceiverSettings
from poster_pipeline.settings import SEED_ALIASES
from tests.databases import postgres_url

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = (ROOT / ".dockerignore").read_text()
KUBERNETES = ROOT / "deploy" / "kubernetes"
VALUES = yaml.safe_load((KUBERNETES / "values.yaml").read_text())
DOCS = (ROOT / "docs" / "deploy.md").read_text()
README = (ROOT / "README.md").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
INSTANCE = yaml.safe_load((ROOT / "deploy" / "postgres" / "dagster.yaml").read_text())
WORKSPACE = yaml.safe_load((ROOT / "workspace.yaml").read_text())
SCHEMA = json.loads((ROOT / "tests" / "data" / "dagster_chart_values.schema.json").read_text())
#: The Kubernetes secret every process reads its POSTER_* secrets from.
SECRET = "poster-pipeline"
#: Values that must only ever come from a secret: never an image, a values file or a manifest.
SECRET_VARIABLES = (
    "POSTER_TOKEN_KEY",
    "POSTER_API_KEY",
    "POSTER_APPLICATION_SECRET",
    "POSTER_DATABASE_URL",
    "POSTER_SMTP_URL",
    "POSTER_ALERT_WEBHOOK_URL",
    "DAGSTER_PG_URL",
)


# -- what the code defines ---------------------------------------------------------------------


def pinned(distribution: str) -> str:
    """The exact version pyproject.toml pins ``distribution`` to."""
    [spec] = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith(f"{distribution}==")]
    return spec.split("==", 1)[1]


def option_default(command: click.Command, name: str) -> Any:
    [param] = [p for p in command.params if p.name == name]
    return param.default


def serve_port() -> int:
    serve = cli.commands["serve"]
    return int(option_default(serve, "port"))


def dagster_ui_port() -> int:
    return DAGSTER_UI_PORT


def documented_variables() -> set[str]:
    """The variables of README's configuration table."""
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", section, flags=re.M))


def cli_accepts(argv: list[str]) -> None:
    """Parse ``argv`` (after ``poster-pipeline``) as the CLI would, without running it:
    an unknown verb or option raises ``click.UsageError``."""
    command: click.Command = cli
    args = list(argv)
    while isinstance(command, click.Group):
        name, *args = args
        found = command.get_command(click.Context(command), name)
        if found is None:
            raise click.UsageError(f"no command {name!r} in {' '.join(argv)!r}")
        command = found
    command.make_context(command.name or "", args, resilient_parsing=False)


def manifests() -> Iterator[tuple[str, dict[str, Any]]]:
    """(file name, document) of every Kubernetes manifest under deploy/kubernetes/."""
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "values.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path.name, document


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, document in manifests():
        spec = document.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            yield f"{name}: {container['name']}", container


# -- Dockerfile -------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (verb, _) in enumerate(instructions) if verb == "FROM")
    return instructions[last_from:]


def test_the_image_is_slim_python_of_the_supported_version():
    [(_, image)] = [(v, a) for v, a in dockerfile_instructions() if v == "ARG" and "IMAGE" in a]
    base = image.split("=", 1)[1]
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert base == f"python:{minimum}-slim"
    assert [a for v, a in dockerfile_instructions() if v == "FROM"] == [
        "${PYTHON_IMAGE} AS build",
        "${PYTHON_IMAGE}",
    ]


def test_the_image_runs_as_a_user_that_is_not_root():
    users = [a for v, a in final_stage() if v == "USER"]
    assert users, "the final stage sets no USER: the processes would run as root"
    uid = users[-1].split(":")[0]
    assert uid not in ("0", "root")
    # The manifests run the containers as that same user.
    for where, document in manifests():
        pod = document.get("spec", {}).get("template", {}).get("spec", {})
        if pod.get("containers"):
            assert str(pod["securityContext"]["runAsUser"]) == uid, where
            assert pod["securityContext"]["runAsNonRoot"] is True, where


def test_the_image_installs_the_project_with_the_k8s_extra_of_the_same_dagster_train():
    installs = [a for v, a in dockerfile_instructions() if v == "RUN" and "pip install" in a]
    assert any('".[k8s]"' in a for a in installs), installs
    [k8s] = PYPROJECT["project"]["optional-dependencies"]["k8s"]
    assert k8s == f"dagster-k8s=={pinned('dagster-postgres')}"  # libraries share 0.29.N


def test_the_image_exposes_and_starts_the_ports_of_the_code():
    [exposed] = [a.split() for v, a in final_stage() if v == "EXPOSE"]
    grpc_port = VALUES["dagster-user-deployments"]["deployments"][0]["port"]
    assert sorted(map(int, exposed)) == sorted([serve_port(), grpc_port, dagster_ui_port()])
    [command] = [json.loads(a) for v, a in final_stage() if v == "CMD"]
    assert command[:2] == ["poster-pipeline", "serve"]
    cli_accepts(command[1:])
    assert command[command.index("--port") + 1] == str(serve_port())
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable from outside


def test_the_image_sets_no_secret_and_only_known_variables():
    variables = {
        name
        for verb, args in dockerfile_instructions()
        if verb in ("ENV", "ARG")
        for name in re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", args)
    }
    assert not variables & set(SECRET_VARIABLES)
    project = {v for v in variables if v.startswith("POSTER_")}
    assert project <= documented_variables(), project - documented_variables()
    [home] = re.findall(r"DAGSTER_HOME=(\S+)", DOCKERFILE)
    assert home == VALUES["global"]["dagsterHome"]  # the chart's pods use the image's home
    assert f"COPY --chown=poster:poster deploy/postgres/dagster.yaml {home}/dagster.yaml" in (
        DOCKERFILE
    )


def dockerignored(path: str) -> bool:
    """Whether the build context leaves ``path`` out: the last matching pattern wins, ``!``
    re-includes, a directory pattern covers what is under it (Docker's rules, as far as the
    patterns of this .dockerignore use them)."""
    ignored = False
    for line in DOCKERIGNORE.splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        candidates = [path, *(str(p) for p in Path(path).parents if str(p) != ".")]
        if pattern == "**" or any(
            fnmatch.fnmatchcase(c, pattern) or fnmatch.fnmatchcase(c, pattern.removeprefix("**/"))
            for c in candidates
        ):
            ignored = not negate
    return ignored


def test_every_file_the_dockerfile_copies_exists_and_is_in_the_build_context():
    sources = [
        part
        for verb, args in dockerfile_instructions()
        if verb == "COPY" and "--from=" not in args
        for part in args.split()[:-1]
        if not part.startswith("--")
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source), f"{source} is left out by .dockerignore"
        for path in (ROOT / source).rglob("*.py") if (ROOT / source).is_dir() else []:
            if "__pycache__" not in path.parts:
                relative = str(path.relative_to(ROOT))
                assert not dockerignored(relative), relative


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "poster_pipeline/.env",
        ".venv/bin/python",
        ".git/config",
        ".poster-pipeline/x.db",
        "tests/test_deploy.py",
        "benchmarks/RESULTS.md",
        "poster_pipeline/__pycache__/cli.pyc",
    ],
)
def test_local_state_and_secrets_stay_out_of_the_build_context(path):
    assert dockerignored(path)


def test_the_package_built_by_pip_install_holds_the_migrations_and_the_sensors(tmp_path):
    """What `pip install .` puts in the image: the wheel of this tree (built as the Dockerfile
    builds it, with build isolation) has every migration, its template and the sensors."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("poster_pipeline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = ROOT / "poster_pipeline" / "warehouse" / "migrations"
    expected = {
        str(p.relative_to(ROOT))
        for p in [*migrations.rglob("*.py"), migrations / "script.py.mako"]
        if "__pycache__" not in p.parts
    }
    expected |= {str(p.relative_to(ROOT)) for p in (ROOT / "sensors").glob("*.py")}
    assert expected <= names, sorted(expected - names)


# -- the Helm values ----------------------------------------------------------------------------


def test_the_values_file_is_valid_against_the_charts_schema():
    validator = jsonschema.Draft7Validator(SCHEMA)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(VALUES)]
    assert not errors, errors


def test_the_schema_excerpt_refuses_what_the_chart_refuses():
    """The excerpt is not vacuous: a misspelt key, a wrong type and an unknown run launcher
    are each refused."""
    validator = jsonschema.Draft7Validator(SCHEMA)
    bad = [
        {**VALUES, "dagsterDeamon": {}},
        {**VALUES, "dagsterDaemon": {**VALUES["dagsterDaemon"], "sensor": {"useThreads": True}}},
        {**VALUES, "runLauncher": {"type": "K8sLauncher", "config": {}}},
        {**VALUES, "retention": {**VALUES["retention"], "schedule": {"purgeAfterDays": "30"}}},
    ]
    for values in bad:
        assert not validator.is_valid(values)


def test_the_dagster_images_are_the_pinned_release():
    version = pinned("dagster")
    for section in ("dagsterWebserver", "dagsterDaemon"):
        image = VALUES[section]["image"]
        assert image["repository"].endswith("dagster/dagster-celery-k8s"), section
        assert image["tag"] == version, section
    assert f"--version {version}" in DOCS
    assert f"--version {version}" in (KUBERNETES / "values.yaml").read_text()


def test_the_code_location_is_the_workspaces_module_on_the_images_port():
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    module = args[args.index("--module-name") + 1]
    [location] = WORKSPACE["load_from"]
    assert module == location["python_module"]["module_name"]
    assert isinstance(__import__(module, fromlist=["defs"]).defs, dg.Definitions)
    assert f"--port {deployment['port']}" in DOCKERFILE  # the command the image documents
    assert f"--module-name {module}" in DOCKERFILE
    assert VALUES["dagsterWebserver"]["service"]["port"] == dagster_ui_port()


def test_the_run_queue_is_the_postgres_instances():
    """The chart writes the daemon's run coordinator from the values: the same limits as
    deploy/postgres/dagster.yaml, key for key."""
    instance = INSTANCE["run_coordinator"]["config"]
    queued = VALUES["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == instance["max_concurrent_runs"]
    assert queued["dequeueIntervalSeconds"] == instance["dequeue_interval_seconds"]
    as_instance = [
        {
            "key": limit["key"],
            "limit": limit["limit"],
            "value": (
                {"applyLimitPerUniqueValue": limit["value"]["applyLimitPerUniqueValue"]}
                if isinstance(limit["value"], dict)
                else limit["value"]
            ),
        }
        for limit in queued["tagConcurrencyLimits"]
    ]
    assert as_instance == [
        {"key": lim["key"], "limit": lim["limit"], "value": lim["value"]}
        for lim in instance["tag_concurrency_limits"]
    ]
    sensors = VALUES["dagsterDaemon"]["sensors"]
    assert sensors == {
        "useThreads": INSTANCE["sensors"]["use_threads"],
        "numWorkers": INSTANCE["sensors"]["num_workers"],
    }


def test_the_tick_retention_is_the_postgres_instances(monkeypatch):
    """The same days in both files, and Dagster reads them from deploy/postgres/dagster.yaml
    (a misspelt key would fail the instance's config check, a wrong place be ignored)."""
    dagster_db = make_url(postgres_url("_dagster")).set(drivername="postgresql+psycopg2")
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_db.render_as_string(hide_password=False))
    with dg.DagsterInstance.from_config(str(ROOT / "deploy" / "postgres")) as instance:
        sensor = instance.get_tick_retention_settings(InstigatorType.SENSOR)
        schedule = instance.get_tick_retention_settings(InstigatorType.SCHEDULE)
    assert {status.value.lower(): days for status, days in sensor.items()} == INSTANCE["retention"][
        "sensor"
    ]["purge_after_days"]
    assert set(schedule.values()) == {INSTANCE["retention"]["schedule"]["purge_after_days"]}
    chart = VALUES["retention"]
    assert chart["enabled"] is True
    kinds = {"sensor": "sensor", "schedule": "schedule", "auto_materialize": "autoMaterialize"}
    for kind, chart_kind in kinds.items():
        days = INSTANCE["retention"][kind]["purge_after_days"]
        assert days == chart[chart_kind]["purgeAfterDays"], kind


def test_dagsters_database_is_external_with_the_psycopg2_scheme_and_a_secret_password():
    postgresql = VALUES["postgresql"]
    assert postgresql["enabled"] is False
    assert postgresql["postgresqlScheme"] == "postgresql+psycopg2"
    assert "postgresqlPassword" not in postgresql
    assert VALUES["generatePostgresqlPasswordSecret"] is False
    assert VALUES["global"]["postgresqlSecretName"] in DOCS


def test_every_process_reads_the_same_secret_and_sets_no_secret_itself():
    [deployment] = VALUES["dagster-user-deployments"]["deployments"]
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    assert {"name": SECRET} in deployment["envSecrets"]
    assert {"name": SECRET} in launcher["envSecrets"]
    for where, container in containers():
        assert {"secretRef": {"name": SECRET}} in container["envFrom"], where
    assert f"create secret generic {SECRET}" in DOCS
    literal = [
        *(e["name"] for e in deployment.get("env", [])),
        *(e["name"] for _, c in containers() for e in c.get("env", [])),
    ]
    assert not set(literal) & set(SECRET_VARIABLES), literal
    for name in literal:
        assert name in documented_variables(), name


# -- the Kubernetes manifests -------------------------------------------------------------------


def test_every_manifest_parses_as_a_kubernetes_object():
    kinds = [(name, doc["kind"]) for name, doc in manifests()]
    assert ("receiver.yaml", "Deployment") in kinds
    assert ("db-upgrade-job.yaml", "Job") in kinds
    for name, document in manifests():
        assert {"apiVersion", "kind", "metadata", "spec"} <= document.keys(), name


@pytest.mark.parametrize(
    "argv",
    [["serve", "--listen", "0.0.0.0"], ["db", "migrate"], ["daemon"], ["serve", "--port", "x"]],
)
def test_a_command_the_cli_does_not_have_is_refused(argv):
    with pytest.raises(click.UsageError):
        cli_accepts(argv)


def test_every_container_runs_a_command_the_cli_has():
    commands = [c["args"] for _, c in containers()]
    assert ["poster-pipeline", "db", "upgrade"] in commands
    for where, container in containers():
        argv = container["args"]
        assert argv[0] == "poster-pipeline", where
        cli_accepts(argv[1:])


def test_the_receivers_ports_probes_and_routes_are_the_codes(tmp_path):
    app = create_app(
        ReceiverSettings(application_secret="x", warehouse_url=f"sqlite:///{tmp_path}/w.db")
    )
    routes = {getattr(route, "path", None) for route in app.routes}
    [(_, receiver)] = [(w, c) for w, c in containers() if c["name"] == "receiver"]
    argv = receiver["args"]
    assert int(argv[argv.index("--port") + 1]) == serve_port()
    [port] = receiver["ports"]
    assert port["containerPort"] == serve_port()
    for probe in ("readinessProbe", "livenessProbe"):
        assert receiver[probe]["httpGet"]["path"] in routes, probe
        assert receiver[probe]["httpGet"]["port"] == port["name"]
    services = [d for n, d in manifests() if d["kind"] == "Service"]
    [service] = services
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    [ingress] = [d for n, d in manifests() if d["kind"] == "Ingress"]
    assert ingress["spec"]["tls"], "Poster only calls HTTPS URLs"
    prefixes = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert any(WEBHOOK_PATH.startswith(prefix + "/") for prefix in prefixes)
    assert "/dashboard" in prefixes


# -- docs/deploy.md -------------------------------------------------------------------------


def test_the_docs_name_only_variables_the_code_reads():
    named = set(re.findall(r"\b((?:POSTER|DAGSTER)_[A-Z0-9_]+)\b", DOCS))
    known = documented_variables() | {"DAGSTER_HOME"} | set(SEED_ALIASES)
    assert named <= known, named - known
    for variable in ("POSTER_TOKEN_KEY", "POSTER_API_KEY", "POSTER_APPLICATION_SECRET"):
        assert variable in named


def test_every_cli_command_in_the_docs_exists():
    found = re.findall(r"poster-pipeline ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)", DOCS)
    assert found
    for words in set(found):
        verb, *rest = words.split()
        command = cli.commands.get(verb)
        assert command is not None, words
        if isinstance(command, click.Group) and rest:
            assert rest[0] in command.commands, words
    assert "poster-pipeline db upgrade" in DOCS
    assert "dagster instance migrate" in DOCS


def test_the_docs_state_the_ports_of_the_code():
    assert f"port {serve_port()}" in DOCS
    grpc = VALUES["dagster-user-deployments"]["deployments"][0]["port"]
    assert f"port {grpc}" in DOCS
    assert f"port {dagster_ui_port()}" in DOCS


def test_the_readme_links_the_deployment_guide():
    assert "(docs/deploy.md)" in README


def load_prune_runs() -> Any:
    spec = importlib.util.spec_from_file_location("prune_runs", ROOT / "deploy" / "prune_runs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dg.op
def _noop() -> None:
    pass


@dg.job
def _tiny() -> None:
    _noop()


def test_pruning_deletes_old_finished_runs_with_their_events_and_keeps_the_rest(tmp_path):
    """Runs created before the cut-off go with their event logs, except one still in progress;
    a run created after it stays."""
    prune_runs = load_prune_runs()
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        old_done = _tiny.execute_in_process(instance=instance).run_id
        old_failed = instance.create_run_for_job(_tiny, status=dg.DagsterRunStatus.FAILURE).run_id
        old_running = instance.create_run_for_job(_tiny, status=dg.DagsterRunStatus.STARTED).run_id
        recent = _tiny.execute_in_process(instance=instance).run_id
        created = {r.dagster_run.run_id: r.create_timestamp for r in instance.get_run_records()}
        cutoff = max(created[old_done], created[old_failed], created[old_running])
        assert cutoff < created[recent]
        assert prune_runs.prune(instance, cutoff + (created[recent] - cutoff) / 2, batch=1) == 2
        assert {r.run_id for r in instance.get_runs()} == {old_running, recent}
        assert not instance.all_logs(old_done)
        assert instance.all_logs(recent)


def test_the_pruning_command_of_the_docs_runs_on_an_instance(tmp_path):
    assert "python deploy/prune_runs.py 30" in DOCS
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        done = _tiny.execute_in_process(instance=instance).run_id
        running = instance.create_run_for_job(_tiny, status=dg.DagsterRunStatus.STARTED).run_id
        env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
        argv = [sys.executable, str(ROOT / "deploy" / "prune_runs.py")]
        kept = subprocess.run([*argv, "30"], env=env, capture_output=True, text=True, timeout=60)
        assert kept.returncode == 0, kept.stderr
        assert "deleted 0 finished runs" in kept.stdout
        every = subprocess.run([*argv, "0"], env=env, capture_output=True, text=True, timeout=60)
        assert every.returncode == 0, every.stderr
        assert "deleted 1 finished runs" in every.stdout
        assert {r.run_id for r in instance.get_runs()} == {running}
        assert done not in {r.run_id for r in instance.get_runs()}
        refused = subprocess.run([*argv, "a month"], env=env, capture_output=True, text=True)
        assert refused.returncode == 2 and "number of days" in refused.stdout


def test_the_docs_say_what_was_not_tried():
    lowered = DOCS.lower()
    assert "not tried" in lowered
    assert "no cluster" in lowered
    assert "docker build" in lowered


def test_shell_snippets_in_the_docs_parse():
    for block in re.findall(r"```sh\n(.*?)```", DOCS, flags=re.S):
        shlex.split(block.replace("\\\n", " "), comments=True)
