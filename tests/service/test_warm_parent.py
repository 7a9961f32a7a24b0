"""The tests' `localvalue` helper runs each command in a child of a warm parent: the same output, exit code and
environment as the command started as a process of its own."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import LOCALVALUE, _WarmParent, cli_env, localvalue
from tests.support.paths import REPO_DIR


def _alone(*args: str, database_url: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOCALVALUE, *args], env=cli_env(database_url, **extra), cwd=REPO_DIR, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "args",
    [
        ("tokens", "list"),  # a refusal on stderr, exit 1
        ("tokens", "bogus"),  # a usage error, exit 2
        ("metrics", "--help"),  # help on stdout, exit 0
        ("--version",),  # through the framework's group
    ],
)
def test_a_command_in_a_child_answers_as_it_does_alone(args: tuple[str, ...], tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    warm = _WarmParent()
    try:
        child = warm.run([list(args)], cli_env(url), timeout=120)
    finally:
        warm.stop()
    alone = _alone(*args, database_url=url)
    assert child is not None
    assert (child.returncode, child.stdout, child.stderr) == (alone.returncode, alone.stdout, alone.stderr)
    assert child.stdout or child.stderr


def test_each_child_starts_from_the_parent_not_from_the_last_child(tmp_path: Path) -> None:
    # The first command reads one database, the next another: had the first child's settings (read from its
    # environment once) reached the second, both would name the first.
    first, second = (f"sqlite+aiosqlite:///{tmp_path / name}" for name in ("one.db", "two.db"))
    assert "one.db" in localvalue("tokens", "list", database_url=first, check=False).stderr
    assert "two.db" in localvalue("tokens", "list", database_url=second, check=False).stderr


def test_a_child_over_its_time_is_killed_and_the_next_runs(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    warm = _WarmParent()
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            warm.run([["tokens", "list"]], cli_env(url), timeout=0.001)
        after = warm.run([["tokens", "bogus"]], cli_env(url), timeout=120)
    finally:
        warm.stop()
    assert after is not None
    assert after.returncode == 2
