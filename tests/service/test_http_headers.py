"""Security headers on every kind of response, CORS only for public reads, and revalidated published files."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from procurement.app import create_app
from procurement.headers import CONTENT_SECURITY_POLICY
from procurement.settings import Settings
from tests.conftest import Database
from tests.support.api import bearer, make_org, make_token

ORIGIN = {"Origin": "https://dashboard.example"}


def assert_security_headers(response: Any) -> None:
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    policy = dict(part.strip().split(" ", 1) for part in headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in headers  # only behind LOCALVALUE_HSTS=true


@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/", 200, "text/html"),
        ("/accessibility-statement", 200, "text/html"),
        ("/schema/swagger", 200, "text/html"),
        ("/health", 200, "application/json"),
        ("/schema/openapi.json", 200, "application/vnd.oai.openapi+json"),
        ("/organisations/424242", 404, "application/problem+json"),
        ("/nowhere", 404, "application/problem+json"),
        ("/contracts", 401, "application/problem+json"),
        ("/static/localvalue/localvalue.css", 200, "text/css"),
        ("/static/swagger-ui/swagger-ui-bundle-5.36.0.js", 200, "text/javascript"),
    ],
)
async def test_every_kind_of_response_has_the_security_headers(
    db: Database, app_client: Any, path: str, status: int, content_type: str
) -> None:
    response = await app_client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith(content_type)
    assert_security_headers(response)


async def test_pages_have_no_inline_script_or_style(db: Database, app_client: Any) -> None:
    for path in ("/", "/schema/swagger", "/schema"):
        text = (await app_client.get(path)).text
        assert "<style" not in text, path
        assert " style=" not in text, path
        for tag in text.split("<script")[1:]:
            opening = tag.split(">", 1)[0]
            assert " src=" in f" {opening}", f"inline script on {path}"


async def test_hsts_only_when_configured(db: Database) -> None:
    settings = Settings(**{**Settings.from_env().__dict__, "database_url": db.url, "hsts": True})
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/health")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_cors_only_on_public_reads(db: Database, session: Any, app_client: Any) -> None:
    await make_org(session, "Walsall Healthcare NHS Trust")
    token = bearer(await make_token(session, "admin"))
    preflight = {**ORIGIN, "Access-Control-Request-Method": "GET"}

    for path in ("/public/statements", "/organisations", "/health"):
        allowed = await app_client.options(path, headers=preflight)
        assert allowed.status_code == 204, path
        assert allowed.headers["access-control-allow-origin"] == "*"
        assert "GET" in allowed.headers["access-control-allow-methods"]
        read = await app_client.get(path, headers=ORIGIN)
        assert read.headers["access-control-allow-origin"] == "*"

    for path in ("/contracts", "/suppliers", "/metrics"):
        refused = await app_client.options(path, headers=preflight)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "access-control-allow-origin" not in refused.headers
        authenticated = await app_client.get(path, headers={**ORIGIN, **token})
        assert "access-control-allow-origin" not in authenticated.headers, path

    write = await app_client.options("/organisations", headers={**ORIGIN, "Access-Control-Request-Method": "POST"})
    assert write.status_code == 403
    assert "access-control-allow-origin" not in write.headers


async def test_answers_sent_again_from_memory_have_their_headers_once_and_none_of_another_request(
    db: Database, session: Any, app_client: Any
) -> None:
    """/health, the public listing and a warm /metrics answer keep their response and send it again: each sending
    carries the security headers once, and the CORS headers of a cross-origin read never stay on it."""
    org = await make_org(session, "Walsall Healthcare NHS Trust", is_anchor=True)
    token = bearer(await make_token(session, "admin"))
    public = ("/health", "/public/statements")
    for path, headers in [(p, {}) for p in public] + [(f"/metrics?anchor_id={org.id}", token)]:
        first = await app_client.get(path, headers=headers)
        crossed = await app_client.get(path, headers={**headers, **ORIGIN})
        again = await app_client.get(path, headers=headers)
        for response in (first, crossed, again):
            assert response.status_code == 200, path
            assert_security_headers(response)
            names = [name.lower() for name, _ in response.headers.multi_items()]
            assert len(names) == len(set(names)), (path, names)
        assert again.content == first.content
        assert ("access-control-allow-origin" in crossed.headers) is (path in public)
        assert "access-control-allow-origin" not in again.headers, path
        assert "access-control-expose-headers" not in again.headers, path
