"""A warm parent for the tests' `localvalue` commands: each command runs in a child forked from it.

Python's start-up and the third-party libraries every command imports (SQLAlchemy, advanced-alchemy, Litestar,
about 1.5 s of CPU a command) are paid once per test worker instead of once per command. Nothing of the
product is imported here, so a child starts as a fresh `localvalue` does: it imports the product's own modules (and
registers their listeners) as the command needs them, reads its environment and runs `procurement.cli.main`, and
exits through the interpreter's own shutdown (threads joined, atexit run), with its own stdout, stderr and exit code.

Protocol, one JSON line each way per child: the test sends {"program", "steps", "env", "cwd", "stdout", "stderr"}
(steps: each command's arguments, run in turn as `tests.support.cli.localvalue_steps` describes; the last two name
files for the child's output); this parent answers {"pid"} once forked, then {"status"} once the child has gone.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

# What every command would import anyway; none of it reads the environment or starts a thread when imported, with
# OpenBLAS (under numpy) kept to one thread here. Not polars: it starts threads (jemalloc's, its spill cleaner) as it
# loads, so each child loads its own.
import advanced_alchemy.extensions.litestar  # noqa: F401
import aiosqlite  # noqa: F401
import asyncpg  # noqa: F401
import click  # noqa: F401
import httpx  # noqa: F401
import litestar
import litestar.cli.main  # noqa: F401
import msgspec  # noqa: F401
import numpy  # noqa: F401
import rich_click  # noqa: F401
import sqlalchemy.ext.asyncio
import sqlalchemy.orm  # noqa: F401


def _threads() -> int:
    return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else threading.active_count()


def _answer(message: dict[str, int]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve() -> dict[str, Any] | None:
    """Forks a child per request; returns the request in the child, None in this parent when the test goes."""
    # A fork copies only the thread that makes it: with another running, a lock it held would stay held for ever.
    if _threads() != 1:
        _answer({"refused": _threads()})
        return None
    _answer({"ready": os.getpid()})
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            return dict(request)
        _answer({"pid": pid})
        _, status = os.waitpid(pid, 0)
        _answer({"status": os.waitstatus_to_exitcode(status)})
    return None


def become(request: dict[str, Any]) -> None:
    """In the child: the command's own directory, environment and output, as a new process has them."""
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update(dict(request["env"]))
    for fd, path, flags in (
        (0, os.devnull, os.O_RDONLY),
        (1, str(request["stdout"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, str(request["stderr"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    program = str(request["program"])
    sys.argv = [program, *request["steps"][-1]]
    sys.path[0] = os.path.dirname(program)  # where a console script's Python starts looking


def run_steps(steps: list[list[str]]) -> None:
    """``localvalue`` once per step, each through the command's own entry point, as typed; the first that fails
    stops the rest. Exits as the last step does."""
    from procurement.cli import main

    *first, last = steps
    for args in first:
        try:
            main(args)
        except SystemExit as exit:
            if exit.code not in (0, None):
                print(f"localvalue {' '.join(args)} failed ({exit.code})", file=sys.stderr)
                raise
    main(last)


if __name__ == "__main__":
    request = serve()
    if request is None:
        sys.exit(0)
    become(request)
    run_steps(request["steps"])
