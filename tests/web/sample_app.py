"""A tiny Litestar app that renders base.html, every macro and both charts with sample data.

It is wired exactly as the real app will be (``template_config()``, ``static_files_router()``, the
accessibility statement route) and serves a strict Content-Security-Policy, so the browser tests also
prove the templates need no inline script or style.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from litestar import Litestar, get
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import ResponseHeader
from litestar.response import Template

from procurement.web.pages import accessibility_statement_route
from procurement.web.setup import static_files_router, template_config
from socialvalue.charts import Series, bar_chart, trend_chart

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
NAVIGATION = [
    {"text": "Statements", "href": "/", "current": True},
    {"text": "Suppliers", "href": "/form"},
    {"text": "Accessibility", "href": "/accessibility-statement"},
]


def sample_charts() -> dict[str, Any]:
    tiers = bar_chart(
        [
            ("Local (Walsall)", 0.4213),
            ("Rest of the West Midlands", 0.2107),
            ("Rest of the UK", 0.3),
            ("Outside the UK", 0.0),
            ("Location unknown", None),
        ],
        title="Share of spend by supplier location, Q1 2025/26",
        category_heading="Supplier location",
    )
    quarters = [f"Q{q} {y}/{(y + 1) % 100:02d}" for y in (2023, 2024, 2025) for q in (1, 2, 3, 4)]
    trend = trend_chart(
        quarters,
        [
            Series("Local", [0.31, 0.33, None, 0.35, 0.36, 0.34, 0.38, 0.4, 0.41, None, 0.43, 0.42]),
            Series("SME", [0.22, 0.25, 0.24, None, None, 0.27, 0.3, 0.29, 0.31, 0.33, 0.32, 0.35]),
        ],
        title="Local and SME shares of spend by quarter",
    )
    return {"tiers": tiers, "trend": trend}


@get("/", sync_to_thread=False)
def sample_page() -> Template:
    context: dict[str, Any] = {
        "navigation": NAVIGATION,
        "summary": [
            {"key": "Organisation", "value": "Walsall Healthcare NHS Trust"},
            {"key": "Quarter", "value": "2025Q1"},
            {"key": "Total spend", "value": 187500000},
            {"key": "Published", "value": dt.date(2025, 5, 12), "actions": [{"href": "/form", "text": "Change"}]},
        ],
        "suppliers": [
            ("Brum Community Meals CIC", 12545050, 0.0669),
            ("Building Services NOW Ltd", 99900000, 0.5328),
            ("A supplier with a long name that has to wrap on a narrow screen Limited", 5, None),
        ],
        "total_pence": 112445055,
        "page": 3,
        "pages": 9,
        **sample_charts(),
    }
    return Template(template_name="sample.html", context=context)


@get("/form", sync_to_thread=False)
def sample_form(errors: bool = False) -> Template:
    messages = (
        {
            "supplier-name": "Enter the supplier's name",
            "supplier-postcode": "Enter a real postcode, like B15 2GW",
        }
        if errors
        else {}
    )
    return Template(
        template_name="sample_form.html",
        context={"navigation": NAVIGATION, "errors": messages, "name": "", "postcode": "B15 2XX" if errors else ""},
    )


def create_sample_app() -> Litestar:
    return Litestar(
        route_handlers=[
            sample_page,
            sample_form,
            static_files_router(),
            accessibility_statement_route(
                "localvalue@example.org", prepared=dt.date(2025, 5, 12), reviewed=dt.date(2025, 6, 1)
            ),
        ],
        template_config=template_config(extra_dirs=[TEMPLATES]),
        csrf_config=CSRFConfig(secret="test-secret-not-for-production"),
        response_headers=[ResponseHeader(name="Content-Security-Policy", value=CSP)],
        debug=True,
    )
