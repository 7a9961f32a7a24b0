"""Lookups by a list of ids take any number of them: PostgreSQL's driver refuses a statement of over 32,767
parameters (SQLite's limit depends on how it was built), so an IN list of every supplier behind a national figure
failed (a download of the rows behind all anchors, the review queue of a large scope). The ids go as one parameter."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.metrics.service import _evidence
from procurement.workspace.review import _duplicates

MANY = list(range(1_000_000, 1_040_000))  # ids that are no supplier's, beside the ones that are


async def test_the_queues_duplicate_names_over_forty_thousand_ids(session: AsyncSession) -> None:
    first, second, other = (
        m.Supplier(name=name, name_key=key)
        for name, key in (("Acme Ltd", "acme"), ("ACME Limited", "acme"), ("Brindley Care", "brindley care"))
    )
    session.add_all([first, second, other])
    await session.commit()
    found = await _duplicates(session, [first.id, other.id, *MANY])
    assert found == {first.id: [(second.id, "ACME Limited")], other.id: []}


async def test_evidence_of_the_rows_behind_over_forty_thousand_ids(session: AsyncSession) -> None:
    supplier = m.Supplier(name="Acme Ltd", name_key="acme")
    session.add(supplier)
    await session.commit()
    evidence = await _evidence(session, [supplier.id, *MANY])
    assert evidence.height == 0  # not yet classified: no evidence, and no error
