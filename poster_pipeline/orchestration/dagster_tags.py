"""The names of the run tags Dagster itself writes and that this code location reads.

Dagster shows them on every run in its UI (*Runs → Tags*) and documents ``dagster/partition``
and ``dagster/priority``; it keeps the constants in a private module, so they are named here
once instead of importing ``dagster._core``. ``tests/orchestration/test_dagster_tags.py``
checks them against the runs Dagster launches, so an upgrade that renames one fails there.
"""

from __future__ import annotations

__all__ = ["PARTITION_TAG", "PRIORITY_TAG", "RUN_KEY_TAG", "SCHEDULE_NAME_TAG"]

PARTITION_TAG = "dagster/partition"  # the partition (account) a run materializes
PRIORITY_TAG = "dagster/priority"  # the queued run coordinator dequeues higher values first
RUN_KEY_TAG = "dagster/run_key"  # the run key of the sensor or schedule request
SCHEDULE_NAME_TAG = "dagster/schedule_name"  # the schedule that launched the run
