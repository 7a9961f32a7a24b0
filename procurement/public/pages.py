"""What the public pages show, read only from published statements' frozen snapshots.

Live figures never reach these pages: a figure here is one an institution published, with its coverage, and
"not known" wherever the snapshot says so (below the coverage threshold), never 0%.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from procurement import models as m
from procurement.errors import NotFound
from procurement.statements.pages import STATUS_TEXT
from procurement.statements.snapshot import period_label
from socialvalue.charts import MAX_POINTS, Chart, Series, trend_chart
from socialvalue.geography import ATTRIBUTION
from socialvalue.snapshot import _short_period, _uk_date, format_judged, format_share, upgrade_snapshot

BASIS_TEXT = {"awarded": "contracts awarded", "spread": "contract value spread over time", "paid": "payments made"}


@dataclass(frozen=True)
class Figures:
    """One statement's headline, as published: the share (or "not known") and the value it was judged on."""

    local_share: str
    coverage: str
    known: bool
    basis: str
    share_value: Decimal | None
    coverage_value: Decimal | None


def figures_of(statement: m.Statement) -> Figures:
    try:
        head = upgrade_snapshot(json.loads(statement.snapshot_json))["headline"]
    except ValueError:
        # A stored snapshot that fails its own hash: say so for this one statement, never show its figures.
        return Figures("not shown: its stored figures fail their integrity check", "not shown", False, "", None, None)
    located = head["coverage"]["locality"]
    share = head["local_share"]
    return Figures(
        local_share=format_judged(share, located),
        coverage="not known" if located is None else format_share(located),
        known=share is not None,
        basis=BASIS_TEXT.get(head.get("basis", "awarded"), head.get("basis", "awarded")),
        share_value=None if share is None else Decimal(share),
        coverage_value=None if located is None else Decimal(located),
    )


def _links(s: m.Statement) -> dict[str, str]:
    if s.status == m.StatementStatus.WITHDRAWN:
        return {}
    base = f"/public/statements/{s.id}"
    return {"html": f"{base}.html", "pdf": f"{base}.pdf?download=true", "json": f"{base}.json", "csv": f"{base}.csv"}


def _note(s: m.Statement) -> str | None:
    if s.status == m.StatementStatus.SUPERSEDED:
        return f"Replaced by version {s.version + 1}" + (f": {s.superseded_reason}" if s.superseded_reason else ".")
    if s.status == m.StatementStatus.WITHDRAWN:
        return f"Withdrawn: {s.withdrawn_reason or 'no reason recorded'}"
    if s.correction_reason:
        return f"Corrects version {s.version - 1}: {s.correction_reason}"
    return None


@dataclass(frozen=True)
class AnchorRow:
    id: int
    name: str
    code: str | None
    period: str | None
    figures: Figures | None


@dataclass(frozen=True)
class Version:
    id: int
    period: str
    period_name: str
    version: int
    status: str
    status_text: str
    published: str
    note: str | None
    figures: Figures
    links: dict[str, str]


def _latest_published(statements: Sequence[m.Statement]) -> dict[int, m.Statement]:
    """Each organisation's published statement of its latest quarter (a withdrawn or superseded one never counts)."""
    latest: dict[int, m.Statement] = {}
    for s in statements:
        if s.organisation_id is None or s.status != m.StatementStatus.PUBLISHED:
            continue
        seen = latest.get(s.organisation_id)
        if seen is None or (s.period, s.version) > (seen.period, seen.version):
            latest[s.organisation_id] = s
    return latest


async def home_context(session: AsyncSession) -> dict[str, Any]:
    anchors = list(
        await session.scalars(
            select(m.Organisation).where(m.Organisation.is_anchor.is_(True)).order_by(m.Organisation.name)
        )
    )
    statements = list(await session.scalars(select(m.Statement).options(defer(m.Statement.pdf))))
    latest = _latest_published(statements)
    rows = [
        AnchorRow(
            id=a.id,
            name=a.name,
            code=a.ods_code or a.gss_code,
            period=period_label(latest[a.id].period) if a.id in latest else None,
            figures=figures_of(latest[a.id]) if a.id in latest else None,
        )
        for a in anchors
    ]
    groups = sorted({(s.scope_name, s.scope_key) for s in statements if s.scope_kind == "group"})
    group_rows = [(name, [_version(s) for s in _ordered(statements) if s.scope_key == key]) for name, key in groups]
    return {
        "anchors": rows,
        "published": [r for r in rows if r.figures is not None],
        "waiting": [r for r in rows if r.figures is None],
        "groups": group_rows,
        "attribution": ATTRIBUTION.replace("\n", " "),
    }


def _ordered(statements: Sequence[m.Statement]) -> list[m.Statement]:
    return sorted(statements, key=lambda s: (s.period, s.version), reverse=True)


def _version(s: m.Statement) -> Version:
    return Version(
        id=s.id,
        period=s.period,
        period_name=period_label(s.period),
        version=s.version,
        status=s.status,
        status_text=STATUS_TEXT.get(s.status, s.status),
        published=_uk_date(s.published_at.isoformat()),
        note=_note(s),
        figures=figures_of(s),
        links=_links(s),
    )


def trend(versions: Sequence[Version]) -> Chart | None:
    """Local share by quarter from the published versions only, one series per basis (never mixed on one line)."""
    current = sorted(
        (v for v in versions if v.status == m.StatementStatus.PUBLISHED and v.figures.basis), key=lambda v: v.period
    )
    if not current:
        return None
    periods = sorted({v.period for v in current})[-MAX_POINTS:]  # a chart holds so many; the table has all
    bases = sorted({v.figures.basis for v in current})
    by_key = {(v.period, v.figures.basis): v.figures for v in current}
    series = [
        Series(
            f"Local share ({basis})" if len(bases) > 1 else "Local share",
            [by_key[(p, basis)].share_value if (p, basis) in by_key else None for p in periods],
        )
        for basis in bases
    ]
    if len(bases) == 1:  # coverage beside the share; with several bases the table below gives each one's
        series.append(
            Series("Coverage: value whose location is known", [by_key[(p, bases[0])].coverage_value for p in periods])
        )
    return trend_chart(
        [_short_period(p) for p in periods],
        series,
        title="Local share of value in each published statement, by quarter",
        y_max=1.0,
    )


async def anchor_context(session: AsyncSession, key: str) -> dict[str, Any]:
    """An anchor by its database id or its code (ODS or GSS), with every statement version it has published."""
    query = select(m.Organisation).where(m.Organisation.is_anchor.is_(True))
    if key.isdigit():
        query = query.where(m.Organisation.id == int(key))
    else:
        code = key.upper()
        query = query.where((m.Organisation.ods_code == code) | (m.Organisation.gss_code == code))
    anchor = await session.scalar(query)
    if anchor is None:
        raise NotFound(f"No anchor institution {key!r}: use its number or code from the list on the home page.")
    statements = _ordered(
        list(
            await session.scalars(
                select(m.Statement).options(defer(m.Statement.pdf)).where(m.Statement.organisation_id == anchor.id)
            )
        )
    )
    versions = [_version(s) for s in statements]
    latest = _latest_published(statements).get(anchor.id)
    return {
        "anchor": anchor,
        "code": anchor.ods_code or anchor.gss_code,
        "versions": versions,
        "latest": None if latest is None else _version(latest),
        "trend": trend(versions),
        "attribution": ATTRIBUTION.replace("\n", " "),
    }
