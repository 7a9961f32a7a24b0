"""Organisations (anchors, buyers, suppliers' parent bodies): create, update, find by id, ODS or GSS code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import Boolean, ColumnElement, Integer, Select, String, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from procurement import figures
from procurement import models as m
from procurement.audit import _apply, _unset_dropped, record_audit
from procurement.auth import Principal, ensure_can_write_for
from procurement.errors import DomainError, NotFound
from procurement.organisations.schemas import Organisation, OrganisationCreate, OrganisationUpdate
from procurement.schemas import Identifier


def _org_name_key(name: str) -> str:
    from socialvalue.identifiers import normalise_org_name

    return normalise_org_name(name)


def _lad_for(postcode: str | None) -> str | None:
    if not postcode:
        return None
    from socialvalue.geography import locate

    place = locate(postcode)
    return place.lad_code if place.method == "unit" else None


class OrganisationService(SQLAlchemyAsyncRepositoryService[m.Organisation]):
    class Repo(SQLAlchemyAsyncRepository[m.Organisation]):
        model_type = m.Organisation

    repository_type = Repo

    async def create_organisation(self, data: OrganisationCreate, actor: Principal | None) -> m.Organisation:
        org = m.Organisation(
            name=data.name.strip(),
            kind=data.kind.value,
            ods_code=data.ods_code,
            gss_code=data.gss_code,
            icb_ods_code=data.icb_ods_code,
            address=data.address,
            postcode=data.postcode,
            lad_code=_lad_for(data.postcode),
            is_anchor=data.is_anchor,
            name_key=_org_name_key(data.name),
            identifiers=[m.OrganisationIdentifier(scheme=i.scheme, value=i.id) for i in data.identifiers],
        )
        await self._check_unique_codes(org.ods_code, org.gss_code, None)
        self.repository.session.add(org)
        await self.repository.session.flush()
        await record_audit(
            self.repository.session,
            actor=actor,
            action="organisation.create",
            entity_type="organisation",
            entity_id=org.id,
            organisation_id=org.id,
            changes={"name": (None, org.name), "kind": (None, org.kind)},
        )
        return org

    async def update_organisation(self, org_id: int, data: OrganisationUpdate, actor: Principal) -> m.Organisation:
        org = await self.get_or_404(org_id)
        ensure_can_write_for(actor, org.id)
        fields = _unset_dropped(data)
        if "kind" in fields:
            fields["kind"] = fields["kind"].value
        if "name" in fields:
            fields["name"] = fields["name"].strip()
            fields["name_key"] = _org_name_key(fields["name"])
        if "postcode" in fields:
            fields["lad_code"] = _lad_for(fields["postcode"])
        await self._check_unique_codes(fields.get("ods_code"), fields.get("gss_code"), org.id)
        changes = _apply(org, fields)
        if changes:
            await record_audit(
                self.repository.session,
                actor=actor,
                action="organisation.update",
                entity_type="organisation",
                entity_id=org.id,
                organisation_id=org.id,
                changes=changes,
            )
        await self.repository.session.flush()
        if changes:  # its name, kind or codes can move its area, so its suppliers' tiers
            await figures.anchors_changed(self.repository.session, [org.id])
        return org

    async def get_or_404(self, org_id: int) -> m.Organisation:
        org: m.Organisation | None = await self.repository.get_one_or_none(id=org_id)
        if org is None:
            raise NotFound(f"No organisation with id {org_id}.")
        return org

    async def _check_unique_codes(self, ods: str | None, gss: str | None, own_id: int | None) -> None:
        for column, value in ((m.Organisation.ods_code, ods), (m.Organisation.gss_code, gss)):
            if not value:
                continue
            clash = await self.repository.session.scalar(
                select(m.Organisation.id).where(column == value, m.Organisation.id != (own_id or 0))
            )
            if clash is not None:
                raise DomainError(f"Another organisation (id {clash}) already has {column.key} {value}.")


_O, _OI = m.Organisation, m.OrganisationIdentifier
_LISTED = (_O.id, _O.name, _O.kind, _O.ods_code, _O.gss_code, _O.icb_ods_code, _O.address, _O.postcode, _O.lad_code)
# Listing statements by which filters are given, built once: values are bound, so each is compiled once too.
_PAGE_STATEMENTS: dict[tuple[bool, bool], tuple[Select[Any], Select[Any]]] = {}


def _statements(conditions: Sequence[ColumnElement[bool]]) -> tuple[Select[Any], Select[Any]]:
    """The page with its identifiers, and the count (for a page past the end), for these conditions."""
    page = (
        select(*_LISTED, _O.is_anchor, func.count().over().label("total"))
        .where(*conditions)
        .order_by(_O.name, _O.id)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
        .subquery()
    )
    rows = (
        select(page, _OI.scheme, _OI.value)
        .outerjoin(_OI, _OI.organisation_id == page.c.id)
        .order_by(page.c.name, page.c.id, _OI.id)
    )
    return rows, select(func.count()).select_from(_O).where(*conditions)


def _prepared(*, by_anchor: bool, by_kind: bool) -> tuple[Select[Any], Select[Any]]:
    key = (by_anchor, by_kind)
    found = _PAGE_STATEMENTS.get(key)
    if found is None:
        conditions: list[ColumnElement[bool]] = []
        if by_anchor:
            conditions.append(_O.is_anchor == bindparam("anchor", type_=Boolean))
        if by_kind:
            conditions.append(_O.kind == bindparam("kind", type_=String))
        found = _PAGE_STATEMENTS.setdefault(key, _statements(conditions))
    return found


async def list_page(
    engine: AsyncEngine, anchor: bool | None, kind: str | None, q: str | None, limit: int, offset: int
) -> tuple[list[Organisation], int]:
    """One page of organisations by name (id among equal names) and how many match in all, in one autocommit
    query (one consistent read): the page's columns with the count of all matches beside each row, joined to
    their identifiers, read as plain rows (no ORM objects)."""
    params: dict[str, Any] = {"limit": limit, "offset": offset, "anchor": anchor, "kind": kind}
    if q:  # a name fragment: LIKE with its wildcards escaped, built for the value given
        conditions: list[ColumnElement[bool]] = [func.lower(_O.name).contains(q.lower(), autoescape=True)]
        if anchor is not None:
            conditions.append(_O.is_anchor.is_(anchor))
        if kind is not None:
            conditions.append(_O.kind == kind)
        rows_statement, count_statement = _statements(conditions)
    else:
        rows_statement, count_statement = _prepared(by_anchor=anchor is not None, by_kind=kind is not None)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")  # no BEGIN/COMMIT round trips
        rows = (await connection.execute(rows_statement, params)).all()
        if not rows:  # an empty page says nothing of the total (an offset past the end)
            return [], int(await connection.scalar(count_statement, params) or 0)
    items: list[Organisation] = []
    last: Organisation | None = None
    for ident, name, kind_, ods, gss, icb, address, postcode, lad, is_anchor, _total, scheme, value in rows:
        if last is None or last.id != ident:
            last = Organisation(
                id=ident,
                name=name,
                kind=kind_,
                ods_code=ods,
                gss_code=gss,
                icb_ods_code=icb,
                address=address,
                postcode=postcode,
                lad_code=lad,
                is_anchor=bool(is_anchor),
                identifiers=[],
            )
            items.append(last)
        if scheme is not None:
            last.identifiers.append(Identifier(scheme=scheme, id=value))
    return items, int(rows[0][10])


def organisation_schema(org: m.Organisation) -> Organisation:
    return Organisation(
        id=org.id,
        name=org.name,
        kind=org.kind,
        ods_code=org.ods_code,
        gss_code=org.gss_code,
        icb_ods_code=org.icb_ods_code,
        address=org.address,
        postcode=org.postcode,
        lad_code=org.lad_code,
        is_anchor=org.is_anchor,
        identifiers=[Identifier(scheme=i.scheme, id=i.value) for i in org.identifiers],
    )


async def find_organisation(session: AsyncSession, code: str) -> m.Organisation:
    """The organisation with this id, ODS code or GSS code (as people type them: any case)."""
    conditions = [m.Organisation.ods_code == code.upper(), m.Organisation.gss_code == code.upper()]
    if code.isdigit() and len(code) < 19:
        conditions.append(m.Organisation.id == int(code))
    found = (await session.scalars(select(m.Organisation).where(or_(*conditions)))).first()
    if found is None:
        raise NotFound(
            f"no organisation matches {code!r}: give its id, ODS code (e.g. RRK) or GSS code (e.g. E08000025)"
        )
    return found
