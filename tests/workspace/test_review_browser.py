"""The review queue in a real headless Chromium against the real server, on both databases: Birmingham's editor
signs in, opens the queue, sets the delivery postcode of two suppliers whose location was unknown (plain forms,
keyboard only) and sees the coverage rise each time; axe-core finds no WCAG 2.2 AA violation at 1280 and 390 px
and nothing scrolls sideways on the phone."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.browser import chromium, new_context
from tests.support.cli import localvalue
from tests.workspace.test_browser import check_page, invite, set_password_and_sign_in, site

__all__ = ["site"]  # the running server, from the workspace journeys
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _unknown_suppliers_for_birmingham(base: str, url: str) -> int:
    """Two suppliers with no postcode win Birmingham contracts in Q1 2025/26 (through the API); its id."""
    token = localvalue("tokens", "create", "--role", "admin", "--name", "review setup", database_url=url).stdout
    headers = {"Authorization": f"Bearer {token.strip()}"}
    with httpx.Client(base_url=base, headers=headers) as api:
        found = api.get("/organisations", params={"q": "Birmingham City Council", "anchor": "true"}).json()
        bcc = next(o["id"] for o in found["items"] if o["name"] == "Birmingham City Council")
        for name, value in (("Unplaced Cleaning Ltd", "4000.00"), ("Unplaced Catering Ltd", "2000.00")):
            supplier = api.post("/suppliers", json={"name": name})
            assert supplier.status_code == 201, supplier.text
            contract = api.post(
                "/contracts",
                json={
                    "buyer_id": bcc,
                    "title": f"{name} services",
                    "value": value,
                    "award_date": "2025-05-01",
                    "cpv_codes": ["55524000"],
                    "suppliers": [{"supplier_id": supplier.json()["id"]}],
                },
            )
            assert contract.status_code == 201, contract.text
    return int(bcc)


def _percent(text: str) -> float:
    found = re.search(r"Judged on ([\d.]+)% of the value", text)
    assert found, text
    return float(found.group(1))


async def test_editor_resolves_two_unknown_suppliers(site: tuple[str, str]) -> None:
    base, url = site
    bcc = _unknown_suppliers_for_birmingham(base, url)
    localvalue("classify", database_url=url)
    # Birmingham's editor: `users invite` gives a reviewer no organisations to review (nor offers
    # cross_reviewer), so a reviewer's postcode would wait as a change request; the editor's applies at once.
    link = invite(url, "queue@bcc.example", "editor", "--org", "E08000025")
    async with chromium() as browser:
        context, _ = await new_context(browser)
        page = await context.new_page()
        await page.goto(f"{base}/workspace")
        await set_password_and_sign_in(page, base, link, "queue@bcc.example")
        await page.goto(f"{base}/workspace/review?scope=anchor:{bcc}&period=2025Q1")
        await check_page(page, "review queue")
        coverage = _percent(await page.locator("#figure-local-share").inner_text())
        for name, postcode in (("Unplaced Cleaning Ltd", "B5 5RS"), ("Unplaced Catering Ltd", "B6 4BN")):
            item = page.locator(".app-review-item", has_text=name)
            await item.get_by_label(f"Delivery postcode for {name}").fill(postcode)
            await item.get_by_label("Reason").fill("invoice address checked")
            async with page.expect_navigation():
                await item.get_by_label("Reason").press("Enter")  # keyboard only: Enter submits the row's form
            assert "Postcode saved" in await page.locator("main").inner_text(), page.url
            now = _percent(await page.locator("#figure-local-share").inner_text())
            assert now > coverage, (name, coverage, now)
            coverage = now
            assert await page.locator(".app-review-item", has_text=name).count() == 0
        assert coverage == 100.0
        assert "No supplier with contract value" in await page.locator("main").inner_text()
        await check_page(page, "review queue, resolved")
        await context.close()
