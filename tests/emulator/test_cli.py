"""The emulator's command line and its scale: 100,000 ingredients in one list."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner

from poster_pipeline.emulator import EmulatorConfig, emulator_command, start_in_thread

ROOT = Path(__file__).resolve().parents[2]


def test_serves_100_000_ingredients() -> None:
    config = EmulatorConfig(sizes={"ingredients": 100_000})
    with start_in_thread(config) as emulator:
        answer = requests.get(
            f"{emulator.api_url}/menu.getIngredients",
            params={"token": config.accounts[0].token},
            timeout=60,
        )
        rows = answer.json()["response"]
    assert len(rows) == 100_000
    assert rows[-1]["ingredient_id"] == "100000"


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(emulator_command, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--seed",
        "--account",
        "--ingredients",
        "--products",
        "--product-categories",
        "--webhook-url",
        "--application-id",
        "--application-secret",
    ):
        assert option in result.output


def test_bad_account_is_a_usage_error() -> None:
    result = CliRunner().invoke(emulator_command, ["--account", "bad name"])
    assert result.exit_code == 2 and "not a Poster login" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_python_dash_m_serves_and_prints_tokens() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POSTER_APPLICATION_SECRET": "from-env"}
    command = [
        sys.executable,
        "-m",
        "poster_pipeline.emulator",
        "--port",
        str(port),
        "--account",
        "cafe-one",
        "--account",
        "cafe-two:424242:424242:" + "b" * 32,
        "--ingredients",
        "7",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/control/health", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, "the emulator exited early"
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.05)
        assert health.json() == {"status": "ok"}
        rows = requests.get(
            f"http://127.0.0.1:{port}/api/menu.getIngredients",
            params={"token": "424242:" + "b" * 32},
            timeout=5,
        ).json()["response"]
        assert len(rows) == 7
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/api" in output
    assert "cafe-two (number 424242) token 424242:" + "b" * 32 in output
    assert f"http://127.0.0.1:{port}/control" in output
    assert "account cafe-one" in output
