"""Awards become contracts with CPV codes and supplier shares, written only where a stored value differs.

Mixed into ImportService."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    delete,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from importers.ocds import (
    ERROR,
    INFO,
    WARNING,
    AwardRecord,
    Note,
    Procurement,
)
from procurement import clock
from procurement import models as m
from procurement.bulk import WIDE, WriteBehind, allocate_ids, among, bulk_insert, chunks, cut, update_by_id
from procurement.money import ISO_4217, split_evenly, to_pence


class ContractWriter:
    """The contract half of an import batch: ``session`` is where it reads, and its writes go to the batch's
    ``_writes``, held back until the batch's suppliers are classified (nothing there reads contracts)."""

    source: str
    _writes: WriteBehind

    # contracts -------------------------------------------------------------------------------------------------

    def _contract_values(
        self, procurement: Procurement, award: AwardRecord, buyer_id: int, last: dt.datetime | None, notes: list[Note]
    ) -> dict[str, Any]:
        path = f"awards[{award.award_id}].value"
        value_pence: int | None = None
        currency = (award.currency or "GBP").upper()
        if currency not in ISO_4217:
            notes.append(
                Note(
                    WARNING,
                    "unknown currency; value not kept",
                    procurement.ocid,
                    path=f"{path}.currency",
                    value=award.currency,
                )
            )
            currency = "GBP"
        elif award.value_amount is not None:
            try:
                value_pence = to_pence(award.value_amount, field="award value")
            except ValueError as exc:
                notes.append(
                    Note(
                        WARNING,
                        f"{exc}; value not kept",
                        procurement.ocid,
                        path=f"{path}.amount",
                        value=str(award.value_amount),
                    )
                )
            if value_pence is not None and currency != "GBP":
                notes.append(
                    Note(
                        INFO,
                        f"value in {currency} kept and flagged non-GBP",
                        procurement.ocid,
                        path=path,
                        value=str(award.value_amount),
                    )
                )
        withdrawn = award.status == m.ContractStatus.WITHDRAWN.value
        return {
            "source": self.source,
            "source_id": procurement.ocid,
            "award_id": award.award_id,
            "buyer_id": buyer_id,
            "title": cut(award.title, 500) or procurement.ocid,
            "description": award.description,
            "value_pence": value_pence,
            "currency": currency,
            "award_date": award.award_date,
            "start_date": award.start_date,
            "end_date": award.end_date,
            "status": award.status,
            "withdrawn_reason": (
                f"withdrawn or cancelled in {self.source} (tender status {procurement.tender_status})"
                if withdrawn
                else None
            ),
            # The release date, not the clock: a re-import of the same data gives the same row.
            "withdrawn_at": last if withdrawn else None,
        }

    @staticmethod
    def _shares(value_pence: int | None, supplier_ids: Sequence[int]) -> list[tuple[int, int | None, str, int]]:
        """(supplier id, share, basis, position). Feeds state value per award, so several suppliers split it."""
        if not supplier_ids:
            return []
        if value_pence is None:
            return [(s, None, "unknown", i) for i, s in enumerate(supplier_ids)]
        if len(supplier_ids) == 1:
            return [(supplier_ids[0], value_pence, "stated", 0)]
        parts = split_evenly(value_pence, len(supplier_ids))
        return [(s, p, "equal_split", i) for i, (s, p) in enumerate(zip(supplier_ids, parts, strict=True))]

    def _wanted_contracts(
        self,
        procurements: Sequence[tuple[Procurement, dt.datetime | None]],
        buyers: dict[str, int],
        suppliers: dict[tuple[str, str], int],
        notes: list[Note],
    ) -> tuple[
        dict[tuple[str, str], dict[str, Any]],
        dict[tuple[str, str], list[str]],
        dict[tuple[str, str], list[tuple[int, int | None, str, int]]],
    ]:
        wanted: dict[tuple[str, str], dict[str, Any]] = {}
        wanted_cpv: dict[tuple[str, str], list[str]] = {}
        wanted_shares: dict[tuple[str, str], list[tuple[int, int | None, str, int]]] = {}
        for procurement, last in procurements:
            buyer_id = buyers.get(procurement.ocid)
            if buyer_id is None:
                if procurement.awards:
                    notes.append(
                        Note(ERROR, "no usable buyer; awards of this procurement not imported", procurement.ocid)
                    )
                continue
            for award in procurement.awards:
                key = (procurement.ocid, award.award_id)
                values = self._contract_values(procurement, award, buyer_id, last, notes)
                wanted[key] = values
                wanted_cpv[key] = list(award.cpv_codes)
                supplier_ids = list(
                    dict.fromkeys(
                        suppliers[(procurement.ocid, p)]
                        for p in award.supplier_party_ids
                        if (procurement.ocid, p) in suppliers
                    )
                )
                wanted_shares[key] = self._shares(values["value_pence"], supplier_ids)
        return wanted, wanted_cpv, wanted_shares

    async def _upsert_contracts(
        self,
        session: AsyncSession,
        procurements: Sequence[tuple[Procurement, dt.datetime | None]],
        buyers: dict[str, int],
        suppliers: dict[tuple[str, str], int],
        notes: list[Note],
    ) -> None:
        """One contract per (source, ocid, award id). Amendments replace values; a withdrawn or cancelled
        award is marked withdrawn and kept. Only rows whose values differ are written."""
        wanted, wanted_cpv, wanted_shares = self._wanted_contracts(procurements, buyers, suppliers, notes)
        if not wanted:
            return
        columns = [getattr(m.Contract, c) for c in next(iter(wanted.values()))]
        existing: dict[tuple[str, str], Any] = {}
        dialect = session.get_bind().dialect.name
        for chunk in chunks(sorted({k[0] for k in wanted}), WIDE):
            rows = await session.execute(
                select(m.Contract.id, *columns).where(
                    m.Contract.source == self.source, among(dialect, m.Contract.source_id, chunk)
                )
            )
            for row in rows:
                existing[(row.source_id, row.award_id)] = row
        ids = [r.id for r in existing.values()]
        old_cpv: dict[int, list[str]] = {i: [] for i in ids}
        old_shares: dict[int, list[tuple[int, int | None, str, int]]] = {i: [] for i in ids}
        for chunk in chunks(ids, WIDE):
            for cid, code in await session.execute(
                select(m.ContractCpv.contract_id, m.ContractCpv.code)
                .where(among(dialect, m.ContractCpv.contract_id, chunk))
                .order_by(m.ContractCpv.contract_id, m.ContractCpv.position)
            ):
                old_cpv[cid].append(code)
            for cid, sid, share, basis, position in await session.execute(
                select(
                    m.ContractSupplier.contract_id,
                    m.ContractSupplier.supplier_id,
                    m.ContractSupplier.share_pence,
                    m.ContractSupplier.share_basis,
                    m.ContractSupplier.position,
                )
                .where(among(dialect, m.ContractSupplier.contract_id, chunk))
                .order_by(m.ContractSupplier.contract_id, m.ContractSupplier.position)
            ):
                old_shares[cid].append((sid, share, basis, position))

        now = clock.now()
        new_keys = [k for k in wanted if k not in existing]
        contract_ids: dict[tuple[str, str], int] = {k: r.id for k, r in existing.items()}
        if new_keys:
            ids = await allocate_ids(session, m.Contract, len(new_keys))
            contract_rows = [{**wanted[k], "id": i} for k, i in zip(new_keys, ids, strict=True)]
            # PostgreSQL's lines-token triggers (0010_lines_token) queue every row of a transaction's first write to a
            # line table for a commit-time call; a first write of one row marks the transaction, and the rest queue
            # nothing (a plpgsql call saved per contract).
            first = 1 if dialect == "postgresql" else 0
            await self._writes.defer(lambda s: bulk_insert(s, m.Contract, contract_rows[:first]))
            await self._writes.defer(lambda s: bulk_insert(s, m.Contract, contract_rows[first:]))
            contract_ids.update(zip(new_keys, ids, strict=True))
        updates = []
        for key, row in existing.items():
            if key not in wanted:
                continue
            if any(getattr(row, c) != v for c, v in wanted[key].items()):
                updates.append({"id": row.id, **wanted[key], "updated_at": now})
        if updates:
            await self._writes.defer(lambda s: update_by_id(s, m.Contract, updates))
        replace_cpv = [k for k in wanted if k not in existing or old_cpv[contract_ids[k]] != wanted_cpv[k]]
        replace_shares = [k for k in wanted if k not in existing or old_shares[contract_ids[k]] != wanted_shares[k]]
        await self._replace_children(
            m.ContractCpv,
            [contract_ids[k] for k in replace_cpv if k in existing],
            [
                {"contract_id": contract_ids[k], "code": c, "position": i}
                for k in replace_cpv
                for i, c in enumerate(wanted_cpv[k])
            ],
        )
        await self._replace_children(
            m.ContractSupplier,
            [contract_ids[k] for k in replace_shares if k in existing],
            [
                {"contract_id": contract_ids[k], "supplier_id": s, "share_pence": p, "share_basis": b, "position": i}
                for k in replace_shares
                for s, p, b, i in wanted_shares[k]
            ],
        )
        touched = [contract_ids[k] for k in set(replace_cpv) | set(replace_shares) if k in existing]
        touched = [i for i in touched if i not in {u["id"] for u in updates}]
        for chunk in chunks(sorted(touched)):
            touch = update(m.Contract).where(m.Contract.id.in_(chunk)).values(updated_at=now)
            await self._writes.defer(lambda s, touch=touch: s.execute(touch))  # type: ignore[misc]

    async def _replace_children(
        self,
        model: type[m.ContractCpv] | type[m.ContractSupplier],
        clear: Sequence[int],
        rows: list[dict[str, Any]],
    ) -> None:
        async def replace(session: AsyncSession) -> None:
            for chunk in chunks(sorted(clear)):
                await session.execute(delete(model).where(model.contract_id.in_(chunk)))
            await bulk_insert(session, model, rows)

        await self._writes.defer(replace)

    # notes, counts, watermark ----------------------------------------------------------------------------------
