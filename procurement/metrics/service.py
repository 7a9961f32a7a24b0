"""Local-spend metrics shaped for the API, the CLI and exports, and the rows behind every figure.

Both bases are labelled; shares are exact ratios of integer pence rounded to 4 places, with the coverage (share of
value whose status is known) beside them. A share whose coverage is below the threshold (the setting
``LOCALVALUE_COVERAGE_THRESHOLD``) is null with status "not_known": unknown is never shown as zero."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import partial
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.bulk import among
from procurement.errors import DomainError, InvalidInput
from procurement.metrics import linecache
from procurement.metrics.lines import (
    EXTRA_SCHEMA,
    Scope,
    in_engine_thread,
    keyed_lines,
    lines_digest,
    lines_with_details,
    metrics_off_loop,
    resolve_scope,
)
from procurement.metrics.paid import (
    INFLUENCEABLE_LABEL,
    REDACTED_SUPPLIER_ID,
    PaidFacts,
    influenceable_only,
    keyed_payment_lines,
    payment_lines_with_details,
)
from procurement.metrics.schemas import (
    BasisMetrics,
    CategoryRow,
    Change,
    Coverage,
    CpvRow,
    Headline,
    PaidPeriod,
    PeriodMetrics,
    ScopeRef,
    Share,
    TierRow,
    TopSupplier,
)
from procurement.money import JudgedShare, format_pence, judged_share, ratio_text
from procurement.settings import get_settings
from socialvalue.metrics import CATEGORIES, FLAGS, INPUT_SCHEMA, TIERS, MetricsResult
from socialvalue.periods import parse_financial_year, parse_quarter

BASIS_LABELS = {
    "awarded": "Awarded basis: each line's whole value in the period of its award date.",
    "spread": "Spread basis: each line's value spread by day over its contract period, to the penny.",
    "paid": "Paid basis: each payment line published by the anchor (spend files), in the period of its payment "
    "date; redacted payments count, with no supplier, as unknown location and status.",
}


NAMED_SUPPLIERS_MAX = 5


def basis_label(basis: str, *, influenceable: bool = False) -> str:
    return BASIS_LABELS[basis] + (" " + INFLUENCEABLE_LABEL if influenceable else "")


def basis_name(basis: str, *, influenceable: bool = False) -> str:
    """The basis as written in every row of a download, so the influenceable view is never mistaken for all."""
    return f"{basis} (influenceable spend only)" if influenceable else basis


NOTES = [
    "Money is integer pence (*_pence) and pounds as decimal text; foreign-currency lines are never converted.",
    "Shares are exact ratios rounded to 4 places; share_known divides by the value whose status is known and "
    "coverage is that known value as a share of the total.",
    "A share judged on less of the value than the coverage threshold is null with status not_known, never 0.",
    "Each supplier is judged local or not against the buying anchor's own local area.",
]


async def scope_lines(
    session: AsyncSession, scope: Scope, *, basis: str, influenceable: bool = False, detailed: bool = True
) -> pl.DataFrame:
    """The lines behind a scope with their details: contract-supplier lines, or payment lines on the paid basis
    (only the influenceable ones when asked). Without ``detailed``, the lines come without what only a reviewer
    reads (see ``lines_with_details`` and ``payment_lines_with_details``)."""
    if not scope.anchor_ids:
        return pl.DataFrame(schema={**INPUT_SCHEMA, **EXTRA_SCHEMA})
    if basis != "paid":
        return await lines_with_details(session, scope.anchor_ids, detailed=detailed)
    details = await payment_lines_with_details(session, scope.anchor_ids, detailed=detailed)
    return influenceable_only(details) if influenceable else details


async def scope_metrics(
    session: AsyncSession,
    scope: Scope,
    *,
    basis: str,
    periods: str = "quarter",
    top_n: int = 20,
    influenceable: bool = False,
) -> MetricsResult:
    if basis not in ("awarded", "spread", "paid"):
        raise DomainError("basis must be awarded, spread or paid.")
    if periods not in ("quarter", "year"):
        raise DomainError("periods must be quarter or year.")
    if influenceable and basis != "paid":
        raise DomainError("influenceable=true needs basis=paid: only payment lines name their payees.")
    lines = await scope_lines(session, scope, basis=basis, influenceable=influenceable)
    return await metrics_off_loop(lines, scope, basis=basis, periods=periods, top_n=top_n)


def pounds(pence: int | None) -> str:
    return format_pence(pence or 0) or "0.00"


def ratio(num: int | None, den: int | None) -> str | None:
    if not den:
        return None
    return ratio_text(num or 0, den)


def coverage_threshold() -> Decimal:
    return get_settings().coverage_threshold


def share_of(part: int, total: int, unknown: int | None, threshold: Decimal) -> JudgedShare:
    """``unknown`` None: the row is the "unknown" bucket itself, a share of the total that is always known."""
    if unknown is None:
        counted = ratio(part, total)
        return JudgedShare(counted, None, None, "known" if counted is not None else "not_known")
    return judged_share(part, total, unknown, threshold)


def _share(part: int, total: int, unknown: int | None, threshold: Decimal) -> Share:
    j = share_of(part, total, unknown, threshold)
    return Share(share=j.share, share_known=j.share_known, coverage=j.coverage, status=j.status)


def _breakdown(
    row: dict[str, Any], total: int, unknown: int | None, suppliers: int, threshold: Decimal
) -> dict[str, Any]:
    """The figures of one tier or category row (missing row: zero)."""
    value = row.get("value_pence", 0)
    return {
        "value_pence": value,
        "value": pounds(value),
        "share": _share(value, total, unknown, threshold),
        "suppliers": row.get("suppliers", 0),
        "supplier_share": ratio(row.get("suppliers", 0), suppliers),
    }


def parse_period(period: str | None) -> str:
    """The period kind for a label: "2025Q1" -> quarter, "2025/26" -> year (None -> every quarter)."""
    if period is None:
        return "quarter"
    if "/" in period:
        parse_financial_year(period)
        return "year"
    parse_quarter(period)
    return "quarter"


def _empty_row(period: str) -> dict[str, Any]:
    return {"period": period, "prev_period": None, "yoy_period": None}


def _change(row: dict[str, Any], rows: dict[str, dict[str, Any]], suffix: str) -> Change:
    other = rows.get(row.get(f"{suffix}_period") or "")
    if other is None:
        return Change(None, None, None, None, None, None)
    total, local = row.get("total_pence", 0), row.get("local_pence", 0)
    d_total = total - other["total_pence"]
    d_local = local - other["local_pence"]
    pp = None
    if total and other["total_pence"]:
        exact = (Fraction(local, total) - Fraction(other["local_pence"], other["total_pence"])) * 100
        pp = ratio_text(exact.numerator, exact.denominator)
    return Change(other["period"], d_total, pounds(d_total), d_local, pounds(d_local), pp)


def resting_on(result: MetricsResult, scope_key: str, period: str, *, only: bool = False) -> tuple[int, list[str]]:
    """How many contracts a period's figures rest on, and its suppliers' names when there are few enough to
    name (so a figure resting on one contract says so). ``only``: the one period asked about."""
    lines = result.rests_on(scope_key, period, only=only)
    # Supplier id 0 is the paid basis's stand-in for redacted payments: counted as value, never named.
    payee = pl.col("supplier_id") != 0
    # Both counts in one pass, and the lines (their names) filtered only when the names are shown.
    contracts, suppliers = lines.select(
        pl.col("contract_id").n_unique(), pl.col("supplier_id").filter(payee).n_unique()
    )
    if suppliers.item() > NAMED_SUPPLIERS_MAX:
        return contracts.item(), []
    names = sorted({str(n) for n in lines.filter(payee)["supplier_name"].drop_nulls().to_list()})
    return contracts.item(), names


def period_metrics(
    result: MetricsResult,
    scope_key: str,
    periods: Iterable[str] | None,
    threshold: Decimal | None = None,
    *,
    redacted_periods: Iterable[str] = (),
) -> list[PeriodMetrics]:
    """``redacted_periods``: periods with redacted payments, whose stand-in payee is not a supplier to count."""
    threshold = coverage_threshold() if threshold is None else threshold
    redacted_in = set(redacted_periods)
    summary = result.summary.filter(pl.col("scope") == scope_key)
    rows = {r["period"]: r for r in summary.iter_rows(named=True)}
    wanted = list(periods) if periods is not None else sorted(rows)
    # Each breakdown filtered once to the scope and the periods asked for, and its rows split by period here: a
    # filter per period and breakdown cost a cold request more than the figures' own Python.
    picked = pl.col("scope") == scope_key
    if periods is not None:
        picked = picked & pl.col("period").is_in(wanted)
    by_tier = _rows_by_period(result.by_tier, picked)
    by_category = _rows_by_period(result.by_category, picked)
    top = _rows_by_period(result.top_suppliers, picked & (pl.col("supplier_id") != REDACTED_SUPPLIER_ID))
    cpv = _rows_by_period(result.by_cpv_division, picked)
    out = []
    for label in wanted:
        row = rows.get(label) or _empty_row(label)
        stand_in = 1 if label in redacted_in else 0

        def g(key: str, default: Any = None, r: dict[str, Any] = row, less: int = stand_in) -> Any:
            value = r.get(key, default)
            return value - less if key == "suppliers" and value else value

        total = g("total_pence", 0)

        def tier_unknown(tier: str, r: dict[str, Any] = row) -> int | None:
            return None if tier == "unknown" else r.get("tier_unknown_pence", 0)

        def category_unknown(cat: str, r: dict[str, Any] = row) -> int | None:
            return None if cat == "unknown" else r.get("category_unknown_pence", 0)

        contracts, names = resting_on(result, scope_key, label, only=len(wanted) == 1) if total else (0, [])
        headline = Headline(
            total_pence=total,
            total=pounds(total),
            lines=g("lines", 0),
            contracts=contracts,
            suppliers=g("suppliers", 0),
            supplier_names=names,
            local_pence=g("local_pence", 0),
            local=pounds(g("local_pence", 0)),
            local_share=_share(g("local_pence", 0), total, g("tier_unknown_pence", 0), threshold),
            local_suppliers=g("local_suppliers", 0),
            new_local_suppliers=g("new_local_suppliers", 0),
            regional_pence=g("regional_pence", 0),
            regional=pounds(g("regional_pence", 0)),
            regional_share=_share(g("regional_pence", 0), total, g("tier_unknown_pence", 0), threshold),
            sme_pence=g("sme_pence", 0),
            sme=pounds(g("sme_pence", 0)),
            sme_share=_share(g("sme_pence", 0), total, g("sme_unknown_pence", 0), threshold),
            vcse_pence=g("vcse_pence", 0),
            vcse=pounds(g("vcse_pence", 0)),
            vcse_share=_share(g("vcse_pence", 0), total, g("vcse_unknown_pence", 0), threshold),
            social_enterprise_pence=g("social_enterprise_pence", 0),
            social_enterprise=pounds(g("social_enterprise_pence", 0)),
            social_enterprise_share=_share(
                g("social_enterprise_pence", 0), total, g("social_enterprise_unknown_pence", 0), threshold
            ),
        )
        # Copies: the unknown rows are changed below, and a period asked for twice must find them as they were.
        tiers = {r["tier"]: dict(r) for r in by_tier.get(label, [])}
        cats = {r["category"]: dict(r) for r in by_category.get(label, [])}
        for unknown in (tiers.get("unknown"), cats.get("unknown")):
            if unknown is not None and stand_in:
                unknown["suppliers"] -= stand_in
        tier_rows = [
            TierRow(tier=t, **_breakdown(tiers.get(t, {}), total, tier_unknown(t), g("suppliers", 0), threshold))
            for t in TIERS
        ]
        category_rows = [
            CategoryRow(
                category=c,
                **_breakdown(cats.get(c, {}), total, category_unknown(c), g("suppliers", 0), threshold),
            )
            for c in CATEGORIES
        ]
        top_rows = [
            TopSupplier(
                rank=r["rank"],
                supplier_id=r["supplier_id"],
                supplier_name=r["supplier_name"],
                tier=r["tier"],
                category=r["category"],
                value_pence=r["value_pence"],
                value=pounds(r["value_pence"]),
                share=ratio(r["value_pence"], total),
            )
            for r in top.get(label, [])
        ]
        cpv_rows = [
            CpvRow(
                cpv_division=r["cpv_division"],
                lines=r["lines"],
                value_pence=r["value_pence"],
                value=pounds(r["value_pence"]),
                share=ratio(r["value_pence"], total),
                local_pence=r["local_pence"],
                local=pounds(r["local_pence"]),
                local_share=ratio(r["local_pence"], r["value_pence"]),
            )
            for r in cpv.get(label, [])
        ]
        coverage = Coverage(
            tier_known_share=ratio(total - g("tier_unknown_pence", 0), total),
            category_known_share=ratio(total - g("category_unknown_pence", 0), total),
            sme_known_share=ratio(total - g("sme_unknown_pence", 0), total),
            vcse_known_share=ratio(total - g("vcse_unknown_pence", 0), total),
            social_enterprise_known_share=ratio(total - g("social_enterprise_unknown_pence", 0), total),
            excluded_withdrawn_lines=g("excluded_withdrawn_lines", 0),
            excluded_non_gbp_lines=g("excluded_non_gbp_lines", 0),
            excluded_no_value_lines=g("excluded_no_value_lines", 0),
            spread_fallback_lines=g("spread_fallback_lines", 0),
            spread_fallback_pence=g("spread_fallback_pence", 0),
            award_fallback_lines=g("award_fallback_lines", 0),
            award_fallback_pence=g("award_fallback_pence", 0),
        )
        out.append(
            PeriodMetrics(
                period=label,
                headline=headline,
                by_tier=tier_rows,
                by_category=category_rows,
                top_suppliers=top_rows,
                by_cpv_division=cpv_rows,
                coverage=coverage,
                previous_period=_change(row, rows, "prev"),
                year_on_year=_change(row, rows, "yoy"),
            )
        )
    return out


def _rows_by_period(frame: pl.DataFrame, picked: pl.Expr) -> dict[str, list[dict[str, Any]]]:
    """The rows ``picked`` of one breakdown by period label, each period's in the frame's order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in frame.filter(picked).iter_rows(named=True):
        out.setdefault(r["period"], []).append(r)
    return out


