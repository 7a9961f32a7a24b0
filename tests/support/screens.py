"""Screenshots of the public and workspace pages at desktop and phone widths, for reviewers without a browser at hand.

    DATABASE_URL=sqlite+aiosqlite:///$PWD/localvalue.db python -m tests.support.screens --out docs/screens

Starts the real server on the given (demo) database, invites an admin on the command line (inviting again just
gives a new link), sets the password and signs in through the pages, then shoots each page with Chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.support.browser import chromium, new_context
from tests.support.cli import LOCALVALUE, cli_env, localvalue, wait_for_http
from tests.support.paths import REPO_DIR

EMAIL = "screens@localvalue.example"
PASSWORD = "screenshots need a password"
WIDTHS = {"desktop": 1280, "phone": 390}
DEMO_ANCHOR = "Birmingham City Council"
DEMO_PERIOD = "2022Q1"


async def _shoot(page: Any, out: Path, name: str) -> list[Path]:
    shots = []
    for label, width in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": 900})
        path = out / f"{name}-{label}.png"
        await page.screenshot(path=str(path), full_page=True)
        shots.append(path)
    await page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})
    return shots


async def shoot(base: str, link: str, out: Path) -> list[Path]:
    shots: list[Path] = []
    async with chromium() as browser:
        context, _ = await new_context(browser)
        page = await context.new_page()
        # The public pages first (no sign-in): the home page, then the demo anchor's page as a visitor reaches it.
        await page.goto(f"{base}/")
        shots += await _shoot(page, out, "public-home")
        await page.locator("#anchors").get_by_role("link", name=DEMO_ANCHOR).click()
        shots += await _shoot(page, out, "public-anchor")
        await page.goto(f"{base}/sign-in")
        shots += await _shoot(page, out, "sign-in")
        await page.goto(base + link.removeprefix("http://127.0.0.1:8000"))
        shots += await _shoot(page, out, "set-password")
        await page.get_by_label("New password").fill(PASSWORD)
        await page.get_by_label("Type the password again").fill(PASSWORD)
        await page.get_by_role("button", name="Set password").click()
        await page.goto(f"{base}/sign-in")
        await page.get_by_label("Email address").fill(EMAIL)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        # The demo statement's anchor and quarter, chosen as a person would.
        await page.get_by_label("Anchor or group").select_option(label=DEMO_ANCHOR)
        await page.get_by_label("Quarter or financial year").select_option(DEMO_PERIOD)
        await page.get_by_role("button", name="Show").click()
        scope = page.url.split("?", 1)[1]
        for name, path in (
            ("dashboard", f"/workspace?{scope}"),
            ("lines", f"/workspace/lines?{scope}"),
            ("lines-regional", f"/workspace/lines?{scope}&tier=regional"),
            ("review", f"/workspace/review?{scope}"),
            ("statements", f"/workspace/statements?{scope}"),
            ("statement-confirm", f"/workspace/statements/confirm?{scope}"),
            ("statement-draft", f"/workspace/statements/preview.html?{scope}"),
            ("commitments", f"/workspace/commitments?{scope}"),
            ("data-quality", "/workspace/imports"),
            ("import-run", "/workspace/imports/1"),
            ("users", "/workspace/users"),
        ):
            response = await page.goto(base + path)
            assert response is not None
            assert response.status == 200, f"{path}: {response.status}"
            shots += await _shoot(page, out, name)
        await context.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_DIR / "docs" / "screens")
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL") or f"sqlite+aiosqlite:///{REPO_DIR / 'localvalue.db'}"
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    link = localvalue("users", "invite", "--email", EMAIL, "--role", "admin", database_url=database_url).stdout.strip()
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        server = subprocess.Popen(
            [LOCALVALUE, "run", "--host", "127.0.0.1", "--port", str(port)],
            env=cli_env(database_url, LOCALVALUE_WORK_DIR=work),
            cwd=REPO_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for_http(f"{base}/health")
            shots = asyncio.run(shoot(base, link, out))
        finally:
            server.terminate()
            server.wait(timeout=20)
    for shot in shots:
        print(shot.relative_to(REPO_DIR) if shot.is_relative_to(REPO_DIR) else shot)


if __name__ == "__main__":
    main()
