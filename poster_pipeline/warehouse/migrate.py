"""Schema migrations of the warehouse (Alembic), run by ``poster-pipeline db upgrade``."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

__all__ = ["VERSION_TABLE", "alembic_config", "downgrade", "upgrade"]

SCRIPT_LOCATION = "poster_pipeline.warehouse:migrations"
VERSION_TABLE = "poster_pipeline_migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration bound to ``engine`` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser syntax
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the warehouse schema to ``revision`` (idempotent)."""
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
