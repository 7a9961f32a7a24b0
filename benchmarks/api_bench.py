"""HTTP throughput under load: Local Value's public and list endpoints beside a Litestar hello-world, both served by
the same uvicorn (same worker count, no access log), measured with wrk in the same run.

Run from the repository root:
    .venv/bin/python benchmarks/api_bench.py [--backends=sqlite,postgresql] [--workers=2] [--duration=10]
        [--connections=64]

Needs wrk (`apt-get install wrk`, `brew install wrk`); without it the bench says so and exits 1.
For each backend it seeds a fresh database like `make demo` (anchors, the bundled Contracts Finder sample,
classification, one published statement), serves it with `localvalue run --workers N --no-access-log`, and runs
wrk at the given connections against `/health`, `/public/statements`, `/organisations?limit=50` and `/metrics` for
one anchor-quarter (with a token, after warming it); the hello-world app is served by uvicorn with the same
options. Printed per endpoint: requests/s, p50, p99, errors (socket errors plus non-2xx answers) and the ratio to
hello-world, against the targets (/health and /public/statements >= 0.5x, the others >= 0.3x, p99 < 100 ms,
no errors). wrk's own CPU time is printed beside each run: a load generator using most of a core is itself the
limit, and the figures then understate the server. PostgreSQL is taken from TEST_POSTGRES_URL (default
postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGETS = {"/health": 0.5, "/public/statements": 0.5, "/organisations?limit=50": 0.3, "/metrics": 0.3}
P99_MS = 100.0
HELLO = "benchmarks.api_bench:hello_app"


def hello_app() -> Any:
    """The yardstick: the smallest Litestar app, one JSON GET."""
    from litestar import Litestar, get

    @get("/", sync_to_thread=False)
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    return Litestar(route_handlers=[hello])


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    wrk_cpu_s: float


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if match is None:  # wrk prints e.g. "-nanus" when a run completed no request
        return float("nan")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}[unit]


def wrk(url: str, *, connections: int, duration: int, headers: dict[str, str]) -> Result:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = {
        k: re.search(p, out)
        for k, p in (
            ("rps", r"Requests/sec:\s+([\d.]+)"),
            ("p50", r"(?m)^\s+50%\s+(\S+)"),
            ("p99", r"(?m)^\s+99%\s+(\S+)"),
        )
    }
    if not all(found.values()):
        raise SystemExit(f"could not read wrk's output:\n{out}")
    rps = float(found["rps"].group(1))  # type: ignore[union-attr]
    p50 = _ms(found["p50"].group(1))  # type: ignore[union-attr]
    p99 = _ms(found["p99"].group(1))  # type: ignore[union-attr]
    errors = 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Result(rps, p50, p99, errors, cpu)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, server: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server at {url} exited with {server.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=40)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _serve(args: list[str], env: dict[str, str], probe: str, workers: int, log: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    _wait(probe, server)
    deadline = time.monotonic() + 120
    while log.read_text().count("Application startup complete") < workers and time.monotonic() < deadline:
        time.sleep(0.3)  # every worker up, not only the first to answer
    return server


def _seed(database_url: str) -> tuple[str, int, str]:
    """A demo-like database; returns a read token, the statement's anchor id and its quarter."""
    from tests.support.cli import localvalue
    from tests.support.live import DEMO_QUARTER, seed_demo

    seed_demo(database_url)
    token = localvalue(
        "tokens", "create", "--role", "cross_reviewer", "--name", "api-bench", database_url=database_url
    ).stdout.strip()
    anchor = asyncio.run(_anchor(database_url))
    return token, anchor, DEMO_QUARTER


async def _anchor(database_url: str) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        anchor = int((await conn.execute(text("SELECT organisation_id FROM statement LIMIT 1"))).scalar_one())
    await engine.dispose()
    return anchor


