"""The `make demo` data, loaded with the real commands: anchors, the sample, classification, one statement."""

from __future__ import annotations

from tests.support.cli import localvalue
from tests.support.imports import CF_FILES

# The sample's Birmingham City Council award (a Dudley contractor, June 2022) makes the demo statement.
DEMO_ANCHOR = "E08000025"
DEMO_QUARTER = "2022Q1"


def load_demo(database_url: str) -> None:
    """Seed, import, classify and publish as `make demo-data` does, into a migrated database."""
    steps: list[tuple[str, ...]] = [
        ("seed", "anchors"),
        ("import", "file", *(str(p) for p in CF_FILES)),
        ("seed", "measures"),
        ("seed", "groups"),
        ("classify",),
        ("statements", "publish", "--anchor", DEMO_ANCHOR, "--quarter", DEMO_QUARTER, "--by", "demo"),
    ]
    for step in steps:
        localvalue(*step, database_url=database_url)
