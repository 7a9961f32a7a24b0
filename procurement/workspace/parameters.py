"""The query parameters the workspace pages share, declared once: the selectors (scope, period, basis) on every
page, and the filters of the lines behind a figure (their page and both downloads ask for the same lines)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request
from litestar.params import Parameter, QueryParameter

from procurement.auth import Principal
from procurement.workspace.service import LineFilters, Selection, selection_for

# "scope" is Litestar's name for the ASGI scope, so the query parameter is renamed on the way in.
ScopeChoice = Annotated[
    str | None,
    QueryParameter(name="scope", max_length=80, description="anchor:ID, group:SLUG, or empty for all anchors."),
]
PERIOD = Parameter(default=None, max_length=8, description="2025Q1 or 2025/26.")
BASIS = Parameter(default=None, max_length=8, description="awarded, spread or paid.")


@dataclass(frozen=True)
class LinesAsked:
    selection: Selection
    filters: LineFilters
    sort: str
    order: str


async def lines_asked(
    request: Request[Principal, Any, Any],
    scope_choice: ScopeChoice = None,
    period: str | None = PERIOD,
    basis: str | None = BASIS,
    tier: str | None = Parameter(default=None, max_length=16),
    category: str | None = Parameter(default=None, max_length=24),
    supplier: int | None = Parameter(default=None, ge=1),
    cpv: str | None = Parameter(default=None, max_length=2),
    flag: str | None = Parameter(default=None, max_length=20),
    show: str = Parameter(default="counted", max_length=8),
    sort: str = Parameter(default="value", max_length=16),
    order: str = Parameter(default="desc", pattern="^(asc|desc)$"),
) -> LinesAsked:
    """A Litestar dependency: the selection and line filters a request asks for."""
    filters = LineFilters(
        tier=tier or None,
        category=category or None,
        supplier_id=supplier,
        cpv=cpv or None,
        flag=flag or None,
        show=show,
        sort=sort,
        descending=order == "desc",
    )
    return LinesAsked(selection_for(request.user, scope_choice, period, basis), filters, sort, order)
