"""Bulk SQL: tuple inserts with bind processors looked up once (COPY on PostgreSQL), id allocation, updates
by id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    String,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    schema,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_IN_CHUNK = 500  # IN-list size: well under SQLite's bound-parameter limit
WIDE = 5000  # values per ``among`` (one parameter whatever the count)
# Below this many rows a COPY's extra round trips (column types, then the copy itself) cost more than they save.
_COPY_FROM = 16
# session.info key: the transaction that ``plans_cached`` was said of.
_PLANS_CACHED = "bulk.plans_cached"


def plans_cached(session: AsyncSession) -> None:
    """Say that the session's transaction runs with plan_cache_mode 'auto', as COPY's foreign-key checks need (see
    ``_copy``): its COPYs then go without switching to it and back, two round trips each."""
    session.info[_PLANS_CACHED] = session.sync_session.get_transaction()


def _plans_known_cached(session: AsyncSession) -> bool:
    transaction = session.sync_session.get_transaction()
    return transaction is not None and session.info.get(_PLANS_CACHED) is transaction


async def bulk_insert(session: AsyncSession, model: type[Any], rows: Sequence[Mapping[str, Any]]) -> None:
    """One executemany INSERT of rows that all carry the same keys, sent to the driver as plain tuples.

    Core's executemany builds, keys and type-processes a parameter dict per row (about a fifth of an import's
    time); here each column's bind processor is looked up once per call. Python-side column defaults are
    filled in the same way; ids the rows do not carry come from the database.

    On PostgreSQL the rows go in with COPY (binary, through asyncpg on the session's own connection and
    transaction): the same rows, constraints and triggers as the INSERT, at a fraction of the server's work.
    """
    if not rows:
        return
    table = _table(model)
    connection = await session.connection()
    dialect = connection.dialect
    names = list(rows[0])
    defaults = {
        c.name: c.default.arg if c.default.is_scalar else c.default.arg(None)  # type: ignore[attr-defined]
        for c in table.columns
        if c.name not in names and c.default is not None and not isinstance(c.default, schema.Sequence)
    }
    columns = [*names, *defaults]
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
    copy = dialect.name == "postgresql" and len(rows) >= _COPY_FROM
    marks = [f"${i}" for i in range(1, len(columns) + 1)] if dialect.name == "postgresql" else ["?"] * len(columns)
    quote = dialect.identifier_preparer.quote
    into = f"{quote(table.name)} ({', '.join(quote(c) for c in columns)})"
    statement = f"INSERT INTO {into} VALUES ({', '.join(marks)})"  # noqa: S608
    # Defaults are the same for every row (timestamps: the batch's time), so they are processed once.
    fixed = [
        value if process is None else process(value)
        for value, process in zip(defaults.values(), processors[len(names) :], strict=True)
    ]
    processed = [(i, process) for i, process in enumerate(processors[: len(names)]) if process is not None]
    tail = tuple(fixed)
    get = itemgetter(*names)
    if len(names) == 1:
        picked: list[tuple[Any, ...]] = [(get(row),) for row in rows]
    else:
        picked = list(map(get, rows))
    values: list[tuple[Any, ...]]
    if processed:
        values = []
        for item in map(list, picked):
            for i, process in processed:
                item[i] = process(item[i])
            values.append((*item, *tail))
    else:
        values = [(*item, *tail) for item in picked] if tail else picked
    if copy:
        await _copy(connection, table, columns, values, statement, switch=not _plans_known_cached(session))
    else:
        await connection.exec_driver_sql(statement, values)


async def bulk_insert_watched(session: AsyncSession, model: type[Any], rows: Sequence[Mapping[str, Any]]) -> None:
    """``bulk_insert`` into a table whose writes move a token (0010_lines_token, 0011_tiers_token). On PostgreSQL the
    token's row triggers queue every row of the transaction's first write to such a table for a call at commit, and
    one more call each at its end; a first write of one row marks the transaction, and the rest queue nothing."""
    first = 1 if session.get_bind().dialect.name == "postgresql" else 0
    await bulk_insert(session, model, rows[:first])
    await bulk_insert(session, model, rows[first:])


async def _copy(
    connection: AsyncConnection,
    table: Table,
    columns: list[str],
    values: list[tuple[Any, ...]],
    statement: str,
    *,
    switch: bool,
) -> None:
    """COPY the rows in, inside the transaction the session already has open; a constraint it breaks raises the
    same IntegrityError as the INSERT would (imports retry a batch on it).

    Each row's foreign-key checks run as the server's cached plans. Under plan_cache_mode=force_custom_plan (an
    import's own reads need it) every check would be planned again, row by row: most of a COPY's cost. So with
    ``switch`` the COPY runs with the default mode, and the caller's mode is put back after it (a failed COPY ends
    the transaction, and with it both settings); without it the caller has said the mode is right (``plans_cached``).
    """
    import asyncpg

    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        # The adapter opens its transaction lazily, on the first statement; COPY must not run outside it.
        await connection.exec_driver_sql("SELECT 1")
    mode = "auto"
    if switch:
        # One round trip: the subquery reads the caller's mode before the outer select sets it.
        mode = await driver.fetchval(
            "SELECT q.mode, set_config('plan_cache_mode', 'auto', true) "
            "FROM (SELECT current_setting('plan_cache_mode') AS mode OFFSET 0) AS q"
        )
    try:
        await driver.copy_records_to_table(table.name, records=values, columns=columns, schema_name=table.schema)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(statement, None, exc) from exc
    if mode != "auto":
        await driver.execute("SELECT set_config('plan_cache_mode', $1, true)", mode)


class WriteBehind:
    """A transaction's writes, run in order on its session. With ``behind`` (PostgreSQL) each is sent in the background
    and the caller goes on computing, and reading what earlier transactions committed on another connection, while the
    server works; ``flush`` waits for them all and raises the first error. Without it each is awaited at once.

    A write the caller adds must not depend on rows it later changes (they are read when the write runs).
    ``defer``: a write held back (with ``behind``) until ``run_deferred``, for a stretch where the connection would
    otherwise be idle."""

    def __init__(self, session: AsyncSession, *, behind: bool) -> None:
        self.session = session
        self.behind = behind
        self._last: asyncio.Future[None] | None = None
        self._deferred: list[Callable[[AsyncSession], Awaitable[object]]] = []

    async def defer(self, write: Callable[[AsyncSession], Awaitable[object]]) -> None:
        if not self.behind:
            await write(self.session)
            return
        self._deferred.append(write)

    async def run_deferred(self) -> None:
        """The held-back writes, in order, once those added are done."""
        await self.flush()
        deferred, self._deferred = self._deferred, []
        for write in deferred:
            await write(self.session)

    async def add(self, write: Callable[[AsyncSession], Awaitable[object]]) -> None:
        if not self.behind:
            await write(self.session)
            return
        previous = self._last

        async def run() -> None:
            if previous is not None:
                await previous  # its error stops the writes after it
            await write(self.session)

        self._last = asyncio.ensure_future(run())

    async def flush(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            await last

    async def settle(self) -> None:
        """Wait for the writes without raising (the transaction is being abandoned): the connection must be idle
        before it rolls back."""
        last, self._last = self._last, None
        if last is not None:
            await asyncio.wait([last])
            if not last.cancelled():
                last.exception()  # retrieved: the batch's own error is the one raised


def _table(model: type[Any]) -> Table:
    """The Core table: executemany through Core skips the ORM's per-row bookkeeping (several times faster)."""
    table: Table = model.__table__
    return table


