"""Journeys in a real headless Chromium against the real server (``localvalue run``) on both databases, with the
bundled Contracts Finder sample imported and classified:

(1) a reviewer of Birmingham City Council signs in, opens the dashboard, drills from the headline to its lines,
resolves two suppliers of unknown location in the review queue and sees the coverage rise, previews the quarter
(web page and PDF), publishes it through the confirmation and signs out;

(2) Birmingham's editor enters a supplier's return with an evidence file on the procurement pages, and a reviewer,
in a browser without JavaScript, finds it on the commitments page and verifies it with a reason.

Every page added for these journeys passes axe-core (WCAG 2.2 AA) at 1280 px and 390 px and fits a 390 px screen.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.support.browser import assert_local_only, chromium, new_context
from tests.support.cli import localvalue
from tests.workspace.test_browser import check_page, invite, set_password_and_sign_in, sign_in, site

__all__ = ["site"]  # the running server, from the workspace journeys
pytestmark = [pytest.mark.browser, pytest.mark.slow]
QUARTER = "2025Q1"


def _api(base: str, url: str) -> httpx.Client:
    token = localvalue("tokens", "create", "--role", "admin", "--name", "journey setup", database_url=url).stdout
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token.strip()}"})


def _birmingham(api: httpx.Client) -> int:
    found = api.get("/organisations", params={"q": "Birmingham City Council", "anchor": "true"}).json()
    return int(next(o["id"] for o in found["items"] if o["name"] == "Birmingham City Council"))


def _contract(api: httpx.Client, buyer: int, supplier_name: str, value: str) -> int:
    supplier = api.post("/suppliers", json={"name": supplier_name})
    assert supplier.status_code == 201, supplier.text
    contract = api.post(
        "/contracts",
        json={
            "buyer_id": buyer,
            "title": f"{supplier_name} services",
            "value": value,
            "award_date": "2025-05-01",
            "start_date": "2025-05-01",
            "end_date": "2026-04-30",
            "cpv_codes": ["55524000"],
            "suppliers": [{"supplier_id": supplier.json()["id"]}],
        },
    )
    assert contract.status_code == 201, contract.text
    return int(contract.json()["id"])


def _percent(text: str) -> float:
    found = re.search(r"Judged on ([\d.]+)% of the value", text)
    assert found, text
    return float(found.group(1))


async def test_reviewer_resolves_unknowns_and_publishes_the_quarter(site: tuple[str, str]) -> None:
    base, url = site
    with _api(base, url) as api:
        bcc = _birmingham(api)
        for name, value in (("Unplaced Cleaning Ltd", "4000.00"), ("Unplaced Catering Ltd", "2000.00")):
            _contract(api, bcc, name, value)
    localvalue("classify", database_url=url)
    # `users invite --role reviewer --org` makes a reviewer of that organisation (its scope).
    link = invite(url, "publisher@bcc.example", "reviewer", "--org", "E08000025")
    async with chromium() as browser:
        context, requests = await new_context(browser)
        page = await context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        await page.goto(f"{base}/workspace")
        assert page.url == f"{base}/sign-in?next=/workspace"
        await set_password_and_sign_in(page, base, link, "publisher@bcc.example")

        # The dashboard, then from the headline to the lines behind it.
        await page.get_by_label("Anchor or group").select_option(label="Birmingham City Council")
        await page.get_by_label("Quarter or financial year").select_option(QUARTER)
        await page.get_by_role("button", name="Show").click()
        assert "Birmingham City Council" in await page.locator("h1").inner_text()
        before = _percent(await page.locator("#figure-local-share").inner_text())
        assert before == 0.0  # both suppliers' locations are unknown
        await page.get_by_role("link", name="all lines behind this figure").click()
        assert page.url.startswith(f"{base}/workspace/lines?")
        assert "Unplaced Cleaning Ltd" in await page.locator("main").inner_text()

        # The review queue: two delivery postcodes, the coverage rising each time.
        await page.goto(f"{base}/workspace/review?scope=anchor:{bcc}&period={QUARTER}")
        coverage = _percent(await page.locator("#figure-local-share").inner_text())
        for name, postcode in (("Unplaced Cleaning Ltd", "B5 5RS"), ("Unplaced Catering Ltd", "B6 4BN")):
            item = page.locator("[id^=location-].app-review-item", has_text=name)
            await item.get_by_label(f"Delivery postcode for {name}").fill(postcode)
            await item.get_by_label("Reason for the postcode").fill("invoice address checked")
            row_id = await item.get_attribute("id")
            await item.get_by_role("button", name="Set postcode").click()
            # htmx answers in place: the row says it is done and the coverage figure is swapped out of band.
            done = page.locator(f"#{row_id}.app-review-item--done")
            await done.wait_for()
            assert "Postcode saved" in await done.inner_text()
            now = _percent(await page.locator("#figure-local-share").inner_text())
            assert now > coverage, (name, coverage, now)
            coverage = now
        assert coverage == 100.0

        # Statements: the reviewer's own organisation first; this quarter was never published.
        await page.get_by_role("link", name="Statements", exact=True).click()
        assert "Birmingham City Council" in await page.locator("h1").inner_text()
        await page.get_by_label("Quarter", exact=True).select_option(QUARTER)
        await page.get_by_role("button", name="Show").click()
        assert (await page.locator("#statement-state").inner_text()).strip() == "Never published"
        await check_page(page, "statements, never published")

        # Preview: the PDF (fetched with the page's own session) and the web page.
        href = await page.get_by_role("link", name="Draft as PDF").get_attribute("href")
        pdf = await page.request.get(f"{base}{href}")
        assert pdf.status == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert (await pdf.body()).startswith(b"%PDF-")
        await page.get_by_role("link", name="Draft as a web page").click()
        assert "Draft: not published" in await page.locator("main").inner_text()
        assert "100.0%" in await page.locator("main").inner_text()
        await check_page(page, "draft statement")
        await page.get_by_role("link", name="Back to the statement").click()

        # Publish through the confirmation: the headline, its coverage and what is left out, then the button.
        await page.get_by_role("button", name="Check the figures and publish").click()
        assert (await page.locator("#confirm-coverage").inner_text()).strip() == "100.0%"
        assert "Left out of the figures" in await page.locator("main").inner_text()
        await check_page(page, "confirm publication")
        await page.get_by_role("button", name="Publish the statement").click()
        main = await page.locator("main").inner_text()
        assert "The statement is published" in main
        assert (await page.locator("#statement-state").inner_text()).strip() == "Published, version 1"
        assert "by publisher@bcc.example" in main
        assert "The live figures still match version 1" in main
        await check_page(page, "statements, published")
        # The public sees it.
        public = await page.request.get(f"{base}/public/statements?anchor_id={bcc}&period={QUARTER}")
        assert (await public.json())["total"] == 1

        await page.get_by_role("button", name="Sign out").click()
        assert "You have signed out." in await page.locator("main").inner_text()
        response = await page.goto(f"{base}/workspace/statements")
        assert page.url.startswith(f"{base}/sign-in?next=/workspace/statements")
        assert response is not None
        assert not problems, problems
        assert_local_only(requests)
        await context.close()


async def test_editor_enters_a_return_and_reviewer_verifies_it(site: tuple[str, str], tmp_path: Path) -> None:
    base, url = site
    localvalue("seed", "measures", database_url=url)
    with _api(base, url) as api:
        bcc = _birmingham(api)
        contract_id = _contract(api, bcc, "Digbeth Community Meals CIC", "9000.00")
        measures = api.get("/measures", params={"limit": 200, "framework": "local"}).json()["items"]
        jobs = next(x["id"] for x in measures if x["code"] == "LV-LOCAL-JOBS")
        commitment = api.post(
            f"/contracts/{contract_id}/commitments",
            json={"measure_id": jobs, "unit": "jobs", "targets": [{"period": QUARTER, "quantity": 5}]},
        )
        assert commitment.status_code == 201, commitment.text
    editor_link = invite(url, "editor@bcc.example", "editor", "--org", "E08000025")
    reviewer_link = invite(url, "checker@bcc.example", "reviewer", "--org", "E08000025")
    evidence = tmp_path / "timesheets.csv"
    evidence.write_text("week,hours\n1,37.5\n", encoding="utf-8")
    async with chromium() as browser:
        context, requests = await new_context(browser)
        page = await context.new_page()
        await page.goto(f"{base}/sign-in")
        await set_password_and_sign_in(page, base, editor_link, "editor@bcc.example")
        # The editor finds the commitment on the commitments page and enters the supplier's return there.
        await page.get_by_role("link", name="Commitments", exact=True).click()
        assert "Waiting for review" in await page.locator("main").inner_text()
        await check_page(page, "commitments (editor)")
        await page.get_by_role("link", name="Contract, commitments and returns").first.click()
        await page.get_by_role("link", name="Enter a return").first.click()
        await page.get_by_label("Quarter", exact=True).fill("Q1 2025/26")
        await page.get_by_label("Delivered (jobs)").fill("4")
        await page.get_by_label("Evidence note (optional)").fill("Timesheets for four local starters")
        await page.get_by_label("Evidence file (optional)").set_input_files(str(evidence))
        await page.get_by_role("button", name="Submit return").click()
        assert page.url.startswith(f"{base}/workspace/contracts/{contract_id}")
        await page.get_by_role("button", name="Sign out").click()
        await context.close()

        # The reviewer: axe needs JavaScript (it runs in the page), so the pages are checked in one browser and the
        # verdict is given in another with JavaScript off (plain links and forms).
        context, more = await new_context(browser)
        checker = await context.new_page()
        await checker.goto(f"{base}/sign-in")
        await set_password_and_sign_in(checker, base, reviewer_link, "checker@bcc.example")
        await checker.goto(f"{base}/workspace/commitments?scope=anchor:{bcc}")
        await check_page(checker, "commitments (reviewer)")
        card = checker.locator(".app-return", has_text="Digbeth Community Meals CIC services")
        await card.get_by_role("button", name="Verify").click()
        assert "Enter why you verify this return" in await checker.locator(".nhsuk-error-summary").inner_text()
        await check_page(checker, "commitments with an error")

        plain, plain_requests = await new_context(browser, javascript=False)
        page = await plain.new_page()
        await page.goto(f"{base}/sign-in")
        assert await sign_in(page, "checker@bcc.example") == 303
        await page.get_by_role("link", name="Commitments", exact=True).click()
        await page.get_by_label("Anchor or group").select_option(label="Birmingham City Council")
        await page.get_by_role("button", name="Show").click()
        main = await page.locator("main").inner_text()
        assert "Timesheets for four local starters" in main
        assert re.search(r"Q1 2025/26\s+5 jobs\s+4 jobs\s+0 jobs\s+4 jobs", main), main
        card = page.locator(".app-return", has_text="Digbeth Community Meals CIC services")
        async with page.expect_download() as info:
            await card.get_by_role("link", name="timesheets.csv").click()
        download = await info.value
        saved = tmp_path / "downloaded.csv"
        await download.save_as(saved)
        assert saved.read_text(encoding="utf-8") == "week,hours\n1,37.5\n"
        await card.get_by_label("Reason for your decision").fill("Timesheets match the contract's starters")
        await card.get_by_role("button", name="Verify").click()
        main = await page.locator("main").inner_text()
        assert "Return verified" in main
        assert re.search(r"Q1 2025/26\s+5 jobs\s+4 jobs\s+4 jobs\s+0 jobs", main), main
        assert "Timesheets match the contract's starters" in main
        await plain.close()

        await checker.reload()
        assert "Timesheets match the contract's starters" in await checker.locator("main").inner_text()
        await check_page(checker, "commitments, verified")
        assert_local_only(requests + more + plain_requests)
        await context.close()
