"""poster-pipeline: Poster POS back-office data kept fresh in PostgreSQL, run by Dagster."""

__version__ = "0.1.0"
