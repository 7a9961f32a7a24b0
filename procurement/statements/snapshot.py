"""The frozen figures of a quarterly statement, built from the live data."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.errors import DomainError
from procurement.metrics.commitments import commitment_figures
from procurement.metrics.lines import Scope
from procurement.metrics.measures import format_quantity
from procurement.metrics.paid import INFLUENCEABLE_LABEL
from procurement.metrics.service import coverage_threshold, resting_on, scope_metrics
from procurement.money import judged_share, ratio_text
from socialvalue import enterprise, locality
from socialvalue.geography import lad_reference
from socialvalue.periods import day_month, long_date, parse_quarter, quarter_bounds, quarter_from_index, quarter_index
from socialvalue.snapshot import SCHEMA, STANDARD_SOURCES, figures_sha256

METRICS_VERSION = "metrics-2026.11.1"


TREND_QUARTERS = 8


TOP_LOCAL_SUPPLIERS = 10


TOP_SUPPLIERS = 10


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


def share(part: int, total: int) -> str | None:
    """A share computed from integer pence, so every figure agrees with its parts."""
    return ratio_text(part, total)


def period_label(period: str) -> str:
    fy, q = parse_quarter(period)
    start, end = quarter_bounds(period)
    return f"Q{q} {fy}/{(fy + 1) % 100:02d} ({day_month(start)} to {long_date(end)})"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ScopeAreas:
    preset: str | None
    label: str
    lad_names: list[str]


def _lad_names() -> dict[str, str]:
    lads = lad_reference()
    return dict(zip(lads["lad_code"].to_list(), lads["lad_name"].to_list(), strict=True))


def plain_area(area: locality.LocalArea, org: m.Organisation) -> str:
    """The anchor's local area as a reader would say it: "Birmingham (the council's own area)", never a preset."""
    count = plural_areas(len(area.lad_codes))
    if area.preset == "own_lad":
        (code,) = area.lad_codes
        name = _lad_names().get(code, code)
        if org.kind == m.OrganisationKind.LOCAL_AUTHORITY.value:
            return f"{name} (the council's own area)"
        return f"{name} (the local authority area where {org.name} is based)"
    if area.preset == "icb":
        board = area.label.split(" footprint")[0].removesuffix(" ICB")
        return f"the {board} integrated care board area ({count})"
    if area.preset == "wmca_7":
        return f"the West Midlands Combined Authority's constituent councils ({count})"
    if area.preset == "wm_region":
        return f"the West Midlands region ({count})"
    return f"{org.name}'s own choice of {count}"


def plural_areas(n: int) -> str:
    return f"{n} local authority area{'' if n == 1 else 's'}"


async def _local_definition(session: AsyncSession, scope: Scope) -> ScopeAreas:
    from procurement.organisations.local_area import anchor_area

    lad_names = _lad_names()
    orgs = (await session.scalars(select(m.Organisation).where(m.Organisation.id.in_(scope.anchor_ids)))).all()
    areas = [(anchor_area(org)[0], org) for org in orgs]
    codes = sorted({code for area, _ in areas for code in area.lad_codes})
    names = sorted({lad_names.get(code, code) for code in codes})
    if scope.kind == "anchor" and areas:
        area, org = areas[0]
        return ScopeAreas(preset=area.preset, label=plain_area(area, org), lad_names=names)
    presets = {a.preset for a, _ in areas}
    label = "each member's own local area: " + "; ".join(sorted({plain_area(a, o) for a, o in areas}))
    return ScopeAreas(preset=presets.pop() if len(presets) == 1 else None, label=label, lad_names=names)


def _row(frame: pl.DataFrame, scope_key: str, period: str) -> dict[str, Any] | None:
    rows = frame.filter((pl.col("scope") == scope_key) & (pl.col("period") == period)).to_dicts()
    return rows[0] if rows else None