def scope_ref(scope: Scope) -> ScopeRef:
    return ScopeRef(key=scope.key, kind=scope.kind, name=scope.name, anchor_ids=list(scope.anchor_ids))


def _pounds_expr(column: str) -> pl.Expr:
    col = pl.col(column)
    text = (col // 100).cast(pl.String) + "." + (col % 100).cast(pl.String).str.zfill(2)
    return pl.when(col.is_null()).then(None).otherwise(text)


async def _evidence(session: AsyncSession, supplier_ids: list[int]) -> pl.DataFrame:
    schema = {"supplier_id": pl.Int64, "flag_evidence": pl.String}
    if not supplier_ids:
        return pl.DataFrame(schema=schema)
    rows = await session.execute(
        select(m.SupplierClassification.supplier_id, m.SupplierClassification.evidence).where(
            among(session.get_bind().dialect.name, m.SupplierClassification.supplier_id, supplier_ids)
        )
    )
    out = []
    for supplier_id, evidence in rows.all():
        parts = [
            f"{e.get('flag')}={e.get('value')} ({e.get('method')}; {e.get('source')})"
            for e in evidence or []
            if isinstance(e, dict) and e.get("flag") in {"category", *FLAGS} and not e.get("overruled")
        ]
        out.append((supplier_id, "; ".join(parts)[:2000]))
    return pl.DataFrame(out, schema=schema, orient="row")


ROW_COLUMNS = [
    "basis", "period", "quarter", "line_id", "contract_id", "contract_title", "anchor_id", "buyer_name",
    "supplier_id", "supplier_name", "contracted_supplier_id", "cpv_code", "cpv_division", "currency", "status",
    "value_pence", "value", "share_basis", "allocated_pence", "allocated", "days_in_period", "days_total",
    "award_date", "start_date", "end_date", "spread_fallback", "award_fallback", "excluded_reason", "tier",
    "tier_method", "tier_confidence", "category", "sme", "vcse", "social_enterprise", "evidence_summary",
]  # fmt: skip


async def rows_behind(
    session: AsyncSession, details: pl.DataFrame, result: MetricsResult, scope_key: str, period: str | None
) -> pl.DataFrame:
    """Each line allocated to the period (and each excluded line that would have been), with its evidence."""
    lines = result.lines_for_scope(scope_key)
    excluded = result.excluded.filter(pl.col("scope") == scope_key)
    if period is not None:
        lines = lines.filter(pl.col("period") == period)
        excluded = excluded.filter(pl.col("period") == period)
    extra = details.select(
        "line_id",
        "contract_title",
        "buyer_name",
        "contracted_supplier_id",
        "cpv_code",
        "currency",
        "status",
        "share_basis",
        "tier_method",
        "tier_confidence",
        "tier_reason",
    )
    included = lines.join(extra, on="line_id", how="left", maintain_order="left").with_columns(
        excluded_reason=pl.lit(None, pl.String)
    )
    dropped = (
        excluded.select("line_id", "period", "basis", pl.col("reason").alias("excluded_reason"))
        .join(details.drop("currency"), on="line_id", how="left", maintain_order="left")
        .join(extra.select("line_id", "currency"), on="line_id", how="left")
        .with_columns(
            quarter=pl.lit(None, pl.String),
            allocated_pence=pl.lit(None, pl.Int64),
            days_in_period=pl.lit(None, pl.Int64),
            days_total=pl.lit(None, pl.Int64),
            spread_fallback=pl.lit(None, pl.Boolean),
            award_fallback=pl.lit(None, pl.Boolean),
            cpv_division=pl.col("cpv_code").str.slice(0, 2),
        )
    )
    frame = pl.concat([included, dropped], how="diagonal_relaxed")
    evidence = await _evidence(session, frame["supplier_id"].unique().drop_nulls().to_list())
    frame = frame.join(evidence, on="supplier_id", how="left", maintain_order="left")
    frame = frame.with_columns(
        value=_pounds_expr("value_pence"),
        allocated=_pounds_expr("allocated_pence"),
        evidence_summary=pl.concat_str(
            [pl.col("tier_reason").fill_null(""), pl.col("flag_evidence").fill_null("")], separator=" | "
        ),
    )
    return frame.select(ROW_COLUMNS).sort("basis", "period", "line_id", "quarter", nulls_last=True)


NOT_KNOWN = "not known"


SUMMARY_SCHEMA: dict[str, Any] = {
    "basis": pl.String,
    "period": pl.String,
    "figure": pl.String,
    "count": pl.Int64,
    "value_pence": pl.Int64,
    "value": pl.String,
    "share": pl.String,
    "coverage": pl.String,
    "status": pl.String,
}


def summary_frame(results: list[MetricsResult], scope_key: str, period: str | None) -> pl.DataFrame:
    """The figures of each basis and period, one row per figure, each share beside its coverage; a share judged
    on too little of the value reads "not known" (a spreadsheet would show an empty cell as nothing, or 0)."""
    rows: list[dict[str, Any]] = []
    for result in results:
        for p in period_metrics(result, scope_key, [period] if period else None):
            h = p.headline

            def add(
                figure: str,
                *,
                count: int | None = None,
                pence: int | None = None,
                s: Share | None = None,
                basis: str = result.basis,
                period_label: str = p.period,
            ) -> None:
                rows.append(
                    {
                        "basis": basis,
                        "period": period_label,
                        "figure": figure,
                        "count": count,
                        "value_pence": pence,
                        "value": None if pence is None else pounds(pence),
                        "share": None if s is None else (s.share or NOT_KNOWN),
                        "coverage": None if s is None else s.coverage,
                        "status": None if s is None else s.status,
                    }
                )

            add("total", pence=h.total_pence)
            add("contract lines", count=h.lines)
            add("contracts", count=h.contracts)
            add("suppliers", count=h.suppliers)
            for name, pence, judged in (
                ("local", h.local_pence, h.local_share),
                ("regional", h.regional_pence, h.regional_share),
                ("SME", h.sme_pence, h.sme_share),
                ("VCSE", h.vcse_pence, h.vcse_share),
                ("social enterprise", h.social_enterprise_pence, h.social_enterprise_share),
            ):
                add(name, pence=pence, s=judged)
            for t in p.by_tier:
                add(f"tier: {t.tier}", count=t.suppliers, pence=t.value_pence, s=t.share)
            for c in p.by_category:
                add(f"category: {c.category}", count=c.suppliers, pence=c.value_pence, s=c.share)
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA)


