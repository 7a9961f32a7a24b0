"""What the workspace pages show, built only from the metrics and imports services (no figures computed here).

The dashboard takes ``period_metrics`` for one period and the eight quarters before it; the lines page
filters and sorts ``rows_behind`` (the same rows as /metrics.csv), so a figure, its lines and their download
always agree.
"""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.auth import Principal
from procurement.errors import Forbidden, InvalidInput
from procurement.metrics.lines import Scope, metrics_off_loop, resolve_scope
from procurement.metrics.schemas import PeriodMetrics
from procurement.metrics.service import _rows, parse_period, period_metrics, scope_lines
from socialvalue.metrics import CATEGORIES, TIERS, MetricsResult
from socialvalue.periods import (
    financial_year_label,
    parse_financial_year,
    quarter_from_index,
    quarter_index,
    quarter_of,
)

TREND_QUARTERS = 8
PAGE_SIZE = 50
BASES = ("awarded", "spread", "paid")
BASIS_NAMES = {
    "awarded": "Awarded (by award date)",
    "spread": "Spread (over the contract period)",
    "paid": "Paid (payments the anchor published)",
}

TIER_NAMES = {
    "local": "Local (the anchor's own area)",
    "regional": "Elsewhere in the region",
    "rest_of_uk": "Rest of the UK",
    "outside_uk": "Outside the UK",
    "unknown": "Location not known",
}
CATEGORY_NAMES = {
    "charity": "Charity",
    "cic": "Community interest company",
    "cio": "Charitable incorporated organisation",
    "registered_society": "Registered society",
    "other_vcse": "Other VCSE",
    "sme": "SME (not VCSE)",
    "large": "Large enterprise",
    "unknown": "Status not known",
}
# Sortable columns of the lines table: query value -> column of rows_behind.
SORTS = {
    "value": "allocated_pence",
    "supplier": "supplier_name",
    "contract": "contract_title",
    "buyer": "buyer_name",
    "award_date": "award_date",
    "tier": "tier",
    "category": "category",
}
SHOW = ("counted", "excluded", "all")
FLAG_NAMES = {"sme": "SME", "vcse": "VCSE", "social_enterprise": "Social enterprise"}


def period_text(label: str) -> str:
    """ "2025Q1" -> "Q1 2025/26"; "2025/26" -> "financial year 2025/26"."""
    if "/" in label:
        return f"financial year {label}"
    year, quarter = divmod(quarter_index(label), 4)
    return f"Q{quarter + 1} {year}/{(year + 1) % 100:02d}"


@dataclass(frozen=True)
class Selection:
    """What a reviewer picked: one anchor or one group (neither: all anchors), a period and a basis."""

    anchor_id: int | None
    group: str | None
    period: str | None
    basis: str

    @property
    def scope_value(self) -> str:
        """The scope as the selector's value: "anchor:12", "group:slug" or "" (all anchors)."""
        if self.anchor_id is not None:
            return f"anchor:{self.anchor_id}"
        return f"group:{self.group}" if self.group else ""

    def query(self, **extra: Any) -> str:
        params: dict[str, Any] = {}
        if self.scope_value:
            params["scope"] = self.scope_value
        if self.period:
            params["period"] = self.period
        params["basis"] = self.basis
        params.update({k: v for k, v in extra.items() if v is not None and v != ""})
        return urlencode(params)


def selection_for(principal: Principal, scope: str | None, period: str | None, basis: str | None) -> Selection:
    """Check the request's choices; editors see their own organisation only (the default for them)."""
    anchor_id, group = parse_scope_choice(scope)
    if basis is not None and basis not in BASES:
        raise InvalidInput(f"basis must be awarded, spread or paid, got {basis!r}")
    if period:
        parse_period(period)
    if principal.role is m.Role.EDITOR:
        own = principal.organisation_id
        if group or (anchor_id is not None and anchor_id != own):
            raise Forbidden("Editors see their own organisation's figures only.")
        anchor_id = own
    return Selection(anchor_id=anchor_id, group=group or None, period=period or None, basis=basis or "awarded")


@dataclass(frozen=True)
class ScopeChoice:
    value: str  # "", "anchor:12" or "group:slug"
    text: str


async def scope_choices(session: AsyncSession, principal: Principal) -> list[ScopeChoice]:
    if principal.role is m.Role.EDITOR:
        if principal.organisation_id is None:
            return []
        org = await session.get(m.Organisation, principal.organisation_id)
        return [ScopeChoice(f"anchor:{principal.organisation_id}", org.name if org else "Your organisation")]
    groups = (await session.execute(select(m.AnchorGroup.slug, m.AnchorGroup.name).order_by(m.AnchorGroup.name))).all()
    anchors = (
        await session.execute(
            select(m.Organisation.id, m.Organisation.name)
            .where(m.Organisation.is_anchor.is_(True))
            .order_by(m.Organisation.name)
        )
    ).all()
    return [
        ScopeChoice("", "All anchors"),
        *(ScopeChoice(f"group:{slug}", f"{name} (group)") for slug, name in groups),
        *(ScopeChoice(f"anchor:{ident}", name) for ident, name in anchors),
    ]


