"""Delete finished Dagster runs, and their event logs, created more than N days ago.

Dagster's open-source instance keeps every run and every event of it for ever (it prunes only
sensor and schedule ticks, ``retention:`` in dagster.yaml), and the event log is what grows:
see docs/deploy.md, "Retention", for the measured growth. Run this once a day against the
instance (``DAGSTER_HOME``), for example:

    DAGSTER_HOME=/opt/dagster/dagster_home python deploy/prune_runs.py 30

Runs still queued or in progress are never touched. A deleted run takes its materializations
with it: an asset's history in the UI then starts at the cut-off (the warehouse's own
``sync_status`` keeps the last syncs whatever Dagster keeps).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import dagster as dg

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def prune(instance: dg.DagsterInstance, before: datetime, batch: int = 500) -> int:
    """Delete the finished runs created before ``before``, oldest first; returns how many."""
    deleted = 0
    while True:
        records = instance.get_run_records(
            dg.RunsFilter(statuses=FINISHED, created_before=before), limit=batch, ascending=True
        )
        if not records:
            return deleted
        for record in records:
            instance.delete_run(record.dagster_run.run_id)
        deleted += len(records)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: prune_runs.py DAYS  (finished runs created over DAYS days ago are deleted)")
        return 2
    try:
        days = float(argv[0])
    except ValueError:
        print(f"DAYS must be a number of days, not {argv[0]!r}")
        return 2
    if days < 0:
        print("DAYS must not be negative")
        return 2
    before = datetime.now(UTC) - timedelta(days=days)
    with dg.DagsterInstance.get() as instance:
        count = prune(instance, before)
    print(f"deleted {count} finished runs created before {before:%Y-%m-%d %H:%M:%S} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