@dataclass(frozen=True)
class Computed:
    """One basis computed for a scope: the engine's result, the lines behind it (with their details only when
    asked for), and (paid) what they rest on."""

    result: MetricsResult
    details: pl.DataFrame
    paid: list[PaidFacts] | None = None
    influenceable: bool = False


async def compute_bases(
    db_session: AsyncSession,
    scope: Scope,
    kind: str,
    period: str | None,
    basis: str | None,
    *,
    influenceable: bool = False,
    detailed: bool = False,
) -> list[Computed]:
    """Awarded and spread when no basis is asked for (paid only when asked: it rests on other data).
    ``detailed``: the lines keep what only the rows behind the figures show (titles, tier evidence)."""
    if influenceable and basis != "paid":
        raise InvalidInput("influenceable=true needs basis=paid: only payment lines name their payees.")
    # A copy of the lines found missing here is written once these figures are out (``linecache.working_out``).
    with linecache.working_out():
        return await _compute_bases(db_session, scope, kind, period, basis, influenceable, detailed)


async def _compute_bases(
    db_session: AsyncSession,
    scope: Scope,
    kind: str,
    period: str | None,
    basis: str | None,
    influenceable: bool,
    detailed: bool,
) -> list[Computed]:
    from procurement.metrics.paid import paid_facts

    if basis == "paid":
        key: bytes | None = None
        if scope.anchor_ids:
            # Without details, only the columns the figures are made of (nothing else reads them here).
            every, key = await keyed_payment_lines(db_session, scope.anchor_ids, detailed=detailed, figures_only=True)
        else:
            every = await scope_lines(db_session, scope, basis="paid", detailed=detailed)
        details = every.filter(pl.col("influenceable")) if influenceable else every
        # The copies' tokens name every line; the influenceable view is a part of them, so another key.
        key = key + b":influenceable" if key is not None and influenceable else key
        result, facts = await asyncio.gather(
            metrics_off_loop(details, scope, basis="paid", periods=kind, digest=key),
            in_engine_thread(
                partial(
                    paid_facts, every, periods=kind, influenceable=influenceable, wanted=[period] if period else None
                )
            ),
        )
        return [Computed(result, details, facts, influenceable)]
    digest: bytes | None = None
    if scope.anchor_ids:
        # Without details, the lines may come by anchor (see ``keyed_lines``): nothing here reads their order.
        lines, digest = await keyed_lines(db_session, scope.anchor_ids, detailed=detailed, by_anchor=not detailed)
        digest = digest or lines_digest(lines)
    else:
        lines = await scope_lines(db_session, scope, basis="awarded", detailed=detailed)
    bases = [basis] if basis else ["awarded", "spread"]
    results = await asyncio.gather(
        *(metrics_off_loop(lines, scope, basis=b, periods=kind, digest=digest) for b in bases)
    )
    return [Computed(result, lines) for result in results]


