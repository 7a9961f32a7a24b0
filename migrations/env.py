"""Async Alembic environment (after advanced-alchemy's template).

Works both under `localvalue database ...` (advanced-alchemy passes the engine on the config) and under a
plain Alembic Config built by tests (DATABASE_URL or `sqlalchemy.url`). The migrations of one command run in
one transaction on both databases, so a failed or refused migration leaves nothing half-applied.
"""

import asyncio
from typing import Any

from advanced_alchemy.base import metadata_registry
from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import procurement.models  # noqa: F401  (registers every table on the metadata)

config: Any = context.config
target_metadata = metadata_registry.get(None)


def _url() -> str:
    url = getattr(config, "db_url", None) or config.get_main_option("sqlalchemy.url")
    if not url:
        from procurement.settings import get_settings

        url = get_settings().database_url
    return str(url)


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=True,
        user_module_prefix="sa.",
        version_table=getattr(config, "version_table_name", None) or "alembic_version",
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table (copy, DROP, rename); with foreign keys on, dropping a table that others
        # reference fails once there is data (or, worse, cascades). SQLite only honours this pragma outside a
        # transaction, so it is set first, and the keys are checked before the migration's transaction ends.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        # SQLite can roll DDL back (Alembic assumes not, and would commit after each migration).
        _configure(connection=connection, **({"transactional_ddl": True} if sqlite else {}))
        with context.begin_transaction():
            if sqlite:
                # The sqlite3 driver opens no transaction before DDL; without one, a migration that fails half-way
                # (or a downgrade that refuses) would leave its first steps applied.
                connection.exec_driver_sql("BEGIN")
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    msg = f"the migration left rows whose foreign keys point nowhere: {broken[:5]}"
                    raise RuntimeError(msg)
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


async def run_migrations_online() -> None:
    engine: AsyncEngine | None = getattr(config, "engine", None)
    owned = engine is None
    if engine is None:
        engine = create_async_engine(_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    if owned:
        await engine.dispose()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_migrations_online())
        return
    msg = "run Alembic from a thread without an event loop, or pass a connection in config.attributes"
    raise RuntimeError(msg)


if context.is_offline_mode():
    run_migrations_offline()
else:
    _run_online()
