"""Quarterly public local-spend statements rendered as PDF from a frozen snapshot.

It does no I/O and reads no database, so the same snapshot always gives the same PDF bytes (for a given ReportLab
version)."""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, cast
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import HorizontalBarChart, VerticalBarChart
from reportlab.graphics.charts.textlabels import NA_Label
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from socialvalue.catalogue import CASH_UNIT
from socialvalue.snapshot import (
    LANGUAGE,
    Headline,
    StatementSnapshot,
    TrendPoint,
    _parse_instant,
    _share_decimal,
    _short_period,
    _uk_date,
    _uk_datetime,
    format_commitment,
    format_judged,
    format_pence,
    format_share,
    glossary,
    resting_on,
    upgrade_snapshot,
)

_FALLBACK_LETTERS = str.maketrans({"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "\u0131": "i", "Ħ": "H", "ħ": "h"})


def _printable(text: str) -> str:
    """Text the standard PDF fonts can show: they cover Windows-1252 only, so fold other letters to plain ones."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        pass
    else:
        return text
    out = []
    for char in text.translate(_FALLBACK_LETTERS):
        try:
            char.encode("cp1252")
        except UnicodeEncodeError:
            base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            try:
                base.encode("cp1252")
            except UnicodeEncodeError:
                base = "?"
            out.append(base)
        else:
            out.append(char)
    return "".join(out)


def _markup(text: str) -> str:
    return escape(_printable(text))


TIER_LABELS = {
    "local": "Local",
    "regional": "Elsewhere in region",
    "rest_of_uk": "Rest of UK",
    "outside_uk": "Outside UK",
    "unknown": "Location unknown",
}


BASIS_EXPLANATIONS = {
    "awarded": "Awarded basis: the whole value of each contract counts in the quarter in which it was awarded. "
    "It shows the buying decisions made in the quarter.",
    "spread": "Spread basis: the value of each contract is spread evenly over its contract term, and only the "
    "part that falls in the quarter counts. It shows the money flowing to suppliers during the quarter.",
    "paid": "Paid basis: every payment the organisation published (its spend files) counts in the quarter of its "
    "payment date. It shows money actually paid, not commitments; payments whose payee was redacted count, with "
    "no supplier, as location and status unknown.",
}


# What a figure is called on each basis (the awarded words are the statement's original ones).
_VALUE_WORDS = {
    "awarded": ("Total contract value", "Contract lines", "awarded", "contract value"),
    "spread": ("Total contract value", "Contract lines", "awarded", "contract value"),
    "paid": ("Total paid", "Payment lines", "paid", "value paid"),
}


def _words(snap_or_headline: Any) -> tuple[str, str, str, str]:
    head = snap_or_headline.get("headline", snap_or_headline)
    return _VALUE_WORDS.get(head["basis"], _VALUE_WORDS["awarded"])


EXCLUSION_LABELS = (
    ("non_gbp", "Not in pounds sterling", "not converted, to avoid exchange-rate assumptions"),
    ("withdrawn", "Withdrawn or cancelled awards", "the money was never committed"),
    ("no_value", "No value published", "nothing to add up"),
    ("no_date", "No award date", "the quarter cannot be known"),
)


POSTCODE_LIMITATION = (
    "A supplier's location comes from the postcode it gives in the contract notice. This is usually its "
    "registered office, which may not be where the work is done or where its staff live: a national firm "
    "delivering from a local branch counts as not local, and a local firm's registered address elsewhere "
    "counts as not local. Local shares are therefore an indicator of where the money goes, not a measure of "
    "local jobs."
)


ROUNDING_NOTE = (
    "Money is shown in whole pounds, rounded to the nearest pound. Shares are worked out from the exact amounts "
    "in pence and shown to one decimal place, so rounded figures may not add up exactly."
)


INK = colors.HexColor("#1a1a1a")


HEADING = colors.HexColor("#0b3d66")


MUTED = colors.HexColor("#404040")


RULE = colors.HexColor("#9aa5b1")


HEADER_FILL = colors.HexColor("#e3ebf3")


BAR = colors.HexColor("#1f5a96")


BAR_UNKNOWN = colors.HexColor("#5f5f5f")


DRAFT_RED = colors.HexColor("#a4161a")


WATERMARK = colors.HexColor("#f4dada")


NOTICE_FILL = colors.HexColor("#fff4e0")


NOTICE_EDGE = colors.HexColor("#8a5a00")


PAGE_WIDTH, PAGE_HEIGHT = A4


MARGIN = 18 * mm


FOOTER_SPACE = 20 * mm


CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN


BODY = ParagraphStyle("Body", fontName="Helvetica", fontSize=9.5, leading=13, textColor=INK, spaceAfter=5)


SMALL = ParagraphStyle("Small", parent=BODY, fontSize=8.5, leading=11, spaceAfter=3)


CELL = ParagraphStyle("Cell", parent=BODY, fontSize=8.5, leading=10.5, spaceAfter=0, alignment=TA_LEFT)


CELL_BOLD = ParagraphStyle("CellBold", parent=CELL, fontName="Helvetica-Bold")


CELL_RIGHT = ParagraphStyle("CellRight", parent=CELL, alignment=2)


CELL_RIGHT_BOLD = ParagraphStyle("CellRightBold", parent=CELL_RIGHT, fontName="Helvetica-Bold")


KICKER = ParagraphStyle("Kicker", parent=BODY, fontSize=11, leading=14, textColor=MUTED, spaceAfter=2)


TITLE = ParagraphStyle("Title", parent=BODY, fontName="Helvetica-Bold", fontSize=22, leading=27, textColor=HEADING)


PERIOD = ParagraphStyle("Period", parent=BODY, fontName="Helvetica-Bold", fontSize=14, leading=18, spaceAfter=8)


H1 = ParagraphStyle(
    "H1",
    parent=BODY,
    fontName="Helvetica-Bold",
    fontSize=14,
    leading=18,
    textColor=HEADING,
    spaceBefore=10,
    keepWithNext=1,
)


H2 = ParagraphStyle(
    "H2",
    parent=BODY,
    fontName="Helvetica-Bold",
    fontSize=11,
    leading=14,
    textColor=HEADING,
    spaceBefore=8,
    keepWithNext=1,
)


HERO = ParagraphStyle("Hero", parent=BODY, fontName="Helvetica-Bold", fontSize=30, leading=34, textColor=HEADING)


NOTICE = ParagraphStyle("Notice", parent=BODY, fontSize=10, leading=13.5, spaceAfter=0)


BULLET = ParagraphStyle("Bullet", parent=BODY, leftIndent=12, bulletIndent=2, spaceAfter=3)


GRID = [
    ("FONTNAME", (0, 0), (-1, -1), "Helvetica"),
    ("FONTSIZE", (0, 0), (-1, -1), 8.5),
    ("TEXTCOLOR", (0, 0), (-1, -1), INK),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
    ("TOPPADDING", (0, 0), (-1, -1), 3),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
]


HEADER_ROW = [("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL), ("LINEBELOW", (0, 0), (-1, 0), 0.8, HEADING)]


class _Heading(Paragraph):  # type: ignore[misc]  # reportlab is untyped
    """A heading that also becomes a bookmark, so readers and screen readers can jump between sections."""

    def __init__(self, text: str, style: ParagraphStyle, level: int) -> None:
        super().__init__(_markup(text), style)
        self.outline_text = _printable(text)
        self.outline_level = level


def _h1(text: str) -> _Heading:
    return _Heading(text, H1, 0)


def _h2(text: str) -> _Heading:
    return _Heading(text, H2, 1)


def _p(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(_markup(text), style)


def _cell(text: str, style: ParagraphStyle = CELL) -> Paragraph:
    return Paragraph(_markup(text), style)


def _table(rows: list[list[Any]], widths: Sequence[float], extra: Sequence[tuple[Any, ...]] = ()) -> Table:
    table = Table(rows, colWidths=list(widths), repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([*GRID, *HEADER_ROW, *extra]))
    return table


def _notice(text: str, edge: colors.Color, fill: colors.Color) -> Table:
    box = Table([[Paragraph(text, NOTICE)]], colWidths=[CONTENT_WIDTH], hAlign="LEFT")
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.5, edge),
                ("BACKGROUND", (0, 0), (-1, -1), fill),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
                ("RIGHTPADDING", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return box


def _cover(snap: StatementSnapshot) -> list[Flowable]:
    info = snap["statement"]
    story: list[Flowable] = [_p("Local spend and social value statement", KICKER), _p(info["anchor_name"], TITLE)]
    if info["scope_kind"] == "group":
        members = ", ".join(info["members"]) or "no members listed"
        story.append(_p(f"Group statement covering {len(info['members'])} organisations: {members}.", SMALL))
    elif info["anchor_code"]:
        story.append(_p(f"Organisation code {info['anchor_code']}", SMALL))
    story.append(_p(info["period_label"], PERIOD))

    status = info["status"]
    if status == "draft":
        story.append(
            _notice(
                "<b>DRAFT</b>: not published. These figures may change and must not be quoted or relied on.",
                DRAFT_RED,
                colors.HexColor("#fdeaea"),
            )
        )
    elif status == "superseded":
        story.append(
            _notice(
                "<b>SUPERSEDED</b>: a later version of this statement replaces this one. "
                "Use the latest version of the statement for this quarter.",
                NOTICE_EDGE,
                NOTICE_FILL,
            )
        )
    elif status == "withdrawn":
        story.append(
            _notice(
                "<b>WITHDRAWN</b>: this statement has been withdrawn and its figures should not be used.",
                DRAFT_RED,
                colors.HexColor("#fdeaea"),
            )
        )
    replaced = info["supersedes"]
    if replaced is not None:
        story.append(Spacer(1, 4))
        story.append(
            _notice(
                f"This version {info['version']} replaces version {replaced['version']} "
                f"(statement {_markup(replaced['id'])}). Reason: {_markup(replaced['reason'])}",
                NOTICE_EDGE,
                NOTICE_FILL,
            )
        )

    published = _uk_date(info["published_at"]) if info["published_at"] else "Not published"
    facts = [
        [_cell("Version", CELL_BOLD), _cell(str(info["version"]))],
        [_cell("Status", CELL_BOLD), _cell(status.capitalize())],
        [_cell("Published", CELL_BOLD), _cell(published)],
        [_cell("Figures generated", CELL_BOLD), _cell(_uk_datetime(info["generated_at"]))],
        [_cell("Statement reference", CELL_BOLD), _cell(info["id"])],
    ]
    facts_table = Table(facts, colWidths=[40 * mm, CONTENT_WIDTH - 40 * mm], hAlign="LEFT")
    facts_table.setStyle(TableStyle([*GRID, ("LINEABOVE", (0, 0), (-1, 0), 0.4, RULE)]))
    story += [Spacer(1, 8), facts_table, Spacer(1, 4), _p(accessible_version_text(snap), SMALL)]
    return story


def _headline_rows(main: Headline, spread: Headline | None) -> list[list[Any]]:
    def row(label: str, pick: Callable[[Headline], str], note: str = "", bold: bool = False) -> list[Any]:
        style = CELL_RIGHT_BOLD if bold else CELL_RIGHT
        cells = [_cell(label, CELL_BOLD if bold else CELL), _cell(pick(main), style)]
        if spread is not None:
            cells.append(_cell(pick(spread), style))
        cells.append(_cell(note, SMALL))
        return cells

    def judged(share_key: str) -> Callable[[Headline], str]:
        return lambda h: format_share(h[share_key])  # type: ignore[literal-required]

    def coverage(key: str) -> Callable[[Headline], str]:
        return lambda h: format_share(h["coverage"][key])  # type: ignore[literal-required]

    def contracts(h: Headline) -> str:
        return "not recorded" if h["contract_count"] is None else f"{h['contract_count']:,}"

    header = [_cell("Measure", CELL_BOLD), _cell(f"{main['basis'].capitalize()} basis", CELL_RIGHT_BOLD)]
    if spread is not None:
        header.append(_cell("Spread basis", CELL_RIGHT_BOLD))
    header.append(_cell("What it means", CELL_BOLD))
    return [
        header,
        row(_words(main)[0], lambda h: format_pence(h["total_value_pence"]), "value counted in the quarter"),
        *([row("Contracts", contracts)] if main["basis"] != "paid" else []),
        row(
            _words(main)[1],
            lambda h: f"{h['line_count']:,}",
            "one line per payment published" if main["basis"] == "paid" else "one line per contract and supplier",
        ),
        row("Suppliers", lambda h: f"{h['supplier_count']:,}"),
        row("Local share of value", judged("local_share"), "of all value counted", bold=True),
        row(
            "Local share where location is known",
            judged("local_share_known"),
            "leaves out suppliers whose location is unknown",
        ),
        row("Regional share of value", judged("regional_share")),
        row("Coverage: location known", coverage("locality"), "value these location shares are judged on"),
        row("SME share", judged("sme_share"), "small and medium-sized enterprises"),
        row("Coverage: SME status known", coverage("sme"), "value the SME share is judged on"),
        row("VCSE share", judged("vcse_share"), "voluntary, community and social enterprise"),
        row("Coverage: VCSE status known", coverage("vcse"), "value the VCSE share is judged on"),
        row("Social enterprise share", judged("social_enterprise_share")),
        row(
            "Coverage: social enterprise status known",
            coverage("social_enterprise"),
            "value the social enterprise share is judged on",
        ),
    ]


def _threshold_text(main: Headline) -> str:
    threshold = main["coverage_threshold"]
    bar = format_share(threshold) if threshold is not None else "enough"
    return f"A share is given only when at least {bar} of the value could be judged; otherwise it is not known."


def _headline(snap: StatementSnapshot) -> list[Flowable]:
    main, spread = snap["headline"], snap["spread_headline"]
    label = snap["methodology"]["local_definition"]["label"]
    located = main["coverage"]["locality"]
    if main["total_value_pence"] == 0:
        lead = "No contract value was counted in this quarter, so there is no local share to give."
    elif main["local_share"] is None:
        lead = (
            f"The local share is not known: the location of suppliers was known for only {format_share(located)} "
            f"of the {format_pence(main['total_value_pence'])} {_words(main)[2]} in the quarter. "
            f"{_threshold_text(main)}"
        )
    else:
        lead = (
            f"Local share of value: the part of the {format_pence(main['total_value_pence'])} {_words(main)[2]} in the "
            f"quarter that went to suppliers in {label}. Supplier location was known for {format_share(located)} "
            "of the value."
        )
    hero = format_judged(main["local_share"], located).split(" (")[0]
    story: list[Flowable] = [
        _h1("Headline figures"),
        Paragraph(escape(hero), HERO),
        _p(f"{lead} {resting_on(main) if main['total_value_pence'] else ''}".strip()),
    ]
    widths = [58 * mm, 26 * mm, 26 * mm] if spread is not None else [58 * mm, 26 * mm]
    widths.append(CONTENT_WIDTH - sum(widths))
    bold_rows = [("BACKGROUND", (0, 5), (-1, 5), colors.HexColor("#f1f5f9"))]
    story.append(_table(_headline_rows(main, spread), widths, bold_rows))
    story.append(_p(_threshold_text(main), SMALL))

    excluded = main["excluded"]
    story.append(_h2("Left out of these figures"))
    rows: list[list[Any]] = [[_cell(f"{_words(main)[1]} left out", CELL_BOLD), _cell("Lines", CELL_RIGHT_BOLD)]]
    rows += [
        [_cell(f"{title}: {why}"), _cell(f"{excluded[key]:,}", CELL_RIGHT)]  # type: ignore[literal-required]
        for key, title, why in EXCLUSION_LABELS
    ]
    story.append(_table(rows, [CONTENT_WIDTH - 30 * mm, 30 * mm]))
    return story


def _bar_style(chart: Any, values: Sequence[float | None], labels: Sequence[str], unknown: Sequence[bool]) -> None:
    chart.data = [list(values)]
    chart.bars[0].fillColor = BAR
    chart.bars[0].strokeColor = None
    for i, is_unknown in enumerate(unknown):
        if is_unknown:
            chart.bars[(0, i)].fillColor = BAR_UNKNOWN
    chart.barLabelFormat = "values"
    chart.barLabelArray = [list(labels)]
    chart.barLabels.fontName = "Helvetica-Bold"
    chart.barLabels.fontSize = 8
    chart.barLabels.fillColor = INK
    chart.naLabel = NA_Label()
    chart.naLabel.text = "not known"
    chart.naLabel.fontName = "Helvetica"
    chart.naLabel.fontSize = 8
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = 100
    chart.valueAxis.valueStep = 20
    chart.valueAxis.labelTextFormat = "%d%%"
    chart.valueAxis.labels.fontName = "Helvetica"
    chart.valueAxis.labels.fontSize = 8
    chart.valueAxis.labels.fillColor = MUTED
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.gridStrokeColor = colors.HexColor("#d5dbe1")
    chart.valueAxis.gridStrokeWidth = 0.4
    chart.categoryAxis.labels.fontName = "Helvetica"
    chart.categoryAxis.labels.fontSize = 8
    chart.categoryAxis.labels.fillColor = INK
    chart.categoryAxis.strokeColor = MUTED
    chart.valueAxis.strokeColor = MUTED


def _percent(share: str | None) -> float | None:
    # Chart geometry only; every number printed comes from format_share on the exact decimal.
    return None if share is None else float(_share_decimal(share) * 100)


def _chart_title(drawing: Drawing, text: str) -> None:
    drawing.add(String(0, drawing.height - 10, _printable(text), fontName="Helvetica", fontSize=8, fillColor=MUTED))


def _trend_chart(trend: Sequence[TrendPoint], basis: str = "awarded") -> Drawing:
    drawing = Drawing(CONTENT_WIDTH, 150)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 34, 22, CONTENT_WIDTH - 44, 108
    chart.categoryAxis.categoryNames = [_short_period(p["period"]) for p in trend]
    _bar_style(
        chart,
        [_percent(p["local_share"]) for p in trend],
        [format_share(p["local_share"]) for p in trend],
        [False] * len(trend),
    )
    chart.barLabels.nudge = 7
    chart.naLabel.nudge = 7
    chart.barWidth = 10
    chart.groupSpacing = 14
    drawing.add(chart)
    _chart_title(drawing, f"Local share of value, by quarter ({basis} basis)")
    return drawing


def _horizontal_chart(
    names: Sequence[str], shares: Sequence[str | None], unknown: Sequence[bool], basis: str = "awarded"
) -> Drawing:
    height = 34 + 22 * len(names)
    drawing = Drawing(CONTENT_WIDTH, height)
    chart = HorizontalBarChart()
    label_space = 120
    chart.x, chart.y = label_space, 18
    chart.width, chart.height = CONTENT_WIDTH - label_space - 40, height - 32
    # Horizontal charts draw the first category at the bottom; reverse so they read top-down like the table.
    chart.categoryAxis.categoryNames = [_printable(n) for n in reversed(names)]
    _bar_style(
        chart,
        [_percent(s) for s in reversed(shares)],
        [format_share(s) for s in reversed(shares)],
        list(reversed(unknown)),
    )
    chart.barLabels.boxAnchor = "w"
    chart.barLabels.dx = 3
    chart.naLabel.boxAnchor = "w"
    chart.barWidth = 12
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.labels.dx = -4
    drawing.add(chart)
    _chart_title(drawing, f"Share of {_VALUE_WORDS.get(basis, _VALUE_WORDS['awarded'])[3]} ({basis} basis)")
    return drawing


def trend_heading(quarters: int) -> str:
    if quarters == 0:
        return "Local share over time"
    if quarters == 1:
        return "Local share over the last quarter"
    return f"Local share over the last {quarters} quarters"


def _trend_section(snap: StatementSnapshot) -> list[Flowable]:
    trend = snap["trend"]
    story: list[Flowable] = [_h1(trend_heading(len(trend)))]
    if not trend:
        story.append(_p("No earlier quarters are recorded for this statement."))
        return story
    story.append(_trend_chart(trend, snap["headline"]["basis"]))
    rows = [
        [
            _cell("Quarter", CELL_BOLD),
            _cell("Local share", CELL_RIGHT_BOLD),
            _cell("Location known for", CELL_RIGHT_BOLD),
            _cell("Total value", CELL_RIGHT_BOLD),
        ]
    ]
    rows += [
        [
            _cell(_short_period(p["period"])),
            _cell(format_share(p["local_share"]), CELL_RIGHT),
            _cell("not recorded" if p["coverage"] is None else format_share(p["coverage"]), CELL_RIGHT),
            _cell(format_pence(p["total_value_pence"]), CELL_RIGHT),
        ]
        for p in trend
    ]
    story.append(_table(rows, [35 * mm, 35 * mm, 40 * mm, 45 * mm]))
    return story


def _tier_section(snap: StatementSnapshot) -> list[Flowable]:
    tiers = snap["by_tier"]
    story: list[Flowable] = [_h1("Value by supplier location")]
    if not tiers:
        story.append(_p("No contract value was counted in this quarter."))
        return story
    names = [TIER_LABELS[t["tier"]] for t in tiers]
    chart = _horizontal_chart(
        names, [t["share"] for t in tiers], [t["tier"] == "unknown" for t in tiers], snap["headline"]["basis"]
    )
    rows = [[_cell("Supplier location", CELL_BOLD), _cell("Value", CELL_RIGHT_BOLD), _cell("Share", CELL_RIGHT_BOLD)]]
    rows += [
        [_cell(name), _cell(format_pence(t["value_pence"]), CELL_RIGHT), _cell(format_share(t["share"]), CELL_RIGHT)]
        for name, t in zip(names, tiers, strict=True)
    ]
    label = snap["methodology"]["local_definition"]["label"]
    located = snap["headline"]["coverage"]["locality"]
    story += [
        _p(
            f"Local means {label}; elsewhere in region means the rest of the region, outside that area. "
            f"Supplier location was known for {format_share(located)} of the value.",
            SMALL,
        ),
        chart,
        _table(rows, [CONTENT_WIDTH - 70 * mm, 40 * mm, 30 * mm]),
    ]
    return story


def _type_section(snap: StatementSnapshot) -> list[Flowable]:
    types = snap["by_supplier_type"]
    story: list[Flowable] = [_h1("Value by supplier type")]
    if not types:
        story.append(_p("No contract value was counted in this quarter."))
        return story
    names = [t["category"] for t in types]
    unknown = ["unknown" in t["category"].lower() for t in types]
    rows = [
        [
            _cell("Supplier type", CELL_BOLD),
            _cell("Suppliers", CELL_RIGHT_BOLD),
            _cell("Value", CELL_RIGHT_BOLD),
            _cell("Share", CELL_RIGHT_BOLD),
        ]
    ]
    rows += [
        [
            _cell(t["category"]),
            _cell(f"{t['suppliers']:,}", CELL_RIGHT),
            _cell(format_pence(t["value_pence"]), CELL_RIGHT),
            _cell(format_share(t["share"]), CELL_RIGHT),
        ]
        for t in types
    ]
    story += [
        _p(
            f"Supplier status was known for {format_share(snap['headline']['coverage']['status'])} of the value.", SMALL
        ),
        _horizontal_chart(names, [t["share"] for t in types], unknown, snap["headline"]["basis"]),
        _table(rows, [CONTENT_WIDTH - 95 * mm, 25 * mm, 40 * mm, 30 * mm]),
    ]
    return story


def _all_suppliers_section(snap: StatementSnapshot) -> list[Flowable]:
    suppliers = snap["top_suppliers"]
    if not suppliers:
        return []
    story: list[Flowable] = [_h1("Largest suppliers")]
    rows = [
        [
            _cell("#", CELL_BOLD),
            _cell("Supplier", CELL_BOLD),
            _cell("Type", CELL_BOLD),
            _cell("Location", CELL_BOLD),
            _cell("Value", CELL_RIGHT_BOLD),
        ]
    ]
    rows += [
        [
            _cell(str(i)),
            _cell(s["name"]),
            _cell(s["category"]),
            _cell(TIER_LABELS.get(s["tier"], s["tier"])),
            _cell(format_pence(s["value_pence"]), CELL_RIGHT),
        ]
        for i, s in enumerate(suppliers, start=1)
    ]
    story.append(_table(rows, [8 * mm, CONTENT_WIDTH - 130 * mm, 45 * mm, 47 * mm, 30 * mm]))
    return story


def _suppliers_section(snap: StatementSnapshot) -> list[Flowable]:
    suppliers = snap["top_local_suppliers"]
    story: list[Flowable] = [_h1("Largest local suppliers")]
    if not suppliers:
        story.append(_p("No local suppliers were awarded contracts in this quarter."))
        return story
    rows = [
        [
            _cell("#", CELL_BOLD),
            _cell("Supplier", CELL_BOLD),
            _cell("Type", CELL_BOLD),
            _cell("Local authority district", CELL_BOLD),
            _cell("Value", CELL_RIGHT_BOLD),
        ]
    ]
    rows += [
        [
            _cell(str(i)),
            _cell(s["name"]),
            _cell(s["category"]),
            _cell(s["lad_name"] or "not known"),
            _cell(format_pence(s["value_pence"]), CELL_RIGHT),
        ]
        for i, s in enumerate(suppliers, start=1)
    ]
    story.append(_table(rows, [8 * mm, CONTENT_WIDTH - 130 * mm, 40 * mm, 52 * mm, 30 * mm]))
    return story


def _commitments_section(snap: StatementSnapshot) -> list[Flowable]:
    commitments = snap["commitments"]
    story: list[Flowable] = [_h1("Social value commitments and delivery")]
    if not commitments:
        story.append(_p("No commitments recorded for this quarter."))
        return story
    story.append(
        _p(
            "What suppliers committed to deliver in their contracts, what they report as delivered so far, "
            "and how much of that has been checked against evidence (verified).",
            SMALL,
        )
    )
    rows = [
        [
            _cell("Contract", CELL_BOLD),
            _cell("Supplier", CELL_BOLD),
            _cell("Measure", CELL_BOLD),
            _cell("Committed", CELL_RIGHT_BOLD),
            _cell("Delivered", CELL_RIGHT_BOLD),
            _cell("Verified", CELL_RIGHT_BOLD),
        ]
    ]
    rows += [
        [
            _cell(c["contract"]),
            _cell(c["supplier"]),
            _cell(c["measure"] if c["unit"] == CASH_UNIT else f"{c['measure']} ({c['unit']})"),
            _cell(format_commitment(c["committed"], c["unit"]), CELL_RIGHT),
            _cell(format_commitment(c["delivered"], c["unit"]), CELL_RIGHT),
            _cell(format_commitment(c["verified"], c["unit"]), CELL_RIGHT),
        ]
        for c in commitments
    ]
    story.append(_table(rows, [34 * mm, 34 * mm, CONTENT_WIDTH - 134 * mm, 22 * mm, 22 * mm, 22 * mm]))
    return story


def _paid_section(snap: StatementSnapshot) -> list[Flowable]:
    """What the paid figures rest on: the payment files, redacted value as its own line, a partial quarter and
    the influenceable view said in words (only on statements that show the paid basis)."""
    paid = cast(Mapping[str, Any], snap).get("paid")
    if not paid:
        return []
    story: list[Flowable] = [_h2("Payments behind these figures")]
    if paid["partial_quarter"]:
        missing = ", ".join(paid["months_missing"])
        story.append(
            _notice(
                f"<b>PART OF A QUARTER</b>: payments are loaded for {_markup(', '.join(paid['months']) or 'no month')} "
                f"only; {_markup(missing)} not loaded. These figures cover part of the quarter.",
                NOTICE_EDGE,
                NOTICE_FILL,
            )
        )
    if paid["influenceable_only"]:
        rules = "; ".join(f"{r['rule']}: {format_pence(r['value_pence'])}" for r in paid["left_out_by_rule"])
        story.append(
            _notice(
                "<b>INFLUENCEABLE SPEND ONLY</b>: payments to other public bodies, taxes and pension schemes are "
                f"left out: {paid['left_out_lines']:,} payment lines, {format_pence(paid['left_out_value_pence'])}"
                f"{' (' + _markup(rules) + ')' if rules else ''}.",
                NOTICE_EDGE,
                NOTICE_FILL,
            )
        )
    rows = [
        [_cell("Payment lines counted", CELL_BOLD), _cell(f"{paid['lines']:,}", CELL_RIGHT)],
        [
            _cell("Transactions (split lines of one transaction counted once)"),
            _cell(f"{paid['transactions']:,}", CELL_RIGHT),
        ],
        [
            _cell(f"Redacted payee ({paid['redacted_lines']:,} lines, never named)"),
            _cell(format_pence(paid["redacted_value_pence"]), CELL_RIGHT),
        ],
        [_cell("Months with payments loaded"), _cell(", ".join(paid["months"]) or "none", CELL_RIGHT)],
    ]
    story.append(_table(rows, [CONTENT_WIDTH - 50 * mm, 50 * mm]))
    files = [[_cell("Published file", CELL_BOLD), _cell("Months", CELL_BOLD), _cell("SHA-256", CELL_BOLD)]]
    files += [[_cell(f["name"]), _cell(", ".join(f["months"])), _cell(f["sha256"][:16] + "...")] for f in paid["files"]]
    story.append(_table(files, [CONTENT_WIDTH - 90 * mm, 45 * mm, 45 * mm]))
    return story


def _bullets(items: Sequence[str]) -> list[Flowable]:
    return [Paragraph(_markup(item), BULLET, bulletText="•") for item in items]


def _areas(lads: Sequence[str]) -> str:
    if not lads:
        return "no listed local authority area."
    which = "this local authority area" if len(lads) == 1 else f"one of these {len(lads)} local authority areas"
    return f"{which}: {'; '.join(lads)}."


def _methodology_section(snap: StatementSnapshot) -> list[Flowable]:
    method = snap["methodology"]
    definition = method["local_definition"]
    lads = definition["lad_names"]
    story: list[Flowable] = [
        _h1("Methodology"),
        _h2("What local means"),
        _p(f"Local means {definition['label']}: suppliers whose postcode lies in {_areas(lads)}"),
        _p(POSTCODE_LIMITATION),
        _h2("Two ways of counting value"),
    ]
    story += _bullets([BASIS_EXPLANATIONS.get(basis, basis) for basis in method["bases"]])
    story.append(
        _p(
            f"The headline figures use the {snap['headline']['basis']} basis"
            + ("; the spread basis is shown beside them." if snap["spread_headline"] is not None else ".")
        )
    )
    story.append(_p(ROUNDING_NOTE))
    story.append(_h2("What is left out and why"))
    fixed = [f"{title}: {why}." for _, title, why in EXCLUSION_LABELS]
    story += _bullets([*fixed, *method["exclusions"]])
    if method["notes"]:
        story.append(_h2("Notes"))
        story += _bullets(method["notes"])
    versions = method["rule_versions"]
    story.append(_h2("Rule versions"))
    story.append(
        _table(
            [
                [_cell("Rules", CELL_BOLD), _cell("Version", CELL_BOLD)],
                [_cell("Supplier location"), _cell(versions["locality"])],
                [_cell("SME, VCSE and social enterprise status"), _cell(versions["enterprise"])],
                [_cell("Metrics"), _cell(versions["metrics"])],
            ],
            [80 * mm, CONTENT_WIDTH - 80 * mm],
        )
    )
    return story


def _sources_section(snap: StatementSnapshot) -> list[Flowable]:
    story: list[Flowable] = [_h1("Data sources and licences")]
    rows = [[_cell("Source", CELL_BOLD), _cell("Licence", CELL_BOLD), _cell("Attribution", CELL_BOLD)]]
    rows += [[_cell(s["name"]), _cell(s["licence"]), _cell(s["attribution"])] for s in snap["sources"]]
    story.append(_table(rows, [40 * mm, 40 * mm, CONTENT_WIDTH - 80 * mm]))
    story.append(Spacer(1, 6))
    story.append(
        _p(
            "The figures in this statement are frozen: the SHA-256 fingerprint in the footer of every page is "
            "computed from them, so any later change to the figures gives a different fingerprint.",
            SMALL,
        )
    )
    return story


def _glossary_section(snap: StatementSnapshot) -> list[Flowable]:
    story: list[Flowable] = [_h1("Words used in this statement")]
    rows = [[_cell("Term", CELL_BOLD), _cell("Meaning", CELL_BOLD)]]
    rows += [[_cell(term, CELL_BOLD), _cell(meaning)] for term, meaning in glossary(snap)]
    story.append(_table(rows, [40 * mm, CONTENT_WIDTH - 40 * mm]))
    return story


def accessible_version_text(snap: StatementSnapshot) -> str:
    info = snap["statement"]
    if info["status"] == "draft":
        return (
            "Each published statement also has an accessible web (HTML) version for screen readers and other "
            "assistive technology; this draft does not."
        )
    return (
        "An accessible web (HTML) version of this statement, for screen readers and other assistive technology, is "
        f"published at /public/statements/{info['id']}.html on the same website as this PDF."
    )


def _story(snap: StatementSnapshot) -> list[Flowable]:
    return [
        *_cover(snap),
        *_headline(snap),
        *_paid_section(snap),
        KeepTogether(_trend_section(snap)),
        KeepTogether(_tier_section(snap)),
        KeepTogether(_type_section(snap)),
        *_all_suppliers_section(snap),
        *_suppliers_section(snap),
        *_commitments_section(snap),
        *_methodology_section(snap),
        KeepTogether(_sources_section(snap)),
        KeepTogether(_glossary_section(snap)),
    ]


def _wrap(canv: Canvas, text: str, room: float, font: str = "Helvetica", size: float = 7.5) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}".strip()
        if current and canv.stringWidth(candidate, font, size) > room:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current]


def _pdf_date(instant: str) -> str:
    t = _parse_instant(instant)
    return f"D:{t:%Y%m%d%H%M%S}+00'00'"


class _StatementCanvas(Canvas):  # type: ignore[misc]  # reportlab is untyped
    """Defers page output until the page count is known, then stamps the footer on every page.

    It also pins the document date and ID to the snapshot, which makes the bytes reproducible.
    """

    def __init__(self, *args: Any, snap: StatementSnapshot, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._snap = snap
        self._pages: list[dict[str, Any]] = []
        info = snap["statement"]
        stamp = _pdf_date(info["published_at"] or info["generated_at"])
        self.setDateFormatter(lambda *_: stamp)
        file_id = snap["figures_sha256"][:32].encode("ascii")
        # ReportLab's own ID hashes a clock reading unless invariant; derive it from the figures instead.
        self._doc._ID = b"\n[<" + file_id + b"><" + file_id + b">]\n"

    def showPage(self) -> None:  # noqa: N802  # ReportLab's method name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self._footer(total)
            super().showPage()
        super().save()

    def _footer(self, total: int) -> None:
        info = self._snap["statement"]
        published = f"Published {_uk_date(info['published_at'])}" if info["published_at"] else "Not published"
        left = f"{info['anchor_name']} · {info['period_label']} · Version {info['version']} · {published}"
        page = f"Page {self._pageNumber} of {total}"
        self.saveState()
        self.setStrokeColor(RULE)
        self.setLineWidth(0.4)
        self.line(MARGIN, FOOTER_SPACE - 2 * mm, PAGE_WIDTH - MARGIN, FOOTER_SPACE - 2 * mm)
        self.setFillColor(MUTED)
        self.setFont("Helvetica", 7.5)
        room = CONTENT_WIDTH - self.stringWidth(page, "Helvetica", 7.5) - 10
        # A long anchor name wraps onto a second line; it is never cut short.
        lines = _wrap(self, _printable(left), room)
        y = FOOTER_SPACE - 6 * mm
        self.drawRightString(PAGE_WIDTH - MARGIN, y, page)
        for line in lines:
            self.drawString(MARGIN, y, line)
            y -= 3.2 * mm
        self.setFont("Courier", 7)
        self.drawString(MARGIN, y - 0.8 * mm, f"Figures SHA-256: {self._snap['figures_sha256']}")
        self.restoreState()


class _StatementDoc(BaseDocTemplate):  # type: ignore[misc]  # reportlab is untyped
    def __init__(self, buffer: io.BytesIO, snap: StatementSnapshot) -> None:
        info = snap["statement"]
        super().__init__(
            buffer,
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=FOOTER_SPACE + 2 * mm,
            title=_printable(f"{info['anchor_name']}: local spend and social value statement, {info['period_label']}"),
            author=_printable(info["anchor_name"]),
            subject=_printable(
                f"Local spend and social value statement for {info['period_label']}, version {info['version']}, "
                f"{info['status']}"
            ),
            keywords=["local spend", "social value", "procurement", info["period"], snap["figures_sha256"]],
            creator="Local Value",
            invariant=1,
            lang=LANGUAGE,
            displayDocTitle=True,
        )
        self._draft = info["status"] == "draft"
        self._bookmarks = 0
        frame = Frame(MARGIN, self.bottomMargin, CONTENT_WIDTH, PAGE_HEIGHT - MARGIN - self.bottomMargin, id="body")
        self.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=self._decorate)])

    def _decorate(self, canv: Canvas, _doc: Any) -> None:
        if not self._draft:
            return
        canv.saveState()
        canv.setFillColor(WATERMARK)
        canv.setFont("Helvetica-Bold", 120)
        canv.translate(PAGE_WIDTH / 2, PAGE_HEIGHT / 2)
        canv.rotate(50)
        canv.drawCentredString(0, -40, "DRAFT")
        canv.restoreState()
        canv.saveState()
        canv.setFillColor(DRAFT_RED)
        canv.setFont("Helvetica-Bold", 8)
        canv.drawRightString(PAGE_WIDTH - MARGIN, PAGE_HEIGHT - 10 * mm, "DRAFT: NOT FOR PUBLICATION")
        canv.restoreState()

    def afterFlowable(self, flowable: Flowable) -> None:  # noqa: N802  # ReportLab's hook name
        if isinstance(flowable, _Heading):
            key = f"section-{self._bookmarks}"
            self._bookmarks += 1
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(flowable.outline_text, key, level=flowable.outline_level, closed=False)


def render_statement_pdf(snapshot: Mapping[str, Any]) -> bytes:
    """Render a validated snapshot to PDF bytes; the same snapshot always gives the same bytes."""
    snap = upgrade_snapshot(snapshot)
    buffer = io.BytesIO()
    doc = _StatementDoc(buffer, snap)
    doc.build(_story(snap), canvasmaker=partial(_StatementCanvas, snap=snap))
    return buffer.getvalue()
