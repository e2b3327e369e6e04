"""The operators' page in a real headless browser (Debian's ``chromium`` and
``chromium-driver``, which ``.ci/run`` installs): a person logs in with the API key, sees
api-demo's entities synced from the emulator, one of them marked as failed, and logs out.

A missing browser fails this test rather than skipping it: a page nobody looked at is not
tested. ``DASHBOARD_SCREENSHOT=docs/dashboard.png`` also saves the screenshot there (how the
one in ``docs/`` is made).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from poster_pipeline.catalogue import ENTITIES
from poster_pipeline.orchestration.resources import PosterApiResource, WarehouseResource
from poster_pipeline.sync import SyncFailed, SyncServices, run_full_sync
from poster_pipeline.warehouse.guard import DeletionGuard
from tests.databases import postgres_url
from tests.orchestration.conftest import warehouse
from tests.processes import clean_env, free_port, start, stop, wait_until

__all__ = ["warehouse"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
API_KEY = "browser-test-key-5b0e9a31"
DAGSTER_URL = "http://dagster.local:3000"
FAILING = next(spec for spec in ENTITIES if spec.name == "products")


def _emulator(emulator, method: str, path: str, body: dict | None = None) -> None:
    requests.request(
        method, f"{emulator.url}/control/{path}", json=body, timeout=5
    ).raise_for_status()


@pytest.fixture(scope="module")
def synced(emulator, warehouse: WarehouseResource) -> WarehouseResource:
    """Every entity of both restaurants synced from the emulator, except api-demo's
    products, whose list Poster answers with HTTP 500."""
    services = SyncServices(
        engine=warehouse.engine(),
        token_for=warehouse.accounts(with_tokens=True).token,
        client_for=PosterApiResource(base_url=emulator.api_url, max_retries=0).client,
    )
    _emulator(emulator, "DELETE", "faults")
    _emulator(
        emulator,
        "POST",
        "faults",
        {
            "method": FAILING.list_method,
            "kind": "http_status",
            "status": 500,
            "account": "api-demo",
        },
    )
    try:
        for account in ("api-demo", "second-cafe"):
            for spec in ENTITIES:
                if (account, spec) == ("api-demo", FAILING):
                    with pytest.raises(SyncFailed):
                        run_full_sync(services, spec, account, guard=DeletionGuard())
                else:
                    run_full_sync(services, spec, account, guard=DeletionGuard())
    finally:
        _emulator(emulator, "DELETE", "faults")
    return warehouse


@pytest.fixture(scope="module")
def server(synced: WarehouseResource, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``poster-pipeline serve`` on that warehouse, with the API key and the Dagster URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = clean_env(
        POSTER_DATABASE_URL=postgres_url(),
        POSTER_APPLICATION_SECRET="webhook-secret",
        POSTER_API_KEY=API_KEY,
        POSTER_DAGSTER_URL=DAGSTER_URL,
    )
    process = start(["poster-pipeline", "serve", "--port", str(port)], env, log)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return requests.get(f"{base}/health/ready", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        wait_until(ready, timeout=30, what="poster-pipeline serve is ready")
        yield base
    finally:
        stop(process)
    assert API_KEY not in log.read_text()  # the key never reaches the log


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: `apt-get install -y chromium chromium-driver` "
            "(.ci/run does it)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=1500,900",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_person_logs_in_and_sees_each_entity_with_the_failed_one_marked(
    server: str, browser, tmp_path: Path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as when
    from selenium.webdriver.support.wait import WebDriverWait

    driver = browser
    wait = WebDriverWait(driver, timeout=15)
    driver.get(f"{server}/dashboard")
    # No session: the login form, and no data.
    assert driver.current_url.endswith("/dashboard/login")
    assert "api-demo" not in driver.page_source

    driver.find_element(By.ID, "key").send_keys("not-the-key")
    driver.find_element(By.ID, "login").click()
    error = wait.until(when.presence_of_element_located((By.ID, "login-error")))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    assert "That is not the key." in error.text
    assert "api-demo" not in driver.page_source

    driver.find_element(By.ID, "key").send_keys(API_KEY)
    driver.find_element(By.ID, "login").click()
    wait.until(when.url_to_be(f"{server}/dashboard"))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    # The session cookie is out of the page's scripts' reach.
    assert driver.execute_script("return document.cookie") == ""

    cells = driver.find_elements(By.CSS_SELECTOR, 'td.cell[data-account="api-demo"]')
    states = {cell.get_attribute("data-entity"): cell.get_attribute("data-state") for cell in cells}
    assert set(states) == {spec.name for spec in ENTITIES}
    assert states.pop(FAILING.name) == "failed"
    assert set(states.values()) == {"ok"}, states

    failed = driver.find_element(
        By.CSS_SELECTOR, f'td.cell[data-account="api-demo"][data-entity="{FAILING.name}"]'
    )
    assert failed.find_element(By.CSS_SELECTOR, ".state").text.lower() == "failed"
    assert "HTTP 500" in failed.find_element(By.CSS_SELECTOR, ".full-error").text
    failed.find_element(By.TAG_NAME, "summary").click()
    link = failed.find_element(By.CSS_SELECTOR, "a.dagster").get_attribute("href")
    assert link == f"{DAGSTER_URL}/assets/poster/products?partition=api-demo&view=partitions"

    shot = tmp_path / "dashboard.png"
    driver.set_window_size(
        1500, driver.execute_script("return document.documentElement.scrollHeight") + 20
    )
    assert driver.save_screenshot(str(shot))
    if target := os.environ.get("DASHBOARD_SCREENSHOT"):
        shutil.copyfile(shot, target)

    driver.find_element(By.ID, "logout").click()
    wait.until(when.url_to_be(f"{server}/dashboard/login"))
    driver.get(f"{server}/dashboard")
    assert driver.current_url.endswith("/dashboard/login")


def test_the_documented_curl_command_reads_the_failing_restaurants(server: str):
    page = (Path(__file__).resolve().parents[2] / "docs" / "dashboard.md").read_text()
    [command] = [
        line
        for block in re.findall(r"```sh\n(.*?)```", page, flags=re.S)
        for line in block.splitlines()
        if line.startswith("curl")
    ]
    output = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command.replace("http://127.0.0.1:8080", server)],
        env=clean_env(POSTER_API_KEY=API_KEY),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    shown = re.findall(r'<tr data-account="([^"]*)">', output)
    assert shown == ["api-demo"]  # the one restaurant with a failed entity
    assert f'data-entity="{FAILING.name}" data-state="failed"' in output
