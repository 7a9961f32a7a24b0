"""Server-side SVG charts: a horizontal bar chart and a trend (line) chart, each with the table beside it.

Pure: text in, text out (no Litestar, no database, no procurement imports). The SVG is meant to be placed
inline in an HTML page next to its data table, so:

* the root ``<svg>`` has ``role="img"``, a ``<title>`` and a ``<desc>`` referenced by ``aria-labelledby``
  (screen readers get the title and description; the numbers are in the table beside the chart);
* every bar carries its value as text, so the chart can be read without colour or a scale;
* a missing value (``None``, "not known") is drawn as a gap labelled "not known", never as a zero bar or a
  zero point (a zero is drawn as a zero);
* colours are the NHS.UK palette; fills that fall below 3:1 against white (warm yellow) get a dark outline,
  and text is always #212b32 or white, whichever contrasts more (WCAG 1.4.3 and 1.4.11);
* only SVG presentation attributes are used (``fill``, ``stroke``, ``font-size``...), never ``style=``, so
  the markup survives a strict Content-Security-Policy.

Values are plain numbers (shares as fractions 0-1 by default); ``fmt`` turns one into its label, so the
same charts can show money or counts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from xml.sax.saxutils import escape, quoteattr

__all__ = [
    "BLUE",
    "GREEN",
    "GREY",
    "NOT_KNOWN",
    "PALETTE",
    "PURPLE",
    "RED",
    "TEXT",
    "WARM_YELLOW",
    "WHITE",
    "Chart",
    "ChartTable",
    "Series",
    "bar_chart",
    "contrast_ratio",
    "format_share",
    "trend_chart",
]

BLUE = "#005eb8"
PURPLE = "#330072"
GREEN = "#007f3b"
WARM_YELLOW = "#ffb81c"
GREY = "#425563"
RED = "#d5281b"
TEXT = "#212b32"
WHITE = "#ffffff"
GRID = "#d8dde0"
PALETTE: tuple[str, ...] = (BLUE, PURPLE, GREEN, RED, GREY, WARM_YELLOW)
NOT_KNOWN = "not known"
FONT = "Frutiger W01, Arial, sans-serif"
MAX_POINTS = 16
MAX_SERIES = 5

Number = float | int | Decimal
Formatter = Callable[[float], str]


def format_share(value: float) -> str:
    """0.1234 -> "12.3%" (half up, one decimal place)."""
    pct = (Decimal(str(value)) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{pct}%"


@dataclass(frozen=True)
class ChartTable:
    """The chart's data as text, for the table beside it. The first column names the row."""

    caption: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]


@dataclass(frozen=True)
class Chart:
    svg: str
    title: str
    description: str
    table: ChartTable

    def __html__(self) -> str:  # Jinja2/MarkupSafe: {{ chart }} places the SVG unescaped
        return self.svg


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Number | None]


# -- colour --------------------------------------------------------------------------------------------


