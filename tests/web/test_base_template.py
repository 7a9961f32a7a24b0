"""The page frame, every macro and both charts in a real headless Chromium: axe-core (WCAG 2.2 AA) finds
nothing at 1280 px and 320 px, nothing scrolls sideways at 320 px, nothing is fetched from anywhere but
127.0.0.1, and a strict Content-Security-Policy blocks nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import free_port
from tests.support.browser import (
    DESKTOP,
    NARROW,
    ServedApp,
    assert_local_only,
    assert_title,
    chromium,
    horizontal_overflow,
    new_context,
    run_axe,
    serve,
)
from tests.web.sample_app import create_sample_app

PAGES = ("/", "/form", "/form?errors=true", "/accessibility-statement")
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site() -> Iterator[ServedApp]:
    with serve(create_sample_app(), free_port()) as served:
        yield served


@pytest.mark.parametrize("width", [DESKTOP, NARROW])
async def test_pages_pass_axe_and_fit(site: ServedApp, width: int) -> None:
    async with chromium() as browser:
        context, requests = await new_context(browser, width=width)
        page = await context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        for path in PAGES:
            response = await page.goto(site.url + path, wait_until="networkidle")
            assert response is not None
            assert response.status == 200, path
            result = await run_axe(page)
            assert not result.violations, result.summary()
            if width == NARROW:
                overflow = await horizontal_overflow(page)
                assert not overflow, f"{path} scrolls sideways at {width}px:\n  " + "\n  ".join(overflow)
            # The vendored JavaScript ran (module init and htmx), under the strict CSP.
            classes = await page.evaluate("() => document.body.className")
            assert "nhsuk-frontend-supported" in classes, path
            assert await page.evaluate("() => typeof window.htmx === 'object'"), path
            # The vendored CSS applied: the NHS blue header.
            header_bg = await page.evaluate(
                "() => getComputedStyle(document.querySelector('.nhsuk-header')).backgroundColor"
            )
            assert header_bg == "rgb(0, 94, 184)", path
        await context.close()
    assert not problems, "\n".join(problems)  # includes any Content-Security-Policy refusal
    assert_local_only(requests, "127.0.0.1")
    assert any(u.endswith(".min.css") for u in requests)
    assert any(u.endswith("axe.min.js") for u in requests) is False  # axe is injected, never fetched


async def test_pages_work_without_javascript(site: ServedApp) -> None:
    async with chromium() as browser:
        context, requests = await new_context(browser, width=DESKTOP, javascript=False)
        page = await context.new_page()
        await page.goto(site.url + "/", wait_until="networkidle")
        await assert_title(page, "Sample statement - Local Value")
        assert await page.get_by_role("link", name="Skip to main content").count() == 1
        assert await page.get_by_role("navigation", name="Menu").get_by_role("link", name="Suppliers").is_visible()
        assert await page.get_by_role("table", name="Suppliers paid in Q1 2025/26").is_visible()
        assert await page.get_by_role("img", name="Share of spend by supplier location, Q1 2025/26").count() == 1
        await page.get_by_role("link", name="Page 4").click()
        assert page.url.endswith("/?anchor=RBK&page=4")
        await page.goto(site.url + "/form?errors=true")
        await assert_title(page, "Error: Add a supplier - Local Value")
        await page.get_by_role("link", name="Enter the supplier's name").click()
        assert page.url.endswith("#supplier-name")
        await context.close()
    assert_local_only(requests, "127.0.0.1")


async def test_no_inline_script_or_style_in_markup(site: ServedApp) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=site.url) as client:
        for path in PAGES:
            html = (await client.get(path)).text
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline <script> on {path}"
            assert "<style" not in html, f"<style> element on {path}"
            assert not re.search(r"\sstyle=", html), f"style= attribute on {path}"
            assert not re.search(r"\son[a-z]+=", html), f"inline event handler on {path}"
            # Only links (<a href>) may point off the site; nothing the page loads may.
            loads = re.findall(r'<(?:link|script|img|iframe|source)\b[^>]*\b(?:href|src)="([^"]+)"', html)
            assert loads, path
            assert all(u.startswith("/static/") for u in loads), f"{path} loads {loads}"


async def test_harness_catches_violations_and_overflow() -> None:
    """The checks above can fail: a page with an unlabelled image, no lang and a too-wide box."""
    async with chromium() as browser:
        context, requests = await new_context(browser, width=NARROW)
        page = await context.new_page()
        await page.set_content(
            '<html><head><title>t</title></head><body><main><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
            '<div style="width:600px">wide</div><p style="color:#bbb">faint</p></main></body></html>'
        )
        result = await run_axe(page)
        ids = {v.id for v in result.violations}
        assert {"image-alt", "html-has-lang", "color-contrast"} <= ids, result.summary()
        assert "image-alt" in result.summary()
        overflow = await horizontal_overflow(page)
        assert overflow
        assert overflow[0].startswith("page is 6")
        assert any(line.startswith("div right=") for line in overflow[1:])
        await context.close()
    assert_local_only(requests)
    with pytest.raises(AssertionError, match="1 request"):
        assert_local_only(["http://127.0.0.1:1/", "https://cdn.example/x.js"])
