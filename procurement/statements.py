"""Quarterly statements: build a snapshot from live figures, preview it, publish it frozen, verify it.

A published statement is its canonical snapshot JSON and its PDF bytes, each with a SHA-256, and is never
edited. Publishing again for the same scope and quarter is a correction: a new version that supersedes the
old one, which stays downloadable and says why. `verify` recomputes every hash and re-renders every PDF
from its snapshot, so a changed byte anywhere is found.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.auth import Principal
from procurement.errors import DomainError, NotFound
from procurement.metrics_data import Scope, commitment_figures, scope_metrics
from procurement.money import ratio_text
from procurement.services import record_audit
from socialvalue import enterprise, locality
from socialvalue.geography import lad_reference
from socialvalue.periods import parse_quarter, quarter_bounds, quarter_from_index, quarter_index
from socialvalue.statements import (
    SCHEMA,
    STANDARD_SOURCES,
    canonical_json,
    figures_sha256,
    render_statement_pdf,
)

METRICS_VERSION = "metrics-2026.11.1"
TREND_QUARTERS = 8
TOP_LOCAL_SUPPLIERS = 10

CATEGORY_LABELS = {
    "charity": "Charity",
    "cio": "Charitable incorporated organisation",
    "cic": "Community interest company",
    "registered_society": "Registered society (co-operative or community benefit)",
    "other_vcse": "Other VCSE (self-declared)",
    "sme": "SME",
    "large": "Large company",
    "unknown": "Status unknown",
}
TIER_ORDER = ("local", "regional", "rest_of_uk", "outside_uk", "unknown")
_MONTHS = (
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def share(part: int, total: int) -> str | None:
    """A share computed from integer pence, so every figure agrees with its parts."""
    return ratio_text(part, total)


def period_label(period: str) -> str:
    fy, q = parse_quarter(period)
    start, end = quarter_bounds(period)
    return (
        f"Q{q} {fy}/{(fy + 1) % 100:02d} ({start.day} {_MONTHS[start.month]} to {end.day} {_MONTHS[end.month]} "
        f"{end.year})"
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ScopeAreas:
    preset: str | None
    label: str
    lad_names: list[str]


async def _local_definition(session: AsyncSession, scope: Scope) -> ScopeAreas:
    from procurement.classification import anchor_area

    lad_names = dict(zip(lad_reference()["lad_code"].to_list(), lad_reference()["lad_name"].to_list(), strict=True))
    orgs = (await session.scalars(select(m.Organisation).where(m.Organisation.id.in_(scope.anchor_ids)))).all()
    areas = [anchor_area(org)[0] for org in orgs]
    codes = sorted({code for area in areas for code in area.lad_codes})
    names = sorted({lad_names.get(code, code) for code in codes})
    if scope.kind == "anchor" and areas:
        return ScopeAreas(preset=areas[0].preset, label=areas[0].label, lad_names=names)
    presets = {a.preset for a in areas}
    label = "each member's own definition of local: " + "; ".join(sorted({a.label for a in areas}))
    return ScopeAreas(preset=presets.pop() if len(presets) == 1 else None, label=label, lad_names=names)


def _row(frame: pl.DataFrame, scope_key: str, period: str) -> dict[str, Any] | None:
    rows = frame.filter((pl.col("scope") == scope_key) & (pl.col("period") == period)).to_dicts()
    return rows[0] if rows else None


def _headline(result: Any, scope: Scope, period: str, no_date: int) -> dict[str, Any]:
    row = _row(result.summary, scope.key, period) or {}
    total = int(row.get("total_pence") or 0)

    def pence(column: str) -> int:
        return int(row.get(column) or 0)

    unknown_tier = pence("tier_unknown_pence")
    return {
        "basis": result.basis,
        "total_value_pence": total,
        "line_count": int(row.get("lines") or 0),
        "supplier_count": int(row.get("suppliers") or 0),
        "local_share": share(pence("local_pence"), total),
        "local_share_known": share(pence("local_pence"), total - unknown_tier),
        "regional_share": share(pence("regional_pence"), total),
        "sme_share": share(pence("sme_pence"), total),
        "vcse_share": share(pence("vcse_pence"), total),
        "social_enterprise_share": share(pence("social_enterprise_pence"), total),
        "unknown_locality_share": share(unknown_tier, total),
        "unknown_status_share": share(pence("category_unknown_pence"), total),
        "excluded": {
            "non_gbp": pence("excluded_non_gbp_lines"),
            "withdrawn": pence("excluded_withdrawn_lines"),
            "no_value": pence("excluded_no_value_lines"),
            "no_date": no_date,
        },
    }


def _trend(result: Any, scope: Scope, period: str) -> list[dict[str, Any]]:
    end = quarter_index(period)
    points = []
    for index in range(end - TREND_QUARTERS + 1, end + 1):
        label = quarter_from_index(index)
        row = _row(result.summary, scope.key, label) or {}
        total = int(row.get("total_pence") or 0)
        points.append(
            {"period": label, "local_share": share(int(row.get("local_pence") or 0), total), "total_value_pence": total}
        )
    # Leading quarters before any data say nothing; keep the trend from the first quarter with contracts.
    while len(points) > 1 and points[0]["total_value_pence"] == 0 and points[0]["local_share"] is None:
        points.pop(0)
    return points


def _by_tier(result: Any, scope: Scope, period: str, total: int) -> list[dict[str, Any]]:
    rows = {
        r["tier"]: int(r["value_pence"] or 0)
        for r in result.by_tier.filter((pl.col("scope") == scope.key) & (pl.col("period") == period)).to_dicts()
    }
    return [{"tier": t, "value_pence": rows.get(t, 0), "share": share(rows.get(t, 0), total)} for t in TIER_ORDER]


def _by_type(result: Any, scope: Scope, period: str, total: int) -> list[dict[str, Any]]:
    rows = result.by_category.filter((pl.col("scope") == scope.key) & (pl.col("period") == period)).to_dicts()
    by_category = {r["category"]: r for r in rows}
    out = []
    for category, label in CATEGORY_LABELS.items():
        r = by_category.get(category)
        value = int(r["value_pence"] or 0) if r else 0
        if value == 0 and not (r and r["suppliers"]):
            continue
        out.append(
            {
                "category": label,
                "value_pence": value,
                "share": share(value, total),
                "suppliers": int(r["suppliers"] or 0) if r else 0,
            }
        )
    return out


async def _top_local(session: AsyncSession, result: Any, scope: Scope, period: str) -> list[dict[str, Any]]:
    lines = result.lines.filter(
        pl.col("anchor_id").is_in(list(scope.anchor_ids)) & (pl.col("period") == period) & (pl.col("tier") == "local")
    )
    if lines.is_empty():
        return []
    top = (
        lines.group_by("supplier_id")
        .agg(pl.col("supplier_name").first(), pl.col("allocated_pence").sum(), pl.col("category").first())
        .sort(["allocated_pence", "supplier_name"], descending=[True, False])
        .head(TOP_LOCAL_SUPPLIERS)
    )
    ids = top["supplier_id"].to_list()
    rows = await session.execute(
        select(m.SupplierClassification.supplier_id, m.SupplierClassification.lad_code).where(
            m.SupplierClassification.supplier_id.in_(ids)
        )
    )
    lad_by_supplier: dict[int, str | None] = {int(sid): lad for sid, lad in rows.all()}
    names = dict(zip(lad_reference()["lad_code"].to_list(), lad_reference()["lad_name"].to_list(), strict=True))
    return [
        {
            "name": r["supplier_name"],
            "value_pence": int(r["allocated_pence"]),
            "category": CATEGORY_LABELS.get(r["category"], r["category"]),
            "lad_name": names.get(lad_by_supplier.get(r["supplier_id"]) or ""),
        }
        for r in top.to_dicts()
    ]


def _quantity(value: Decimal | None) -> str:
    if value is None:
        return "0"
    return format(value.normalize(), "f")


async def _commitments(session: AsyncSession, scope: Scope, period: str) -> list[dict[str, Any]]:
    figures = await commitment_figures(session, scope, period)
    return [
        {
            "contract": f.contract_title,
            "supplier": f.supplier_name or "",
            "measure": f.measure_name,
            "unit": f.unit,
            "committed": _quantity(f.committed),
            "delivered": _quantity(f.delivered),
            "verified": _quantity(f.verified),
        }
        for f in figures
    ]


async def build_snapshot(
    session: AsyncSession,
    scope: Scope,
    period: str,
    *,
    statement_id: str,
    status: str = "draft",
    version: int = 1,
    published_at: dt.datetime | None = None,
    supersedes: dict[str, Any] | None = None,
    generated_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The statement's figures from live data, JSON-ready, with the hash of its figures filled in."""
    parse_quarter(period)
    awarded = await scope_metrics(session, scope, basis="awarded")
    spread = await scope_metrics(session, scope, basis="spread")
    excluded = awarded.excluded
    no_date = (
        excluded.filter(pl.col("anchor_id").is_in(list(scope.anchor_ids)) & (pl.col("reason") == "no_date")).height
        if not excluded.is_empty()
        else 0
    )
    headline = _headline(awarded, scope, period, no_date)
    total = headline["total_value_pence"]
    area = await _local_definition(session, scope)
    members: list[str] = []
    anchor_code = None
    if scope.kind == "group":
        members = sorted(
            (await session.scalars(select(m.Organisation.name).where(m.Organisation.id.in_(scope.anchor_ids)))).all()
        )
    elif scope.organisation_id is not None:
        org = await session.get(m.Organisation, scope.organisation_id)
        anchor_code = (org.ods_code or org.gss_code) if org else None
    now = generated_at or dt.datetime.now(dt.UTC)
    snapshot: dict[str, Any] = {
        "schema": SCHEMA,
        "statement": {
            "id": statement_id,
            "anchor_name": scope.name,
            "anchor_code": anchor_code,
            "scope_kind": "group" if scope.kind == "group" else "anchor",
            "members": members,
            "period": period,
            "period_label": period_label(period),
            "version": version,
            "status": status,
            "published_at": _instant(published_at) if published_at else None,
            "generated_at": _instant(now),
            "supersedes": supersedes,
        },
        "headline": headline,
        "spread_headline": _headline(spread, scope, period, no_date),
        "trend": _trend(awarded, scope, period),
        "by_tier": _by_tier(awarded, scope, period, total),
        "by_supplier_type": _by_type(awarded, scope, period, total),
        "top_local_suppliers": await _top_local(session, awarded, scope, period),
        "commitments": await _commitments(session, scope, period),
        "methodology": {
            "local_definition": {"preset": area.preset, "label": area.label, "lad_names": area.lad_names},
            "bases": ["awarded", "spread"],
            "rule_versions": {
                "locality": locality.RULE_VERSION,
                "enterprise": enterprise.RULE_VERSION,
                "metrics": METRICS_VERSION,
            },
            "exclusions": [
                "Withdrawn and cancelled contracts are left out.",
                "Values in currencies other than pounds sterling are left out and counted, never converted.",
                "Contract lines with no value, or with neither an award date nor a contract period, are left out "
                "and counted.",
            ],
            "notes": [
                "Figures come from contract notices (Contracts Finder, Find a Tender) and contracts recorded by "
                "procurement teams, not from payments; notices below publication thresholds are missing.",
                "Where one award names several suppliers without a split, its value is shared equally between them.",
                "Social-value commitments show quantities committed, delivered (as returned by suppliers) and "
                "verified by a reviewer; monetised proxy values are not included.",
            ],
        },
        "sources": [dict(s) for s in STANDARD_SOURCES],
    }
    snapshot["figures_sha256"] = figures_sha256(snapshot)
    return snapshot


