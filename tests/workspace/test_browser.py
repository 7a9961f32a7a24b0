"""Journeys in a real headless Chromium against the real server (``localvalue run``) on both databases, with the
bundled Contracts Finder sample imported and classified: a reviewer invited on the command line sets a password,
signs in, drills from the headline to its lines, downloads exactly those lines and signs out; an editor sees only
what editors may; a form without its CSRF token is refused; five wrong passwords lock the sixth try. Every page
passes axe-core (WCAG 2.2 AA) at 1280 px and 390 px, signed in and out, and fits a 390 px screen."""

from __future__ import annotations

import csv
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, copy_database, dispose_database, free_port, new_database
from tests.support.browser import (
    DESKTOP,
    assert_local_only,
    assert_title,
    chromium,
    horizontal_overflow,
    new_context,
    run_axe,
)
from tests.support.cli import LOCALVALUE, cli_env, localvalue, wait_for_http
from tests.support.paths import REPO_DIR

PHONE = 390
SAMPLE = REPO_DIR / "procurement" / "data" / "samples" / "contracts-finder-ocds-search-page-2022-10-20.json"
PASSWORD = "correct horse battery staple"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def check_page(page: Any, label: str) -> None:
    """axe at desktop and phone widths, and nothing scrolls sideways on the phone."""
    for width in (DESKTOP, PHONE):
        await page.set_viewport_size({"width": width, "height": 900})
        result = await run_axe(page)
        assert not result.violations, f"{label} at {width}px: {result.summary()}"
    overflow = await horizontal_overflow(page)
    assert not overflow, f"{label} scrolls sideways at {PHONE}px:\n  " + "\n  ".join(overflow)
    await page.set_viewport_size({"width": DESKTOP, "height": 900})


def invite(url: str, email: str, role: str, *org: str) -> str:
    result = localvalue("users", "invite", "--email", email, "--role", role, *org, database_url=url)
    link = result.stdout.strip()
    assert link.startswith("http://127.0.0.1:8000/set-password?token="), result.stdout
    return link


async def set_password_and_sign_in(page: Any, base: str, link: str, email: str) -> None:
    await page.goto(base + link.removeprefix("http://127.0.0.1:8000"))
    await assert_title(page, "Set your password - Local Value")
    await check_page(page, "set password")
    await page.get_by_label("New password").fill(PASSWORD)
    await page.get_by_label("Type the password again").fill(PASSWORD)
    async with page.expect_navigation():  # on a busy machine the title is read before the next page arrives
        await page.get_by_role("button", name="Set password").click()
    await assert_title(page, "Your password is set - Local Value")
    await check_page(page, "password set")
    await page.get_by_role("link", name="Sign in").click()
    await sign_in(page, email)


async def sign_in(page: Any, email: str, password: str = PASSWORD) -> int:
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    async with page.expect_response(lambda r: r.url.endswith("/sign-in") and r.request.method == "POST") as info:
        await page.get_by_role("button", name="Sign in").click()
    status: int = (await info.value).status
    await page.wait_for_load_state()
    return status


