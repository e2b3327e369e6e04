"""The Dagster side: resources, assets, schedules and automation of poster-pipeline."""
