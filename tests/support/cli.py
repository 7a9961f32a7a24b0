"""Run the real `localvalue` command in a subprocess against a given database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.paths import REPO_DIR

LOCALVALUE = str(Path(sys.executable).parent / "localvalue")


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITESTAR")}
    env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


def localvalue(
    *args: str, database_url: str, timeout: float = 300, check: bool = True, **extra: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [LOCALVALUE, *args],
        env=cli_env(database_url, **extra),
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"localvalue {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


# Several commands in one process: each through the command's own entry point (``procurement.cli.main``), as typed,
# each running, printing and failing as it does alone; only Python's start-up (about 2 s a command) is shared.
_STEPS = """
import json, sys
from procurement.cli import main
for args in json.loads(sys.argv[1]):
    try:
        main(args)
    except SystemExit as exit:
        if exit.code not in (0, None):
            print(f"localvalue {' '.join(args)} failed ({exit.code})", file=sys.stderr)
            raise
"""


def localvalue_steps(
    *steps: tuple[str, ...], database_url: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``localvalue`` once per step, in order, in one process (not for `database` commands, which change the
    framework's groups as they load); the first that fails stops the rest and fails the test."""
    assert not any(step[0] in ("database", "db") for step in steps)
    result = subprocess.run(
        [sys.executable, "-c", _STEPS, json.dumps(steps)],
        env=cli_env(database_url),
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(f"localvalue steps failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def wait_for_http(url: str, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s: {last}")