@pytest.fixture(params=BACKENDS)
async def site(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    templates: dict[str, tuple[str, str]],
) -> AsyncIterator[tuple[str, str]]:
    """A served database with the anchors, groups and the sample imported and classified: made once per worker
    with the real commands, then copied for each test (five commands per test were most of its set-up)."""
    backend = request.param
    key = f"site-{backend}"
    if key not in templates:
        made, made_name = await new_database(backend, tmp_path_factory.mktemp("site"), "site")
        templates[key] = (backend, made_name)
        localvalue("database", "upgrade", "--no-prompt", database_url=made)
        localvalue("seed", "anchors", database_url=made)
        localvalue("seed", "groups", database_url=made)
        localvalue("import", "file", str(SAMPLE), database_url=made)
        localvalue("classify", database_url=made)
    url, name = await copy_database(backend, templates[key][1], tmp_path, "workspace")
    server = None
    try:
        port = free_port()
        server = subprocess.Popen(
            [LOCALVALUE, "run", "--host", "127.0.0.1", "--port", str(port)],
            env=cli_env(url, LOCALVALUE_WORK_DIR=str(tmp_path)),
            cwd=REPO_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        assert wait_for_http(f"{base}/health").status_code == 200
        yield base, url
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        await dispose_database(backend, name)


async def test_reviewer_journey_from_headline_to_downloaded_lines(site: tuple[str, str], tmp_path: Path) -> None:
    base, url = site
    link = invite(url, "reviewer@bcc.example", "reviewer")
    async with chromium() as browser:
        context, requests = await new_context(browser)
        page = await context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

        await page.goto(f"{base}/workspace")
        assert page.url == f"{base}/sign-in?next=/workspace"
        await check_page(page, "sign in")
        await set_password_and_sign_in(page, base, link, "reviewer@bcc.example")
        assert page.url.startswith(f"{base}/workspace")
        await check_page(page, "dashboard (all anchors)")

        # Birmingham City Council, Q1 2022/23: the quarter of the demo statement.
        await page.get_by_label("Anchor or group").select_option(label="Birmingham City Council")
        await page.get_by_label("Quarter or financial year").select_option("2022Q1")
        await page.get_by_role("button", name="Show").click()
        assert "Birmingham City Council" in await page.locator("h1").inner_text()
        headline = await page.locator("#figure-local-share").inner_text()
        assert "Judged on" in headline
        total = (await page.locator("dt:text('Total value') + dd").inner_text()).split()[0]
        await check_page(page, "dashboard")

        await page.get_by_role("link", name="all lines behind this figure").click()
        assert page.url.startswith(f"{base}/workspace/lines?")
        assert "2022Q1" in page.url
        summary = await page.locator(".app-lines-summary p").first.inner_text()
        found = re.match(r"([\d,]+) lines?, counted value (£[\d,]+\.\d\d)", summary)
        assert found, summary
        assert found.group(2) == total
        await check_page(page, "lines")

        async with page.expect_download() as info:
            await page.get_by_role("link", name="CSV of these lines").click()
        download = await info.value
        target = tmp_path / download.suggested_filename
        await download.save_as(target)
        with target.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == int(found.group(1).replace(",", ""))
        pence = sum(int(r["allocated_pence"]) for r in rows)
        assert f"£{pence // 100:,}.{pence % 100:02d}" == total
        assert {r["period"] for r in rows} == {"2022Q1"}
        assert {r["basis"] for r in rows} == {"awarded"}

        await page.get_by_role("link", name="Data quality").first.click()
        await assert_title(page, "Data quality - Local Value")
        await check_page(page, "data quality")
        await page.get_by_role("link", name="Run 1", exact=True).click()
        await assert_title(page, "Import run 1 - Local Value")
        await check_page(page, "import run")

        await page.get_by_role("button", name="Sign out").click()
        assert "You have signed out." in await page.locator("main").inner_text()
        await page.goto(f"{base}/workspace")
        assert page.url == f"{base}/sign-in?next=/workspace"
        assert not problems, problems
        assert_local_only(requests)
        await context.close()


async def test_editors_csrf_and_rate_limit(site: tuple[str, str]) -> None:
    base, url = site
    editor_link = invite(url, "editor@bcc.example", "editor", "--org", "E08000025")
    admin_link = invite(url, "admin@lv.example", "admin")
    async with chromium() as browser:
        context, requests = await new_context(browser)
        page = await context.new_page()
        await page.goto(f"{base}/sign-in")
        await set_password_and_sign_in(page, base, editor_link, "editor@bcc.example")
        assert "Birmingham City Council" in await page.locator("h1").inner_text()
        menu = await page.locator("nav[aria-label='Menu']").inner_text()
        assert "Users" not in menu
        # An editor's scope list has their organisation only.
        assert await page.get_by_label("Anchor or group").locator("option").all_inner_texts() == [
            "Birmingham City Council"
        ]
        response = await page.goto(f"{base}/workspace/users")
        assert response is not None
        assert response.status == 403
        await check_page(page, "forbidden")
        response = await page.goto(f"{base}/workspace?scope=group:birmingham-and-solihull")
        assert response is not None
        assert response.status == 403
        # A spent set-password link says so.
        response = await page.goto(base + editor_link.removeprefix("http://127.0.0.1:8000"))
        assert response is not None
        assert response.status == 400
        await check_page(page, "link not valid")

        # A form whose CSRF field has been removed is refused.
        await page.goto(f"{base}/workspace")
        await page.evaluate("() => document.querySelector(\"form[action='/sign-out'] [name=_csrf_token]\").remove()")
        async with page.expect_response(lambda r: r.url.endswith("/sign-out")) as info:
            await page.get_by_role("button", name="Sign out").click()
        assert (await info.value).status == 403
        assert "security token was missing" in await page.locator("main").inner_text()
        await page.goto(f"{base}/workspace")
        await page.get_by_role("button", name="Sign out").click()

        # Five wrong passwords, then even the right one waits.
        for _ in range(5):
            assert await sign_in(page, "editor@bcc.example", "not the password") == 400
        await check_page(page, "sign in with an error")
        assert await sign_in(page, "editor@bcc.example") == 429
        assert "There have been 5 wrong passwords" in await page.locator(".nhsuk-error-summary").inner_text()
        await context.close()

        # An admin invites someone from the users page.
        context, more = await new_context(browser)
        page = await context.new_page()
        await page.goto(f"{base}/sign-in")
        await set_password_and_sign_in(page, base, admin_link, "admin@lv.example")
        await page.get_by_role("link", name="Users").first.click()
        await check_page(page, "users")
        await page.get_by_label("Email address").fill("new.reviewer@bcc.example")
        await page.get_by_label("Reviewer", exact=True).check()
        await page.get_by_role("button", name="Create invitation link").click()
        assert "/set-password?token=" in await page.locator("#invite-link").inner_text()
        await check_page(page, "invited")
        assert_local_only(requests + more)
        await context.close()