# --- publishing --------------------------------------------------------------------------------------------------


async def next_statement_number(session: AsyncSession) -> int:
    return int((await session.scalar(select(func.max(m.Statement.id)))) or 0) + 1


async def preview_pdf(session: AsyncSession, scope: Scope, period: str) -> tuple[bytes, dict[str, Any]]:
    snapshot = await build_snapshot(session, scope, period, statement_id="draft", status="draft")
    return render_statement_pdf(snapshot), snapshot


async def publish(
    session: AsyncSession,
    scope: Scope,
    period: str,
    *,
    actor: Principal | None,
    actor_name: str | None = None,
    reason: str | None = None,
) -> m.Statement:
    current = (
        await session.scalars(
            select(m.Statement)
            .where(m.Statement.scope_key == scope.key, m.Statement.period == period)
            .order_by(m.Statement.version.desc())
        )
    ).first()
    if current is not None and current.status == "published" and not (reason and reason.strip()):
        raise DomainError(
            f"{scope.name} {period} is already published (version {current.version}); a correction needs a reason."
        )
    version = (current.version + 1) if current is not None else 1
    published_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    number = await next_statement_number(session)
    supersedes: dict[str, Any] | None = None
    correction = (reason or "").strip()
    if current is not None and current.status == "published":
        supersedes = {"id": str(current.id), "version": current.version, "reason": correction}
    snapshot = await build_snapshot(
        session,
        scope,
        period,
        statement_id=str(number),
        status="published",
        version=version,
        published_at=published_at,
        supersedes=supersedes,
    )
    snapshot_bytes = canonical_json(snapshot)
    pdf = render_statement_pdf(snapshot)
    who = actor.name if actor else (actor_name or "system")
    statement = m.Statement(
        id=number,
        scope_key=scope.key,
        scope_kind=scope.kind,
        organisation_id=scope.organisation_id,
        group_id=scope.group_id,
        scope_name=scope.name,
        period=period,
        version=version,
        status="published",
        snapshot_json=snapshot_bytes.decode("utf-8"),
        snapshot_sha256=sha256(snapshot_bytes),
        figures_sha256=snapshot["figures_sha256"],
        pdf=pdf,
        pdf_sha256=sha256(pdf),
        published_at=published_at,
        published_by=who,
        supersedes_id=current.id if supersedes and current else None,
        correction_reason=correction if supersedes else None,
    )
    session.add(statement)
    await session.flush()
    if supersedes and current is not None:
        current.status = "superseded"
        current.superseded_by_id = statement.id
        current.superseded_reason = correction
    await record_audit(
        session,
        actor=actor,
        actor_name=who,
        action="statement.publish",
        entity_type="statement",
        entity_id=statement.id,
        organisation_id=scope.organisation_id,
        changes={"version": (None, version), "pdf_sha256": (None, statement.pdf_sha256)},
        reason=statement.correction_reason,
    )
    return statement