def parse_scope_choice(value: str | None) -> tuple[int | None, str | None]:
    """The scope select's value ("anchor:12", "group:slug" or empty) as (anchor_id, group)."""
    if not value:
        return None, None
    kind, _, ident = value.partition(":")
    if kind == "anchor" and ident.isdigit():
        return int(ident), None
    if kind == "group" and ident:
        return None, ident
    raise InvalidInput(f"scope must look like anchor:12 or group:birmingham-and-solihull, got {value!r}")


@dataclass(frozen=True)
class Dashboard:
    scope: Scope
    selection: Selection  # with the period filled in
    metrics: PeriodMetrics
    trend: list[PeriodMetrics]
    quarters: list[str]  # quarters with lines, newest first
    years: list[str]
    details: pl.DataFrame  # the lines behind the figures (contract lines, or payment lines on the paid basis)
    result: MetricsResult  # the engine's answer for the chosen period's kind
    bases: list[str]  # the bases this scope has data for (paid only where it has payments)


async def dashboard(session: AsyncSession, selection: Selection) -> Dashboard:
    scope = await resolve_scope(session, anchor_id=selection.anchor_id, group=selection.group)
    details = await scope_lines(session, scope, basis=selection.basis)
    by_quarter = await metrics_off_loop(details, scope, basis=selection.basis, periods="quarter")
    summary = by_quarter.summary.filter((pl.col("scope") == scope.key) & (pl.col("lines") > 0))
    quarters = sorted(summary["period"].to_list(), reverse=True)
    years = sorted({financial_year_label(quarter_index(q) // 4) for q in quarters}, reverse=True)
    period = selection.period or (quarters[0] if quarters else quarter_of(clock.now().date()))
    kind = parse_period(period)
    if kind == "quarter":
        result = by_quarter
    else:
        result = await metrics_off_loop(details, scope, basis=selection.basis, periods="year")
    (metrics,) = period_metrics(result, scope.key, [period])
    last = quarter_index(period) if kind == "quarter" else parse_financial_year(period) * 4 + 3
    trend_labels = [quarter_from_index(i) for i in range(last - TREND_QUARTERS + 1, last + 1)]
    return Dashboard(
        scope=scope,
        selection=Selection(selection.anchor_id, selection.group, period, selection.basis),
        metrics=metrics,
        trend=period_metrics(by_quarter, scope.key, trend_labels),
        quarters=quarters,
        years=years,
        details=details,
        result=result,
        bases=await bases_for(session, scope),
    )


async def dashboard_for(session: AsyncSession, selection: Selection, *, basis_given: bool) -> Dashboard:
    """The dashboard; with no basis asked for, an anchor that has payments but no contract lines in the period
    opens on the paid basis (its only figures) rather than on an empty awarded one."""
    board = await dashboard(session, selection)
    if basis_given or board.metrics.headline.lines or "paid" not in board.bases:
        return board
    paid = Selection(selection.anchor_id, selection.group, selection.period, "paid")
    return await dashboard(session, paid)


async def bases_for(session: AsyncSession, scope: Scope) -> list[str]:
    """Awarded and spread always; paid where an anchor of the scope has published payments loaded."""
    if not scope.anchor_ids:
        return ["awarded", "spread"]
    p, f = m.PaymentLine, m.SpendFile
    paid = await session.scalar(
        select(p.id)
        .join(f, f.id == p.file_id)
        .where(p.anchor_id.in_(list(scope.anchor_ids)), f.status == "active")
        .limit(1)
    )
    return ["awarded", "spread", "paid"] if paid is not None else ["awarded", "spread"]


@dataclass(frozen=True)
class LineFilters:
    tier: str | None = None
    category: str | None = None
    supplier_id: int | None = None
    cpv: str | None = None
    flag: str | None = None  # sme, vcse or social_enterprise: lines whose supplier has that flag
    show: str = "counted"
    sort: str = "value"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.tier is not None and self.tier not in TIERS:
            raise InvalidInput(f"tier must be one of {', '.join(TIERS)}, got {self.tier!r}")
        if self.category is not None and self.category not in CATEGORIES:
            raise InvalidInput(f"category must be one of {', '.join(CATEGORIES)}, got {self.category!r}")
        if self.cpv is not None and not (len(self.cpv) == 2 and self.cpv.isdigit()):
            raise InvalidInput(f"cpv must be a two-digit CPV division such as 85, got {self.cpv!r}")
        if self.flag is not None and self.flag not in FLAG_NAMES:
            raise InvalidInput(f"flag must be one of {', '.join(FLAG_NAMES)}, got {self.flag!r}")
        if self.show not in SHOW:
            raise InvalidInput(f"show must be counted, excluded or all, got {self.show!r}")
        if self.sort not in SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(SORTS)}, got {self.sort!r}")

    def query(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "category": self.category,
            "supplier": self.supplier_id,
            "cpv": self.cpv,
            "flag": self.flag,
            "show": None if self.show == "counted" else self.show,
        }

    def apply(self, rows: pl.DataFrame) -> pl.DataFrame:
        conditions = []
        if self.show == "counted":
            conditions.append(pl.col("excluded_reason").is_null())
        elif self.show == "excluded":
            conditions.append(pl.col("excluded_reason").is_not_null())
        if self.tier:
            conditions.append(pl.col("tier") == self.tier)
        if self.category:
            conditions.append(pl.col("category") == self.category)
        if self.supplier_id is not None:
            conditions.append(pl.col("supplier_id") == self.supplier_id)
        if self.cpv:
            conditions.append(pl.col("cpv_division") == self.cpv)
        if self.flag:
            conditions.append(pl.col(self.flag).fill_null(value=False))
        selected = rows.filter(*conditions) if conditions else rows
        column = SORTS[self.sort]
        # Ties keep the download's own order (basis, period, line), so pages never shuffle.
        return selected.sort(
            [column, "line_id", "quarter"], descending=[self.descending, False, False], nulls_last=True
        )


@dataclass(frozen=True)
class LineSelection:
    scope: Scope
    rows: pl.DataFrame
    summary: pl.DataFrame
    allocated_pence: int
    counted: int


async def select_lines(session: AsyncSession, selection: Selection, filters: LineFilters) -> LineSelection:
    """The rows behind the figures (exactly /metrics.csv's), narrowed by the filters and sorted."""
    scope, rows, summary = await _rows(session, selection.anchor_id, selection.group, selection.period, selection.basis)
    selected = filters.apply(rows)
    return LineSelection(
        scope=scope,
        rows=selected,
        summary=summary,
        allocated_pence=int(selected["allocated_pence"].fill_null(0).sum()),
        counted=int(selected["excluded_reason"].is_null().sum()),
    )


def filename(scope: Scope, selection: Selection, filters: LineFilters) -> str:
    parts = [
        "lines",
        scope.key.replace(":", "-"),
        (selection.period or "all-periods").replace("/", "-"),
        selection.basis,
    ]
    parts += [f"{k}-{v}" for k, v in filters.query().items() if v is not None]
    return "-".join(str(p) for p in parts)


# -- data quality --------------------------------------------------------------------------------------

STALE_FACTOR = 3
MIN_GAPS = 2


@dataclass(frozen=True)
class FeedHealth:
    source: str
    last_success: dt.datetime | None  # the last completed run of any kind
    last_new: dt.datetime | None  # the last feed run that brought new or changed releases
    median_gap: dt.timedelta | None
    overdue: bool
    message: str


def feed_health(
    source: str,
    productive_runs: Sequence[dt.datetime],
    last_success: dt.datetime | None,
    now: dt.datetime,
    *,
    feed_runs: int,
) -> FeedHealth:
    """Overdue when the feed has brought nothing for more than 3 times the median gap between the runs that
    did bring something. Fewer than three such runs is too little history to say what "usual" is."""
    times = sorted(productive_runs)
    last_new = times[-1] if times else None
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if feed_runs and not times:
        return FeedHealth(source, last_success, None, None, True, "No feed run has brought a new release yet.")
    if len(gaps) < MIN_GAPS or last_new is None:
        return FeedHealth(
            source, last_success, last_new, None, False, "Too few feed runs with new releases to know the usual gap."
        )
    median = dt.timedelta(seconds=statistics.median(g.total_seconds() for g in gaps))
    waited = now - last_new
    if median > dt.timedelta(0) and waited > STALE_FACTOR * median:
        return FeedHealth(
            source,
            last_success,
            last_new,
            median,
            True,
            f"Nothing new for {_span(waited)}; new releases usually come every {_span(median)}.",
        )
    return FeedHealth(
        source, last_success, last_new, median, False, f"New releases usually come every {_span(median)}."
    )


def _span(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 48:
        whole = max(1, round(hours))
        return f"{whole} hour{'s' if whole != 1 else ''}"
    days = round(hours / 24)
    return f"{days} days"


async def feeds_health(session: AsyncSession, now: dt.datetime | None = None) -> list[FeedHealth]:
    now = now or clock.now()
    run = m.ImportRun
    done = run.status == m.RunStatus.COMPLETED.value
    last_success = dict(
        (await session.execute(select(run.source, func.max(run.finished_at)).where(done).group_by(run.source)))
        .tuples()
        .all()
    )
    feed = (
        await session.execute(select(run.source, run.started_at, run.new + run.changed).where(done, run.kind == "feed"))
    ).all()
    sources = sorted(set(last_success) | {s for s, _, _ in feed})
    out = []
    for source in sources:
        mine = [(started, brought) for s, started, brought in feed if s == source]
        out.append(
            feed_health(
                source,
                [started for started, brought in mine if brought > 0],
                last_success.get(source),
                now,
                feed_runs=len(mine),
            )
        )
    return out


def page_of(total: int, page: int, size: int = PAGE_SIZE) -> tuple[int, int, int]:
    """(page, pages, offset) with page clamped into range."""
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    return page, pages, (page - 1) * size


def query_with(base: Mapping[str, Any], **changes: Any) -> str:
    merged = {**base, **changes}
    return urlencode({k: v for k, v in merged.items() if v is not None and v != ""})
