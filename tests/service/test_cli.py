"""The `localvalue` command end to end: migrate, seed, tokens (stored hashed), serve."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import BACKENDS, dispose_database, free_port, new_database
from tests.support.cli import LOCALVALUE, cli_env, localvalue, wait_for_http
from tests.support.paths import REPO_DIR


def _sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg") if "sqlite" in url else url


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_seed_token_and_serve(backend: str, tmp_path: Path) -> None:
    url, name = await new_database(backend, tmp_path, "cli")
    try:
        localvalue("database", "upgrade", "--no-prompt", database_url=url)
        first = localvalue("seed", "anchors", database_url=url)
        assert "created 45" in first.stdout
        again = localvalue("seed", "anchors", database_url=url)
        assert "created 0, updated 0" in again.stdout

        admin = localvalue("tokens", "create", "--role", "admin", "--name", "ops", database_url=url).stdout.strip()
        editor = localvalue(
            "tokens", "create", "--role", "editor", "--org", "RBK", "--name", "jo@walsall", database_url=url
        ).stdout.strip()
        assert admin.startswith("lv_")
        assert editor.startswith("lv_")
        refused = localvalue("tokens", "create", "--role", "editor", "--name", "nobody", database_url=url, check=False)
        assert refused.returncode != 0
        assert "exactly one --org" in refused.stderr

        port = free_port()
        server = subprocess.Popen(
            [LOCALVALUE, "run", "--host", "127.0.0.1", "--port", str(port)],
            env=cli_env(url),
            cwd=REPO_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            health = wait_for_http(f"http://127.0.0.1:{port}/health")
            assert health.status_code == 200
            assert health.json()["database"]["dialect"] == backend
            anchors = httpx.get(f"http://127.0.0.1:{port}/organisations?anchor=true&limit=100").json()
            assert anchors["total"] == 45
            names = {o["name"] for o in anchors["items"]}
            assert {
                "Walsall Healthcare NHS Trust",
                "Birmingham City Council",
                "West Midlands Combined Authority",
            } <= names
            me = httpx.get(f"http://127.0.0.1:{port}/contracts", headers={"Authorization": f"Bearer {editor}"})
            assert me.status_code == 200
        finally:
            server.terminate()
            server.wait(timeout=20)

        if backend == "sqlite":
            engine = create_engine(url.replace("+aiosqlite", ""))
            with engine.connect() as conn:
                stored = [r[0] for r in conn.execute(text("SELECT token_hash FROM api_token"))]
                dump = "\n".join(str(r) for r in conn.execute(text("SELECT * FROM api_token")))
            engine.dispose()
            assert hashlib.sha256(admin.encode()).hexdigest() in stored
            assert admin not in dump
            assert editor not in dump
    finally:
        await dispose_database(backend, name)


@pytest.mark.slow
def test_help_is_the_products_own(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'help.db'}"
    top = localvalue("--help", database_url=url).stdout
    assert "Local Value" in top
    for command in ("import", "classify", "metrics", "statements", "seed", "tokens", "database", "run"):
        assert f" {command} " in top, command
    for framework in ("routes", "sessions", "schema", "version", "assets"):
        assert f" {framework} " not in top, framework
    # Nor the framework's options for finding an app, which mean nothing to a user.
    assert "--app" not in top
    # Every command list shows whole first sentences: click's default cuts them at 45 characters with "...".
    for group in (
        (),
        ("import",),
        ("statements",),
        ("seed",),
        ("tokens",),
        ("classify",),
        ("geo",),
        ("database",),
        ("uploads",),
    ):
        shown = localvalue(*group, "--help", database_url=url).stdout.splitlines()
        cut = [line for line in shown if "Usage:" not in line and line.rstrip(" │").endswith("...")]
        assert not cut, (group, cut)


@pytest.mark.slow
def test_drop_all_is_hidden_and_needs_yes(tmp_path: Path) -> None:
    path = tmp_path / "keep.db"
    url = f"sqlite+aiosqlite:///{path}"
    localvalue("database", "upgrade", "--no-prompt", database_url=url)
    localvalue("seed", "anchors", database_url=url)
    assert "drop-all" not in localvalue("database", "--help", database_url=url).stdout
    refused = localvalue("database", "drop-all", database_url=url, check=False)
    assert refused.returncode == 1
    assert "add --yes" in refused.stderr
    assert "Traceback" not in refused.stderr
    with create_engine(f"sqlite:///{path}").connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM organisation")).scalar_one() == 45


@pytest.mark.parametrize(
    "args", [("tokens", "--help"), ("database", "--help"), ("seed", "anchors", "--help"), ("--help",), ()]
)
def test_commands_start_without_building_the_web_app(args: tuple[str, ...], tmp_path: Path) -> None:
    # The web app (routes, OpenAPI) is over half of a command's start-up; only the framework's own commands need
    # it. The whole list is still the same from either group.
    probe = (
        "import sys\n"
        "from procurement.cli import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit as exit:\n"
        f"    assert exit.code in {(0, None) if args else (2,)!r}, exit.code\n"
        "print('web app built:', 'procurement.app' in sys.modules)\n"
    )
    out = subprocess.run(
        [str(Path(LOCALVALUE).parent / "python"), "-c", probe],
        env=cli_env(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"),
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().endswith("web app built: False"), out


def test_usage_errors_are_one_line_naming_the_help_to_read(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'usage.db'}"
    for args, message, where in (
        (("statements", "publish", "--anchor"), "Option '--anchor' requires an argument.", "statements publish"),
        (("seed", "nosuch"), "No such command 'nosuch'.", "seed"),
        (("database", "upgrade", "--bogus"), "No such option '--bogus'.", "database upgrade"),
        # A message of ours that ends without a full stop gets one before the pointer to the help.
        (
            ("metrics", "--period", "2020Q5"),
            "Invalid value for --period: bad quarter label '2020Q5': expected 'YYYYQn' with n in 1-4, e.g. '2025Q1'.",
            "metrics",
        ),
    ):
        run = localvalue(*args, database_url=url, check=False)
        assert run.returncode == 2, (args, run.stderr)
        assert run.stderr == f"Error: {message} See `localvalue {where} --help`.\n", args
        assert run.stdout == ""
