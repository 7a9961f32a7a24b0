"""A real headless Chromium, without JavaScript, opens the public home page served by the running app, follows an
anchor, downloads the PDF and opens the HTML statement; axe-core finds no WCAG 2.2 AA violation on the home page,
the anchor's page or the accessible HTML statement at 1280, 390 and 320 px, and nothing scrolls sideways."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from tests.conftest import BACKENDS, dispose_database, free_port, new_database
from tests.support.browser import DESKTOP, NARROW, assert_title, horizontal_overflow, new_context, run_axe
from tests.support.cli import LOCALVALUE, cli_env, localvalue, wait_for_http
from tests.support.paths import REPO_DIR

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SAMPLE = REPO_DIR / "procurement" / "data" / "samples" / "contracts-finder-ocds-search-page-2022-10-20.json"


PHONE = 390


async def _accessible(page: Any, label: str) -> None:
    result = await run_axe(page)
    assert not result.violations, f"{label}: {result.summary()}"
    overflow = await horizontal_overflow(page)
    assert not overflow, f"{label} scrolls sideways:\n" + "\n".join(overflow)


@pytest.mark.browser
@pytest.mark.parametrize("backend", BACKENDS)
async def test_public_page_link_and_pdf_download(backend: str, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    url, name = await new_database(backend, tmp_path, "browser")
    server = None
    try:
        localvalue("database", "upgrade", "--no-prompt", database_url=url)
        localvalue("seed", "anchors", database_url=url)
        localvalue("import", "file", str(SAMPLE), database_url=url)
        localvalue("classify", database_url=url)
        published = localvalue(
            "statements",
            "publish",
            "--anchor",
            "E08000025",
            "--quarter",
            "2022Q1",
            "--by",
            "browser test",
            database_url=url,
        )
        assert "published statement" in published.stdout

        port = free_port()
        server = subprocess.Popen(
            [LOCALVALUE, "run", "--host", "127.0.0.1", "--port", str(port)],
            env=cli_env(url),
            cwd=REPO_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        assert wait_for_http(f"{base}/health").status_code == 200

        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            context = await browser.new_context(accept_downloads=True, java_script_enabled=False)
            page = await context.new_page()
            await page.goto(f"{base}/")
            await assert_title(page, "Local spend by anchor institution - Local Value")
            row = page.locator("#anchors tbody tr", has_text="Birmingham City Council")
            assert await row.count() == 1
            home_row = " ".join((await row.inner_text()).split())
            # The anchor's latest published local share, from the frozen snapshot (status unknown: still a share).
            assert home_row.startswith("Birmingham City Council Q1 2022/23"), home_row
            await row.get_by_role("link", name="Birmingham City Council").click()
            await assert_title(page, "Birmingham City Council: published statements - Local Value")
            assert await page.locator("h1").inner_text() == "Birmingham City Council"
            async with page.expect_download() as info:
                await page.get_by_role("link", name="PDF").first.click()
            download = await info.value
            target = tmp_path / download.suggested_filename
            await download.save_as(target)

            # Follow the JSON link too: it is the frozen figures the PDF was rendered from.
            await page.get_by_role("link", name="JSON").first.click()
            body = await page.locator("body").inner_text()

            # The home page, the anchor's page and the accessible statement reached from it: WCAG 2.2 AA.
            for width in (DESKTOP, PHONE, NARROW):
                checked, _requests = await new_context(browser, width=width)
                tab = await checked.new_page()
                await tab.goto(f"{base}/", wait_until="networkidle")
                await _accessible(tab, f"home at {width}px")
                await tab.get_by_role("link", name="Birmingham City Council").first.click()
                await tab.wait_for_load_state("networkidle")
                await _accessible(tab, f"anchor page at {width}px")
                await tab.get_by_role("link", name="Web page").first.click()
                await tab.wait_for_load_state("networkidle")
                assert tab.url.endswith(".html")
                heading = await tab.locator("h1").inner_text()
                assert heading == "Birmingham City Council: Q1 2022/23 (1 April to 30 June 2022)"
                html_text = " ".join((await tab.locator("main").inner_text()).split())
                await _accessible(tab, f"statement at {width}px")
                # A mistyped address: a page, not the API's problem document.
                missing = await tab.goto(f"{base}/anchors-typo", wait_until="networkidle")
                assert missing is not None
                assert missing.status == 404
                await assert_title(tab, "Page not found - Local Value")
                await _accessible(tab, f"page not found at {width}px")
                await checked.close()
            await browser.close()

        assert download.suggested_filename.endswith("-2022Q1.pdf")
        text = " ".join(p.extract_text() or "" for p in PdfReader(target).pages)
        assert "Birmingham City Council" in text
        assert "Q1 2022/23" in text
        assert '"figures_sha256"' in body
        assert "Building Services NOW" in body or '"total_value_pence":187500000' in body
        # The make demo statement: status unknown for all the value, so SME and VCSE are not known, never 0.0%.
        assert "It rests on 1 contract with 1 supplier: Building Services NOW." in html_text
        assert "SME share not known (judged on 0.0% of the value)" in html_text
        assert "SME share 0.0%" not in html_text
        assert "Birmingham (the council's own area)" in html_text
        assert "Words used in this statement" in html_text
        assert "at /public/statements/" in " ".join(text.split())
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        await dispose_database(backend, name)
