"""The procurement teams' journey in a real headless Chromium against the real server (``localvalue run``) on both
databases, with the bundled Contracts Finder sample imported and classified: an editor invited on the command line
signs in, opens their organisation, finds a supplier by searching as they type (htmx), adds a second supplier
after a likely-duplicate warning, records a contract with both from what people type (checked before saving),
then changes it with a reason; uploads a register in its own columns (matched once, a needed field left out
refused, the draft left and resumed from "My organisation", the choice remembered for the next upload).
Every page passes axe-core (WCAG 2.2 AA) at 1280 px and 390 px."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.procure.test_returns import PDF
from tests.procure.test_upload import csv_bytes, register
from tests.support.browser import (
    assert_local_only,
    assert_title,
    chromium,
    new_context,
)
from tests.support.cli import localvalue
from tests.workspace.test_browser import check_page, invite, set_password_and_sign_in, site

__all__ = ["site"]  # the shared server fixture: seeded anchors, the sample imported and classified
pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def follow(page: Any, target: Any) -> None:
    """Click a link or submit button and wait for the page it leads to (the machine may be slow)."""
    async with page.expect_navigation():
        await target.click()


async def match_columns_once(page: Any, base: str) -> None:
    """The sheet's own headings: guesses chosen, a needed field left out refused by name, then the draft waits."""
    await assert_title(page, "Match your columns - Local Value")
    supplier = page.get_by_label("Supplier name", exact=True)
    assert await supplier.input_value() == "Supplier name"
    await check_page(page, "match your columns")
    await supplier.select_option(label="Not in my sheet")
    await follow(page, page.get_by_role("button", name="Use these columns"))
    await assert_title(page, re.compile(r"^Error: Match your columns"))
    summary = await page.locator(".nhsuk-error-summary").inner_text()
    assert "Choose the column that holds the supplier name" in summary, summary
    await check_page(page, "match your columns (errors)")
    await page.get_by_label("Supplier name", exact=True).select_option(label="Supplier name")
    await follow(page, page.get_by_role("button", name="Use these columns"))
    await assert_title(page, "Check the upload - Local Value")
    # Left for now: it waits on "My organisation" among the drafts, to resume.
    await page.goto(f"{base}/workspace/organisation")
    drafts = await page.locator(".app-drafts").inner_text()
    assert "register.csv: 50 rows" in drafts, drafts
    await check_page(page, "my organisation with a draft")
    await follow(page, page.get_by_role("link", name="Resume register.csv"))


