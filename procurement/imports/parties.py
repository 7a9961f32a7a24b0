"""Buyers and suppliers from the feeds: buyers become organisations, supplier parties become one supplier master.

New parties match on a stable register identifier, else on a normalised name; every match is recorded in
SupplierMatch so a re-import finds it again. Mixed into ImportService, whose run owns the caches."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from importers.ocds import (
    ERROR,
    WARNING,
    Note,
    PartyRecord,
    Procurement,
)
from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.bulk import (
    WIDE,
    WriteBehind,
    allocate_ids,
    among,
    bulk_insert,
    bulk_insert_watched,
    chunks,
    cut,
    update_by_id,
)
from socialvalue.identifiers import is_stable_identity


async def _update_suppliers(rows: Sequence[dict[str, Any]], session: AsyncSession) -> None:
    await update_by_id(session, m.Supplier, rows)


@dataclass
class Caches:
    """Run-level lookups; values may be provisional (negative) ids while a batch resolves new rows."""

    org_by_ident: dict[tuple[str, str], int] = field(default_factory=dict)
    org_by_name: dict[str, int | None] = field(default_factory=dict)
    supplier_by_ident: dict[tuple[str, str], int | None] = field(default_factory=dict)
    suppliers_by_name: dict[str, list[int]] = field(default_factory=dict)
    supplier_schemes: dict[int, set[str]] = field(default_factory=dict)


class PartyResolver:
    """The buyer and supplier half of an import batch: ``session`` is where it reads, and its writes go to the
    batch's ``_writes``."""

    source: str
    caches: Caches
    _provisional: Iterator[int]
    _pending_audits: list[tuple[int, str, str]]
    _writes: WriteBehind

    # buyers ----------------------------------------------------------------------------------------------------

    @staticmethod
    def _stable(identifiers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(s, v) for s, v in identifiers if is_stable_identity(s) and len(s) <= 32 and len(v) <= 128]

    async def _resolve_buyers(
        self, session: AsyncSession, procurements: Sequence[Procurement], notes: list[Note]
    ) -> dict[str, int]:
        """ocid -> organisation id. Matched by a register identifier, then by normalised name (anchors first),
        else a new organisation of kind "other". Idempotent: the same buyer always resolves to the same row."""
        caches = self.caches
        buyers = [(p.ocid, p.buyer) for p in procurements if p.buyer is not None]
        want_idents = {i for _, b in buyers for i in self._stable(b.identifiers)} - caches.org_by_ident.keys()
        for chunk in chunks(sorted(want_idents)):
            rows = await session.execute(
                select(
                    m.OrganisationIdentifier.scheme,
                    m.OrganisationIdentifier.value,
                    m.OrganisationIdentifier.organisation_id,
                ).where(tuple_(m.OrganisationIdentifier.scheme, m.OrganisationIdentifier.value).in_(list(chunk)))
            )
            for scheme, value, org_id in rows:
                caches.org_by_ident[(scheme, value)] = org_id
        want_names = {b.name_key for _, b in buyers if b.name_key} - caches.org_by_name.keys()
        for chunk in chunks(sorted(want_names)):
            rows = await session.execute(
                select(m.Organisation.name_key, m.Organisation.id)
                .where(m.Organisation.name_key.in_(chunk))
                .order_by(m.Organisation.is_anchor.desc(), m.Organisation.id)
            )
            for key, org_id in rows:
                caches.org_by_name.setdefault(key, org_id)
        resolved: dict[str, int] = {}
        new_orgs: dict[int, tuple[dict[str, Any], str]] = {}  # provisional id -> (row, ocid)
        new_idents: list[tuple[int, tuple[str, str]]] = []
        for ocid, buyer in buyers:
            idents = self._stable(buyer.identifiers)
            org_id = next((caches.org_by_ident[i] for i in idents if i in caches.org_by_ident), None)
            if org_id is None and buyer.name_key:
                org_id = caches.org_by_name.get(buyer.name_key)
            if org_id is None:
                if not buyer.name:
                    notes.append(Note(ERROR, "buyer without name or known identifier; awards not imported", ocid))
                    continue
                # A provisional id, so a later buyer of this batch with the same name or identifier finds it.
                org_id = next(self._provisional)
                new_orgs[org_id] = (self._organisation_row(buyer), ocid)
            for ident in idents:
                if ident not in caches.org_by_ident:
                    # Learn the identifier, so the next notice matches on it even if the name is spelt differently.
                    new_idents.append((org_id, ident))
                    caches.org_by_ident[ident] = org_id
            if buyer.name_key:
                caches.org_by_name.setdefault(buyer.name_key, org_id)
            resolved[ocid] = org_id
        real = await self._insert_organisations(session, new_orgs)
        if new_idents:
            identifier_rows = [
                {"organisation_id": real.get(o, o), "scheme": i[0], "value": i[1]} for o, i in new_idents
            ]
            await self._writes.add(lambda s: bulk_insert(s, m.OrganisationIdentifier, identifier_rows))
        return {ocid: real.get(org_id, org_id) for ocid, org_id in resolved.items()}

    @staticmethod
    def _organisation_row(buyer: PartyRecord) -> dict[str, Any]:
        return {
            "name": cut(buyer.name, 300) or buyer.party_id,
            "kind": m.OrganisationKind.OTHER.value,
            "address": cut(buyer.street_address, 500),
            "postcode": buyer.postcode,
            "is_anchor": False,
            "name_key": cut(buyer.name_key, 300) or "",
        }

    async def _insert_organisations(
        self, session: AsyncSession, new_orgs: dict[int, tuple[dict[str, Any], str]]
    ) -> dict[int, int]:
        """One insert of the batch's new buyers; returns provisional id -> real id (the caches are updated)."""
        if not new_orgs:
            return {}
        ids = await allocate_ids(session, m.Organisation, len(new_orgs))
        real = dict(zip(new_orgs, ids, strict=True))
        rows = [{"id": real[p], **row} for p, (row, _) in new_orgs.items()]
        await self._writes.add(lambda s: bulk_insert(s, m.Organisation, rows))
        self._pending_audits.extend((real[p], row["name"], ocid) for p, (row, ocid) in new_orgs.items())
        caches = self.caches
        for ident, value in list(caches.org_by_ident.items()):
            if value < 0:
                caches.org_by_ident[ident] = real[value]
        for key, found in list(caches.org_by_name.items()):
            if found is not None and found < 0:
                caches.org_by_name[key] = real[found]
        return real

    async def _audit_new_organisations(self, session: AsyncSession) -> None:
        # Added after the batch's lookups: an ORM add before them would force a flush per organisation.
        for org_id, name, ocid in self._pending_audits:
            await record_audit(
                session,
                actor=None,
                actor_name="import",
                action="organisation.import",
                entity_type="organisation",
                entity_id=org_id,
                organisation_id=org_id,
                changes={"name": (None, name)},
                reason=f"buyer of {ocid} ({self.source})",
            )
        self._pending_audits.clear()

    # suppliers -------------------------------------------------------------------------------------------------

    async def _resolve_suppliers(
        self, session: AsyncSession, procurements: Sequence[Procurement], notes: list[Note]
    ) -> dict[tuple[str, str], int]:
        """(ocid, party id) -> supplier id, recorded in SupplierMatch.

        A party keeps the supplier it was first matched to (GB-CFS party ids are per notice, so the match
        is keyed by ocid as well). New parties match on a stable register identifier, else on a normalised
        name with exactly one candidate, else become a new supplier; the method is recorded. Declared scale,
        VCSE, address and postcode are kept on the match as the supplier's own evidence.
        """
        parties: list[tuple[str, PartyRecord]] = []
        for p in procurements:
            seen: set[str] = set()
            for award in p.awards:
                for party_id in award.supplier_party_ids:
                    if party_id not in seen and party_id in p.parties:
                        seen.add(party_id)
                        parties.append((p.ocid, p.parties[party_id]))
        if not parties:
            return {}
        existing = await self._existing_matches(session, sorted({o for o, _ in parties}))
        fresh = [(o, p) for o, p in parties if (o, p.party_id) not in existing]
        await self._prefetch_suppliers(session, fresh)
        resolved: dict[tuple[str, str], int] = {k: r.supplier_id for k, r in existing.items()}
        new_matches, new_suppliers, attach = self._assign(fresh, resolved, notes)
        latest = self._latest_values(parties, resolved)
        real_ids = await self._insert_suppliers(session, new_suppliers, latest)
        if real_ids:
            resolved = {k: real_ids.get(v, v) for k, v in resolved.items()}
            for match in new_matches:
                match["supplier_id"] = real_ids.get(match["supplier_id"], match["supplier_id"])
            attach = [(real_ids.get(s, s), i) for s, i in attach]
        if attach:
            identifier_rows = [{"supplier_id": s, "scheme": i[0], "value": i[1]} for s, i in attach]
            await self._writes.add(lambda s: bulk_insert(s, m.SupplierIdentifier, identifier_rows))
        await self._writes.add(lambda s: bulk_insert(s, m.SupplierMatch, new_matches))
        await self._update_matches(parties, existing)
        await self._update_suppliers(session, {k: v for k, v in latest.items() if k not in real_ids})
        return resolved

    async def _existing_matches(self, session: AsyncSession, ocids: Sequence[str]) -> dict[tuple[str, str], Any]:
        existing: dict[tuple[str, str], Any] = {}
        dialect = session.get_bind().dialect.name
        for chunk in chunks(ocids, WIDE):
            rows = await session.execute(
                select(
                    m.SupplierMatch.id,
                    m.SupplierMatch.ocid,
                    m.SupplierMatch.party_id,
                    m.SupplierMatch.supplier_id,
                    m.SupplierMatch.party_name,
                    m.SupplierMatch.declared_scale,
                    m.SupplierMatch.declared_vcse,
                    m.SupplierMatch.street_address,
                    m.SupplierMatch.postcode,
                ).where(m.SupplierMatch.source == self.source, among(dialect, m.SupplierMatch.ocid, chunk))
            )
            for match in rows:
                existing[(match.ocid, match.party_id)] = match
        return existing

    def _assign(
        self, fresh: Sequence[tuple[str, PartyRecord]], resolved: dict[tuple[str, str], int], notes: list[Note]
    ) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]], list[tuple[int, tuple[str, str]]]]:
        """Match parties seen for the first time, in order; new suppliers get provisional (negative) ids so a
        second party with the same name or identifier in this batch finds the first."""
        caches = self.caches
        new_matches: list[dict[str, Any]] = []
        new_suppliers: dict[int, dict[str, Any]] = {}
        attach: list[tuple[int, tuple[str, str]]] = []
        for ocid, party in fresh:
            supplier_id, method, evidence = self._match_supplier(party, attach)
            if supplier_id is None:
                supplier_id = next(self._provisional)
                if party.name is None:
                    notes.append(
                        Note(
                            WARNING,
                            "supplier without name; kept under its party id",
                            ocid,
                            path=f"parties[{party.party_id}]",
                        )
                    )
                name = party.name or f"(no name in feed: {party.party_id})"
                new_suppliers[supplier_id] = {"name": cut(name, 500), "name_key": cut(party.name_key, 500) or ""}
                idents = self._stable(party.identifiers)
                for ident in idents:
                    caches.supplier_by_ident[ident] = supplier_id
                    attach.append((supplier_id, ident))
                caches.supplier_schemes[supplier_id] = {s for s, _ in idents}
                if party.name_key:
                    caches.suppliers_by_name.setdefault(party.name_key, []).append(supplier_id)
            resolved[(ocid, party.party_id)] = supplier_id
            new_matches.append(
                {
                    "source": self.source,
                    "ocid": ocid,
                    "party_id": party.party_id,
                    "supplier_id": supplier_id,
                    "method": method,
                    "evidence": evidence,
                    **self._declared(party),
                }
            )
        return new_matches, new_suppliers, attach

    def _latest_values(
        self, parties: Sequence[tuple[str, PartyRecord]], resolved: dict[tuple[str, str], int]
    ) -> dict[int, dict[str, Any]]:
        """Latest declared values per supplier, in processing order; a party that declares nothing changes nothing."""
        latest: dict[int, dict[str, Any]] = {}
        for ocid, party in parties:
            values = latest.setdefault(resolved[(ocid, party.party_id)], {})
            if party.declared_scale is not None or party.declared_vcse is not None:
                values["declared_scale"] = cut(party.declared_scale, 16)
                values["declared_vcse"] = party.declared_vcse
                values["declared_source"] = cut(f"{self.source} {ocid} {party.party_id} (parties[].details)", 500)
            if party.postcode is not None:
                values["postcode"] = party.postcode
                values["postcode_source"] = party.postcode_source
            if party.street_address is not None:
                values["street_address"] = cut(party.street_address, 1000)
            if party.country is not None:
                values["country"] = cut(party.country, 100)
        return latest

    def _declared(self, party: PartyRecord) -> dict[str, Any]:
        return {
            "party_name": cut(party.name, 500),
            "declared_scale": cut(party.declared_scale, 16),
            "declared_vcse": party.declared_vcse,
            "street_address": cut(party.street_address, 1000),
            "postcode": party.postcode,
        }

    async def _prefetch_suppliers(self, session: AsyncSession, fresh: Sequence[tuple[str, PartyRecord]]) -> None:
        caches = self.caches
        idents = {i for _, p in fresh for i in self._stable(p.identifiers)} - caches.supplier_by_ident.keys()
        for chunk in chunks(sorted(idents)):
            rows = await session.execute(
                select(m.SupplierIdentifier.scheme, m.SupplierIdentifier.value, m.SupplierIdentifier.supplier_id).where(
                    tuple_(m.SupplierIdentifier.scheme, m.SupplierIdentifier.value).in_(list(chunk))
                )
            )
            found = {(s, v): sid for s, v, sid in rows}
            for ident in chunk:
                caches.supplier_by_ident[ident] = found.get(ident)
        names = {p.name_key for _, p in fresh if p.name_key} - caches.suppliers_by_name.keys()
        candidates: set[int] = set()
        dialect = session.get_bind().dialect.name
        for chunk in chunks(sorted(names), WIDE):
            rows = await session.execute(
                select(m.Supplier.name_key, m.Supplier.id)
                .where(among(dialect, m.Supplier.name_key, chunk), m.Supplier.merged_into_id.is_(None))
                .order_by(m.Supplier.id)
            )
            for key in chunk:
                caches.suppliers_by_name.setdefault(key, [])
            for key, sid in rows:
                caches.suppliers_by_name[key].append(sid)
                candidates.add(sid)
        unknown = sorted(candidates - caches.supplier_schemes.keys())
        for sid in unknown:
            caches.supplier_schemes[sid] = set()
        for chunk in chunks(unknown, WIDE):
            rows = await session.execute(
                select(m.SupplierIdentifier.supplier_id, m.SupplierIdentifier.scheme).where(
                    among(dialect, m.SupplierIdentifier.supplier_id, chunk)
                )
            )
            for sid, scheme in rows:
                caches.supplier_schemes[sid].add(scheme)

    def _match_supplier(
        self, party: PartyRecord, attach: list[tuple[int, tuple[str, str]]]
    ) -> tuple[int | None, str, str | None]:
        caches = self.caches
        idents = self._stable(party.identifiers)
        for ident in idents:
            supplier_id = caches.supplier_by_ident.get(ident)
            if supplier_id is not None:
                return supplier_id, "identifier", f"{ident[0]} {ident[1]}"
        if not party.name_key:
            return None, "new", None
        schemes = {s for s, _ in idents}
        # A candidate already registered under another number of the same scheme is a different organisation.
        candidates = [
            sid
            for sid in caches.suppliers_by_name.get(party.name_key, [])
            if not (schemes & caches.supplier_schemes.get(sid, set()))
        ]
        if len(candidates) != 1:
            return None, "new", None
        supplier_id = candidates[0]
        for ident in idents:
            caches.supplier_by_ident[ident] = supplier_id
            caches.supplier_schemes.setdefault(supplier_id, set()).add(ident[0])
            attach.append((supplier_id, ident))
        return supplier_id, "name", cut(f"normalised name {party.name_key!r}", 500)

    async def _insert_suppliers(
        self, session: AsyncSession, new_suppliers: dict[int, dict[str, Any]], latest: dict[int, dict[str, Any]]
    ) -> dict[int, int]:
        if not new_suppliers:
            return {}
        provisional = list(new_suppliers)
        rows = [{**new_suppliers[p], **latest.get(p, {})} for p in provisional]
        columns = ("street_address", "postcode", "postcode_source", "country", "declared_scale", "declared_vcse")
        for row in rows:
            for column in (*columns, "declared_source"):
                row.setdefault(column, None)
        ids = await allocate_ids(session, m.Supplier, len(rows))
        for row, supplier_id in zip(rows, ids, strict=True):
            row["id"] = supplier_id
        await self._writes.add(lambda s: bulk_insert_watched(s, m.Supplier, rows))
        real = dict(zip(provisional, ids, strict=True))
        caches = self.caches
        for key, value in list(caches.supplier_by_ident.items()):
            if value is not None and value < 0:
                caches.supplier_by_ident[key] = real[value]
        for sids in caches.suppliers_by_name.values():
            sids[:] = [real.get(s, s) for s in sids]
        for p, sid in real.items():
            caches.supplier_schemes[sid] = caches.supplier_schemes.pop(p, set())
        return real

    async def _update_matches(
        self, parties: Sequence[tuple[str, PartyRecord]], existing: dict[tuple[str, str], Any]
    ) -> None:
        updates = []
        for ocid, party in parties:
            row = existing.get((ocid, party.party_id))
            if row is None:
                continue
            declared = self._declared(party)
            if any(getattr(row, k) != v for k, v in declared.items()):
                updates.append({"id": row.id, **declared})
        if updates:
            await self._writes.add(lambda s: update_by_id(s, m.SupplierMatch, updates))

    async def _update_suppliers(self, session: AsyncSession, latest: dict[int, dict[str, Any]]) -> None:
        """Copy the latest declared values, address and postcode to existing suppliers where they differ.

        A postcode an editor set by hand (postcode_source "manual") is never overwritten by a feed.
        """
        ids = sorted(k for k, v in latest.items() if v)
        updates: list[dict[str, Any]] = []
        now = clock.now()
        dialect = session.get_bind().dialect.name
        for chunk in chunks(ids, WIDE):
            rows = await session.execute(
                select(
                    m.Supplier.id,
                    m.Supplier.street_address,
                    m.Supplier.postcode,
                    m.Supplier.postcode_source,
                    m.Supplier.country,
                    m.Supplier.declared_scale,
                    m.Supplier.declared_vcse,
                    m.Supplier.declared_source,
                ).where(among(dialect, m.Supplier.id, chunk))
            )
            for current in rows:
                wanted = dict(latest[current.id])
                if current.postcode_source == "manual":
                    for key in ("postcode", "postcode_source", "street_address", "country"):
                        wanted.pop(key, None)
                if (current.declared_scale, current.declared_vcse) == (
                    wanted.get("declared_scale", current.declared_scale),
                    wanted.get("declared_vcse", current.declared_vcse),
                ):
                    # Same declaration again: the source keeps naming the notice that first declared it.
                    wanted.pop("declared_source", None)
                changed = {k: v for k, v in wanted.items() if getattr(current, k) != v}
                if changed:
                    updates.append({"id": current.id, **changed, "updated_at": now})
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for values in updates:
            groups.setdefault(tuple(sorted(values)), []).append(values)
        for group in groups.values():
            await self._writes.add(functools.partial(_update_suppliers, group))
