"""The vendored assets: every url() in the CSS resolves to a vendored file, nothing is remote, the
licences and versions are present, the files are the ones npm shipped, and /static serves them with the
right caching."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from procurement.openapi import SWAGGER_UI_VERSION
from procurement.web.setup import (
    HTMX_VERSION,
    NHSUK_FRONTEND_VERSION,
    STATIC_DIR,
    static_files_router,
)
from tests.support.browser import AXE_DIR
from tests.web.sample_app import create_sample_app

NHSUK_CSS = STATIC_DIR / "nhsuk" / f"nhsuk-frontend-{NHSUK_FRONTEND_VERSION}.min.css"
NHSUK_JS = STATIC_DIR / "nhsuk" / f"nhsuk-frontend-{NHSUK_FRONTEND_VERSION}.min.js"
HTMX_JS = STATIC_DIR / "htmx" / f"htmx-{HTMX_VERSION}.min.js"
OWN_CSS = STATIC_DIR / "localvalue" / "localvalue.css"
URL = re.compile(r"url\(\s*(['\"]?)([^)'\"]+)\1\s*\)")


def css_urls(css: Path) -> list[str]:
    return [m.group(2) for m in URL.finditer(css.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("css", [NHSUK_CSS, OWN_CSS], ids=lambda p: p.name)
def test_every_css_url_resolves_to_a_vendored_file(css: Path) -> None:
    urls = css_urls(css)
    if css == NHSUK_CSS:
        assert len(urls) >= 4  # the icons; if this drops to 0 the regex or the file is wrong
    for url in urls:
        if url.startswith("data:"):
            continue
        assert "://" not in url, f"{css.name} loads {url} from elsewhere"
        assert not url.startswith("//"), f"{css.name} loads {url} from elsewhere"
        assert not url.startswith("/"), f"{css.name}: {url} is site-absolute; it must be relative to the CSS"
        target = (css.parent / url.split("#")[0].split("?")[0]).resolve()
        assert target.is_relative_to(STATIC_DIR), url
        assert target.is_file(), f"{css.name}: url({url}) does not resolve to a vendored file"


def test_no_remote_references_or_imports_in_vendored_css() -> None:
    css = NHSUK_CSS.read_text(encoding="utf-8")
    assert "@font-face" not in css
    assert "@import" not in css
    assert "assets.nhs.uk" not in css
    assert "sourceMappingURL" not in css


def test_init_module_imports_the_vendored_nhsuk_module() -> None:
    init = (STATIC_DIR / "localvalue" / "init.js").read_text()
    imports = re.findall(r'from\s+"([^"]+)"', init)
    assert imports == [f"../nhsuk/{NHSUK_JS.name}"]
    assert (STATIC_DIR / "localvalue" / imports[0]).resolve() == NHSUK_JS
    assert "export{" in NHSUK_JS.read_text().replace(" ", "")
    assert "initAll" in NHSUK_JS.read_text()


def _version(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    meta: dict[str, str] = {}
    files: dict[str, str] = {}
    for line in (folder / "VERSION").read_text().splitlines():
        if line.startswith("  "):
            name, digest = line.split()
            files[name] = digest
        elif ": " in line:
            key, value = line.split(": ", 1)
            meta[key] = value
    return meta, files


@pytest.mark.parametrize(
    ("folder", "package", "version", "licence_word"),
    [
        (STATIC_DIR / "nhsuk", "nhsuk-frontend", NHSUK_FRONTEND_VERSION, "MIT License"),
        (STATIC_DIR / "htmx", "htmx.org", HTMX_VERSION, "Zero-Clause BSD"),
        (AXE_DIR, "axe-core", None, "Mozilla Public License, version 2.0"),
        (STATIC_DIR / "swagger-ui", "swagger-ui-dist", SWAGGER_UI_VERSION, "Apache License"),
    ],
    ids=["nhsuk", "htmx", "axe", "swagger-ui"],
)
def test_vendored_folder_has_licence_version_and_only_listed_files(
    folder: Path, package: str, version: str | None, licence_word: str
) -> None:
    meta, files = _version(folder)
    assert meta["package"] == package
    if version is not None:
        assert meta["version"] == version
    assert meta["integrity"].startswith("sha512-")
    assert re.fullmatch(r"[0-9a-f]{40}", meta["shasum"])
    assert licence_word in (folder / "LICENSE").read_text()
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"VERSION"}
    assert on_disk == set(files), "files differ from VERSION"
    for name, digest in files.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, f"{name} changed since vendoring"
    assert not [n for n in on_disk if n.endswith((".map", ".scss", ".njk", ".ts", ".mjs"))]


def test_static_tree_is_small() -> None:
    """The pages' own assets stay small; Swagger UI (API docs only, loaded by no page) is bounded on its own."""
    swagger = STATIC_DIR / "swagger-ui"
    files = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    pages = sum(p.stat().st_size for p in files if swagger not in p.parents)
    docs = sum(p.stat().st_size for p in files if swagger in p.parents)
    assert pages < 600_000, f"procurement/web/static (without swagger-ui) is {pages} bytes"
    assert docs < 2_200_000, f"procurement/web/static/swagger-ui is {docs} bytes"


def test_static_files_are_served_with_cache_policy() -> None:
    app = Litestar(route_handlers=[static_files_router()])
    with TestClient(app) as client:
        css = client.get(f"/static/nhsuk/{NHSUK_CSS.name}")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert "immutable" in css.headers["cache-control"]
        assert "max-age=31536000" in css.headers["cache-control"]
        js = client.get(f"/static/htmx/{HTMX_JS.name}")
        assert "immutable" in js.headers["cache-control"]
        assert "javascript" in js.headers["content-type"]
        icon = client.get("/static/nhsuk/assets/images/nhsuk-icon-cross.svg")
        assert icon.headers["content-type"].startswith("image/svg+xml")
        assert set(icon.headers["cache-control"].split(", ")) == {"public", "max-age=86400"}
        own = client.get("/static/localvalue/localvalue.css")
        assert own.headers["cache-control"] == "no-cache"
        assert client.head("/static/localvalue/init.js").status_code == 200
        assert client.get("/static/nope.css").status_code == 404
        assert client.get("/static/../setup.py").status_code == 404
        assert client.get("/static/%2e%2e/setup.py").status_code == 404


def test_forms_carry_the_csrf_token_and_pages_link_only_local_assets() -> None:
    with TestClient(create_sample_app()) as client:
        page = client.get("/form")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        assert token.group(1)
        assert 'lang="en-GB"' in page.text
        assert '<main class="nhsuk-main-wrapper" id="maincontent">' in page.text
        assert 'href="#maincontent"' in page.text
        assert "Open Government Licence v3.0" in page.text
        assert 'href="/accessibility-statement">Accessibility statement</a>' in page.text
        assert f'<script defer src="/static/htmx/{HTMX_JS.name}"></script>' in page.text
        assert f'href="/static/nhsuk/{NHSUK_CSS.name}"' in page.text
        # A GET form (the search on /) has no CSRF field.
        home = client.get("/")
        assert 'action="/form" method="get"' in home.text
        assert home.text.count("_csrf_token") == 0