async def test_editor_records_a_contract_with_two_suppliers(site: tuple[str, str]) -> None:
    base, url = site
    link = invite(url, "editor@bcc.example", "editor", "--org", "E08000025")
    localvalue("seed", "measures", database_url=url)
    async with chromium() as browser:
        context, requests = await new_context(browser)
        page = await context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

        await page.goto(f"{base}/sign-in")
        await set_password_and_sign_in(page, base, link, "editor@bcc.example")
        await follow(page, page.get_by_role("link", name="My organisation").first)
        await assert_title(page, "Birmingham City Council - Local Value")
        await check_page(page, "my organisation")

        # Search as you type: htmx swaps the results in without a page load.
        await follow(page, page.get_by_role("link", name="Suppliers").first)
        await check_page(page, "supplier search (empty)")
        async with page.expect_response(lambda r: "/workspace/suppliers?q=" in r.url):
            await page.get_by_label("Name, Companies House or charity number, or postcode").press_sequentially(
                "limited"
            )
        first = page.locator(".app-supplier-result").first
        await first.wait_for()
        found_id = await first.locator(".app-supplier-result__id").inner_text()
        found_name = await first.locator(".app-supplier-result__name").inner_text()
        await check_page(page, "supplier search (results)")

        # A new supplier whose name is close to a recorded one is warned about first.
        await follow(page, page.get_by_role("link", name="Add a new supplier"))
        await check_page(page, "add a supplier")
        await page.get_by_label("Name").fill(found_name.upper())
        await page.get_by_label("Postcode (optional)").fill("b1 1bb")
        await follow(page, page.get_by_role("button", name="Continue"))
        await assert_title(page, "Is this supplier already recorded? - Local Value")
        assert f"#{found_id}" in await page.locator(".nhsuk-warning-callout").inner_text()
        await check_page(page, "likely duplicate")
        await follow(page, page.get_by_role("button", name="It is a different supplier: add it"))
        new_id = page.url.split("created=")[1]
        assert new_id != found_id

        # The contract, as people type it: a refused value first, then what was understood before saving.
        await page.goto(f"{base}/workspace/contracts/new")
        await check_page(page, "record a contract")
        await page.get_by_label("Title").fill("Community meals")
        await page.get_by_label("Your reference (optional)").fill("BCC-0001")
        await page.get_by_label("Value (optional)").fill("£80k")
        await page.get_by_label("Award date (optional)").fill("12/05/2025")
        await page.get_by_label("CPV codes (optional)").fill("55520000-1")
        await page.get_by_label("Suppliers").fill(f"#{found_id}\n#{new_id}")
        await follow(page, page.get_by_role("button", name="Continue"))
        await assert_title(page, re.compile(r"^Error: Record a contract"))
        assert "uses shorthand" in await page.locator(".nhsuk-error-summary").inner_text()
        await check_page(page, "record a contract (errors)")
        await page.get_by_label("Value (optional)").fill("£80,000.00")
        await follow(page, page.get_by_role("button", name="Continue"))
        await assert_title(page, "Check the contract before saving - Local Value")
        assert await page.locator("#understood-value").inner_text() == "£80,000.00"
        assert await page.locator("#understood-award-date").inner_text() == "12 May 2025"
        await check_page(page, "check the contract")
        await follow(page, page.get_by_role("button", name="Save contract"))
        await assert_title(page, "Community meals - Local Value")
        shares = await page.locator("dt:text('Suppliers') + dd li").all_inner_texts()
        assert shares == [f"#{found_id}: £40,000.00 (equal split)", f"#{new_id}: £40,000.00 (equal split)"]
        await check_page(page, "contract")

        await follow(page, page.get_by_role("link", name="Change this contract"))
        await check_page(page, "change a contract")
        await page.get_by_label("Value (optional)").fill("90,000")
        await page.get_by_label("Why are you changing it?").fill("Value corrected from the award letter")
        await follow(page, page.get_by_role("button", name="Continue"))
        await follow(page, page.get_by_role("button", name="Save contract"))
        assert "because: Value corrected from the award letter" in await page.locator("main").inner_text()

        # A social-value commitment with a quarterly target, then its return with an evidence file.
        await page.get_by_label("Measure", exact=True).select_option(index=1)
        await page.get_by_label("Quarterly targets").fill("Q1 2025/26: 10")
        await page.get_by_label("Unit (if the measure has none)").fill("meals")
        await follow(page, page.get_by_role("button", name="Record commitment"))
        assert "Q1 2025/26: 10" in await page.locator("#commitments + .nhsuk-card").inner_text()
        await check_page(page, "contract with a commitment")
        await follow(page, page.get_by_role("link", name="Enter a return"))
        await check_page(page, "enter a return")
        await page.get_by_label("Quarter", exact=True).fill("Q1 2025/26")
        await page.get_by_label("Delivered (").fill("9")
        await page.get_by_label("Evidence file (optional)").set_input_files(
            {"name": "meals-q1.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        await follow(page, page.get_by_role("button", name="Submit return"))
        card = await page.locator("#commitments + .nhsuk-card").inner_text()
        assert "Return for Q1 2025/26: 9 meals, submitted" in card, card
        assert "meals-q1.pdf" in card
        await check_page(page, "contract with a return")

        await follow(page, page.get_by_role("link", name="Contracts").first)
        assert "BCC-0001" in await page.locator("table").inner_text()
        await check_page(page, "contracts register")
        before = int(re.search(r"(\d+) contracts?\.", await page.locator("main").inner_text()).group(1))  # type: ignore[union-attr]

        # The register as a spreadsheet: 50 rows with three bad ones, fixed, saved, and uploaded again.
        await follow(page, page.get_by_role("link", name="Upload a spreadsheet"))
        await check_page(page, "upload a register")
        # BCC-0001, recorded by hand above, is on the sheet too: that row changes it rather than adding another.
        for sheet, expected, saved in ((register(), "46", "47"), (register(bad=False), "3", "3")):
            await page.get_by_label("Spreadsheet (CSV or XLSX)").set_input_files(
                {"name": "register.csv", "mimeType": "text/csv", "buffer": csv_bytes(sheet)}
            )
            await follow(page, page.get_by_role("button", name="Check the sheet"))
            if expected == "46":
                await match_columns_once(page, base)
            else:
                remembered = await page.locator("#upload-columns").inner_text()
                assert "matched as you chose before" in remembered, remembered
            await assert_title(page, "Check the upload - Local Value")
            counts = await page.locator("#upload-counts").inner_text()
            assert f"{expected} new contracts" in counts, counts
            await check_page(page, f"upload preview ({expected} new)")
            await follow(page, page.get_by_role("button", name=f"Save {saved} rows"))
            assert f"{expected} added" in await page.locator("#upload-done").inner_text()
            await check_page(page, "upload saved")
            await page.goto(f"{base}/workspace/contracts/upload")
        assert "Row 12 (BCC-0011)" not in await page.locator("main").inner_text()
        await page.get_by_label("Spreadsheet (CSV or XLSX)").set_input_files(
            {"name": "register.csv", "mimeType": "text/csv", "buffer": csv_bytes(register(bad=False))}
        )
        await follow(page, page.get_by_role("button", name="Check the sheet"))
        assert "Nothing in this sheet would change your register." in await page.locator("main").inner_text()
        await page.goto(f"{base}/workspace/contracts")
        assert f"{before + 49} contracts." in await page.locator("main").inner_text()
        assert not problems, problems
        assert_local_only(requests)
        await context.close()
