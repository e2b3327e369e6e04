"""The run tag names in ``orchestration/dagster_tags.py`` are the ones Dagster writes.

The code location reads them from runs (the nightly schedule's launched runs, the sync
request sensor's run keys), so a Dagster upgrade that renamed one would silently break the
nightly rule's "once per local date" and the request sensor's "launched" marking.
"""

from __future__ import annotations

import dagster as dg

from poster_pipeline.orchestration import tags as dagster_tags
from poster_pipeline.orchestration.schedules import nightly_full_sync_schedule


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["api-demo"]))
def probe() -> None:
    """A partitioned asset, like the entity assets."""


def test_a_materialized_partition_carries_the_partition_tag():
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([probe], partition_key="api-demo", instance=instance)
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        assert run.tags[dagster_tags.PARTITION_TAG] == "api-demo"


def test_a_scheduled_run_carries_the_schedule_name_tag():
    schedule = nightly_full_sync_schedule()
    tags = dg.DagsterRun.tags_for_schedule(schedule)
    assert tags == {dagster_tags.SCHEDULE_NAME_TAG: "nightly_full_sync"}


def test_the_names_are_dagsters_own():
    """The canary for upgrades: Dagster keeps these names in a private module, which only this
    test imports."""
    from dagster._core.storage import tags as dagster_own

    assert dagster_tags.PARTITION_TAG == dagster_own.PARTITION_NAME_TAG
    assert dagster_tags.PRIORITY_TAG == dagster_own.PRIORITY_TAG
    assert dagster_tags.RUN_KEY_TAG == dagster_own.RUN_KEY_TAG
    assert dagster_tags.SCHEDULE_NAME_TAG == dagster_own.SCHEDULE_NAME_TAG
