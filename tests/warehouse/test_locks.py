"""The sync lock serialises syncs of one (account, entity) across threads and processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from poster_pipeline.warehouse.locks import SyncLockBusy, sync_lock
from tests.processes import wait_until


def test_a_second_holder_waits_for_the_first(engine, account):
    order: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with sync_lock(engine, account, "ingredients"):
            first_holds.set()
            time.sleep(0.3)  # holding the lock while the other thread asks for it
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert first_holds.wait(5)
    with sync_lock(engine, account, "ingredients"):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]


def test_other_pairs_are_not_held_up(engine, account):
    with (
        sync_lock(engine, account, "ingredients"),
        sync_lock(engine, account, "products", wait=0.1),
        sync_lock(engine, f"{account}-other", "ingredients", wait=0.1),
    ):
        pass


def test_a_bounded_wait_gives_up_with_a_clear_error(engine, account):
    with sync_lock(engine, account, "ingredients"):
        started = time.monotonic()
        with (
            pytest.raises(SyncLockBusy, match=f"ingredients for account {account}"),
            sync_lock(engine, account, "ingredients", wait=0.2),
        ):
            pass
        assert time.monotonic() - started < 5
    with sync_lock(engine, account, "ingredients", wait=0.2):
        pass  # released on exit: free again


def test_the_lock_yields_a_connection_that_can_write(engine, account):
    with sync_lock(engine, account, "ingredients") as conn, conn.begin():
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_a_killed_holder_frees_the_lock(engine, account):
    url = engine.url.render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from poster_pipeline.warehouse.engine import create_warehouse_engine\n"
            "from poster_pipeline.warehouse.locks import sync_lock\n"
            f"with sync_lock(create_warehouse_engine({url!r}), {account!r}, 'ingredients'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(SyncLockBusy),
            sync_lock(engine, account, "ingredients", wait=0.2),
        ):
            pass
        holder.kill()
        holder.wait(10)

        def free() -> bool:
            try:
                with sync_lock(engine, account, "ingredients", wait=0.2):
                    return True
            except SyncLockBusy:
                return False

        wait_until(free, timeout=30, what="the killed holder's lock to be freed")
    finally:
        holder.kill()
