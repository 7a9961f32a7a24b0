"""What every CLI command shares: running a coroutine with the engine disposed after, SIGTERM as Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from procurement.errors import DomainError

T = TypeVar("T")


def run_async(fn: Callable[[], Awaitable[T]], *, interrupted: str | None = None) -> T:
    """Run ``fn`` and dispose the engine after; a domain error becomes one line on stderr (exit 1).

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
    except DomainError as exc:
        # Plainly, not as click's (rich-click's) boxed and wrapped error: one line a script can read.
        click.echo(f"Error: {exc.detail}", err=True)
        sys.exit(1)
    except (asyncio.CancelledError, KeyboardInterrupt):
        if interrupted is None:
            raise
        click.echo(interrupted, err=True)
        sys.exit(130)