def _headline(result: Any, scope: Scope, period: str, no_date: int, threshold: Decimal) -> dict[str, Any]:
    row = _row(result.summary, scope.key, period) or {}
    total = int(row.get("total_pence") or 0)

    def pence(column: str) -> int:
        return int(row.get(column) or 0)

    def judged(part: str, unknown: str) -> str | None:
        return judged_share(pence(part), total, pence(unknown), threshold).share

    unknown_tier = pence("tier_unknown_pence")
    contracts, names = resting_on(result, scope.key, period) if total else (0, [])
    return {
        "basis": result.basis,
        "total_value_pence": total,
        "line_count": int(row.get("lines") or 0),
        "contract_count": contracts,
        "supplier_count": int(row.get("suppliers") or 0),
        "supplier_names": names,
        "local_share": judged("local_pence", "tier_unknown_pence"),
        "local_share_known": judged_share(pence("local_pence"), total, unknown_tier, threshold).share_known,
        "regional_share": judged("regional_pence", "tier_unknown_pence"),
        "sme_share": judged("sme_pence", "sme_unknown_pence"),
        "vcse_share": judged("vcse_pence", "vcse_unknown_pence"),
        "social_enterprise_share": judged("social_enterprise_pence", "social_enterprise_unknown_pence"),
        "unknown_locality_share": share(unknown_tier, total),
        "unknown_status_share": share(pence("category_unknown_pence"), total),
        "coverage": {
            "locality": share(total - unknown_tier, total),
            "status": share(total - pence("category_unknown_pence"), total),
            "sme": share(total - pence("sme_unknown_pence"), total),
            "vcse": share(total - pence("vcse_unknown_pence"), total),
            "social_enterprise": share(total - pence("social_enterprise_unknown_pence"), total),
        },
        "coverage_threshold": str(threshold),
        "excluded": {
            "non_gbp": pence("excluded_non_gbp_lines"),
            "withdrawn": pence("excluded_withdrawn_lines"),
            "no_value": pence("excluded_no_value_lines"),
            "no_date": no_date,
        },
    }


def _trend(result: Any, scope: Scope, period: str, threshold: Decimal) -> list[dict[str, Any]]:
    end = quarter_index(period)
    points = []
    for index in range(end - TREND_QUARTERS + 1, end + 1):
        label = quarter_from_index(index)
        row = _row(result.summary, scope.key, label) or {}
        total = int(row.get("total_pence") or 0)
        j = judged_share(int(row.get("local_pence") or 0), total, int(row.get("tier_unknown_pence") or 0), threshold)
        points.append({"period": label, "local_share": j.share, "total_value_pence": total, "coverage": j.coverage})
    # Leading quarters before any data say nothing; keep the trend from the first quarter with contracts.
    while len(points) > 1 and points[0]["total_value_pence"] == 0 and points[0]["local_share"] is None:
        points.pop(0)
    return points


def _judged_rows(rows: dict[str, int], order: Any, unknown: str, total: int, threshold: Decimal) -> dict[str, Any]:
    """Each row's share, null for every known row when too little of the value could be judged."""
    return {
        key: share(rows.get(key, 0), total)
        if key == unknown
        else judged_share(rows.get(key, 0), total, rows.get(unknown, 0), threshold).share
        for key in order
    }


def _by_tier(result: Any, scope: Scope, period: str, total: int, threshold: Decimal) -> list[dict[str, Any]]:
    rows = {
        r["tier"]: int(r["value_pence"] or 0)
        for r in result.by_tier.filter((pl.col("scope") == scope.key) & (pl.col("period") == period)).to_dicts()
    }
    shares = _judged_rows(rows, TIER_ORDER, "unknown", total, threshold)
    return [{"tier": t, "value_pence": rows.get(t, 0), "share": shares[t]} for t in TIER_ORDER]


def _by_type(
    result: Any, scope: Scope, period: str, total: int, threshold: Decimal, *, redacted: bool = False
) -> list[dict[str, Any]]:
    rows = result.by_category.filter((pl.col("scope") == scope.key) & (pl.col("period") == period)).to_dicts()
    by_category = {r["category"]: r for r in rows}
    if redacted and "unknown" in by_category:
        by_category["unknown"]["suppliers"] -= 1  # the redacted stand-in payee is not a supplier
    values = {c: int(r["value_pence"] or 0) for c, r in by_category.items()}
    shares = _judged_rows(values, CATEGORY_LABELS, "unknown", total, threshold)
    out = []
    for category, label in CATEGORY_LABELS.items():
        r = by_category.get(category)
        value = values.get(category, 0)
        if value == 0 and not (r and r["suppliers"]):
            continue
        out.append(
            {
                "category": label,
                "value_pence": value,
                "share": shares[category],
                "suppliers": int(r["suppliers"] or 0) if r else 0,
            }
        )
    return out


