"""Schemathesis, every check, against a live server on each database, anonymously and as an admin.

The server is the real `localvalue run` on a database seeded like `make demo` (anchors, the sample import,
measures, groups, a published statement), so ids exist and writes reach the database. Bounds and the seed are in
tests/fixtures/schemathesis/schemathesis.toml.

`make test` runs coverage and fuzzing anonymously, and examples (every documented example), fuzzing and
stateful as the admin. The admin's coverage phase (boundary and negative values for every parameter and field,
some 4,000 requests that do real work) adds about two minutes; LOCALVALUE_SCHEMATHESIS_COVERAGE=1 runs every phase
for both callers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKENDS
from tests.support.live import live_app
from tests.support.paths import FIXTURES_DIR

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = FIXTURES_DIR / "schemathesis" / "schemathesis.toml"
CHECKS = ("--checks", "all", "--no-color")

pytestmark = pytest.mark.slow


def schemathesis(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # cwd: schemathesis keeps a crash cache in ./.schemathesis; a temporary folder keeps each run independent.
    return subprocess.run(
        [SCHEMATHESIS, "--config-file", str(CONFIG), "run", f"{url}/schema/openapi.json", *CHECKS, *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
    )


# The anonymous run is the public's view, what an attacker without a token reaches: every request it can make.
ALL_PHASES = "examples,coverage,fuzzing,stateful"
ADMIN_PHASES = ALL_PHASES if os.environ.get("LOCALVALUE_SCHEMATHESIS_COVERAGE") else "examples,fuzzing,stateful"
# The documented examples are sent once, as the admin, who may call every operation (public ones included);
# sent anonymously they would mostly meet 401 again, at about 20 s per database. So would the stateful phase's
# chains of calls (most start from a write): the admin runs it.
ANONYMOUS_PHASES = ALL_PHASES if os.environ.get("LOCALVALUE_SCHEMATHESIS_COVERAGE") else "coverage,fuzzing"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_schemathesis_finds_no_server_error_and_no_contract_violation(backend: str, tmp_path: Path) -> None:
    async with live_app(backend, tmp_path) as app:
        anonymous = schemathesis(app.url, tmp_path, "--phases", ANONYMOUS_PHASES)
        admin = schemathesis(
            app.url, tmp_path, "--phases", ADMIN_PHASES, "-H", f"Authorization: Bearer {app.admin_token}"
        )
    for who, run in (("anonymous", anonymous), ("admin", admin)):
        summary = run.stdout[-6000:]
        assert run.returncode == 0, f"schemathesis ({who}, {backend}) found problems:\n{run.stdout[-20000:]}"
        assert "No issues found" in summary, summary
        counts = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", summary)
        assert counts is not None, summary
        assert counts.group(1) == counts.group(2) == counts.group(3), "every operation was tested"
