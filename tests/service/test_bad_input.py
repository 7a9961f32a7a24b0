"""Bad input gets a clear 4xx problem body, never a 500, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Database
from tests.support.api import bearer, fingerprint, make_org, make_supplier, make_token


def _contract(buyer: int, supplier: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "buyer_id": buyer,
        "title": "Community meals",
        "value": "1200.00",
        "currency": "GBP",
        "suppliers": [{"supplier_id": supplier}],
        "start_date": "2025-04-01",
        "end_date": "2026-03-31",
    }
    body.update(overrides)
    return body


CASES: list[tuple[str, str, str, Any, int, str]] = [
    # (case, method, path, body (or raw bytes), status, fragment of the detail)
    ("malformed json", "POST", "/contracts", b'{"buyer_id": 1, "title": ', 400, ""),
    ("not an object", "POST", "/contracts", b"[1, 2, 3]", 400, ""),
    ("wrong type", "POST", "/contracts", {"buyer_id": "one"}, 400, "buyer_id"),
    ("unknown field", "POST", "/contracts", {"surprise": True}, 400, "surprise"),
    ("negative money", "POST", "/contracts", {"value": "-5.00"}, 400, "negative"),
    ("three decimals", "POST", "/contracts", {"value": 10.005}, 400, "at most two decimals"),
    ("money as garbage", "POST", "/contracts", {"value": "ten pounds"}, 400, "value"),
    ("unknown currency", "POST", "/contracts", {"currency": "GPB"}, 400, "ISO 4217"),
    ("end before start", "POST", "/contracts", {"start_date": "2025-06-01", "end_date": "2025-05-31"}, 400, "before"),
    ("bad date", "POST", "/contracts", {"award_date": "2025-13-45"}, 400, "award_date"),
    ("bad cpv", "POST", "/contracts", {"cpv_codes": ["8531"]}, 400, "CPV"),
    ("no suppliers", "POST", "/contracts", {"suppliers": []}, 400, "suppliers"),
    ("shares do not add up", "POST", "/contracts", {"suppliers": "split"}, 422, "add up"),
    ("unknown supplier", "POST", "/contracts", {"suppliers": [{"supplier_id": 999999}]}, 422, "999999"),
    ("invalid postcode", "POST", "/suppliers", {"name": "X Ltd", "postcode": "QA1 1AA"}, 400, "postcode"),
    ("empty name", "POST", "/suppliers", {"name": ""}, 400, "name"),
    (
        "bad company number",
        "POST",
        "/suppliers",
        {"name": "Y Ltd", "identifiers": [{"scheme": "GB-COH", "id": "!!"}]},
        400,
        "Companies House",
    ),
    ("page size over the cap", "GET", "/contracts?limit=201", None, 400, "limit"),
    ("negative offset", "GET", "/contracts?offset=-1", None, 400, "offset"),
    ("unknown contract", "GET", "/contracts/424242", None, 404, "424242"),
    ("unknown route", "GET", "/nowhere", None, 404, ""),
    ("wrong method", "DELETE", "/contracts", None, 405, ""),
    ("to before from", "GET", "/contracts?from=2025-05-01&to=2025-04-01", None, 422, "before"),
    # A field that takes one of a fixed list says which.
    ("unknown basis", "GET", "/metrics?basis=bogus", None, 400, "basis must be one of: awarded, spread, paid"),
    ("unknown table", "GET", "/metrics.csv?table=bogus", None, 400, "table must be one of: lines, summary"),
    ("unknown kind", "POST", "/organisations", {"name": "X Trust", "kind": "bogus"}, 400, "kind must be one of: "),
]


@pytest.mark.parametrize(("case", "method", "path", "body", "status", "fragment"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_a_problem_and_writes_nothing(
    db: Database,
    session: Any,
    app_client: Any,
    case: str,
    method: str,
    path: str,
    body: Any,
    status: int,
    fragment: str,
) -> None:
    buyer = await make_org(session, "Birmingham City Council", gss_code="E08000025")
    supplier = await make_supplier(session, "Acme Ltd")
    other = await make_supplier(session, "Other Ltd")
    token = await make_token(session, "admin")
    headers = bearer(token)
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(body, bytes):
        kwargs["content"] = body
        headers["content-type"] = "application/json"
    elif isinstance(body, dict) and path == "/contracts":
        full = _contract(buyer.id, supplier.id, **body)
        if body.get("suppliers") == "split":
            full["suppliers"] = [
                {"supplier_id": supplier.id, "share": "100.00"},
                {"supplier_id": other.id, "share": "1.00"},
            ]
        kwargs["json"] = full
    elif body is not None:
        kwargs["json"] = body
    before = await fingerprint(db.engine)

    response = await app_client.request(method, path, **kwargs)

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert "Traceback" not in response.text
    assert fragment in problem["detail"] or any(fragment in str(e) for e in problem.get("errors", []))
    after = await fingerprint(db.engine)
    before.pop("api_token")
    after.pop("api_token")
    assert after == before


async def test_oversize_body_is_refused(db: Database, session: Any, app_client: Any) -> None:
    token = await make_token(session, "admin")
    before = await fingerprint(db.engine)
    big = {"name": "x" * 400, "street_address": "y" * 2_000_000}
    response = await app_client.post("/suppliers", json=big, headers=bearer(token))
    assert response.status_code == 413
    assert response.json()["status"] == 413
    after = await fingerprint(db.engine)
    before.pop("api_token")
    after.pop("api_token")
    assert after == before
