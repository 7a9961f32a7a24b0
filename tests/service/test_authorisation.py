"""Every write operation of the OpenAPI document, for every role, on its own and on another organisation.

The operations come from the app's own OpenAPI document, so a new write endpoint that is missing from TABLE
fails here until someone decides who may call it. The table is the README's roles table, written as statuses:
2xx is done, 202 is "waits for a reviewer" (a change request, nothing else changes), 401/403 change nothing.

"own" is the organisation the editor acts for and the reviewer reviews; "other" is an organisation neither may
act for. Operations that belong to no organisation (admin housekeeping) have one variant, "any".
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.auth import hash_token, new_token
from procurement.metrics.lines import resolve_scope
from procurement.statements.service import publish
from tests.conftest import Database
from tests.support.api import bearer, fingerprint

ROLES = ("anonymous", "bad_token", "editor", "reviewer", "cross_reviewer", "admin")
WRITE_METHODS = ("post", "put", "patch", "delete")
PERIOD = "2025Q1"


def S(anonymous: int, editor: int, reviewer: int, cross_reviewer: int, admin: int) -> dict[str, int]:
    """Statuses per role; a token that is not valid is always 401."""
    return {
        "anonymous": anonymous,
        "bad_token": 401,
        "editor": editor,
        "reviewer": reviewer,
        "cross_reviewer": cross_reviewer,
        "admin": admin,
    }


@dataclass(frozen=True)
class Case:
    body: dict[str, Any] | None = None
    query: dict[str, str] = field(default_factory=dict)
    own: dict[str, int] | None = None
    other: dict[str, int] | None = None
    any: dict[str, int] | None = None

    def variants(self) -> dict[str, dict[str, int]]:
        if self.any is not None:
            return {"any": self.any}
        assert self.own is not None
        assert self.other is not None
        return {"own": self.own, "other": self.other}


ADMIN_ONLY_201 = S(401, 403, 403, 403, 201)
# Records an organisation keeps itself: its editors and admins; reviewers review, they do not keep records.
OWN_RECORDS = {"own": S(401, 200, 403, 403, 200), "other": S(401, 403, 403, 403, 200)}
OWN_RECORDS_201 = {"own": S(401, 201, 403, 403, 201), "other": S(401, 403, 403, 403, 201)}
# Review work: reviewers in scope, cross-organisation reviewers, admins.
REVIEW = {"own": S(401, 403, 200, 200, 200), "other": S(401, 403, 403, 200, 200)}
# Shared supplier data: done at once for whoever may act for every organisation it reaches, else 202 (pending).
SHARED = {"own": S(401, 200, 200, 200, 200), "other": S(401, 202, 202, 200, 200)}
SHARED_201 = {"own": S(401, 201, 201, 201, 201), "other": S(401, 202, 202, 201, 201)}

TABLE: dict[str, Case] = {
    "POST /organisations": Case({"name": "New Health Body", "kind": "other"}, any=ADMIN_ONLY_201),
    "PATCH /organisations/{org_id}": Case({"address": "Moat Road"}, **OWN_RECORDS),
    "PUT /organisations/{org_id}/local-area": Case({"lad_codes": ["E08000025"], "label": "Birmingham"}, **OWN_RECORDS),
    "POST /anchor-groups": Case(
        {"slug": "new-group", "name": "New group", "organisation_ids": ["{org_any}"]}, any=ADMIN_ONLY_201
    ),
    "PATCH /anchor-groups/{slug}": Case({"name": "Renamed group"}, any=S(401, 403, 403, 403, 200)),
    "DELETE /anchor-groups/{slug}": Case(None, any=S(401, 403, 403, 403, 204)),
    "POST /suppliers": Case({"name": "Brum Meals CIC", "postcode": "B1 1BB"}, any=S(401, 201, 403, 403, 201)),
    "PATCH /suppliers/{supplier_id}": Case({"postcode": "B15 2GW", "reason": "moved to Edgbaston"}, **SHARED),
    "POST /suppliers/{supplier_id}/overrides": Case(
        {"flag": "sme", "value": "true", "reason": "Companies House accounts say small"}, **SHARED_201
    ),
    "POST /overrides/{override_id}/revoke": Case({"reason": "no longer true"}, **SHARED),
    "POST /suppliers/{supplier_id}/attestations": Case(
        {"kind": "social_enterprise_mark", "reference": "SEM 2025-0412", "reason": "certificate seen"}, **SHARED_201
    ),
    "POST /attestations/{attestation_id}/revoke": Case({"reason": "certificate lapsed"}, **SHARED),
    "POST /suppliers/merge": Case(
        {"source_id": "{duplicate}", "target_id": "{supplier}", "reason": "same company"}, **SHARED_201
    ),
    "POST /suppliers/{supplier_id}/split": Case(
        {"name": "Acme Catering Ltd", "reason": "another company", "contract_supplier_ids": ["{link}"]}, **SHARED_201
    ),
    "POST /supplier-merges/{merge_id}/undo": Case({"reason": "not the same company"}, **SHARED),
    "POST /supplier-change-requests/{request_id}/approve": Case({"reason": "checked the register"}, **REVIEW),
    "POST /supplier-change-requests/{request_id}/reject": Case({"reason": "no evidence given"}, **REVIEW),
    "POST /contracts": Case(
        {"buyer_id": "{org}", "title": "Meals", "value": "100.00", "suppliers": [{"supplier_id": "{supplier}"}]},
        **OWN_RECORDS_201,
    ),
    "PATCH /contracts/{contract_id}": Case({"title": "Meals on wheels"}, **OWN_RECORDS),
    "POST /contracts/{contract_id}/withdraw": Case({"reason": "entered twice"}, **OWN_RECORDS),
    "POST /contracts/{contract_id}/commitments": Case(
        {"measure_id": "{another_measure}", "targets": [{"period": "2025Q2", "quantity": "2"}]}, **OWN_RECORDS_201
    ),
    "PATCH /commitments/{commitment_id}": Case({"note": "two apprentices"}, **OWN_RECORDS),
    "DELETE /commitments/{commitment_id}": Case(
        None,
        query={"reason": "recorded twice"},
        own=S(401, 204, 403, 403, 204),
        other=S(401, 403, 403, 403, 204),
    ),
    "POST /commitments/{commitment_id}/returns": Case(
        {"period": "2025Q2", "quantity": "1", "evidence_note": "payroll extract"}, **OWN_RECORDS_201
    ),
    "POST /returns/{return_id}/verify": Case(None, **REVIEW),
    "POST /returns/{return_id}/reject": Case({"reason": "no evidence attached"}, **REVIEW),
    "POST /measures/local": Case(
        {"organisation_id": "{org}", "code": "L1", "name": "Local apprentices", "unit": "starts"}, **OWN_RECORDS_201
    ),
    "PUT /measures/{measure_id}/proxy": Case(
        {"value": "12.50", "source": "HACT 2024", "year": 2024, "price_base": "2024 prices"},
        any=S(401, 403, 403, 403, 200),
    ),
    "POST /lm3/responses": Case(
        {
            "anchor_id": "{org}",
            "supplier_id": "{supplier}",
            "financial_year": "2025/26",
            "round1": "1000",
            "local_suppliers": "300",
            "local_wages": "200",
            "local_respend": "100",
        },
        **OWN_RECORDS_201,
    ),
    "POST /statements": Case(
        {"anchor_id": "{org}", "period": PERIOD},
        own=S(401, 403, 201, 201, 201),
        other=S(401, 403, 403, 201, 201),
    ),
    "POST /statements/{statement_id}/withdraw": Case({"reason": "figures were wrong"}, **REVIEW),
    "POST /tokens": Case({"name": "new@token", "role": "admin", "expires_in": "90d"}, any=ADMIN_ONLY_201),
    "DELETE /tokens/{token_id}": Case(None, query={"reason": "left the trust"}, any=S(401, 403, 403, 403, 204)),
    # A payee in an anchor's own payment files: its editors (and admins) say who it is.
    # A register match sets a shared supplier's status: reviewers who may act for every anchor it feeds.
    "POST /suppliers/{supplier_id}/register-match": Case(
        {"decision": "reject", "register": "companies-house", "number": "01234567", "reason": "a different company"},
        **REVIEW,
    ),
    "POST /spend/payees/{match_id}/decision": Case({"decision": "reject", "reason": "not a supplier"}, **OWN_RECORDS),
}

# Path parameters and placeholders to the record of the world they name.
PARAMS = {
    "org_id": "org",
    "slug": "group",
    "supplier_id": "supplier",
    "override_id": "override",
    "attestation_id": "attestation",
    "merge_id": "merge",
    "request_id": "change_request",
    "contract_id": "contract",
    "commitment_id": "commitment",
    "return_id": "return",
    "measure_id": "measure",
    "statement_id": "statement",
    "token_id": "token",
    "match_id": "payee",
}


def _write_operations() -> list[str]:
    from procurement.app import create_app

    document = create_app().openapi_schema.to_schema()
    return sorted(
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in WRITE_METHODS
    )


OPERATIONS = _write_operations()


def _cases() -> list[Any]:
    out = []
    for operation in OPERATIONS:
        case = TABLE.get(operation)
        variants = case.variants() if case else {"missing": {}}
        for variant in variants:
            for role in ROLES:
                out.append(pytest.param(operation, variant, role, id=f"{operation}-{variant}-{role}"))
    return out


async def test_the_served_document_lists_the_same_write_operations(app_client: Any) -> None:
    document = (await app_client.get("/schema/openapi.json")).json()
    served = sorted(
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in WRITE_METHODS
    )
    assert served == OPERATIONS
    assert len(OPERATIONS) >= 30
    assert sorted(TABLE) == OPERATIONS, "TABLE and the OpenAPI document differ"


@dataclass
class World:
    ids: dict[str, dict[str, Any]]
    tokens: dict[str, str | None]


def _user(name: str, role: str, organisation_id: int | None = None, reviews: tuple[int, ...] = ()) -> tuple[Any, str]:
    token = new_token()
    user = m.User(name=name, role=role, organisation_id=organisation_id)
    user.scopes = [m.UserScope(organisation_id=i) for i in reviews]
    user.tokens = [m.ApiToken(name=name, token_hash=hash_token(token), token_prefix=token[:8])]
    return user, token


async def _world(session: AsyncSession, operation: str) -> World:
    """Two anchors, each with a contract, three suppliers (one merged), a commitment with a submitted return,
    an override, an attestation and another organisation's pending correction; written directly, in one go."""
    now = clock.now()
    own = m.Organisation(name="Walsall Healthcare NHS Trust", ods_code="RBK", kind="nhs_trust", is_anchor=True)
    other = m.Organisation(name="Birmingham City Council", gss_code="E08000025", kind="local_authority", is_anchor=True)
    third = m.Organisation(name="The Dudley Group NHS Foundation Trust", ods_code="RNA", kind="nhs_trust")
    measure = m.Measure(
        framework="ppn-06-20", code="MAT-T1", name="Apprenticeships", unit="starts", kind="output", source="test"
    )
    another = m.Measure(
        framework="ppn-06-20", code="MAT-T2", name="Work placements", unit="placements", kind="output", source="test"
    )
    session.add_all([own, other, third, measure, another])
    await session.flush()
    session.add(
        m.AnchorGroup(slug="test-group", name="Test group", members=[m.AnchorGroupMember(organisation_id=own.id)])
    )
    users = {
        "admin": _user("ops@example", "admin"),
        "editor": _user("jo@walsall", "editor", own.id),
        "reviewer": _user("sam@walsall-reviews", "reviewer", reviews=(own.id,)),
        "cross_reviewer": _user("alex@icb", "cross_reviewer"),
        "requester": _user("kim@dudley", "editor", third.id),
        "spare": _user("spare@walsall", "editor", own.id),
    }
    session.add_all(u for u, _ in users.values())
    await session.flush()
    ids: dict[str, dict[str, Any]] = {}
    for variant, org in (("own", own), ("other", other)):
        tag = variant.capitalize()
        supplier, duplicate, merged = (
            m.Supplier(name=f"{name} {tag}", name_key=f"{name} {tag}".lower(), postcode="B1 1BB")
            for name in ("Acme", "Acme Limited", "ACME")
        )
        session.add_all([supplier, duplicate, merged])
        await session.flush()
        links = [
            m.ContractSupplier(supplier_id=s.id, share_pence=100_000, share_basis="equal_split", position=i)
            for i, s in enumerate((supplier, duplicate, merged))
        ]
        contract = m.Contract(
            buyer_id=org.id,
            title=f"Catering {tag}",
            value_pence=300_000,
            award_date=dt.date(2025, 4, 14),
            suppliers=links,
        )
        session.add(contract)
        await session.flush()
        commitment = m.Commitment(
            contract_id=contract.id,
            measure_id=measure.id,
            unit="starts",
            created_by="setup",
            targets=[m.CommitmentTarget(period=q, quantity=Decimal(2)) for q in (PERIOD, "2025Q2")],
        )
        session.add(commitment)
        await session.flush()
        returned = m.DeliveryReturn(
            commitment_id=commitment.id,
            period=PERIOD,
            quantity=Decimal(1),
            evidence_note="payroll",
            entered_by="setup",
            entered_at=now,
        )
        override = m.ClassificationOverride(
            supplier_id=supplier.id,
            flag="lad_code",
            value="E08000025",
            reason="delivers from its Birmingham depot",
            created_by="setup",
            created_at=now,
        )
        attestation = m.SupplierAttestation(
            supplier_id=supplier.id,
            kind="social_enterprise_mark",
            reference="SEM 1",
            attested_by="setup",
            attested_at=now,
        )
        merged.merged_into_id = supplier.id
        merge = m.SupplierMerge(
            kind="merge",
            source_supplier_id=merged.id,
            target_supplier_id=supplier.id,
            moved={"identifiers": [], "merged_suppliers": []},
            reason="same company",
            created_by="setup",
            created_at=now,
        )
        requester = users["requester"][0]
        pending = m.SupplierChangeRequest(
            kind="update",
            supplier_id=supplier.id,
            payload={"supplier_id": supplier.id, "changes": {"locality": "Birmingham"}},
            reason="the locality is wrong",
            affected_organisation_ids=[org.id],
            requested_by_user_id=requester.id,
            requested_by=requester.name,
            requested_by_role="editor",
            requested_by_organisation_id=third.id,
            requested_at=now,
        )
        payee = m.PayeeMatch(
            anchor_id=org.id,
            payee_key=f"acme payee {tag}".lower(),
            payee_name=f"Acme Payee {tag}",
            status="review",
            method="name",
            candidates=[],
        )
        session.add_all([returned, override, attestation, merge, pending, payee])
        await session.flush()
        ids[variant] = {
            "org": org.id,
            "supplier": supplier.id,
            "duplicate": duplicate.id,
            "link": links[0].id,
            "contract": contract.id,
            "commitment": commitment.id,
            "return": returned.id,
            "override": override.id,
            "attestation": attestation.id,
            "merge": merge.id,
            "change_request": pending.id,
            "payee": payee.id,
            "measure": measure.id,
            "another_measure": another.id,
            "group": "test-group",
        }
    await session.commit()
    if operation == "POST /statements/{statement_id}/withdraw":
        for variant, org in (("own", own), ("other", other)):
            scope = await resolve_scope(session, anchor_id=org.id)
            ids[variant]["statement"] = (await publish(session, scope, PERIOD, actor=None, actor_name="setup")).id
        await session.commit()
    ids["any"] = {"group": "test-group", "measure": measure.id, "token": users["spare"][0].tokens[0].id}
    ids["any"]["org_any"] = own.id
    tokens: dict[str, str | None] = {role: token for role, (_, token) in users.items()}
    tokens |= {"anonymous": None, "bad_token": "lv_not-a-real-token"}
    return World(ids=ids, tokens=tokens)


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str) and re.fullmatch(r"\{\w+\}", value) and value[1:-1] in ids:
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


