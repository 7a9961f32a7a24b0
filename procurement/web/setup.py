"""Litestar wiring for the server-rendered pages: the Jinja2 template config, /static, and the filters.

Framework-thin on purpose: ``create_app`` adds ``template_config()`` and ``static_files_router()``; the
filters are plain functions that the page handlers and tests can call directly.

    from procurement.web.setup import static_files_router, template_config
    Litestar(route_handlers=[..., static_files_router()], template_config=template_config())
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response.file import ASGIFileResponse
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ASGIApp

from procurement.settings import get_settings
from socialvalue import periods
from socialvalue.periods import parse_quarter, quarter_of

__all__ = [
    "HTMX_VERSION",
    "NHSUK_FRONTEND_VERSION",
    "STATIC_DIR",
    "STATIC_PATH",
    "TEMPLATES_DIR",
    "CoverageFigure",
    "cache_control_for",
    "configure_environment",
    "coverage_figure",
    "coverage_threshold",
    "long_date",
    "make_environment",
    "pounds",
    "quarter_label",
    "share",
    "slug",
    "static_files_router",
    "static_url",
    "template_config",
]

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
STATIC_PATH = "/static"
NHSUK_FRONTEND_VERSION = "10.6.1"
HTMX_VERSION = "2.0.11"
NOT_KNOWN = "not known"
LONDON = ZoneInfo("Europe/London")


# -- filters ---------------------------------------------------------------------------------------------


def pounds(pence: int | None, *, whole: bool = False) -> str:
    """Integer pence as pounds: 123450 -> "£1,234.50"; -5 -> "-£0.05"; None -> "not known".

    ``whole=True`` rounds half up to whole pounds ("£1,235") for headline figures.
    """
    if pence is None:
        return NOT_KNOWN
    if isinstance(pence, bool) or not isinstance(pence, int):
        raise TypeError(f"pounds() takes integer pence, got {type(pence).__name__} {pence!r}")
    sign = "-" if pence < 0 else ""
    amount = abs(pence)
    if whole:
        return f"{sign}£{(amount + 50) // 100:,}"
    return f"{sign}£{amount // 100:,}.{amount % 100:02d}"


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError(f"not a number: {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def share(value: float | Decimal | str | None, places: int = 1) -> str:
    """A fraction as a percentage, half up: 0.1234 -> "12.3%"; "0.5" -> "50.0%"; None -> "not known"."""
    number = _decimal(value)
    if number is None:
        return NOT_KNOWN
    pct = (number * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{pct}%"


def long_date(value: dt.date | str | None) -> str:
    """12 May 2025. Instants (datetimes with a zone) are shown on their UK calendar day; ISO strings work."""
    if value is None or value == "":
        return NOT_KNOWN
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
    if isinstance(value, dt.datetime):
        value = (value.astimezone(LONDON) if value.tzinfo is not None else value).date()
    return periods.long_date(value)


def quarter_label(value: str | dt.date | None) -> str:
    """UK financial-year quarter: "2025Q1" or any date in Apr-Jun 2025 -> "Q1 2025/26"."""
    if value is None or value == "":
        return NOT_KNOWN
    if isinstance(value, dt.date):
        value = quarter_of(
            value.astimezone(LONDON).date() if isinstance(value, dt.datetime) and value.tzinfo else value
        )
    year, q = parse_quarter(value)
    return f"Q{q} {year}/{(year + 1) % 100:02d}"


@dataclass(frozen=True)
class CoverageFigure:
    """A share as the page shows it beside its coverage (the share of value it could be judged on)."""

    share: str
    coverage: str
    known: bool


def coverage_threshold() -> Decimal:
    """A share judged on less than this fraction of the value is shown as "not known": the same setting
    (LOCALVALUE_COVERAGE_THRESHOLD) the API's figures use, so a page never shows a share the API calls unknown."""
    return get_settings().coverage_threshold


def coverage_figure(
    share_value: float | Decimal | str | None,
    coverage: float | Decimal | str | None,
    threshold: float | Decimal | str | None = None,
) -> CoverageFigure:
    """The share is "not known" when it has no value or its coverage is unknown or below the threshold,
    never "0.0%"; the coverage is always shown as it is."""
    number = _decimal(share_value)
    covered = _decimal(coverage)
    limit = coverage_threshold() if threshold is None else Decimal(str(threshold))
    known = number is not None and covered is not None and covered >= limit
    return CoverageFigure(share=share(number) if known else NOT_KNOWN, coverage=share(covered), known=known)


def slug(text: str) -> str:
    """An id fragment: "Local share, Q1 2025/26" -> "local-share-q1-2025-26"."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def static_url(path: str) -> str:
    """The URL of a file under procurement/web/static; a typo fails when the page renders, not in a browser."""
    clean = path.lstrip("/")
    if not (STATIC_DIR / clean).is_file():
        raise FileNotFoundError(f"no static file {clean!r} under {STATIC_DIR}")
    return f"{STATIC_PATH}/{clean}"


# -- Jinja -----------------------------------------------------------------------------------------------

FILTERS: dict[str, Any] = {
    "pounds": pounds,
    "share": share,
    "long_date": long_date,
    "quarter": quarter_label,
    "slug": slug,
}


def configure_environment(env: Environment) -> None:
    """Add the filters and globals the templates use to a Jinja environment."""
    env.filters.update(FILTERS)
    env.globals.update(
        static_url=static_url,
        coverage_figure=coverage_figure,
        service_name="Local Value",
        nhsuk_frontend_version=NHSUK_FRONTEND_VERSION,
        htmx_version=HTMX_VERSION,
        coverage_threshold=coverage_threshold(),
    )


def make_environment(extra_dirs: list[Path] | None = None) -> Environment:
    """The Jinja environment: autoescaping everywhere, undefined names are errors, tidy whitespace."""
    env = Environment(
        loader=FileSystemLoader([TEMPLATES_DIR, *(extra_dirs or [])]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    configure_environment(env)
    return env


def template_config(extra_dirs: list[Path] | None = None) -> TemplateConfig[JinjaTemplateEngine]:
    """Litestar's template config for procurement/web/templates (plus any extra template folders)."""
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(make_environment(extra_dirs)))


# -- /static ---------------------------------------------------------------------------------------------

IMMUTABLE = CacheControlHeader(public=True, max_age=31_536_000, immutable=True)
VENDORED = CacheControlHeader(public=True, max_age=86_400)
REVALIDATE = CacheControlHeader(no_cache=True)
_VERSIONED_NAME = re.compile(r"-\d+\.\d+\.\d+(?:\.min)?\.(?:css|js)$")


def cache_control_for(path: Path) -> CacheControlHeader:
    """File names that carry a version (nhsuk-frontend-10.6.1.min.css) never change: cache them for a year.
    Other vendored files (images the CSS refers to) change only with a version bump: a day. Our own files
    change with every deploy: always revalidate."""
    relative = path.resolve().relative_to(STATIC_DIR).as_posix()
    if _VERSIONED_NAME.search(relative):
        return IMMUTABLE
    if relative.startswith(("nhsuk/", "htmx/")):
        return VENDORED
    return REVALIDATE


async def _set_cache_control(response: ASGIApp) -> ASGIApp:
    if isinstance(response, ASGIFileResponse) and response.file_path is not None:
        header = cache_control_for(Path(response.file_path))
        response.headers[header.HEADER_NAME] = header.to_header()
    return response


def static_files_router() -> Router:
    """Serves procurement/web/static at /static (GET and HEAD), with Cache-Control per file."""
    return create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC_DIR],
        name="static",
        after_request=_set_cache_control,
        include_in_schema=False,
    )