def _top_suppliers(result: Any, scope: Scope, period: str) -> list[dict[str, Any]]:
    """The largest suppliers of any location, named, so the figures can be traced to who was paid."""
    lines = result.lines_for_scope(scope.key).filter(pl.col("period") == period)
    if lines.is_empty():
        return []
    top = (
        lines.group_by("supplier_id")
        .agg(
            pl.col("supplier_name").first(),
            pl.col("allocated_pence").sum(),
            pl.col("category").first(),
            pl.col("tier").first(),
        )
        .sort(["allocated_pence", "supplier_name"], descending=[True, False])
        .head(TOP_SUPPLIERS)
    )
    return [
        {
            "name": r["supplier_name"] or f"Supplier {r['supplier_id']}",
            "value_pence": int(r["allocated_pence"]),
            "category": CATEGORY_LABELS.get(r["category"], r["category"]),
            "tier": r["tier"],
        }
        for r in top.to_dicts()
    ]


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
    names = _lad_names()
    return [
        {
            "name": r["supplier_name"],
            "value_pence": int(r["allocated_pence"]),
            "category": CATEGORY_LABELS.get(r["category"], r["category"]),
            "lad_name": names.get(lad_by_supplier.get(r["supplier_id"]) or ""),
        }
        for r in top.to_dicts()
    ]


async def _commitments(session: AsyncSession, scope: Scope, period: str) -> list[dict[str, Any]]:
    figures = await commitment_figures(session, scope, period)
    return [
        {
            "contract": f.contract_title,
            "supplier": f.supplier_name or "",
            "measure": f.measure_name,
            "unit": f.unit,
            "committed": format_quantity(f.committed, f.kind),
            "delivered": format_quantity(f.delivered, f.kind),
            "verified": format_quantity(f.verified, f.kind),
        }
        for f in figures
    ]


PAID_NOTES = [
    "Figures come from the payments the organisation published (spend files: every payment over its publication "
    "threshold, e.g. £25,000 for NHS bodies), not from contract notices; payments below the threshold are missing.",
    "A payment counts in the quarter of its payment date; credit notes (negative lines) reduce the totals.",
    "Payees are matched to suppliers by the company, charity or VAT numbers in the file, then by exact normalised "
    "name; a payee not yet matched, or redacted, counts as location and status unknown.",
    "Redacted payments (personal data or commercial confidentiality) are counted and summed but never named.",
]


