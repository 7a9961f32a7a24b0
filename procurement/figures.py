"""Telling whoever keeps derived figures that their inputs changed: an anchor's own (its local area, kind or
codes) or suppliers' classification.

The stored anchor x supplier tiers build on both organisations and the classification, so those cannot import
them; the tiers register here (``procurement.suppliers`` does so on import) and the writers call these hooks in
the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

AnchorsChanged = Callable[[AsyncSession, Sequence[int]], Awaitable[None]]

SuppliersClassified = Callable[[AsyncSession, Sequence[int]], Awaitable[None]]

_hooks: list[AnchorsChanged] = []
_classified: list[SuppliersClassified] = []
_changed: list[SuppliersClassified] = []


def on_anchors_changed(hook: AnchorsChanged) -> None:
    if hook not in _hooks:
        _hooks.append(hook)


async def anchors_changed(session: AsyncSession, anchor_ids: Sequence[int]) -> None:
    for hook in _hooks:
        await hook(session, anchor_ids)


def on_suppliers_classified(hook: SuppliersClassified) -> None:
    if hook not in _classified:
        _classified.append(hook)


async def suppliers_classified(session: AsyncSession, supplier_ids: Sequence[int]) -> None:
    """``supplier_ids``: the suppliers whose classification rows were just written (maybe none)."""
    for hook in _classified:
        await hook(session, supplier_ids)


def on_suppliers_changed(hook: SuppliersClassified) -> None:
    if hook not in _changed:
        _changed.append(hook)


async def suppliers_changed(session: AsyncSession, supplier_ids: Sequence[int]) -> None:
    """Suppliers' own details changed: reclassify them and bring what derives from them up to date."""
    for hook in _changed:
        await hook(session, supplier_ids)
