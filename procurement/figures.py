"""Telling whoever keeps derived figures that an anchor's own inputs changed (its local area, its kind or codes).

Organisations cannot import the supplier tiers (those tiers read each anchor's area), so the tiers register
here and organisations call ``anchors_changed`` in the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

AnchorsChanged = Callable[[AsyncSession, Sequence[int]], Awaitable[None]]

_hooks: list[AnchorsChanged] = []


def on_anchors_changed(hook: AnchorsChanged) -> None:
    if hook not in _hooks:
        _hooks.append(hook)


async def anchors_changed(session: AsyncSession, anchor_ids: Sequence[int]) -> None:
    for hook in _hooks:
        await hook(session, anchor_ids)