# What a pending change request may touch: the request itself, its audit event and the token's last use (written
# by the app's background flush of token uses, which may fall within the request).
PENDING_TABLES = {"supplier_change_request", "audit_event", "api_token"}


@pytest.mark.parametrize(("operation", "variant", "role"), _cases())
async def test_write_matrix(
    db: Database, session: AsyncSession, app_client: Any, operation: str, variant: str, role: str
) -> None:
    assert operation in TABLE, f"{operation} is in the OpenAPI document but not in TABLE: say who may call it"
    case = TABLE[operation]
    expected = case.variants()[variant][role]
    world = await _world(session, operation)
    ids = world.ids[variant] | {k: v for k, v in world.ids["any"].items() if k not in world.ids[variant]}
    method, template = operation.split(" ", 1)
    path = re.sub(r"\{(\w+)\}", lambda x: str(ids[PARAMS[x.group(1)]]), template)
    before = await fingerprint(db.engine)

    response = await app_client.request(
        method, path, json=_fill(case.body, ids), params=case.query, headers=bearer(world.tokens[role])
    )

    assert response.status_code == expected, response.text
    after = await fingerprint(db.engine)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == response.status_code
        assert response.json()["detail"]
        # A refused write changes nothing (the background flush of token uses may write a last use meanwhile).
        before.pop("api_token")
        after.pop("api_token")
        assert after == before
    elif response.status_code == 202:
        assert response.json()["status"] == "pending"
        changed = {t for t in before if before[t] != after[t]}
        assert changed <= PENDING_TABLES, f"a pending change request changed {changed - PENDING_TABLES}"
        assert len(after["supplier_change_request"]) == len(before["supplier_change_request"]) + 1
    else:
        assert len(after["audit_event"]) > len(before["audit_event"]), "a write must leave an audit event"
