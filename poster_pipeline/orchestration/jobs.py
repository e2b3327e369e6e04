"""Jobs: named selections that schedules, sensors and the CLI launch."""

import dagster as dg

from poster_pipeline.orchestration.tags import SYNC_TAG
from poster_pipeline.warehouse.status import SyncKind

full_sync_job = dg.define_asset_job(
    name="full_sync",
    selection=dg.AssetSelection.groups("poster"),
    tags={SYNC_TAG: SyncKind.FULL.value},
    description="A full sync of every Poster entity for one account (one partition).",
)