async def withdraw(session: AsyncSession, statement_id: int, *, actor: Principal, reason: str) -> m.Statement:
    statement = await session.get(m.Statement, statement_id)
    if statement is None:
        raise NotFound(f"No statement {statement_id}.")
    if statement.status == "withdrawn":
        raise DomainError("The statement is already withdrawn.")
    old = statement.status
    statement.status = "withdrawn"
    statement.withdrawn_at = dt.datetime.now(dt.UTC)
    statement.withdrawn_by = actor.name
    statement.withdrawn_reason = reason.strip()
    await record_audit(
        session,
        actor=actor,
        action="statement.withdraw",
        entity_type="statement",
        entity_id=statement.id,
        organisation_id=statement.organisation_id,
        changes={"status": (old, "withdrawn")},
        reason=reason.strip(),
    )
    return statement


@dataclass(frozen=True)
class Verification:
    statement_id: int
    ok: bool
    problems: tuple[str, ...]


def verify_statement(statement: m.Statement) -> Verification:
    problems = []
    snapshot_bytes = statement.snapshot_json.encode("utf-8")
    if sha256(snapshot_bytes) != statement.snapshot_sha256:
        problems.append("snapshot JSON does not match its stored SHA-256")
    try:
        snapshot = json.loads(snapshot_bytes)
    except ValueError:
        return Verification(statement.id, ok=False, problems=(*problems, "snapshot JSON does not parse"))
    if (
        figures_sha256(snapshot) != statement.figures_sha256
        or snapshot.get("figures_sha256") != statement.figures_sha256
    ):
        problems.append("figures do not match their stored SHA-256")
    if sha256(statement.pdf) != statement.pdf_sha256:
        problems.append("PDF bytes do not match their stored SHA-256")
    try:
        if render_statement_pdf(snapshot) != statement.pdf:
            problems.append("re-rendering the snapshot does not give the stored PDF byte for byte")
    except ValueError as exc:
        problems.append(f"the snapshot cannot be rendered: {exc}")
    return Verification(statement.id, ok=not problems, problems=tuple(problems))


