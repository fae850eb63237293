"""Prepared statements for the hot paths: a Core statement, compiled by SQLAlchemy once per driver
(their placeholders differ), run on the DBAPI connection of the caller's unit of work: sqlite3's,
psycopg's, or SQLAlchemy's asyncio adaptation of asyncpg's, whose calls await their round trips
inside the unit of work's greenlet.

SQLAlchemy still writes the SQL (the dialect's own quoting, placeholders and `RETURNING`) and converts
the values with the column types' own bind and result processors (JSON, booleans on SQLite); what the
hot paths skip is its per-execution work: about 25 µs a statement against about 3 µs through `sqlite3`
itself (docs/performance.md, "Where the time goes"). The statement runs inside the unit of work's
transaction, on the same connection. Driver errors are raised as SQLAlchemy's `DBAPIError`
family (`IntegrityError`, `OperationalError`…), so callers and `store/database.py` see what they would
see from `Connection.execute`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.expression import Executable

Processor = Callable[[Any], Any]
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Form:
    """The statement as one dialect runs it."""

    sql: str
    names: tuple[str, ...] | None  # positional parameter order (qmark), None for named (pyformat)
    defaults: dict[str, Any]  # values compiled into the statement (`.values(flag=True)`)
    binds: dict[str, Processor]
    error: type[Exception]  # the driver's base error class


class Prepared:
    """A statement run through the driver. `columns` names the result columns, in order."""

    def __init__(self, statement: Executable):
        self.statement = statement
        exported = getattr(statement, "exported_columns", ())
        self.columns: tuple[str, ...] = tuple(column.key for column in exported)
        self._forms: dict[str, _Form] = {}
        self._results: dict[str, tuple[Processor | None, ...]] = {}  # per driver, from the first cursor

    def _form(self, dialect: Dialect) -> _Form:
        form = self._forms.get(dialect.driver)
        if form is None:
            form = self._forms[dialect.driver] = _compile(self.statement, dialect)
        return form

    def execute(self, connection: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """Run it; the driver's cursor (`rowcount`, rows of raw driver values)."""
        form = self._form(connection.dialect)
        return _run(connection, form.sql, _bind(form, params or {}), form.error)

    def rowcount(self, connection: Connection, params: Mapping[str, Any] | None = None) -> int:
        count: int = self.execute(connection, params).rowcount
        return count

    def first(self, connection: Connection, params: Mapping[str, Any] | None = None) -> Row | None:
        """The first row, its values converted by the columns' types; None when there is none."""
        cursor = self.execute(connection, params)
        row = cursor.fetchone()
        return None if row is None else _convert(self._processors(connection.dialect, cursor), row)

    def all(self, connection: Connection, params: Mapping[str, Any] | None = None) -> list[Row]:
        cursor = self.execute(connection, params)
        processors = self._processors(connection.dialect, cursor)
        return [_convert(processors, row) for row in cursor.fetchall()]

    def _processors(self, dialect: Dialect, cursor: Any) -> tuple[Processor | None, ...]:
        """The result columns' processors, chosen once per driver with its type codes."""
        processors = self._results.get(dialect.driver)
        if processors is None:
            exported = getattr(self.statement, "exported_columns", ())
            processors = self._results[dialect.driver] = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, described[1])
                for column, described in zip(exported, cursor.description, strict=True)
            )
        return processors


def _convert(processors: tuple[Processor | None, ...], row: Sequence[Any]) -> Row:
    if not any(processors):
        return tuple(row)
    return tuple(
        value if process is None or value is None else process(value)
        for process, value in zip(processors, row, strict=True)
    )


@contextmanager
def savepoint(connection: Connection) -> Iterator[None]:
    """A savepoint around a few prepared statements: an error inside rolls back to it (and is raised),
    leaving the rest of the unit of work's transaction as it was. The driver's own `SAVEPOINT`, without
    SQLAlchemy's bookkeeping (`Connection.begin_nested` costs ~20 µs, this ~2 µs)."""
    execute_sql(connection, "SAVEPOINT passgate")
    try:
        yield
    except BaseException:
        execute_sql(connection, "ROLLBACK TO SAVEPOINT passgate")
        execute_sql(connection, "RELEASE SAVEPOINT passgate")
        raise
    execute_sql(connection, "RELEASE SAVEPOINT passgate")


def execute_sql(connection: Connection, sql: str) -> None:
    """A statement without parameters or rows (`SAVEPOINT`…) on the unit of work's DBAPI connection."""
    _run(connection, sql, (), connection.dialect.loaded_dbapi.Error)


def _run(connection: Connection, sql: str, values: Any, error: type[Exception]) -> Any:
    """`sql` on the unit of work's DBAPI connection; its cursor. The driver's errors are raised as
    SQLAlchemy's (`IntegrityError`, `OperationalError`…), as `Connection.execute` would raise them."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, values)
    except error as exc:
        raise DBAPIError.instance(sql, values, exc, error) from exc
    return cursor


class NewRow(Prepared):
    """`INSERT … ON CONFLICT DO NOTHING RETURNING <primary key>` into `table`: a row that would break a
    unique key is not inserted, without an error. A failed `INSERT` aborts a PostgreSQL transaction, so a
    caller that goes on needed a savepoint around it (two round trips); this needs none. SQLite (3.35 and
    later) and PostgreSQL share the syntax, and SQLAlchemy's PostgreSQL construct compiles for both
    (https://www.sqlite.org/lang_upsert.html, https://www.postgresql.org/docs/current/sql-insert.html)."""

    def __init__(self, table: Table):
        super().__init__(upsert(table).on_conflict_do_nothing().returning(*table.primary_key.columns))

    def insert(self, connection: Connection, params: Mapping[str, Any]) -> bool:
        """Whether the row was inserted. False when a unique key holds it already (the transaction goes on
        as it was), or when another constraint refused it: a foreign key whose row was deleted meanwhile,
        an error that aborts a PostgreSQL transaction, after which the caller must not go on."""
        try:
            return self.first(connection, params) is not None
        except IntegrityError:
            return False


def in_order(table: Any, names: Sequence[str], prefix: str = "") -> list[Any]:
    """`table`'s columns named `names`, in that order (a record's fields), labelled `prefix + name`."""
    return [table.c[name].label(prefix + name) if prefix else table.c[name] for name in names]


def _compile(statement: Executable, dialect: Dialect) -> _Form:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    binds: dict[str, Processor] = {}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            binds[name] = process
    positional = dialect.paramstyle in ("qmark", "numeric", "numeric_dollar", "format")
    names = tuple(compiled.positiontup or ()) if positional else None
    dbapi = dialect.loaded_dbapi
    return _Form(compiled.string, names, compiled.params, binds, dbapi.Error)


def _bind(form: _Form, params: Mapping[str, Any]) -> Any:
    values = {**form.defaults, **params} if form.defaults else dict(params)
    for name, process in form.binds.items():
        value = values.get(name)
        if value is not None:
            values[name] = process(value)
    if form.names is None:
        return values
    return tuple(values[name] for name in form.names)
