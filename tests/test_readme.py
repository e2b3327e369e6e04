"""The README's emulator, client and key commands run as written (ports aside)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from tests.processes import BIN, answers, clean_env, free_port, start, stop, wait_until

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
CLI = str(Path(sys.executable).with_name("poster-pipeline"))


def code_blocks(language: str, containing: str) -> list[str]:
    blocks = re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)
    return [b for b in blocks if containing in b]


def commands(block: str) -> list[str]:
    """Shell commands of a block, continuation lines joined."""
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]


@pytest.fixture(scope="module")
def emulator_port(tmp_path_factory):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [start] = [c for c in commands(code_blocks("sh", "emulator --port")[0]) if "emulator" in c]
    argv = start.replace(".venv/bin/poster-pipeline", CLI).replace("8765", str(port)).split()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/control/health", timeout=1).raise_for_status()
            break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("the emulator did not start")
    yield port
    process.terminate()
    process.wait(timeout=10)


def run_shell(script: str, port: int) -> str:
    script = script.replace("8765", str(port))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_curl_calls_to_the_emulator_answer_like_poster(emulator_port):
    [calls] = code_blocks("sh", "menu.getWorkshops")
    output = run_shell(calls, emulator_port)
    assert output.count('{"response":') == 2
    assert '"workshop_name"' in output and '"ingredient_id":1' in output


def test_the_control_api_examples_work(emulator_port):
    [control] = code_blocks("sh", "/control/faults")
    output = run_shell(control, emulator_port)
    assert "Молоко 2,5%" in output
    assert '"by_method"' in output


def test_the_client_example_runs(emulator_port):
    [example] = code_blocks("python", "PosterClient(")
    accounts = requests.get(f"http://127.0.0.1:{emulator_port}/control/accounts", timeout=5)
    token = accounts.json()[0]["token"]
    printed: list[tuple] = []
    namespace = {"token": token, "print": lambda *args: printed.append(args)}
    exec(example.replace("8765", str(emulator_port)), namespace)
    assert len(printed) > 1
    assert printed[-1][0]["menu.getIngredients"] == 1


def test_the_token_key_one_liner_makes_a_fernet_key():
    [setup] = code_blocks("sh", "POSTER_TOKEN_KEY=")
    [line] = [c for c in commands(setup) if "POSTER_TOKEN_KEY=" in c]
    one_liner = line.split("$(", 1)[1].rsplit(")", 1)[0]
    key = subprocess.run(
        ["bash", "-c", one_liner.replace("python3", sys.executable)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Fernet(key.encode())


def test_the_demos_change_command_reaches_the_emulator(emulator_port):
    [change] = code_blocks("sh", "Мёд")
    run_shell(change, emulator_port)
    answer = requests.get(f"http://127.0.0.1:{emulator_port}/control/api-demo/ingredients/1")
    assert answer.json()["object"]["ingredient_name"] == "Мёд"


@pytest.fixture
def served_warehouse(tmp_path, emulator_port):
    """`poster-pipeline serve` on a fresh embedded warehouse with the demo account connected."""
    receiver_port = free_port()
    token = requests.get(f"http://127.0.0.1:{emulator_port}/control/accounts", timeout=5).json()
    env = clean_env(
        POSTER_DATA_DIR=str(tmp_path / "data"),
        POSTER_TOKEN_KEY=Fernet.generate_key().decode(),
        POSTER_API_URL=f"http://127.0.0.1:{emulator_port}/api",
        POSTER_APPLICATION_SECRET="readme-secret",
        POSTER_API_KEY="readme-api-key",
        PATH=f"{BIN}:{os.environ['PATH']}",
    )
    subprocess.run([CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [CLI, "accounts", "add", "--account", "api-demo", "--token", token[0]["token"]],
        env=env,
        check=True,
        capture_output=True,
    )
    process = start(
        ["poster-pipeline", "serve", "--port", str(receiver_port)], env, tmp_path / "serve.log"
    )
    try:
        wait_until(answers(f"http://127.0.0.1:{receiver_port}/health/ready"), 30, "the receiver")
        yield env, receiver_port
    finally:
        stop(process)


def test_the_sync_api_examples_work(served_warehouse):
    env, port = served_warehouse
    [calls] = code_blocks("sh", "/api/poster/sync")
    output = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", calls.replace("8080", str(port))],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    decoder = json.JSONDecoder()
    answers = []
    while output.strip():
        answer, end = decoder.raw_decode(output.lstrip())
        answers.append(answer)
        output = output.lstrip()[end:]
    status, one_account, queued = answers
    assert status["accounts"]["api-demo"]["suppliers"]["needsSync"] is True
    assert one_account["status"]["suppliers"]["needsSync"] is True
    assert one_account["status"] == status["accounts"]["api-demo"]
    assert queued["queued"] == [{"account": "api-demo", "entity": "suppliers", "force": True}]


def test_the_queue_commands_run(served_warehouse):
    env, _port = served_warehouse
    [commands_block] = code_blocks("sh", "queue status")
    for command in commands(commands_block):
        argv = command.split("#")[0].split()
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