def paid_periods(facts: list[PaidFacts]) -> list[PaidPeriod]:
    return [
        PaidPeriod(
            period=f.period,
            lines=f.lines,
            transactions=f.transactions,
            redacted_lines=f.redacted_lines,
            redacted_pence=f.redacted_pence,
            redacted=pounds(f.redacted_pence),
            influenceable_only=f.influenceable_only,
            left_out_lines=f.left_out_lines,
            left_out_pence=f.left_out_pence,
            left_out=pounds(f.left_out_pence),
            left_out_by_rule=f.left_out_by_rule,
            months=f.months,
        )
        for f in facts
    ]


def basis_metrics(computed: Computed, scope_key: str, period: str | None) -> BasisMetrics:
    r = computed.result
    redacted = [f.period for f in computed.paid or [] if f.redacted_lines]
    return BasisMetrics(
        basis=r.basis,
        label=basis_label(r.basis, influenceable=computed.influenceable),
        periods=period_metrics(r, scope_key, [period] if period else None, redacted_periods=redacted),
        paid=paid_periods(computed.paid) if computed.paid is not None else None,
        influenceable_only=computed.influenceable,
    )


async def _compute(
    db_session: AsyncSession,
    anchor_id: int | None,
    group: str | None,
    period: str | None,
    basis: str | None,
    *,
    influenceable: bool = False,
    detailed: bool = False,
) -> tuple[Scope, str, list[Computed]]:
    kind = parse_period(period)
    scope = await resolve_scope(db_session, anchor_id=anchor_id, group=group)
    computed = await compute_bases(
        db_session, scope, kind, period, basis, influenceable=influenceable, detailed=detailed
    )
    return scope, kind, computed


async def _rows(
    db_session: AsyncSession,
    anchor_id: int | None,
    group: str | None,
    period: str | None,
    basis: str | None,
    *,
    influenceable: bool = False,
) -> tuple[Scope, pl.DataFrame, pl.DataFrame]:
    scope, _kind, computed = await _compute(
        db_session, anchor_id, group, period, basis, influenceable=influenceable, detailed=True
    )
    frames = []
    summaries = []
    for c in computed:
        name = basis_name(c.result.basis, influenceable=c.influenceable)
        rows = await rows_behind(db_session, c.details, c.result, scope.key, period)
        frames.append(rows.with_columns(basis=pl.lit(name)))
        summaries.append(summary_frame([c.result], scope.key, period).with_columns(basis=pl.lit(name)))
    return scope, pl.concat(frames), pl.concat(summaries)


def _filename(scope: Scope, period: str | None) -> str:
    label = (period or "all-periods").replace("/", "-")
    return f"metrics-{scope.key.replace(':', '-')}-{label}"
