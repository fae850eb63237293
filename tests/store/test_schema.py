"""The schema at start-up, on SQLite and PostgreSQL: a database at the newest revision is left alone
without importing Alembic, one behind is migrated, and models.py describes exactly what the
migrations build."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from migrating import alembic_config
from passgate.store.database import Database
from passgate.store.migrations import head_revision
from passgate.store.models import metadata


@pytest.fixture
def database(empty_url: str) -> Iterator[Database]:
    db = Database(empty_url)
    yield db
    db.dispose()


def _version(db: Database) -> str:
    with db.engine.connect() as connection:
        return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def test_head_read_from_the_scripts_is_alembics() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_a_database_at_head_is_left_alone_without_alembic(database: Database) -> None:
    assert not database.at_head()  # no alembic_version table yet
    database.migrate()
    assert database.at_head()
    check = (
        "import sys; from passgate.store.database import Database; db = Database(sys.argv[1]); "
        "db.migrate(); assert db.at_head(); assert 'alembic' not in sys.modules, 'alembic imported'"
    )
    subprocess.run([sys.executable, "-c", check, database.url], check=True, timeout=60)


def test_a_database_behind_is_migrated(database: Database) -> None:
    with database.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    assert not database.at_head()
    database.migrate()
    assert _version(database) == head_revision()
    assert "passkey_tenants" in inspect(database.engine).get_table_names()  # 0006's table


def test_serve_migrates_in_a_child_process(database: Database) -> None:
    check = (
        "import sys; from passgate.store.database import Database; db = Database(sys.argv[1]); "
        "db.migrate_apart(); assert db.at_head(); assert 'alembic' not in sys.modules, 'alembic imported'"
    )
    subprocess.run([sys.executable, "-c", check, database.url], check=True, timeout=60)
    assert _version(database) == head_revision()


def test_a_failed_migration_in_the_child_is_an_error(database: Database) -> None:
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0099')"))
    check = (  # in a process of its own: no test threads around the fork
        "import sys; from passgate.errors import ConfigError; from passgate.store.database import Database\n"
        "try:\n    Database(sys.argv[1]).migrate_apart()\n"
        "except ConfigError as exc:\n    print(exc.message)"
    )
    done = subprocess.run(
        [sys.executable, "-c", check, database.url], capture_output=True, text=True, timeout=60
    )
    # Alembic knows no revision 0099: the child fails with its traceback, the parent says so.
    assert "Migrating the database" in done.stdout
    assert "0099" in done.stderr


def test_an_unknown_revision_is_not_taken_for_head(database: Database) -> None:
    database.migrate()
    with database.engine.begin() as connection:
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0099')"))
    assert not database.at_head()  # two rows: Alembic decides (and refuses)


def test_models_describe_what_the_migrations_build(database: Database) -> None:
    database.migrate()
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
