"""Drive the system Chromium headless through Playwright, and check pages with axe-core.

    async with chromium() as browser:
        context, requests = await new_context(browser, width=320)
        page = await context.new_page()
        await page.goto(url)
        result = await run_axe(page)
        assert not result.violations, result.summary()
        assert_local_only(requests, "127.0.0.1")

axe-core is vendored in tests/support/axe (MPL-2.0, see VERSION there); it is injected into the page by
Playwright (not through a <script> element), so it works under the app's Content-Security-Policy.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Request

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
)
AXE_DIR = Path(__file__).resolve().parent / "axe"
AXE_JS = AXE_DIR / "axe.min.js"
WCAG22_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
DESKTOP = 1280
NARROW = 320


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """The system Chromium, headless (Playwright's own browser download cannot work here)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            await browser.close()


async def new_context(
    browser: Browser, *, width: int = DESKTOP, height: int = 900, javascript: bool = True
) -> tuple[BrowserContext, list[str]]:
    """A fresh context at the given viewport width, and the live list of every URL it requests."""
    context = await browser.new_context(
        viewport={"width": width, "height": height}, java_script_enabled=javascript, locale="en-GB"
    )
    requests: list[str] = []

    def log(request: Request) -> None:
        requests.append(request.url)

    context.on("request", log)
    return context, requests


def assert_local_only(urls: Sequence[str], host: str = "127.0.0.1") -> None:
    """Every network request went to ``host`` (data: and blob: URLs are not requests to anywhere)."""
    remote = [u for u in urls if urlsplit(u).scheme not in {"data", "blob", "about"} and urlsplit(u).hostname != host]
    assert not remote, f"{len(remote)} request(s) left {host}:\n  " + "\n  ".join(remote)


@dataclass(frozen=True)
class AxeNode:
    target: str
    html: str
    summary: str


@dataclass(frozen=True)
class AxeViolation:
    id: str
    impact: str | None
    help: str
    help_url: str
    tags: tuple[str, ...]
    nodes: tuple[AxeNode, ...]


@dataclass(frozen=True)
class AxeResult:
    url: str
    violations: tuple[AxeViolation, ...]
    passes: int
    incomplete: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        """A readable account of every violation, for an assertion message."""
        if not self.violations:
            return f"axe: no violations on {self.url} ({self.passes} rules passed)"
        lines = [f"axe: {len(self.violations)} violation(s) on {self.url}"]
        for v in self.violations:
            lines.append(f"- [{v.impact}] {v.id}: {v.help} ({v.help_url})")
            for node in v.nodes[:5]:
                lines.append(f"    at {node.target}: {node.html[:160]}")
                lines.extend(f"      {line}" for line in node.summary.splitlines() if line.strip())
            if len(v.nodes) > 5:
                lines.append(f"    ... and {len(v.nodes) - 5} more")
        return "\n".join(lines)


def _violation(raw: dict[str, Any]) -> AxeViolation:
    nodes = tuple(
        AxeNode(
            target=" ".join(str(t) for t in n.get("target", [])),
            html=n.get("html", ""),
            summary=n.get("failureSummary", ""),
        )
        for n in raw.get("nodes", [])
    )
    return AxeViolation(
        id=raw["id"],
        impact=raw.get("impact"),
        help=raw.get("help", ""),
        help_url=raw.get("helpUrl", ""),
        tags=tuple(raw.get("tags", [])),
        nodes=nodes,
    )


# True once no item of the header's navigation list sticks out of the list (the header has finished moving them).
HEADER_SETTLED = """() => {
  const list = document.querySelector('.nhsuk-header__navigation-list');
  if (!list) return true;
  const edge = list.getBoundingClientRect().right + 1;
  return [...list.children].every((item) => item.getBoundingClientRect().right <= edge);
}"""


async def run_axe(page: Page, tags: Sequence[str] = WCAG22_AA, exclude: Sequence[str] = ()) -> AxeResult:
    """Inject the vendored axe-core into the page (once) and run it against WCAG 2.2 A and AA.

    It first waits three animation frames: after a resize the NHS.UK header's ResizeObserver asks for a frame in
    which it moves overflowing menu items into "More", and axe run before that sees them spill onto the grey page
    background.
    """
    await page.evaluate(
        "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(r))))"
    )
    await page.wait_for_function(HEADER_SETTLED, timeout=5000)
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    options = {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]}
    context: dict[str, Any] = {"include": [["html"]], "exclude": [[selector] for selector in exclude]}
    raw = await page.evaluate("([context, options]) => axe.run(context, options)", [context, options])
    return AxeResult(
        url=page.url,
        violations=tuple(_violation(v) for v in raw["violations"]),
        passes=len(raw.get("passes", [])),
        incomplete=tuple(i["id"] for i in raw.get("incomplete", [])),
    )


async def horizontal_overflow(page: Page) -> list[str]:
    """Elements that stick out past the right edge of the viewport (empty when nothing scrolls sideways).

    Content inside a scrolling container (a wide table in its own scroll region) does not count.
    """
    return list(
        await page.evaluate(
            """() => {
              const doc = document.documentElement;
              if (doc.scrollWidth <= doc.clientWidth) return [];
              const width = doc.clientWidth;
              const scrolls = (el) => {
                for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
                  const o = getComputedStyle(p).overflowX;
                  if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
                }
                return false;
              };
              const out = [`page is ${doc.scrollWidth}px wide in a ${width}px viewport`];
              for (const el of document.body.querySelectorAll('*')) {
                const r = el.getBoundingClientRect();
                if (r.right > width + 1 && !scrolls(el)) {
                  const id = el.id ? '#' + el.id : '';
                  const name = typeof el.className === 'string' ? el.className.trim() : '';
                  const cls = name ? '.' + name.split(/\\s+/).join('.') : '';
                  out.push(`${el.tagName.toLowerCase()}${id}${cls} right=${Math.round(r.right)}`);
                }
              }
              return out.slice(0, 20);
            }"""
        )
    )


@dataclass
class ServedApp:
    url: str
    server: Any
    thread: threading.Thread


@contextmanager
def serve(app: Any, port: int, host: str = "127.0.0.1") -> Iterator[ServedApp]:
    """Run an ASGI app under uvicorn in a background thread; stop it on exit."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.05)
    try:
        yield ServedApp(url=f"http://{host}:{port}", server=server, thread=thread)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


async def assert_title(page: Page, title: str | re.Pattern[str]) -> None:
    """The page's title becomes ``title`` (retrying: after a click the next page may still be loading)."""
    from playwright.async_api import expect

    await expect(page).to_have_title(title)
