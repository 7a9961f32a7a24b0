"""The review queue in a real headless Chromium against the real server, on both databases. Birmingham's editor
signs in and works the suppliers whose location was unknown by keyboard alone: two rows with htmx (each row is
replaced in place, the focus moves to the next row's postcode and the coverage figure rises without a page load),
then two rows without JavaScript (each form posts and comes back to the queue at the next row, with the coverage
risen). axe-core finds no WCAG 2.2 AA violation at 1280 and 390 px with every form of the queue open, and
nothing scrolls sideways on the phone (axe runs in the page, so only where JavaScript is on)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.support.browser import chromium, new_context
from tests.support.cli import localvalue
from tests.workspace.test_browser import check_page, invite, set_password_and_sign_in, site

__all__ = ["site"]  # the running server, from the workspace journeys
pytestmark = [pytest.mark.browser, pytest.mark.slow]

SUPPLIERS = (
    ("Unplaced Cleaning Ltd", "4000.00"),
    ("Unplaced Catering Ltd", "3000.00"),
    ("Unplaced Laundry Ltd", "2000.00"),
    ("Unplaced Portering Ltd", "1000.00"),
    # Two records of one organisation (the same normalised name): their rows offer a merge.
    ("Twin Couriers Ltd", "300.00"),
    ("Twin Couriers Limited", "200.00"),
)


def _unknown_suppliers_for_birmingham(base: str, url: str) -> tuple[int, dict[str, int]]:
    """Suppliers with no postcode win Birmingham contracts in Q1 2025/26 (through the API): its id, and theirs."""
    token = localvalue("tokens", "create", "--role", "admin", "--name", "review setup", database_url=url).stdout
    headers = {"Authorization": f"Bearer {token.strip()}"}
    ids: dict[str, int] = {}
    with httpx.Client(base_url=base, headers=headers) as api:
        found = api.get("/organisations", params={"q": "Birmingham City Council", "anchor": "true"}).json()
        bcc = next(o["id"] for o in found["items"] if o["name"] == "Birmingham City Council")
        for name, value in SUPPLIERS:
            supplier = api.post("/suppliers", json={"name": name})
            assert supplier.status_code == 201, supplier.text
            ids[name] = supplier.json()["id"]
            contract = api.post(
                "/contracts",
                json={
                    "buyer_id": bcc,
                    "title": f"{name} services",
                    "value": value,
                    "award_date": "2025-05-01",
                    "cpv_codes": ["55524000"],
                    "suppliers": [{"supplier_id": ids[name]}],
                },
            )
            assert contract.status_code == 201, contract.text
    return int(bcc), ids


def _percent(text: str) -> float:
    found = re.search(r"Judged on ([\d.]+)% of the value", text)
    assert found, text
    return float(found.group(1))


async def _coverage(page: Any) -> float:
    return _percent(await page.locator("#figure-local-share").inner_text())


async def _focused_id(page: Any) -> str:
    return str(await page.evaluate("document.activeElement && document.activeElement.id"))


async def test_editor_works_the_queue_by_keyboard_with_and_without_javascript(site: tuple[str, str]) -> None:
    base, url = site
    bcc, ids = _unknown_suppliers_for_birmingham(base, url)
    localvalue("classify", database_url=url)
    # Birmingham's editor: `users invite` gives a reviewer no organisations to review (nor offers
    # cross_reviewer), so a reviewer's postcode would wait as a change request; the editor's applies at once.
    link = invite(url, "queue@bcc.example", "editor", "--org", "E08000025")
    queue = f"{base}/workspace/review?scope=anchor:{bcc}&period=2025Q1"
    rows = [
        (name, ids[name], postcode)
        for (name, _), postcode in zip(SUPPLIERS, ("B5 5RS", "B6 4BN", "B1 1BB", "B4 7DA"), strict=False)
    ]
    async with chromium() as browser:
        context, _ = await new_context(browser)
        page = await context.new_page()
        await page.goto(f"{base}/workspace")
        await set_password_and_sign_in(page, base, link, "queue@bcc.example")
        await page.goto(queue)
        # Every form of the queue open (the merge forms sit in details) for axe.
        await page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
        await check_page(page, "review queue, forms open")
        await page.goto(queue)
        coverage = await _coverage(page)

        # With htmx: the keyboard only, from the first row's postcode; no page load between rows.
        await page.locator(f"#postcode-{rows[0][1]}").focus()
        loads = []
        page.on("framenavigated", lambda frame: loads.append(frame.url))
        for index, (name, supplier_id, postcode) in enumerate(rows[:2]):
            assert await _focused_id(page) == f"postcode-{supplier_id}", name
            await page.keyboard.type(postcode)
            await page.keyboard.press("Tab")
            assert await _focused_id(page) == f"reason-{supplier_id}"
            await page.keyboard.type("invoice address checked")
            await page.keyboard.press("Enter")
            done = page.locator(f"#location-{supplier_id}.app-review-item--done")
            await done.wait_for()
            assert "Postcode saved" in await done.inner_text()
            now = await _coverage(page)  # swapped in out of band
            assert now > coverage, (name, coverage, now)
            coverage = now
            # The focus moved on to the next row's first control.
            assert await _focused_id(page) == f"postcode-{rows[index + 1][1]}", name
        assert loads == [], loads

        # Without JavaScript: each form posts and the queue comes back at the next row, with the message.
        plain, _ = await new_context(browser, javascript=False)
        await plain.add_cookies(await context.cookies())
        page = await plain.new_page()
        await page.goto(queue)
        assert await _coverage(page) == coverage
        for index, (name, supplier_id, postcode) in enumerate(rows[2:], start=2):
            await page.locator(f"#postcode-{supplier_id}").focus()
            await page.keyboard.type(postcode)
            await page.keyboard.press("Tab")
            await page.keyboard.type("invoice address checked")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")  # Enter submits the row's form
            assert "Postcode saved" in await page.locator("main").inner_text(), page.url
            following = f"#location-{rows[index + 1][1]}" if index + 1 < len(rows) else ""
            if following:
                assert page.url.endswith(following), page.url
            now = await _coverage(page)
            assert now > coverage, (name, coverage, now)
            coverage = now
            assert await page.locator(f"#location-{supplier_id}").count() == 0
        await plain.close()
        await context.close()