async def update_by_id(session: AsyncSession, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    """One executemany UPDATE ... WHERE id = ? for rows that all carry the same keys."""
    table = _table(model)
    keys = [k for k in rows[0] if k != "id"]
    statement = update(table).where(table.c.id == bindparam("row_id")).values({k: bindparam(f"v_{k}") for k in keys})
    await session.execute(statement, [{"row_id": r["id"], **{f"v_{k}": r[k] for k in keys}} for r in rows])


async def allocate_ids(session: AsyncSession, model: type[Any], count: int) -> list[int]:
    """Ids for a bulk insert, so one executemany needs no RETURNING (SQLite would send it row by row).

    PostgreSQL takes them from the table's sequence. SQLite continues after the largest id: safe because
    every batch writes raw releases first, so this transaction already holds SQLite's single write lock.
    """
    table = _table(model)
    if session.get_bind().dialect.name == "postgresql":
        # The sequence is looked up once (materialised), not once per id as a call in nextval's argument would be.
        rows = await session.execute(
            text(
                "WITH s AS MATERIALIZED (SELECT CAST(pg_get_serial_sequence(:table, 'id') AS regclass) AS seq) "
                "SELECT nextval(s.seq) FROM s, generate_series(1, :count)"
            ),
            {"table": table.name, "count": count},
        )
        return [int(r[0]) for r in rows]
    start = (await session.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()
    return list(range(int(start) + 1, int(start) + count + 1))


def among(dialect: str, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values`` as ONE bound parameter: an array on PostgreSQL (``= ANY``), a JSON array on SQLite
    (``json_each``). An IN list is rendered with a placeholder per value on every call (and, its text differing
    with the count, prepared again by the server); this statement is compiled and prepared once."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    items: Select[Any] = select(literal_column("value")).select_from(
        func.json_each(bindparam(None, json.dumps(list(values)), String))
    )
    return column.in_(items)  # type: ignore[no-any-return]


def listed(dialect: str, values: Sequence[Any], type_: Any) -> Any:
    """``values`` as a table of one column, ``value``, bound as ONE parameter (as in ``among``): ``unnest`` of an array
    on PostgreSQL, ``json_each`` of a JSON array on SQLite. For a lookup per value (a correlated subquery on an index)
    where ``among`` would make one scan of every row that matches any value."""
    if dialect == "postgresql":
        return func.unnest(bindparam(None, list(values), type_=ARRAY(type_))).table_valued("value").render_derived()
    return func.json_each(bindparam(None, json.dumps(list(values)), String)).table_valued("value")


def chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def cut(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"
