"""The Dagster code location: assembles what the other modules define, and nothing else."""

from __future__ import annotations

import dagster as dg

from poster_pipeline.orchestration.resources import PosterApiResource
from poster_pipeline.settings import Settings

settings = Settings.from_env()

defs = dg.Definitions(
    resources={"poster_api": PosterApiResource(base_url=settings.api_url)},
)
