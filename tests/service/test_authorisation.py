"""Every write endpoint against every kind of caller; a refused write changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Database
from tests.support.api import bearer, fingerprint, make_org, make_supplier, make_token

CALLERS = ("none", "bad", "editor_other", "editor_own", "reviewer", "admin")

# (name, method, path template, body, expected status per caller)
ENDPOINTS: list[tuple[str, str, str, dict[str, Any], dict[str, int]]] = [
    (
        "create organisation",
        "POST",
        "/organisations",
        {"name": "New Health Body", "kind": "other", "postcode": "B15 2GW"},
        {"none": 401, "bad": 401, "editor_other": 403, "editor_own": 403, "reviewer": 403, "admin": 201},
    ),
    (
        "update organisation",
        "PATCH",
        "/organisations/{own}",
        {"address": "Edgbaston"},
        {"none": 401, "bad": 401, "editor_other": 403, "editor_own": 200, "reviewer": 403, "admin": 200},
    ),
    (
        # Suppliers are shared master data, not owned by one buyer: any editor may add one.
        "create supplier",
        "POST",
        "/suppliers",
        {"name": "Brum Meals CIC", "postcode": "B1 1BB"},
        {"none": 401, "bad": 401, "editor_other": 201, "editor_own": 201, "reviewer": 403, "admin": 201},
    ),
    (
        "update supplier",
        "PATCH",
        "/suppliers/{supplier}",
        {"locality": "Birmingham"},
        {"none": 401, "bad": 401, "editor_other": 200, "editor_own": 200, "reviewer": 403, "admin": 200},
    ),
    (
        "create contract",
        "POST",
        "/contracts",
        {"buyer_id": "{own}", "title": "Meals", "value": "100.00", "suppliers": [{"supplier_id": "{supplier}"}]},
        {"none": 401, "bad": 401, "editor_other": 403, "editor_own": 201, "reviewer": 403, "admin": 201},
    ),
    (
        "update contract",
        "PATCH",
        "/contracts/{contract}",
        {"title": "Meals on wheels"},
        {"none": 401, "bad": 401, "editor_other": 403, "editor_own": 200, "reviewer": 403, "admin": 200},
    ),
    (
        "withdraw contract",
        "POST",
        "/contracts/{contract}/withdraw",
        {"reason": "entered twice"},
        {"none": 401, "bad": 401, "editor_other": 403, "editor_own": 200, "reviewer": 403, "admin": 200},
    ),
]


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("name", "method", "path", "body", "expected"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
async def test_write_matrix(
    db: Database,
    session: Any,
    app_client: Any,
    caller: str,
    name: str,
    method: str,
    path: str,
    body: dict[str, Any],
    expected: dict[str, int],
) -> None:
    own = await make_org(session, "Walsall Healthcare NHS Trust", ods_code="RBK")
    other = await make_org(session, "The Dudley Group NHS Foundation Trust", ods_code="RNA")
    supplier = await make_supplier(session, "Acme Ltd")
    admin = await make_token(session, "admin")
    contract = await app_client.post(
        "/contracts",
        json={"buyer_id": own.id, "title": "Cleaning", "value": "10.00", "suppliers": [{"supplier_id": supplier.id}]},
        headers=bearer(admin),
    )
    assert contract.status_code == 201, contract.text
    ids = {"own": own.id, "other": other.id, "supplier": supplier.id, "contract": contract.json()["id"]}
    tokens = {
        "none": None,
        "bad": "lv_not-a-real-token",
        "editor_other": await make_token(session, "editor", other.id),
        "editor_own": await make_token(session, "editor", own.id),
        "reviewer": await make_token(session, "reviewer"),
        "admin": admin,
    }
    before = await fingerprint(db.engine)

    response = await app_client.request(
        method, path.format(**ids), json=_fill(body, ids), headers=bearer(tokens[caller])
    )

    assert response.status_code == expected[caller], response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["status"] == response.status_code
        assert problem["detail"]
        after = await fingerprint(db.engine)
        # api_token.last_used_at moves when a valid token is presented; nothing else may change.
        before.pop("api_token")
        after.pop("api_token")
        assert after == before
    else:
        audit = (await fingerprint(db.engine))["audit_event"]
        assert len(audit) > len(before["audit_event"]), "a write must leave an audit event"
