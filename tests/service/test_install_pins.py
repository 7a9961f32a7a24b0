"""constraints.txt pins one tested set of versions inside pyproject.toml's ranges, and `make install` applies it:
a bare clone installs what CI last passed with, not whatever the package index offers that day."""

from __future__ import annotations

import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.paths import REPO_DIR


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (REPO_DIR / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not name==version"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_DIR / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def test_every_requirement_is_pinned_inside_its_range() -> None:
    pins = _pins()
    for requirement in _requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt: run `make constraints`"
        assert requirement.specifier.contains(pins[name]), (
            f"constraints.txt pins {requirement.name} {pins[name]}, outside pyproject.toml's {requirement.specifier}"
        )


def test_this_environment_has_the_pinned_versions() -> None:
    wrong = []
    for name, pinned in _pins().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} (pinned {pinned}) is not installed")
            continue
        if installed != pinned:
            wrong.append(f"{name} {installed} is installed, {pinned} is pinned")
    assert not wrong, "; ".join(wrong) + ": run `make install` (or `make constraints` to re-pin)"