async def _paid_section(session: AsyncSession, scope: Scope, period: str, *, influenceable: bool) -> dict[str, Any]:
    """What a paid statement rests on: its payment files, lines, transactions, redacted value, missing months."""
    from procurement.metrics.paid import paid_facts, payment_lines_with_details

    details = await payment_lines_with_details(session, scope.anchor_ids) if scope.anchor_ids else None
    if details is None or details.is_empty():
        raise DomainError(
            f"{scope.name} has no payments loaded; import its spend files first "
            "(`localvalue import spend FILE --anchor CODE`)"
        )
    (facts,) = paid_facts(details, periods="quarter", influenceable=influenceable, wanted=[period])
    start, _end = quarter_bounds(period)
    quarter_months = [
        f"{start.year + (start.month + i - 1) // 12}-{(start.month + i - 1) % 12 + 1:02d}" for i in range(3)
    ]
    file_ids = sorted(set(details["file_id"].to_list()))
    files = (
        await session.scalars(select(m.SpendFile).where(m.SpendFile.id.in_(file_ids)).order_by(m.SpendFile.id))
    ).all()
    in_quarter = [f for f in files if set(f.months) & set(quarter_months)]
    publishers = (
        await session.scalars(select(m.Organisation.name).where(m.Organisation.id.in_(scope.anchor_ids)))
    ).all()
    return {
        "lines": facts.lines,
        "transactions": facts.transactions,
        "redacted_lines": facts.redacted_lines,
        "redacted_value_pence": facts.redacted_pence,
        "months": facts.months,
        "months_missing": [x for x in quarter_months if x not in facts.months],
        "partial_quarter": any(x not in facts.months for x in quarter_months),
        "influenceable_only": influenceable,
        "left_out_lines": facts.left_out_lines,
        "left_out_value_pence": facts.left_out_pence,
        "left_out_by_rule": [{"rule": r, "value_pence": v} for r, v in facts.left_out_by_rule.items()],
        "files": [{"name": f.source_name, "sha256": f.sha256, "months": list(f.months)} for f in in_quarter],
        "sources": [
            {
                "name": f"Published payments: {name}",
                "licence": "Open Government Licence v3.0",
                "attribution": "Contains public sector information licensed under the Open Government Licence "
                f"v3.0 ({name}, published spend).",
            }
            for name in sorted(publishers)
        ],
    }


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
    basis: str = "awarded",
    influenceable: bool = False,
) -> dict[str, Any]:
    """The statement's figures from live data, JSON-ready, with the hash of its figures filled in.

    ``basis`` "awarded" shows the awarded basis with the spread basis beside it (the original statement);
    "paid" shows the payments the anchor published, with a section on what they rest on (``influenceable``:
    only payments it could have placed locally, labelled as such)."""
    parse_quarter(period)
    if basis not in ("awarded", "paid"):
        raise DomainError("a statement's basis is awarded (with spread beside it) or paid")
    if influenceable and basis != "paid":
        raise DomainError("the influenceable view needs the paid basis")
    paid_section: dict[str, Any] | None = None
    if basis == "paid":
        main = await scope_metrics(session, scope, basis="paid", influenceable=influenceable)
        spread = None
        paid_section = await _paid_section(session, scope, period, influenceable=influenceable)
    else:
        main = await scope_metrics(session, scope, basis="awarded")
        spread = await scope_metrics(session, scope, basis="spread")
    awarded = main
    excluded = awarded.excluded
    no_date = (
        excluded.filter(pl.col("anchor_id").is_in(list(scope.anchor_ids)) & (pl.col("reason") == "no_date")).height
        if not excluded.is_empty()
        else 0
    )
    threshold = coverage_threshold()
    headline = _headline(awarded, scope, period, no_date, threshold)
    if paid_section is not None and paid_section["redacted_lines"]:
        headline["supplier_count"] -= 1  # the redacted stand-in payee is not a supplier
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
    now = generated_at or clock.now()
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
        "spread_headline": _headline(spread, scope, period, no_date, threshold) if spread is not None else None,
        "trend": _trend(awarded, scope, period, threshold),
        "by_tier": _by_tier(awarded, scope, period, total, threshold),
        "by_supplier_type": _by_type(
            awarded, scope, period, total, threshold, redacted=bool(paid_section and paid_section["redacted_lines"])
        ),
        "top_local_suppliers": await _top_local(session, awarded, scope, period),
        "top_suppliers": _top_suppliers(awarded, scope, period),
        "commitments": await _commitments(session, scope, period),
        "methodology": {
            "local_definition": {"preset": area.preset, "label": area.label, "lad_names": area.lad_names},
            "bases": ["awarded", "spread"] if basis == "awarded" else ["paid"],
            "rule_versions": {
                "locality": locality.RULE_VERSION,
                "enterprise": enterprise.RULE_VERSION,
                "metrics": METRICS_VERSION,
            },
            # The standard exclusions are the statement's own table; this list is for any others, so none repeats.
            "exclusions": [],
            "notes": [
                "Figures come from contract notices (Contracts Finder, Find a Tender) and contracts recorded by "
                "procurement teams, not from payments; notices below publication thresholds are missing.",
                "Where one award names several suppliers without a split, its value is shared equally between them.",
                "Social-value commitments show quantities committed, delivered (as returned by suppliers) and "
                "verified by a reviewer; monetised proxy values are not included.",
            ]
            if paid_section is None
            else PAID_NOTES + ([INFLUENCEABLE_LABEL] if influenceable else []),
        },
        "sources": [dict(s) for s in STANDARD_SOURCES] + (paid_section.pop("sources") if paid_section else []),
    }
    if paid_section is not None:
        snapshot["paid"] = paid_section
    snapshot["figures_sha256"] = figures_sha256(snapshot)
    return snapshot
