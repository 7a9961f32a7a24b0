"""What every CLI command shares: running a coroutine with the engine disposed after, SIGTERM as Ctrl-C, and the
one mapping of failures to a single plain line (never a traceback)."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from procurement.errors import DomainError

UPGRADE = "localvalue database upgrade"
# Words by which SQLite and PostgreSQL say a table or column is not there: the schema is missing or behind.
_NOT_MIGRATED = ("no such table", "no such column", "does not exist", "undefinedtable", "undefinedcolumn")

T = TypeVar("T")


def run_async(fn: Callable[[], Awaitable[T]], *, interrupted: str | None = None) -> T:
    """Run ``fn`` and dispose the engine after; a domain or database error becomes one line on stderr (exit 1).

    SIGTERM cancels it like Ctrl-C, so ``fn`` can record that it
    stopped; with ``interrupted`` given, that message is printed and the exit code is 130 instead of a traceback."""

    async def main() -> T:
        from procurement.db import get_alchemy_config

        task = asyncio.current_task()
        # Windows event loops have no signal handlers and only the main thread may set one; there, only
        # Ctrl-C interrupts.
        if task is not None and sys.platform != "win32" and threading.current_thread() is threading.main_thread():
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await fn()
        finally:
            engine = get_alchemy_config().engine_instance
            if engine is not None:
                await engine.dispose()

    try:
        return asyncio.run(main())
    except (click.ClickException, click.exceptions.Abort, click.exceptions.Exit):
        raise
    except DomainError as exc:
        fail(exc.detail)
    except DBAPIError as exc:
        fail(database_problem(exc.orig if exc.orig is not None else exc))
    except ConnectionError as exc:
        fail(f"cannot reach the database at {_where()}: {exc}. Check DATABASE_URL.")
    except Exception as exc:
        # The driver's own errors (asyncpg raises a missing database unwrapped), then anything else: one line.
        if type(exc).__module__.split(".")[0] in {"asyncpg", "sqlite3", "aiosqlite"}:
            fail(database_problem(exc))
        from procurement.settings import get_settings

        if get_settings().debug:
            raise
        fail(f"unexpected {type(exc).__name__}: {exc} (set LOCALVALUE_DEBUG=1 to see where)")
    except (asyncio.CancelledError, KeyboardInterrupt):
        if interrupted is None:
            raise
        click.echo(interrupted, err=True)
        sys.exit(130)


def fail(message: str) -> NoReturn:
    """One plain line on stderr and exit code 1 (the framework's boxed error format spans several lines)."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def _where() -> str:
    from procurement.settings import get_settings

    return make_url(get_settings().database_url).render_as_string(hide_password=True)


def database_problem(exc: BaseException) -> str:
    """A database failure as one line saying what to do; the driver's own words only where they help."""
    text = str(exc).lower()
    name = type(exc).__name__.lower()
    if "invalidcatalogname" in name or ("database" in text and "does not exist" in text):
        return f"the database at {_where()} does not exist; create it, then run `{UPGRADE}`"
    if any(word in text or word in name for word in _NOT_MIGRATED):
        return f"the database at {_where()} is empty or not up to date; run `{UPGRADE}` first"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"the database at {_where()} refused the request ({first}); check DATABASE_URL and run `{UPGRADE}`"
