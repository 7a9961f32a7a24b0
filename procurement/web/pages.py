"""Page handlers that need no database: the accessibility statement."""

from __future__ import annotations

import datetime as dt

from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.response import Template

ACCESSIBILITY_PATH = "/accessibility-statement"


def accessibility_statement_route(
    contact_email: str,
    prepared: dt.date,
    reviewed: dt.date | None = None,
    tested: dt.date | None = None,
) -> HTTPRouteHandler:
    """GET /accessibility-statement. The contact and dates are the operator's facts, so they are arguments."""
    if "@" not in contact_email:
        raise ValueError(f"the accessibility statement needs a contact email address, got {contact_email!r}")
    context = {
        "contact_email": contact_email,
        "prepared": prepared,
        "reviewed": reviewed or prepared,
        "tested": tested or reviewed or prepared,
        "accessibility_url": ACCESSIBILITY_PATH,
    }

    @get(ACCESSIBILITY_PATH, name="accessibility-statement", include_in_schema=False, sync_to_thread=False)
    def accessibility_statement() -> Template:
        return Template(template_name="pages/accessibility.html", context=context)

    return accessibility_statement
