"""The run tags this code location writes and reads: its own, and Dagster's.

``poster/sync`` says what a run syncs: a full sync (``full``) or the webhook drain's partial
syncs (``partial``); Dagster's run queue limits full syncs by it (``dagster.yaml``).

Dagster's own tags: Dagster shows them on every run in its UI (*Runs → Tags*) and documents
``dagster/partition`` and ``dagster/priority``; it keeps the constants in a private module, so
they are named here once instead of importing ``dagster._core``.
``tests/orchestration/test_tags.py`` checks them against the runs Dagster launches, so an
upgrade that renames one fails there.
"""

from __future__ import annotations

__all__ = ["PARTITION_TAG", "PRIORITY_TAG", "RUN_KEY_TAG", "SCHEDULE_NAME_TAG", "SYNC_TAG"]

SYNC_TAG = "poster/sync"  # a SyncKind value: "full" or "partial"

PARTITION_TAG = "dagster/partition"  # the partition (account) a run materializes
PRIORITY_TAG = "dagster/priority"  # the queued run coordinator dequeues higher values first
RUN_KEY_TAG = "dagster/run_key"  # the run key of the sensor or schedule request
SCHEDULE_NAME_TAG = "dagster/schedule_name"  # the schedule that launched the run