def _luminance(colour: str) -> float:
    hex_digits = colour.lstrip("#")
    channels = [int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio between two #rrggbb colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _outline(fill: str) -> str:
    """Stroke attributes that give a low-contrast fill a visible edge against white (WCAG 1.4.11)."""
    return f' stroke="{TEXT}" stroke-width="1"' if contrast_ratio(fill, WHITE) < 3 else ""


# -- helpers -------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "chart"


def _num(value: Number | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"chart values must be finite numbers or None, got {value!r}")
    return number


def _fmt(x: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above value (value > 0)."""
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value * (1 - 1e-9):
            return float(candidate)
    return float(10 ** (exponent + 1))  # pragma: no cover - the loop always returns


def _text(x: float, y: float, content: str, *, size: int = 16, fill: str = TEXT, extra: str = "") -> str:
    return (
        f'<text x="{_fmt(x)}" y="{_fmt(y)}" font-family="{FONT}" font-size="{size}" fill="{fill}"{extra}>'
        f"{escape(content)}</text>"
    )


def _open_svg(width: int, height: int, chart_id: str, title: str, description: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="app-chart__svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" focusable="false" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" id="{chart_id}">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]


# -- bar chart -----------------------------------------------------------------------------------------

BAR_WIDTH = 480
BAR_PAD = 8
BAR_LABEL_H = 24
BAR_H = 28
BAR_GAP = 16
BAR_VALUE_ROOM = 80


def bar_chart(
    items: Sequence[tuple[str, Number | None]],
    *,
    title: str,
    description: str | None = None,
    value_heading: str = "Share",
    category_heading: str = "Category",
    fmt: Formatter = format_share,
    max_value: float | None = None,
    colour: str = BLUE,
    chart_id: str | None = None,
) -> Chart:
    """Horizontal bars, one per (label, value); each bar's label sits above it and its value at its end.

    ``None`` is "not known": no bar, the words "not known" where the bar would start. Values must not be
    negative. The scale runs from 0 to ``max_value`` (default: a round number at or above the largest value).
    """
    if not items:
        raise ValueError("a bar chart needs at least one item")
    values = [_num(v) for _, v in items]
    if any(v is not None and v < 0 for v in values):
        raise ValueError("bar chart values must not be negative")
    known = [v for v in values if v is not None]
    top = max_value if max_value is not None else (_nice_ceiling(max(known)) if known and max(known) > 0 else 1.0)
    if known and max(known) > top:
        raise ValueError(f"max_value {top} is below the largest value {max(known)}")
    chart_id = chart_id or f"chart-{_slug(title)}"
    labels = [(label, NOT_KNOWN if v is None else fmt(v)) for (label, _), v in zip(items, values, strict=True)]
    if description is None:
        description = "; ".join(f"{label}: {text}" for label, text in labels) + "."

    row_h = BAR_LABEL_H + BAR_H + BAR_GAP
    height = BAR_PAD * 2 + row_h * len(items) - BAR_GAP
    span = BAR_WIDTH - 2 * BAR_PAD - BAR_VALUE_ROOM
    text_fill = TEXT
    parts = _open_svg(BAR_WIDTH, height, chart_id, title, description)
    for i, ((label, value_text), value) in enumerate(zip(labels, values, strict=True)):
        y = BAR_PAD + i * row_h
        bar_y = y + BAR_LABEL_H
        parts.append(f'<g class="app-chart__bar" data-label={quoteattr(label)} data-value={quoteattr(value_text)}>')
        parts.append(_text(BAR_PAD, y + 18, label, fill=text_fill))
        if value is None:
            parts.append(
                _text(
                    BAR_PAD + 8,
                    bar_y + 19,
                    NOT_KNOWN,
                    fill=GREY,
                    extra=' font-style="italic" class="app-chart__not-known"',
                )
            )
        else:
            length = span * value / top
            parts.append(
                f'<rect x="{BAR_PAD}" y="{bar_y}" width="{_fmt(length)}" height="{BAR_H}" fill="{colour}"'
                f"{_outline(colour)}/>"
            )
            parts.append(
                _text(BAR_PAD + length + 6, bar_y + 19, value_text, fill=text_fill, extra=' font-weight="600"')
            )
        parts.append("</g>")
    # The zero line, drawn last so it sits over the bars' left edges.
    parts.append(
        f'<line x1="{BAR_PAD}" y1="{BAR_PAD + BAR_LABEL_H - 4}" x2="{BAR_PAD}" y2="{height - BAR_PAD + 4}" '
        f'stroke="{GREY}" stroke-width="2"/>'
    )
    parts.append("</svg>")
    table = ChartTable(
        caption=title,
        head=(category_heading, value_heading),
        rows=tuple((label, text) for label, text in labels),
        numeric=(False, True),
    )
    return Chart(svg="\n".join(parts), title=title, description=description, table=table)


# -- trend chart ---------------------------------------------------------------------------------------

LINE_WIDTH = 640
LINE_PLOT_H = 240
LINE_LEFT = 64
LINE_RIGHT = 24
LINE_TOP = 16
LINE_X_LABELS = 48
LINE_LEGEND_ROW = 26
DASHES = ("", "8 4", "2 4", "10 4 2 4", "4 4")


def _marker(shape: int, x: float, y: float, colour: str) -> str:
    stroke = f' stroke="{WHITE}" stroke-width="1.5"'
    if shape == 0:
        return f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="5" fill="{colour}"{stroke}/>'
    if shape == 1:
        return f'<rect x="{_fmt(x - 5)}" y="{_fmt(y - 5)}" width="10" height="10" fill="{colour}"{stroke}/>'
    if shape == 2:
        pts = f"{_fmt(x)},{_fmt(y - 6)} {_fmt(x + 6)},{_fmt(y + 5)} {_fmt(x - 6)},{_fmt(y + 5)}"
        return f'<polygon points="{pts}" fill="{colour}"{stroke}/>'
    if shape == 3:
        pts = f"{_fmt(x)},{_fmt(y - 6)} {_fmt(x + 6)},{_fmt(y)} {_fmt(x)},{_fmt(y + 6)} {_fmt(x - 6)},{_fmt(y)}"
        return f'<polygon points="{pts}" fill="{colour}"{stroke}/>'
    return f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="5" fill="{WHITE}" stroke="{colour}" stroke-width="2.5"/>'


def _split_label(label: str) -> tuple[str, str]:
    """ "Q1 2025/26" -> ("Q1", "2025/26"): the second line is shown only when it changes."""
    first, _, rest = label.partition(" ")
    return first, rest


@dataclass(frozen=True)
class _Plot:
    n: int
    top: float
    bottom: float
    tick: float

    @classmethod
    def fit(cls, n: int, low: float, high: float, y_max: float | None) -> _Plot:
        """A scale from a round number at or below min(0, low) to one at or above high, in 3-6 round steps."""
        low, high = min(0.0, low), max(0.0, high)
        if y_max is not None:
            if high > y_max:
                raise ValueError(f"y_max {y_max} is below the largest value {high}")
            high = y_max
        if high == low:
            high = low + 1.0
        tick = _nice_ceiling((high - low) / 5)
        bottom = math.floor(low / tick + 1e-9) * tick
        top = y_max if y_max is not None else math.ceil(high / tick - 1e-9) * tick
        return cls(n=n, top=top, bottom=bottom, tick=tick)

    def ticks(self) -> list[float]:
        count = round((self.top - self.bottom) / self.tick)
        return [round(self.bottom + k * self.tick, 12) for k in range(count + 1)]

    @property
    def step(self) -> float:
        return (LINE_WIDTH - LINE_LEFT - LINE_RIGHT) / self.n

    def x(self, i: int) -> float:
        return LINE_LEFT + self.step * (i + 0.5)

    def y(self, v: float) -> float:
        return LINE_TOP + LINE_PLOT_H * (self.top - v) / (self.top - self.bottom)


def _axes(plot: _Plot, x_labels: Sequence[str], fmt: Formatter) -> list[str]:
    """Gridlines with y labels (the zero line darker) and two-line x labels."""
    parts = ['<g class="app-chart__axis">']
    for v in plot.ticks():
        y = plot.y(v)
        parts.append(
            f'<line x1="{LINE_LEFT}" y1="{_fmt(y)}" x2="{LINE_WIDTH - LINE_RIGHT}" y2="{_fmt(y)}" '
            f'stroke="{GREY if v == 0 else GRID}" stroke-width="1"/>'
        )
        parts.append(_text(LINE_LEFT - 8, y + 5, fmt(v), size=14, extra=' text-anchor="end"'))
    previous_second = None
    for i, label in enumerate(x_labels):
        first, second = _split_label(label)
        y = LINE_TOP + LINE_PLOT_H + 20
        parts.append(_text(plot.x(i), y, first, size=14, extra=' text-anchor="middle"'))
        if second and second != previous_second:
            parts.append(_text(plot.x(i), y + 18, second, size=14, extra=' text-anchor="middle"'))
        previous_second = second
    parts.append("</g>")
    return parts


def _not_known_marks(plot: _Plot, series: Sequence[Series], values: list[list[float | None]]) -> list[str]:
    """One dotted line and a "not known" label per period where any series has no value."""
    parts = []
    for i in range(plot.n):
        missing = [s.name for s, vals in zip(series, values, strict=True) if vals[i] is None]
        if not missing:
            continue
        who = NOT_KNOWN if len(missing) == len(series) else f"{', '.join(missing)} {NOT_KNOWN}"
        x, y = plot.x(i), LINE_TOP + LINE_PLOT_H - 8
        rotate = f"rotate(-90 {_fmt(x + 5)} {_fmt(y)})"
        parts.append(
            f'<g class="app-chart__not-known" data-index="{i}" data-series={quoteattr(", ".join(missing))}>'
            f'<line x1="{_fmt(x)}" y1="{LINE_TOP}" x2="{_fmt(x)}" y2="{LINE_TOP + LINE_PLOT_H}" stroke="{GREY}" '
            f'stroke-width="1" stroke-dasharray="2 4"/>'
            + _text(x + 5, y, who, size=13, fill=GREY, extra=f' font-style="italic" transform="{rotate}"')
            + "</g>"
        )
    return parts


def _runs(plot: _Plot, vals: list[float | None]) -> list[list[str]]:
    """The points of each run of consecutive known values."""
    runs: list[list[str]] = [[]]
    for i, v in enumerate(vals):
        if v is None:
            runs.append([])
        else:
            runs[-1].append(f"{_fmt(plot.x(i))},{_fmt(plot.y(v))}")
    return [run for run in runs if run]


def _series(plot: _Plot, idx: int, s: Series, vals: list[float | None], texts: list[str]) -> list[str]:
    colour = PALETTE[idx]
    dash = f' stroke-dasharray="{DASHES[idx]}"' if DASHES[idx] else ""
    parts = [f'<g class="app-chart__series" data-series={quoteattr(s.name)}>']
    parts += [
        f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="3"{dash}/>'
        for run in _runs(plot, vals)
        if len(run) > 1
    ]
    for i, v in enumerate(vals):
        if v is not None:
            parts.append(
                f'<g class="app-chart__point" data-index="{i}" data-value={quoteattr(texts[i])}>'
                + _marker(idx, plot.x(i), plot.y(v), colour)
                + "</g>"
            )
    parts.append("</g>")
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    legend_top = LINE_TOP + LINE_PLOT_H + LINE_X_LABELS
    parts = ['<g class="app-chart__legend">']
    for idx, s in enumerate(series):
        colour = PALETTE[idx]
        y = legend_top + LINE_LEGEND_ROW * idx + 13
        dash = f' stroke-dasharray="{DASHES[idx]}"' if DASHES[idx] else ""
        parts.append(
            f'<line x1="{LINE_LEFT}" y1="{y}" x2="{LINE_LEFT + 36}" y2="{y}" stroke="{colour}" stroke-width="3"{dash}/>'
        )
        parts.append(_marker(idx, LINE_LEFT + 18, y, colour))
        parts.append(_text(LINE_LEFT + 46, y + 5, s.name, size=14))
    parts.append("</g>")
    return parts


def trend_chart(
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    description: str | None = None,
    x_heading: str = "Quarter",
    fmt: Formatter = format_share,
    y_max: float | None = None,
    chart_id: str | None = None,
) -> Chart:
    """One line per series across up to 16 periods (e.g. quarters "Q1 2025/26").

    Each series has its own colour, dash pattern and marker shape (so colour is not the only cue) and a
    legend below the plot. A ``None`` breaks the line: no point is drawn there, and the period is marked
    "not known" on the plot; a value between two gaps is drawn as a lone marker. The scale starts at 0
    (or below, for negative values) and ends at ``y_max`` (default: a round number at or above the top).
    """
    n = len(x_labels)
    if not 1 <= n <= MAX_POINTS:
        raise ValueError(f"a trend chart takes 1 to {MAX_POINTS} periods, got {n}")
    if not 1 <= len(series) <= MAX_SERIES:
        raise ValueError(f"a trend chart takes 1 to {MAX_SERIES} series, got {len(series)}")
    values = [[_num(v) for v in s.values] for s in series]
    for s, vals in zip(series, values, strict=True):
        if len(vals) != n:
            raise ValueError(f"series {s.name!r} has {len(vals)} values for {n} periods")
    known = [v for vals in values for v in vals if v is not None]
    plot = _Plot.fit(n, min(known, default=0.0), max(known, default=0.0), y_max)
    chart_id = chart_id or f"chart-{_slug(title)}"
    texts = [[NOT_KNOWN if v is None else fmt(v) for v in vals] for vals in values]
    if description is None:
        description = (
            "; ".join(
                f"{s.name}: " + ", ".join(f"{x} {v}" for x, v in zip(x_labels, t, strict=True))
                for s, t in zip(series, texts, strict=True)
            )
            + "."
        )

    height = LINE_TOP + LINE_PLOT_H + LINE_X_LABELS + LINE_LEGEND_ROW * len(series) + 8
    parts = _open_svg(LINE_WIDTH, height, chart_id, title, description)
    parts += _axes(plot, x_labels, fmt)
    parts += _not_known_marks(plot, series, values)
    for idx, (s, vals, t) in enumerate(zip(series, values, texts, strict=True)):
        parts += _series(plot, idx, s, vals, t)
    parts += _legend(series)
    parts.append("</svg>")
    table = ChartTable(
        caption=title,
        head=(x_heading, *(s.name for s in series)),
        rows=tuple((label, *(t[i] for t in texts)) for i, label in enumerate(x_labels)),
        numeric=(False, *(True for _ in series)),
    )
    return Chart(svg="\n".join(parts), title=title, description=description, table=table)
