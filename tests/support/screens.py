"""Screenshots of the public and workspace pages at desktop and phone widths, for reviewers without a browser at hand.

    DATABASE_URL=sqlite+aiosqlite:///$PWD/localvalue.db python -m tests.support.screens --out docs/screens

Starts the real server on the given (demo) database, invites an admin on the command line (inviting again just
gives a new link), sets the password and signs in through the pages, then shoots each page with Chromium. Then a
Birmingham City Council editor walks the procurement pages (``procure-*.png``): their organisation with a draft
upload, the contracts register and its forms, the supplier search and duplicate warning, the upload with its
column matching, preview and result, a commitment and the return form. Those pages write (a contract, an upload,
a return), so an SQLite demo database is copied first and the copy served: the demo data stays as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.support.browser import chromium, new_context
from tests.support.cli import LOCALVALUE, cli_env, localvalue, wait_for_http
from tests.support.paths import REPO_DIR

EMAIL = "screens@localvalue.example"
EDITOR = "screens-editor@birmingham.example"
DEMO_ANCHOR_CODE = "E08000025"
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


async def _password_and_sign_in(page: Any, base: str, link: str, email: str) -> None:
    await page.goto(base + link.removeprefix("http://127.0.0.1:8000"))
    await page.get_by_label("New password").fill(PASSWORD)
    await page.get_by_label("Type the password again").fill(PASSWORD)
    await page.get_by_role("button", name="Set password").click()
    await page.goto(f"{base}/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state()


def _own_register() -> bytes:
    """Five rows in an organisation's own headings (not the template's), one of them with a problem."""
    import polars as pl

    frame = pl.DataFrame(
        {
            "Contract ref": [f"SCREENS-{i}" for i in range(1, 6)],
            "Description": [f"Grounds maintenance lot {i}" for i in range(1, 6)],
            "Annual value": ["£12,500.00", "£8,000", "£80k", "£21,000.00", "£4,750.50"],
            "Date awarded": ["12/05/2025", "1 June 2025", "3/06/2025", "12 May 2025", "30/06/2025"],
            "Contractor": [
                "Edgbaston Gardens Ltd",
                "Brum Green CIC",
                "Edgbaston Gardens Ltd",
                "Solihull Trees",
                "Brum Green CIC",
            ],
            "Contractor postcode": ["B15 2GW", "B1 1BB", "B15 2GW", "B91 3QB", "B1 1BB"],
        }
    )
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    return buffer.getvalue()


async def _go(page: Any, base: str, path: str) -> None:
    response = await page.goto(base + path)
    assert response is not None
    assert response.status == 200, f"{path}: {response.status}"


async def _click(page: Any, target: Any) -> None:
    async with page.expect_navigation():
        await target.click()


async def shoot_procure(base: str, link: str, out: Path) -> list[Path]:
    """The procurement pages as a Birmingham City Council editor sees them."""
    shots: list[Path] = []
    async with chromium() as browser:
        context, _ = await new_context(browser)
        page = await context.new_page()
        await _password_and_sign_in(page, base, link, EDITOR)
        # Suppliers: a search with results, the new-supplier form and its likely-duplicate warning.
        await _go(page, base, "/workspace/suppliers?q=limited")
        shots += await _shoot(page, out, "procure-suppliers")
        first = page.locator(".app-supplier-result").first
        found_id = (await first.locator(".app-supplier-result__id").inner_text()).lstrip("#")
        found_name = await first.locator(".app-supplier-result__name").inner_text()
        await _go(page, base, "/workspace/suppliers/new")
        shots += await _shoot(page, out, "procure-supplier-new")
        await page.get_by_label("Name").fill(found_name.upper())
        await _click(page, page.get_by_role("button", name="Continue"))
        shots += await _shoot(page, out, "procure-supplier-duplicate")
        # A contract: the form, its errors, what was understood, then saved and changed.
        await _go(page, base, "/workspace/contracts/new")
        shots += await _shoot(page, out, "procure-contract-new")
        await page.get_by_label("Title").fill("Community meals")
        await page.get_by_label("Your reference (optional)").fill("SCREENS-0001")
        await page.get_by_label("Value (optional)").fill("£80k")
        await page.get_by_label("Award date (optional)").fill("12/05/2025")
        await page.get_by_label("CPV codes (optional)").fill("55520000-1")
        await page.get_by_label("Suppliers").fill(f"#{found_id}")
        await _click(page, page.get_by_role("button", name="Continue"))
        shots += await _shoot(page, out, "procure-contract-errors")
        await page.get_by_label("Value (optional)").fill("£80,000.00")
        await _click(page, page.get_by_role("button", name="Continue"))
        shots += await _shoot(page, out, "procure-contract-confirm")
        await _click(page, page.get_by_role("button", name="Save contract"))
        contract_path = page.url.split("?", 1)[0].removeprefix(base)
        await _go(page, base, f"{contract_path}/edit")
        shots += await _shoot(page, out, "procure-contract-edit")
        # A commitment with a quarterly target, and the return form for it.
        await _go(page, base, contract_path)
        await page.get_by_label("Measure", exact=True).select_option(index=1)
        await page.get_by_label("Quarterly targets").fill("Q1 2025/26: 10")
        await page.get_by_label("Unit (if the measure has none)").fill("meals")
        await _click(page, page.get_by_role("button", name="Record commitment"))
        await _click(page, page.get_by_role("link", name="Enter a return"))
        shots += await _shoot(page, out, "procure-return")
        await page.get_by_label("Quarter", exact=True).fill("Q1 2025/26")
        await page.get_by_label("Delivered (").fill("9")
        await page.get_by_label("Evidence note (optional)").fill(
            "Delivery notes for April to June, signed by the ward manager."
        )
        await _click(page, page.get_by_role("button", name="Submit return"))
        shots += await _shoot(page, out, "procure-contract")
        # The upload: the page, matching the sheet's own columns, the draft waiting, the preview, the result.
        await _go(page, base, "/workspace/contracts/upload")
        shots += await _shoot(page, out, "procure-upload")
        await page.get_by_label("Spreadsheet (CSV or XLSX)").set_input_files(
            {"name": "grounds-register.csv", "mimeType": "text/csv", "buffer": _own_register()}
        )
        await _click(page, page.get_by_role("button", name="Check the sheet"))
        draft = await page.locator("form[action$='/discard']").first.get_attribute("action")
        assert draft is not None
        draft_path = draft.removesuffix("/discard")
        await _go(page, base, f"{draft_path}/columns")  # also when a previous run remembered the columns
        shots += await _shoot(page, out, "procure-upload-columns")
        await page.get_by_label("Supplier name", exact=True).select_option(label="Not in my sheet")
        await _click(page, page.get_by_role("button", name="Use these columns"))
        shots += await _shoot(page, out, "procure-upload-columns-error")
        await page.get_by_label("Supplier name", exact=True).select_option(label="Contractor")
        await _click(page, page.get_by_role("button", name="Use these columns"))
        shots += await _shoot(page, out, "procure-upload-preview")
        await _go(page, base, "/workspace/organisation")
        shots += await _shoot(page, out, "procure-organisation")
        await _go(page, base, draft_path)
        await _click(page, page.get_by_role("button", name="Save 4 rows"))
        shots += await _shoot(page, out, "procure-upload-done")
        await _go(page, base, "/workspace/contracts")
        shots += await _shoot(page, out, "procure-contracts")
        await context.close()
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
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        prefix = "sqlite+aiosqlite:///"
        if database_url.startswith(prefix) and ":memory:" not in database_url:
            copy = Path(work) / "screens.db"
            shutil.copyfile(database_url.removeprefix(prefix).split("?")[0], copy)
            database_url = f"{prefix}{copy}"
        link = localvalue("users", "invite", "--email", EMAIL, "--role", "admin", database_url=database_url)
        editor_link = localvalue(
            "users",
            "invite",
            "--email",
            EDITOR,
            "--role",
            "editor",
            "--org",
            DEMO_ANCHOR_CODE,
            database_url=database_url,
        )
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
            shots = asyncio.run(shoot(base, link.stdout.strip(), out))
            shots += asyncio.run(shoot_procure(base, editor_link.stdout.strip(), out))
        finally:
            server.terminate()
            server.wait(timeout=20)
    for shot in shots:
        print(shot.relative_to(REPO_DIR) if shot.is_relative_to(REPO_DIR) else shot)


if __name__ == "__main__":
    main()
