"""The API docs load in headless Chromium from the app alone: nothing leaves 127.0.0.1, no CSP violation.

Swagger UI is vendored under /static/swagger-ui and started by /static/localvalue/swagger-init.js, so the page
works offline under the app's strict Content-Security-Policy (no inline script or style, no CDN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from procurement.app import create_app
from procurement.settings import Settings
from tests.conftest import free_port
from tests.support.browser import assert_local_only, chromium, new_context, serve

# Recorded in the page before any script runs: every CSP violation the browser reports.
CSP_LISTENER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
});
"""


@pytest.mark.browser
async def test_swagger_ui_loads_offline_under_the_csp(tmp_path: Path) -> None:
    settings = Settings(**{**Settings.from_env().__dict__, "database_url": f"sqlite+aiosqlite:///{tmp_path}/docs.db"})
    console: list[str] = []
    with serve(create_app(settings), free_port()) as served:
        async with chromium() as browser:
            context, requests = await new_context(browser)
            await context.add_init_script(CSP_LISTENER)
            page = await context.new_page()

            def log(message: Any) -> None:
                console.append(f"{message.type}: {message.text}")

            page.on("console", log)
            response = await page.goto(f"{served.url}/schema/swagger")
            assert response is not None
            assert response.status == 200
            await page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
            title = await page.inner_text(".swagger-ui .info .title")
            operations = await page.locator(".opblock").count()
            violations = await page.evaluate("() => window.__csp")
            # Open one operation: its responses (problem documents included) render without fetching anything.
            await page.locator(".opblock-summary").first.click()
            await page.wait_for_selector(".responses-wrapper", timeout=10_000)
            violations += await page.evaluate("() => window.__csp")
            await context.close()

    assert "Local Value" in title
    assert operations >= 59
    assert not violations, violations
    assert not [line for line in console if "Content Security Policy" in line], console
    assert any(url.endswith("/schema/openapi.json") for url in requests)
    assert any("/static/swagger-ui/swagger-ui-bundle-" in url for url in requests)
    assert_local_only(requests, "127.0.0.1")
