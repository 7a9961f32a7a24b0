"""Organisations (anchors, buyers, suppliers' parent bodies): create, update, find by id, ODS or GSS code."""

from __future__ import annotations

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

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
