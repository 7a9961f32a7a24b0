"""socialvalue.charts: the SVG parses, carries its title, description and labels, draws "not known" as a
labelled gap (never a zero), uses only presentation attributes, and its colours meet WCAG contrast."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from socialvalue.charts import (
    NOT_KNOWN,
    PALETTE,
    TEXT,
    WARM_YELLOW,
    WHITE,
    Series,
    bar_chart,
    contrast_ratio,
    format_share,
    trend_chart,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def texts(el: ET.Element) -> list[str]:
    return [t.text or "" for t in el.iter(f"{SVG}text")]


def no_inline_style(root: ET.Element) -> None:
    assert all("style" not in el.attrib for el in root.iter()), "style= attribute in the SVG"
    assert not list(root.iter(f"{SVG}style")), "<style> element in the SVG"
    assert not list(root.iter(f"{SVG}script")), "<script> element in the SVG"


ITEMS = [("Local", 0.4213), ("Regional", 0.2107), ("Outside the UK", 0.0), ("Location unknown", None)]


def test_bar_chart_is_an_accessible_image_with_labelled_bars() -> None:
    chart = bar_chart(ITEMS, title="Share by location", chart_id="tiers")
    root = parse(chart.svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "tiers-title tiers-desc"
    assert root.find(f"{SVG}title").text == "Share by location"  # type: ignore[union-attr]
    assert root.find(f"{SVG}title").get("id") == "tiers-title"  # type: ignore[union-attr]
    desc = root.find(f"{SVG}desc").text  # type: ignore[union-attr]
    assert desc == "Local: 42.1%; Regional: 21.1%; Outside the UK: 0.0%; Location unknown: not known."
    no_inline_style(root)

    bars = [g for g in root.iter(f"{SVG}g") if g.get("class") == "app-chart__bar"]
    assert [g.get("data-label") for g in bars] == ["Local", "Regional", "Outside the UK", "Location unknown"]
    assert [texts(g) for g in bars] == [
        ["Local", "42.1%"],
        ["Regional", "21.1%"],
        ["Outside the UK", "0.0%"],
        ["Location unknown", NOT_KNOWN],
    ]
    widths = [float(g.find(f"{SVG}rect").get("width")) if g.find(f"{SVG}rect") is not None else None for g in bars]  # type: ignore[arg-type, union-attr]
    # Known values are bars in proportion; a zero is a zero-width bar; "not known" has no bar at all.
    assert widths[0] is not None
    assert widths[1] is not None
    assert widths[0] / widths[1] == pytest.approx(0.4213 / 0.2107, rel=1e-3)
    assert widths[2] == 0
    assert widths[3] is None
    gap = bars[3].findall(f"{SVG}text")[1]
    assert gap.get("class") == "app-chart__not-known"
    assert gap.get("font-style") == "italic"


def test_bar_chart_table_matches_the_bars() -> None:
    chart = bar_chart(ITEMS, title="Share by location", category_heading="Location")
    assert chart.table.caption == "Share by location"
    assert chart.table.head == ("Location", "Share")
    assert chart.table.numeric == (False, True)
    assert chart.table.rows == (
        ("Local", "42.1%"),
        ("Regional", "21.1%"),
        ("Outside the UK", "0.0%"),
        ("Location unknown", NOT_KNOWN),
    )
    assert chart.__html__() == chart.svg


def test_bar_chart_escapes_text_and_formats_money() -> None:
    chart = bar_chart(
        [("Smith & Sons <Ltd>", 125000), ("Other", 2500)],
        title="Spend by supplier & type",
        fmt=lambda v: f"£{v:,.0f}",
        value_heading="Spend",
    )
    root = parse(chart.svg)  # parses, so & and < were escaped
    assert "Smith & Sons <Ltd>" in texts(root)
    assert "£125,000" in texts(root)
    assert root.get("id") == "chart-spend-by-supplier-type"


def test_yellow_bars_get_an_outline_and_all_text_contrasts() -> None:
    root = parse(bar_chart([("A", 0.5)], title="t", colour=WARM_YELLOW).svg)
    rect = next(root.iter(f"{SVG}rect"))
    assert rect.get("stroke") == TEXT
    blue = next(parse(bar_chart([("A", 0.5)], title="t").svg).iter(f"{SVG}rect"))
    assert blue.get("stroke") is None
    for el in root.iter(f"{SVG}text"):
        assert contrast_ratio(el.get("fill", TEXT), WHITE) >= 4.5
    for colour in PALETTE:
        if colour != WARM_YELLOW:
            assert contrast_ratio(colour, WHITE) >= 3, colour


def test_bar_chart_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        bar_chart([], title="t")
    with pytest.raises(ValueError, match="negative"):
        bar_chart([("a", -0.1)], title="t")
    with pytest.raises(ValueError, match="max_value"):
        bar_chart([("a", 0.9)], title="t", max_value=0.5)
    with pytest.raises(ValueError, match="finite"):
        bar_chart([("a", float("nan"))], title="t")


QUARTERS = ["Q1 2024/25", "Q2 2024/25", "Q3 2024/25", "Q4 2024/25", "Q1 2025/26", "Q2 2025/26"]


def test_trend_chart_breaks_the_line_at_not_known() -> None:
    chart = trend_chart(
        QUARTERS,
        [Series("Local", [0.3, 0.32, None, 0.35, 0.36, 0.0]), Series("SME", [0.2, None, 0.22, None, 0.25, 0.26])],
        title="Local and SME shares",
        chart_id="trend",
    )
    root = parse(chart.svg)
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Local and SME shares"  # type: ignore[union-attr]
    no_inline_style(root)
    series = {g.get("data-series"): g for g in root.iter(f"{SVG}g") if g.get("class") == "app-chart__series"}
    local, sme = series["Local"], series["SME"]
    # Local: runs [0, 1] and [3, 4, 5] -> two polylines; the zero at index 5 is a real point.
    lines = local.findall(f"{SVG}polyline")
    assert [len(pl.get("points", "").split()) for pl in lines] == [2, 3]
    points = [(g.get("data-index"), g.get("data-value")) for g in local.iter(f"{SVG}g") if g.get("data-index")]
    assert points == [("0", "30.0%"), ("1", "32.0%"), ("3", "35.0%"), ("4", "36.0%"), ("5", "0.0%")]
    # SME: index 2 sits between two gaps, so it is a lone marker with no line through it.
    assert [len(pl.get("points", "").split()) for pl in sme.findall(f"{SVG}polyline")] == [2]
    assert ("2", "22.0%") in [
        (g.get("data-index"), g.get("data-value")) for g in sme.iter(f"{SVG}g") if g.get("data-index")
    ]
    # Each gap is labelled, naming the series that is missing.
    marks = {g.get("data-index"): texts(g) for g in root.iter(f"{SVG}g") if g.get("class") == "app-chart__not-known"}
    assert marks == {"1": ["SME not known"], "2": ["Local not known"], "3": ["SME not known"]}
    # The zero point is on the zero line, not missing.
    zero_point = next(g for g in local.iter(f"{SVG}g") if g.get("data-index") == "5")
    zero_y = float(zero_point[0].get("cy", "nan"))
    axis = [ln for ln in root.iter(f"{SVG}line") if ln.get("stroke") == "#425563" and ln.get("y1") == ln.get("y2")]
    assert any(float(ln.get("y1", "nan")) == pytest.approx(zero_y) for ln in axis)


def test_trend_chart_axis_legend_and_table() -> None:
    chart = trend_chart(QUARTERS, [Series("Local", [0.3, 0.32, None, 0.35, 0.36, 0.37])], title="Local share")
    root = parse(chart.svg)
    all_text = texts(root)
    # Quarter labels: "Q1" on every period, the year only where it changes.
    assert all_text.count("2024/25") == 1
    assert all_text.count("2025/26") == 1
    assert [t for t in all_text if t.startswith("Q")][:4] == ["Q1", "Q2", "Q3", "Q4"]
    # The scale runs in round steps from 0 to a round number above 37%.
    assert [t for t in all_text if t.endswith("%")] == ["0.0%", "10.0%", "20.0%", "30.0%", "40.0%"]
    assert "0.0%" in all_text
    assert "Local" in all_text  # legend
    assert "Local not known" not in all_text  # one series: just "not known"
    assert NOT_KNOWN in all_text
    assert chart.table.head == ("Quarter", "Local")
    assert chart.table.rows[2] == ("Q3 2024/25", NOT_KNOWN)
    assert chart.table.rows[5] == ("Q2 2025/26", "37.0%")
    assert chart.description.startswith("Local: Q1 2024/25 30.0%, Q2 2024/25 32.0%, Q3 2024/25 not known")


def test_trend_chart_distinguishes_series_without_colour() -> None:
    five = [Series(f"S{i}", [0.1 * i] * 3) for i in range(1, 6)]
    root = parse(trend_chart(["Q1 2025/26", "Q2 2025/26", "Q3 2025/26"], five, title="five").svg)
    series = [g for g in root.iter(f"{SVG}g") if g.get("class") == "app-chart__series"]
    dashes = [g.find(f"{SVG}polyline").get("stroke-dasharray") for g in series]  # type: ignore[union-attr]
    assert len(set(dashes)) == 5
    shapes = [next(iter(g.find(f"{SVG}g"))).tag for g in series]  # type: ignore[arg-type]
    assert len(set(shapes)) >= 3


def test_trend_chart_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="periods"):
        trend_chart([f"Q1 {y}" for y in range(17)], [Series("a", [0.1] * 17)], title="t")
    with pytest.raises(ValueError, match="series"):
        trend_chart(["Q1"], [Series(str(i), [0.1]) for i in range(6)], title="t")
    with pytest.raises(ValueError, match="has 2 values for 1"):
        trend_chart(["Q1"], [Series("a", [0.1, 0.2])], title="t")


def test_trend_chart_with_negative_values_and_all_unknown() -> None:
    root = parse(trend_chart(["Q1", "Q2"], [Series("Change", [-0.05, 0.1])], title="Change").svg)
    assert [t for t in texts(root) if t.endswith("%")] == ["-5.0%", "0.0%", "5.0%", "10.0%"]
    root = parse(trend_chart(["Q1", "Q2"], [Series("a", [None, None])], title="Nothing known").svg)
    assert not list(root.iter(f"{SVG}polyline"))
    assert texts(root).count(NOT_KNOWN) == 2


def test_format_share_rounds_half_up() -> None:
    assert format_share(0.12345) == "12.3%"
    assert format_share(0.00005) == "0.0%"
    assert format_share(0.0005) == "0.1%"
    assert format_share(1) == "100.0%"
