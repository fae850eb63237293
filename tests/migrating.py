"""Running Alembic itself in tests: a migration test starts from an older revision, not from the schema
`Database.migrate` would bring (importable by name; `conftest` is not)."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config

from passgate.store.database import Database


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("passgate.store") / "migrations"))
    return config


def alembic(database: Database, verb: str, revision: str) -> None:
    """`upgrade` or `downgrade` `database` to `revision`, in one transaction."""
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, revision)
