"""`scs db upgrade`: bring the database schema to the newest migration."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str, target_metadata: MetaData | None = None) -> Config:
    """The migrations' configuration. `target_metadata` matters only to autogenerate a revision
    (`command.revision(config, autogenerate=True)`): pass every service's tables,
    `scs_router.schema.all_tables()`; shared cannot import the services to collect them."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if target_metadata is not None:
        config.attributes["target_metadata"] = target_metadata
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)
