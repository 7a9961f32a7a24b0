"""Run the real `localvalue` command in a subprocess against a given database."""

from __future__ import annotations

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