def _row(label: str, r: Result, hello: Result | None, target: float | None) -> str:
    ratio = f"{r.rps / hello.rps:5.2f}x" if hello else "     "
    verdict = ""
    if hello and target is not None:
        ok = r.rps / hello.rps >= target and r.p99_ms < P99_MS and r.errors == 0
        verdict = f"  target >= {target}x, p99 < {P99_MS:.0f} ms, 0 errors: {'met' if ok else 'MISSED'}"
    return (
        f"  {label:<32} {r.rps:9,.0f} req/s  p50 {r.p50_ms:7.1f} ms  p99 {r.p99_ms:7.1f} ms  "
        f"errors {r.errors:<5} {ratio}  (wrk CPU {r.wrk_cpu_s:.1f} s){verdict}"
    )


def bench_backend(backend: str, *, workers: int, duration: int, connections: int, tmp: Path) -> None:
    from tests.conftest import create_pg_database, drop_pg_database

    name = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp}/api_bench.db"
    else:
        name = f"lv_api_bench_{os.getpid()}"
        url = asyncio.run(create_pg_database(name))
    try:
        started = time.perf_counter()
        token, anchor, quarter = _seed(url)
        print(f"{backend}: seeded like `make demo` in {time.perf_counter() - started:.0f} s; {workers} workers")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LITESTAR")}
        env["DATABASE_URL"] = url
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        server_opts = ["--workers", str(workers), "--no-access-log"]

        hello_port = _free_port()
        hello = _serve(
            [sys.executable, "-m", "uvicorn", "--factory", HELLO, "--port", str(hello_port), *server_opts],
            env,
            f"http://127.0.0.1:{hello_port}/",
            workers,
            tmp / "hello.log",
        )
        try:
            yardstick = wrk(f"http://127.0.0.1:{hello_port}/", connections=connections, duration=duration, headers={})
        finally:
            _stop(hello)
        print(_row("hello-world", yardstick, None, None))

        port = _free_port()
        localvalue = str(Path(sys.executable).parent / "localvalue")
        app = _serve(
            [localvalue, "run", "--port", str(port), *server_opts],
            env,
            f"http://127.0.0.1:{port}/health",
            workers,
            tmp / "app.log",
        )
        try:
            import httpx

            auth = {"Authorization": f"Bearer {token}"}
            endpoints = [
                ("/health", "/health", {}),
                ("/public/statements", "/public/statements", {}),
                ("/organisations?limit=50", "/organisations?limit=50", {}),
                ("/metrics", f"/metrics?anchor_id={anchor}&period={quarter}", auth),
            ]
            for label, path, headers in endpoints:
                for _ in range(4 * workers):  # warm every worker's caches and pools
                    answer = httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=60)
                    if answer.status_code != 200:
                        raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:300]}")
                result = wrk(
                    f"http://127.0.0.1:{port}{path}", connections=connections, duration=duration, headers=headers
                )
                shown = label if label != "/metrics" else "/metrics (one anchor-quarter, warm)"
                print(_row(shown, result, yardstick, TARGETS[label]))
        finally:
            _stop(app)
    finally:
        if name is not None:
            asyncio.run(drop_pg_database(name))


_OPTIONS = {"backends", "workers", "duration", "connections"}


def main() -> None:
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(__doc__)
        return
    options: dict[str, str] = {}
    for arg in sys.argv[1:]:
        name, equals, value = arg.removeprefix("--").partition("=")
        if not arg.startswith("--") or not equals or name not in _OPTIONS:
            print(f"unknown option {arg!r}: use --backends=sqlite,postgresql --workers=N --duration=S --connections=N")
            raise SystemExit(2)
        options[name] = value
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu), `brew install wrk` (macOS), "
            "then run this again."
        )
        raise SystemExit(1)
    backends = options.get("backends", "sqlite,postgresql").split(",")
    workers = int(options.get("workers", "2"))
    duration = int(options.get("duration", "10"))
    connections = int(options.get("connections", "64"))
    print(
        f"wrk -t2 -c{connections} -d{duration}s; {os.cpu_count()} cores here, shared by wrk, the server and the "
        "database: wrk's CPU is printed per run"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            bench_backend(backend, workers=workers, duration=duration, connections=connections, tmp=Path(tmp))


if __name__ == "__main__":
    main()
