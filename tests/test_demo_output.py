"""``dagster dev``'s output under the demo: passed through, then held back once stopping."""

from __future__ import annotations

import os
import threading
import time

from poster_pipeline.demo_output import StoppingOutput


def test_output_is_passed_through_until_stopping_then_only_its_errors_are_counted(capfd):
    read, write = os.pipe()
    stopping = threading.Event()
    with os.fdopen(read, "rb") as stream, os.fdopen(write, "wb", buffering=0) as child:
        output = StoppingOutput(stream, stopping)
        child.write(b"Dagster UI ready\n")
        # What was written before the stop is copied before the stop is seen.
        deadline, seen = time.monotonic() + 5, ""
        while "Dagster UI ready" not in seen:
            assert time.monotonic() < deadline, "the line before the stop was not passed through"
            time.sleep(0.02)
            seen += capfd.readouterr().out
        stopping.set()
        child.write(b"- dagster.daemon.SensorDaemon - ERROR - Sensor tick caught an error\n")
        child.write(b"Traceback (most recent call last):\n")
        child.write(b"- dagster.daemon.SensorDaemon - ERROR - Sensor daemon caught an error\n")
        child.close()
        output.close()
    assert "Traceback" not in capfd.readouterr().out
    assert output.held_back_errors == 2
    assert output.note() is not None and "-v demo" in (output.note() or "")


def test_nothing_held_back_says_nothing():
    read, write = os.pipe()
    os.close(write)
    with os.fdopen(read, "rb") as stream:
        output = StoppingOutput(stream, threading.Event())
        output.close()
    assert output.note() is None