async def verify_all(session: AsyncSession) -> list[Verification]:
    statements = (await session.scalars(select(m.Statement).order_by(m.Statement.id))).all()
    return [verify_statement(s) for s in statements]


def figures_csv(snapshot: dict[str, Any]) -> str:  # noqa: PLR0912 - one flat walk over every section
    """The frozen figures as a flat CSV (section, item, measure, value) for spreadsheets."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "item", "measure", "value"])
    info = snapshot["statement"]
    for key in ("id", "anchor_name", "anchor_code", "period", "period_label", "version", "status", "published_at"):
        writer.writerow(["statement", "", key, info.get(key)])
    for section in ("headline", "spread_headline"):
        head = snapshot.get(section)
        if not head:
            continue
        for key, value in head.items():
            if key == "excluded":
                for reason, count in value.items():
                    writer.writerow([section, head["basis"], f"excluded_{reason}", count])
            elif key != "basis":
                writer.writerow([section, head["basis"], key, value])
    for row in snapshot["trend"]:
        writer.writerow(["trend", row["period"], "local_share", row["local_share"]])
        writer.writerow(["trend", row["period"], "total_value_pence", row["total_value_pence"]])
    for row in snapshot["by_tier"]:
        writer.writerow(["by_tier", row["tier"], "value_pence", row["value_pence"]])
        writer.writerow(["by_tier", row["tier"], "share", row["share"]])
    for row in snapshot["by_supplier_type"]:
        writer.writerow(["by_supplier_type", row["category"], "value_pence", row["value_pence"]])
        writer.writerow(["by_supplier_type", row["category"], "share", row["share"]])
        writer.writerow(["by_supplier_type", row["category"], "suppliers", row["suppliers"]])
    for row in snapshot["top_local_suppliers"]:
        writer.writerow(["top_local_suppliers", row["name"], "value_pence", row["value_pence"]])
    for row in snapshot["commitments"]:
        item = f"{row['contract']} / {row['measure']}"
        for key in ("committed", "delivered", "verified"):
            writer.writerow(["commitments", item, f"{key} ({row['unit']})", row[key]])
    writer.writerow(["hash", "", "figures_sha256", snapshot["figures_sha256"]])
    return out.getvalue()


def public_statements_query(*, anchor_id: int | None, period: str | None) -> Any:
    query = select(m.Statement).order_by(m.Statement.scope_name, m.Statement.period.desc(), m.Statement.version.desc())
    if anchor_id is not None:
        query = query.where(m.Statement.organisation_id == anchor_id)
    if period is not None:
        query = query.where(m.Statement.period == period)
    return query


def scopes_of(statements: Sequence[m.Statement]) -> list[str]:
    return sorted({s.scope_name for s in statements})
