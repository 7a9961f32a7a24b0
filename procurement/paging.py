"""Bounded paging shared by every list endpoint: `limit` and `offset`, answered as {items, total, limit, offset}."""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

from procurement.settings import get_settings

_settings = get_settings()


Limit = Annotated[
    int,
    Parameter(
        ge=1,
        le=_settings.page_size_max,
        description=f"Page size, at most {_settings.page_size_max}.",
    ),
]


Offset = Annotated[int, Parameter(ge=0, le=10_000_000, description="Rows to skip.")]


DEFAULT_LIMIT = _settings.page_size_default
