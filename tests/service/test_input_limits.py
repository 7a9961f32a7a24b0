"""Each input that once gave a 500 (or stored nonsense) now gets a 4xx problem document, on both databases.

Issue 13 listed them: ids beyond 64 bits, NUL bytes (PostgreSQL cannot store them), JSON nested 1,000 deep,
decimal exponents that overflow or underflow, a name of spaces, lone surrogates, and `q=%` matching everything.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Database
from tests.support.api import bearer, fingerprint, make_org, make_supplier, make_token

HTTP_PHRASES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 413: "Content Too Large",
                415: "Unsupported Media Type", 422: "Unprocessable Content", 429: "Too Many Requests"}  # fmt: skip
TOO_BIG = "9223372036854775808"  # 2**63: one more than the largest 64-bit id


def assert_problem(response: Any, status: int, fragment: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    # No problem type of our own: RFC 9457's "about:blank", titled with the status's RFC 9110 phrase.
    assert (body["type"], body["title"]) == ("about:blank", HTTP_PHRASES[status])
    assert "Traceback" not in response.text
    assert fragment in body["detail"], body
    return body


ANONYMOUS_READS = [
    ("id beyond 64 bits", f"/organisations/{TOO_BIG}", 400, "org_id"),
    ("negative id", "/organisations/-1", 400, "org_id"),
    ("statement file id beyond 64 bits", "/public/statements/99999999999999999999.pdf", 404, "No statement"),
    ("statement id just beyond 64 bits", f"/public/statements/{TOO_BIG}.pdf", 404, TOO_BIG),
    ("query id beyond 64 bits", f"/public/statements?anchor_id={TOO_BIG}", 400, "anchor_id"),
    ("NUL in the query", "/organisations?q=a%00b", 400, "NUL"),
    ("NUL in an id", "/organisations/1%00", 404, ""),
    ("NUL in a path segment", "/anchor-groups/a%00b", 400, "NUL"),
    ("lone surrogate in the query", "/organisations?q=%ED%A0%80", 400, "UTF-8"),
    ("invalid UTF-8 in the query", "/organisations?q=%FF", 400, "UTF-8"),
]


@pytest.mark.parametrize(("case", "path", "status", "fragment"), ANONYMOUS_READS, ids=[c[0] for c in ANONYMOUS_READS])
async def test_anonymous_bad_reads_are_problems(
    db: Database, app_client: Any, case: str, path: str, status: int, fragment: str
) -> None:
    assert_problem(await app_client.get(path), status, fragment)


def _nested(depth: int) -> bytes:
    return ('{"name": ' + "[" * depth + "]" * depth + "}").encode()


WRITES: list[tuple[str, str, Any, str]] = [
    # (case, path, body (dict or raw bytes), fragment of the detail); every one is a 400
    ("JSON nested 1,000 deep", "/suppliers", _nested(1000), "nested"),
    ("JSON nested 100,000 deep", "/suppliers", _nested(100_000), ""),
    ("JSON nested 33 deep", "/suppliers", _nested(33), "nested"),
    ("NUL in a JSON string", "/suppliers", {"name": "Acme\u0000 Ltd"}, "NUL"),
    ("NUL in a JSON key", "/suppliers", {"name": "Acme", "a\u0000": 1}, "NUL"),
    ("lone surrogate in JSON", "/suppliers", b'{"name": "Acme \\ud800 Ltd"}', ""),
    ("name of spaces", "/suppliers", {"name": "   "}, "name"),
    ("name of tabs and newlines", "/suppliers", {"name": "\t\n"}, "name"),
    ("huge exponent as a string", "/contracts", {"value": "1E+999999999"}, "implausibly large"),
    ("huge exponent as a number", "/contracts", b"1E+999999999", "implausibly large"),
    ("tiny exponent as a string", "/contracts", {"value": "1e-999999999"}, "at most two decimals"),
    ("tiny exponent as a number", "/contracts", b"1e-999999999", "at most two decimals"),
    ("share with a huge exponent", "/contracts", {"share": "9E+99999"}, "share"),
    ("id beyond 64 bits in a body", "/contracts", {"buyer_id": int(TOO_BIG)}, "buyer_id"),
    ("a number where a boolean belongs", "/organisations", {"name": "X", "kind": "icb", "is_anchor": 0}, "is_anchor"),
    ("a string where an id belongs", "/anchor-groups", {"slug": "ab", "name": "AB", "organisation_ids": ["1"]}, ""),
]


@pytest.mark.parametrize(("case", "path", "body", "fragment"), WRITES, ids=[c[0] for c in WRITES])
async def test_bad_bodies_are_problems_and_write_nothing(
    db: Database, session: Any, app_client: Any, case: str, path: str, body: Any, fragment: str
) -> None:
    buyer = await make_org(session, "Birmingham City Council")
    supplier = await make_supplier(session, "Acme Ltd")
    headers = {**bearer(await make_token(session, "admin")), "content-type": "application/json"}
    if path == "/contracts":
        contract = {"buyer_id": buyer.id, "title": "Meals", "suppliers": [{"supplier_id": supplier.id}]}
        if isinstance(body, bytes):  # a raw JSON number for the value, exactly as sent
            content = json.dumps({**contract, "value": "@"}).replace('"@"', body.decode()).encode()
        elif "share" in body:
            content = json.dumps({**contract, "suppliers": [{"supplier_id": supplier.id, **body}]}).encode()
        else:
            content = json.dumps({**contract, **body}).encode()
    else:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
    before = await fingerprint(db.engine)

    response = await app_client.post(path, content=content, headers=headers)

    assert_problem(response, 400, fragment)
    after = await fingerprint(db.engine)
    before.pop("api_token")
    after.pop("api_token")
    assert after == before


async def test_exact_money_still_works(db: Database, session: Any, app_client: Any) -> None:
    """The limits refuse nonsense only: an ordinary amount, and one in exponent form, are stored exactly."""
    buyer = await make_org(session, "Birmingham City Council")
    supplier = await make_supplier(session, "Acme Ltd")
    headers = bearer(await make_token(session, "admin"))
    for sent, stored in (("1234.50", "1234.50"), ("5E+3", "5000.00"), ("9999999999999.99", "9999999999999.99")):
        body = {"buyer_id": buyer.id, "title": "Meals", "value": sent, "suppliers": [{"supplier_id": supplier.id}]}
        response = await app_client.post("/contracts", json=body, headers=headers)
        assert response.status_code == 201, response.text
        assert response.json()["value"] == stored
    # A JSON number is read as the decimal it is written as, never through a binary float.
    for sent, stored in (("9999999999999.99", "9999999999999.99"), ("0.07", "0.07"), ("12E-1", "1.20")):
        body = {"buyer_id": buyer.id, "title": "Meals", "value": "@", "suppliers": [{"supplier_id": supplier.id}]}
        content = json.dumps(body).replace('"@"', sent).encode()
        response = await app_client.post(
            "/contracts", content=content, headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code == 201, response.text
        assert response.json()["value"] == stored


async def test_like_wildcards_match_themselves(db: Database, session: Any, app_client: Any) -> None:
    await make_org(session, "Walsall Healthcare NHS Trust")
    await make_org(session, "100% Care Partnership")
    await make_org(session, "North_East Health")
    await make_supplier(session, "Acme Ltd")
    await make_supplier(session, "50% Off Supplies")
    token = bearer(await make_token(session, "admin"))

    percent = (await app_client.get("/organisations?q=%25")).json()
    assert [o["name"] for o in percent["items"]] == ["100% Care Partnership"]
    underscore = (await app_client.get("/organisations?q=_")).json()
    assert [o["name"] for o in underscore["items"]] == ["North_East Health"]
    suppliers = (await app_client.get("/suppliers?q=%25", headers=token)).json()
    assert [s["name"] for s in suppliers["items"]] == ["50% Off Supplies"]
    backslash = await app_client.get("/organisations?q=%5C")
    assert backslash.status_code == 200
    assert backslash.json()["items"] == []


async def test_options_lists_every_method_of_the_address(db: Database, app_client: Any) -> None:
    response = await app_client.options("/anchor-groups/birmingham")
    assert response.status_code == 204
    assert set(response.headers["allow"].split(", ")) == {"DELETE", "GET", "OPTIONS", "PATCH"}
    refused = await app_client.request("TRACE", "/anchor-groups/birmingham")
    assert_problem(refused, 405)
    assert set(refused.headers["allow"].split(", ")) >= {"DELETE", "GET", "PATCH"}
