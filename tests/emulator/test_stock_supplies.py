"""The emulator's spots, stock and supplies: the shapes and quirks of Poster's documentation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import requests

from poster_pipeline.emulator import EmulatorConfig, RunningEmulator, start_in_thread
from poster_pipeline.emulator.web_api import _month_before

CONFIG = EmulatorConfig(seed=3, sizes={"ingredients": 12, "storages": 3, "supplies": 60})
TOKEN = CONFIG.accounts[0].token
ACCOUNT = CONFIG.accounts[0].name


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with start_in_thread(CONFIG) as running:
        yield running


def api(emulator: RunningEmulator, method: str, **params: object) -> object:
    answer = requests.get(f"{emulator.api_url}/{method}", params={"token": TOKEN, **params})
    answer.raise_for_status()
    return answer.json()


def control(emulator: RunningEmulator, path: str) -> object:
    return requests.get(f"{emulator.control_url}/{path}", timeout=5).json()


def test_spots_list_their_storages_with_numeric_storage_ids(emulator):
    spots = api(emulator, "access.getSpots")["response"]
    assert [s["spot_id"] for s in spots] == ["1", "2"]
    assert set(spots[0]) == {"spot_id", "spot_name", "spot_adress", "storages"}
    assert isinstance(spots[0]["storages"][0]["storage_id"], int)  # as in the docs' example


def test_per_storage_balance_only_with_storage_id_and_zeros_only_when_asked(emulator):
    requests.patch(
        f"{emulator.control_url}/{ACCOUNT}/stock/1/4", json={"value_absolute": 0}, timeout=5
    ).raise_for_status()
    one = api(emulator, "storage.getStorageLeftovers", storage_id=1)["response"]
    with_zeros = api(emulator, "storage.getStorageLeftovers", storage_id=1, zero_leftovers="true")[
        "response"
    ]
    everywhere = api(emulator, "storage.getStorageLeftovers")["response"]
    assert all("storage_ingredient_left" in row for row in with_zeros)
    assert all("storage_ingredient_left" not in row for row in everywhere)
    assert "4" not in {r["ingredient_id"] for r in one}
    assert "4" in {r["ingredient_id"] for r in with_zeros}
    assert re.fullmatch(r"-?\d+\.\d{5}", with_zeros[0]["storage_ingredient_left"])  # "140.81400"
    assert isinstance(with_zeros[0]["prime_cost"], int)
    unknown = api(emulator, "storage.getStorageLeftovers", storage_id=99)
    assert unknown["error"]["code"] == 32


def test_a_stock_change_moves_the_total_and_sends_the_stock_hook(emulator):
    total = {
        r["ingredient_id"]: float(r["ingredient_left"])
        for r in api(emulator, "storage.getStorageLeftovers")["response"]
    }["2"]
    answer = requests.patch(
        f"{emulator.control_url}/{ACCOUNT}/stock/2/2", json={"value_relative": -1.5}, timeout=5
    )
    assert answer.status_code == 200
    payload = answer.json()["webhook"]["payload"]
    assert (payload["object"], payload["object_id"], payload["action"]) == ("stock", 2, "changed")
    data = json.loads(payload["data"])
    assert data["storage_id"] == 2 and data["element_id"] == 2 and data["value_relative"] == -1.5
    after = {
        r["ingredient_id"]: float(r["ingredient_left"])
        for r in api(emulator, "storage.getStorageLeftovers")["response"]
    }["2"]
    assert after == pytest.approx(total - 1.5)
    bad = requests.patch(
        f"{emulator.control_url}/{ACCOUNT}/stock/2/2", json={"value_relative": "x"}, timeout=5
    )
    assert bad.status_code == 422


def test_supplies_answer_a_date_window_a_month_back_by_default(emulator):
    every = control(emulator, f"{ACCOUNT}/supplies")
    today = date.today()
    default = api(emulator, "storage.getSupplies")["response"]
    month = _month_before(today).isoformat()
    assert {s["supply_id"] for s in default} == {
        str(s["supply_id"]) for s in every if s["date"] >= month
    }
    dates = [s["date"] for s in default]
    assert dates == sorted(dates, reverse=True)  # newest first
    # With dates, limit and offset are ignored; without, they page.
    window = {"dateFrom": (today - timedelta(days=200)).strftime("%Y%m%d")}
    assert len(api(emulator, "storage.getSupplies", **window, limit=2)["response"]) == len(every)
    assert len(api(emulator, "storage.getSupplies", limit=2, offset=1)["response"]) == 2
    bad = api(emulator, "storage.getSupplies", dateFrom="2025-01-01")
    assert bad["error"]["code"] == 34


def test_a_supply_getter_answers_major_units_and_hides_deleted_supplies(emulator):
    every = control(emulator, f"{ACCOUNT}/supplies")
    live = next(s for s in every if not s["delete"])
    single = api(emulator, "storage.getSupply", supply_id=live["supply_id"])["response"]
    whole, cents = divmod(live["supply_sum"], 100)
    assert single["supply_sum"] == f"{whole}.{cents:02d}"
    assert single["ingredients"] and "in_inventory" in single
    deleted = next(s for s in every if s["delete"])
    assert api(emulator, "storage.getSupply", supply_id=deleted["supply_id"])["error"]["code"] == 32


def test_a_month_before_the_31st_is_the_end_of_the_shorter_month():
    assert _month_before(date(2026, 3, 31)) == date(2026, 2, 28)
    assert _month_before(date(2026, 1, 15)) == date(2025, 12, 15)
