"""Run the real `localvalue` command in a subprocess against a given database."""

from __future__ import annotations

import atexit
import json
import locale
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
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


class _WarmParent:
    """The test worker's end of ``warm_parent.py``: one command at a time, each in a child forked from it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.refused = False
        self.folder = tempfile.mkdtemp(prefix="localvalue-cli-")

    def _started(self) -> subprocess.Popen[bytes] | None:
        if self.process is None and not self.refused:
            process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("warm_parent.py"))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=REPO_DIR,
                env=cli_env("", OPENBLAS_NUM_THREADS="1"),
                bufsize=0,
            )
            self.process = process
            if "ready" in self._message(None):
                atexit.register(self.stop)
            else:  # it could not fork safely here: every command starts its own process
                process.wait()
                self.process, self.refused = None, True
        return self.process

    def _message(self, timeout: float | None) -> dict[str, int]:
        """The parent's next line, read a byte at a time so that nothing waits unseen in a buffer; {} on timeout."""
        assert self.process is not None
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = None if timeout is None else time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], left)[0]:
                return {}
            byte = os.read(fd, 1)
            if not byte:
                raise AssertionError("the tests' warm parent for `localvalue` commands has gone")
            line += byte
        return dict(json.loads(line))

    def run(
        self, steps: list[list[str]], env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess[str] | None:
        """The result of ``localvalue`` run once per step in one child (as ``localvalue_steps`` describes), or None
        when no warm parent can take it now (the caller starts a process)."""
        if not self.lock.acquire(blocking=False):
            return None
        try:
            process = self._started()
            if process is None:
                return None
            assert process.stdin is not None
            out, err = (os.path.join(self.folder, name) for name in ("stdout", "stderr"))
            request = {"program": LOCALVALUE, "steps": steps, "env": env, "cwd": str(REPO_DIR), "stdout": out}
            process.stdin.write(json.dumps({**request, "stderr": err}).encode() + b"\n")
            pid = self._message(None)["pid"]
            answer = self._message(timeout)
            if not answer:
                os.kill(pid, signal.SIGKILL)
                self._message(None)
                raise subprocess.TimeoutExpired([LOCALVALUE, *steps[-1]], timeout)
            return subprocess.CompletedProcess([LOCALVALUE, *steps[-1]], answer["status"], _read(out), _read(err))
        finally:
            self.lock.release()

    def stop(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


def _read(path: str) -> str:
    # As subprocess.run(text=True) decodes: the locale's encoding, universal newlines.
    with open(path, encoding=locale.getpreferredencoding(False)) as file:
        return file.read()


_WARM = _WarmParent()


def localvalue(
    *args: str, database_url: str, timeout: float = 300, check: bool = True, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = cli_env(database_url, **extra)
    result = _WARM.run([list(args)], env, timeout) or subprocess.run(
        [LOCALVALUE, *args], env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"localvalue {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


_STEPS = "import json, sys; from tests.support.warm_parent import run_steps; run_steps(json.loads(sys.argv[1]))"


def localvalue_steps(
    *steps: tuple[str, ...], database_url: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``localvalue`` once per step, in order, in one process (not for `database` commands, which change the
    framework's groups as they load); the first that fails stops the rest and fails the test. Each runs, prints and
    fails as it does alone; only the start-up is shared."""
    assert not any(step[0] in ("database", "db") for step in steps)
    result = _WARM.run([list(step) for step in steps], cli_env(database_url), timeout) or subprocess.run(
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
