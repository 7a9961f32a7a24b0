"""The data-quality page with a run whose process died, in real Chromium: the warning and the run's row pass axe
at desktop and phone widths."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from procurement import models as m
from tests.support.browser import chromium, new_context
from tests.workspace.test_browser import check_page, invite, set_password_and_sign_in, site

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["site"]


async def test_a_stopped_run_on_the_data_quality_page_is_accessible(site: tuple[str, str]) -> None:
    base, url = site
    # The sample import's run, as a killed process leaves it: still running, part-way, nobody holding the lock.
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            update(m.ImportRun).values(
                status="running", finished_at=None, checkpoint={"file_index": 0, "item_index": 50}
            )
        )
    await engine.dispose()
    link = invite(url, "rev@nhs.net", "reviewer")
    async with chromium() as browser:
        context, _ = await new_context(browser)
        page: Any = await context.new_page()
        await set_password_and_sign_in(page, base, link, "rev@nhs.net")
        await page.goto(f"{base}/workspace/imports")
        callout = page.locator(".nhsuk-warning-callout", has_text="stopped without finishing")
        assert "Resume it with localvalue import resume 1" in " ".join((await callout.inner_text()).split())
        await check_page(page, "data quality with a stopped run")
        await page.goto(f"{base}/workspace/imports/1")
        assert "interrupted: its process stopped" in await page.inner_text("main")
        await check_page(page, "a stopped run")
