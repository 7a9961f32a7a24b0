"""The public pages: the list of published statements and the accessible HTML version of each statement.

The HTML statement is rendered from the same frozen snapshot as the PDF (UK public bodies must publish an
accessible format, and a ReportLab PDF is not tagged), so the two can never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from procurement import models as m
from socialvalue.charts import Chart, Series, bar_chart, trend_chart
from socialvalue.snapshot import (
    StatementSnapshot,
    _short_period,
    _uk_date,
    _uk_datetime,
    canonical_json,
    format_commitment,
    format_judged,
    format_pence,
    format_share,
    glossary,
    resting_on,
    upgrade_snapshot,
)
from socialvalue.statement_pdf import (
    BASIS_EXPLANATIONS,
    EXCLUSION_LABELS,
    POSTCODE_LIMITATION,
    ROUNDING_NOTE,
    TIER_LABELS,
    trend_heading,
)

STATUS_TEXT = {
    "published": "Published",
    "superseded": "Superseded",
    "withdrawn": "Withdrawn",
    "draft": "Draft: not published",
}


def _number(share: str | None) -> Decimal | None:
    return None if share is None else Decimal(share)


@dataclass(frozen=True)
class HeadlineRow:
    measure: str
    awarded: str
    spread: str | None
    note: str


def _headline_rows(snap: StatementSnapshot) -> list[HeadlineRow]:
    main, spread = snap["headline"], snap["spread_headline"]

    def row(measure: str, key: str, note: str = "", cover: str | None = None) -> HeadlineRow:
        def shown(h: Any) -> str:
            value = h[key]
            if key == "total_value_pence":
                return format_pence(value)
            if isinstance(value, int):
                return f"{value:,}"
            if value is None and key == "contract_count":
                return "not recorded"
            return format_judged(value, h["coverage"][cover]) if cover else format_share(value)

        return HeadlineRow(measure, shown(main), None if spread is None else shown(spread), note)

    def coverage(measure: str, key: str, note: str) -> HeadlineRow:
        return HeadlineRow(
            measure,
            format_share(main["coverage"][key]),  # type: ignore[literal-required]
            None if spread is None else format_share(spread["coverage"][key]),  # type: ignore[literal-required]
            note,
        )

    return [
        row("Total contract value", "total_value_pence", "value counted in the quarter"),
        row("Contracts", "contract_count"),
        row("Contract lines", "line_count", "one line per contract and supplier"),
        row("Suppliers", "supplier_count"),
        row("Local share of value", "local_share", "of all value counted", "locality"),
        row("Local share where location is known", "local_share_known", "leaves out unknown locations", "locality"),
        row("Regional share of value", "regional_share", "", "locality"),
        coverage("Coverage: location known", "locality", "value these location shares are judged on"),
        row("SME share", "sme_share", "small and medium-sized enterprises", "sme"),
        coverage("Coverage: SME status known", "sme", "value the SME share is judged on"),
        row("VCSE share", "vcse_share", "voluntary, community and social enterprise", "vcse"),
        coverage("Coverage: VCSE status known", "vcse", "value the VCSE share is judged on"),
        row("Social enterprise share", "social_enterprise_share", "", "social_enterprise"),
        coverage(
            "Coverage: social enterprise status known",
            "social_enterprise",
            "value the social enterprise share is judged on",
        ),
    ]


def _charts(snap: StatementSnapshot) -> dict[str, Chart | None]:
    trend = snap["trend"]
    tiers = snap["by_tier"]
    types = snap["by_supplier_type"]
    total = snap["headline"]["total_value_pence"]
    return {
        "trend": trend_chart(
            [_short_period(p["period"]) for p in trend],
            [Series("Local share", [_number(p["local_share"]) for p in trend])],
            title="Local share of value, by quarter (awarded basis)",
            y_max=1.0,
        )
        if trend
        else None,
        "tiers": bar_chart(
            [(TIER_LABELS[t["tier"]], _number(t["share"])) for t in tiers],
            title="Share of contract value by supplier location (awarded basis)",
            category_heading="Supplier location",
            max_value=1.0,
        )
        if tiers and total
        else None,
        "types": bar_chart(
            [(t["category"], _number(t["share"])) for t in types],
            title="Share of contract value by supplier type (awarded basis)",
            category_heading="Supplier type",
            max_value=1.0,
        )
        if types and total
        else None,
    }


def statement_context(statement: m.Statement) -> dict[str, Any]:
    """Everything pages/statement.html shows, from the frozen snapshot and the statement's current status."""
    snap = upgrade_snapshot(json.loads(statement.snapshot_json))
    info = snap["statement"]
    main = snap["headline"]
    located = main["coverage"]["locality"]
    threshold = main["coverage_threshold"]
    base = f"/public/statements/{statement.id}"
    return {
        "snap": snap,
        "statement": statement,
        "status": statement.status,
        "status_text": STATUS_TEXT.get(statement.status, statement.status),
        "period_label": info["period_label"],
        "published": _uk_date(info["published_at"]) if info["published_at"] else "not published",
        "generated": _uk_datetime(info["generated_at"]),
        "hero": format_judged(main["local_share"], located),
        "local_known": main["local_share"] is not None,
        "located": format_share(located),
        "total": format_pence(main["total_value_pence"]),
        "resting_on": resting_on(main) if main["total_value_pence"] else "",
        "threshold": format_share(threshold) if threshold is not None else None,
        "headline_rows": _headline_rows(snap),
        "has_spread": snap["spread_headline"] is not None,
        "exclusions": [
            (f"{title}: {why}", f"{main['excluded'][key]:,}")  # type: ignore[literal-required]
            for key, title, why in EXCLUSION_LABELS
        ],
        "trend_heading": trend_heading(len(snap["trend"])),
        "trend_rows": [
            (
                _short_period(p["period"]),
                format_share(p["local_share"]),
                "not recorded" if p["coverage"] is None else format_share(p["coverage"]),
                format_pence(p["total_value_pence"]),
            )
            for p in snap["trend"]
        ],
        "tier_rows": [
            (TIER_LABELS[t["tier"]], format_pence(t["value_pence"]), format_share(t["share"])) for t in snap["by_tier"]
        ],
        "type_rows": [
            (t["category"], f"{t['suppliers']:,}", format_pence(t["value_pence"]), format_share(t["share"]))
            for t in snap["by_supplier_type"]
        ],
        "status_known": format_share(main["coverage"]["status"]),
        "charts": _charts(snap),
        "top_suppliers": [
            (s["name"], s["category"], TIER_LABELS.get(s["tier"], s["tier"]), format_pence(s["value_pence"]))
            for s in snap["top_suppliers"]
        ],
        "top_local": [
            (s["name"], s["category"], s["lad_name"] or "not known", format_pence(s["value_pence"]))
            for s in snap["top_local_suppliers"]
        ],
        "commitments": [
            (
                c["contract"],
                c["supplier"],
                c["measure"] if c["unit"] == "pounds" else f"{c['measure']} ({c['unit']})",
                format_commitment(c["committed"], c["unit"]),
                format_commitment(c["delivered"], c["unit"]),
                format_commitment(c["verified"], c["unit"]),
            )
            for c in snap["commitments"]
        ],
        "bases": [BASIS_EXPLANATIONS.get(b, b) for b in snap["methodology"]["bases"]],
        "postcode_limitation": POSTCODE_LIMITATION,
        "rounding_note": ROUNDING_NOTE,
        "glossary": glossary(snap),
        "links": {"pdf": f"{base}.pdf", "json": f"{base}.json", "csv": f"{base}.csv"},
        "back": ("/", "Published statements"),
    }


def draft_context(snapshot: dict[str, Any], *, pdf_url: str, back: tuple[str, str]) -> dict[str, Any]:
    """pages/statement.html for a draft from live figures: the same page a published statement gets, marked
    as a draft, so a reviewer previews exactly what the public will read. Nothing is stored."""
    draft = m.Statement(
        id=0,
        status="draft",
        snapshot_json=canonical_json(snapshot).decode("utf-8"),
        figures_sha256=snapshot["figures_sha256"],
    )
    return {**statement_context(draft), "links": {"pdf": pdf_url}, "back": back}
