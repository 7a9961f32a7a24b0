"""A live Local Value for tests that need a real server: a fresh database seeded like `make demo`, served by the
real `localvalue run` in a subprocess on a free port.

    async with live_app("postgresql", tmp_path) as app:
        httpx.get(f"{app.url}/health"); app.admin_token
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import dispose_database, free_port, new_database
from tests.support.cli import LOCALVALUE, cli_env, localvalue, localvalue_steps, wait_for_http
from tests.support.paths import REPO_DIR

SAMPLE = REPO_DIR / "procurement" / "data" / "samples" / "contracts-finder-ocds-search-page-2022-10-20.json"
# The sample's Birmingham City Council award makes a publishable statement (as `make demo` does).
DEMO_ANCHOR, DEMO_QUARTER = "E08000025", "2022Q1"


@dataclass(frozen=True)
class LiveApp:
    url: str
    database_url: str
    admin_token: str


def seed_demo(database_url: str) -> str:
    """Migrate, load anchors, the sample import, measures and groups, classify, publish; return an admin token."""
    localvalue("database", "upgrade", "--no-prompt", database_url=database_url)
    localvalue_steps(
        ("seed", "anchors"),
        ("import", "file", str(SAMPLE)),
        ("seed", "measures"),
        ("seed", "groups"),
        ("classify",),
        ("statements", "publish", "--anchor", DEMO_ANCHOR, "--quarter", DEMO_QUARTER, "--by", "tests"),
        database_url=database_url,
    )
    out = localvalue("tokens", "create", "--role", "admin", "--name", "schemathesis", database_url=database_url)
    return out.stdout.strip().splitlines()[0]


@asynccontextmanager
async def live_app(backend: str, tmp_dir: Path, **env: str) -> AsyncIterator[LiveApp]:
    database_url, name = await new_database(backend, tmp_dir, "live")
    server: subprocess.Popen[str] | None = None
    try:
        token = seed_demo(database_url)
        port = free_port()
        server = subprocess.Popen(
            [LOCALVALUE, "run", "--host", "127.0.0.1", "--port", str(port)],
            env=cli_env(database_url, **env),
            cwd=REPO_DIR,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_dir / f"server-{port}.log").open("w"),
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/health", timeout=60)
        yield LiveApp(url=url, database_url=database_url, admin_token=token)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        await dispose_database(backend, name)
