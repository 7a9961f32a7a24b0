"""Anchor groups (e.g. Birmingham and Solihull): several anchors reported together."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal, _require_admin
from procurement.errors import ConflictError, DomainError, NotFound
from procurement.organisations.schemas import AnchorGroup, AnchorGroupCreate, AnchorGroupUpdate, GroupMember

BIRMINGHAM_AND_SOLIHULL = "birmingham-and-solihull"


_BSOL_ICB = "QHL"


_BSOL_COUNCILS = ("E08000025", "E08000029")  # Birmingham City Council, Solihull MBC


async def _orgs_exist(session: AsyncSession, ids: Sequence[int]) -> None:
    found = set((await session.scalars(select(m.Organisation.id).where(m.Organisation.id.in_(list(ids))))).all())
    missing = sorted(set(ids) - found)
    if missing:
        raise DomainError(f"No organisation with id {', '.join(map(str, missing))}.")


async def get_group(session: AsyncSession, slug: str) -> m.AnchorGroup:
    group = (await session.scalars(select(m.AnchorGroup).where(m.AnchorGroup.slug == slug))).first()
    if group is None:
        raise NotFound(f"No anchor group {slug!r}.")
    return group


async def list_groups(session: AsyncSession) -> Sequence[m.AnchorGroup]:
    return (await session.scalars(select(m.AnchorGroup).order_by(m.AnchorGroup.name))).all()


async def create_group(session: AsyncSession, data: AnchorGroupCreate, actor: Principal | None) -> m.AnchorGroup:
    if actor is not None:
        _require_admin(actor)
    if await session.scalar(select(m.AnchorGroup.id).where(m.AnchorGroup.slug == data.slug)) is not None:
        raise ConflictError(f"An anchor group {data.slug!r} exists already.")
    ids = list(dict.fromkeys(data.organisation_ids))
    await _orgs_exist(session, ids)
    group = m.AnchorGroup(
        slug=data.slug,
        name=data.name.strip(),
        members=[m.AnchorGroupMember(organisation_id=i) for i in ids],
    )
    session.add(group)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        actor_name="seed groups",
        action="anchor_group.create",
        entity_type="anchor_group",
        entity_id=group.id,
        changes={"slug": (None, group.slug), "members": (None, sorted(ids))},
    )
    return group


async def update_group(session: AsyncSession, slug: str, data: AnchorGroupUpdate, actor: Principal) -> m.AnchorGroup:
    _require_admin(actor)
    group = await get_group(session, slug)
    changes: dict[str, tuple[object, object]] = {}
    if isinstance(data.name, str) and data.name.strip() != group.name:
        changes["name"] = (group.name, data.name.strip())
        group.name = data.name.strip()
    if isinstance(data.organisation_ids, list):
        ids = list(dict.fromkeys(data.organisation_ids))
        await _orgs_exist(session, ids)
        old = sorted(x.organisation_id for x in group.members)
        if old != sorted(ids):
            group.members.clear()
            await session.flush()
            group.members.extend(m.AnchorGroupMember(organisation_id=i) for i in ids)
            changes["members"] = (old, sorted(ids))
    if changes:
        await record_audit(
            session,
            actor=actor,
            action="anchor_group.update",
            entity_type="anchor_group",
            entity_id=group.id,
            changes=changes,
        )
    await session.flush()
    await session.refresh(group, ["members"])
    return group


async def delete_group(session: AsyncSession, slug: str, actor: Principal) -> None:
    _require_admin(actor)
    group = await get_group(session, slug)
    await record_audit(
        session,
        actor=actor,
        action="anchor_group.delete",
        entity_type="anchor_group",
        entity_id=group.id,
        changes={"slug": (group.slug, None), "members": (sorted(x.organisation_id for x in group.members), None)},
    )
    await session.delete(group)
    await session.flush()


async def birmingham_and_solihull_ids(session: AsyncSession) -> list[int]:
    """The ICB (ODS QHL), the NHS trusts in its footprint, Birmingham City Council and Solihull MBC."""
    o = m.Organisation
    icb = (await session.scalars(select(o.id).where(o.ods_code == _BSOL_ICB, o.kind == "icb"))).all()
    trusts = (
        await session.scalars(
            select(o.id).where(o.icb_ods_code == _BSOL_ICB, o.kind == "nhs_trust", o.is_anchor.is_(True))
        )
    ).all()
    councils = (await session.scalars(select(o.id).where(o.gss_code.in_(_BSOL_COUNCILS)))).all()
    if len(icb) != 1 or len(councils) != len(_BSOL_COUNCILS) or not trusts:
        raise DomainError("The Birmingham and Solihull anchors are not all there: run 'localvalue seed anchors' first.")
    return sorted([*icb, *trusts, *councils])


async def seed_groups(session: AsyncSession) -> tuple[int, int]:
    """Create "Birmingham and Solihull" from the seeded anchors, or add members it lacks; (created, updated)."""
    ids = await birmingham_and_solihull_ids(session)
    group = (await session.scalars(select(m.AnchorGroup).where(m.AnchorGroup.slug == BIRMINGHAM_AND_SOLIHULL))).first()
    if group is None:
        data = AnchorGroupCreate(slug=BIRMINGHAM_AND_SOLIHULL, name="Birmingham and Solihull", organisation_ids=ids)
        await create_group(session, data, None)
        return 1, 0
    have = {x.organisation_id for x in group.members}
    missing = [i for i in ids if i not in have]
    if not missing:
        return 0, 0
    group.members.extend(m.AnchorGroupMember(organisation_id=i) for i in missing)
    await record_audit(
        session,
        actor=None,
        actor_name="seed groups",
        action="anchor_group.seed",
        entity_type="anchor_group",
        entity_id=group.id,
        changes={"members": (sorted(have), sorted(have | set(missing)))},
    )
    await session.flush()
    return 0, 1


async def group_schema(session: AsyncSession, group: m.AnchorGroup) -> AnchorGroup:
    ids = [x.organisation_id for x in group.members]
    rows = await session.execute(select(m.Organisation.id, m.Organisation.name).where(m.Organisation.id.in_(ids)))
    names: dict[int, str] = {row.id: row.name for row in rows.all()}
    members = sorted((GroupMember(id=i, name=names.get(i, "")) for i in ids), key=lambda x: x.name)
    return AnchorGroup(id=group.id, slug=group.slug, name=group.name, members=members)
