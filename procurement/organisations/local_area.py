"""Each anchor's own definition of "local": a preset or its own list of local authority districts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from procurement import figures
from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal, ensure_can_write_for
from procurement.db import get_or_not_found
from procurement.errors import DomainError
from socialvalue import locality


def default_preset(org: m.Organisation) -> str:
    """LA -> its own LAD; NHS trust / ICB -> its ICB footprint; combined authority -> WMCA 7; else the region."""
    if org.kind == m.OrganisationKind.LOCAL_AUTHORITY.value and (org.lad_code or org.gss_code):
        return "own_lad"
    if org.kind in {m.OrganisationKind.NHS_TRUST.value, m.OrganisationKind.ICB.value} and (
        org.icb_ods_code or org.lad_code
    ):
        return "icb"
    if org.kind == m.OrganisationKind.COMBINED_AUTHORITY.value:
        return "wmca_7"
    return "own_lad" if org.lad_code else "wm_region"


def area_for_preset(org: m.Organisation, preset: str) -> locality.LocalArea:
    """The anchor's area for a preset; a ValueError (shown as a 400) when the organisation lacks what it needs."""
    lad = org.lad_code
    if preset == "own_lad" and lad is None and org.kind == m.OrganisationKind.LOCAL_AUTHORITY.value:
        lad = org.gss_code
    if preset == "icb":
        icb = org.icb_ods_code or (org.ods_code if org.kind == m.OrganisationKind.ICB.value else None)
        return locality.local_area("icb", lad_code=lad, icb_code=icb)
    return locality.local_area(preset, lad_code=lad)


def anchor_area(org: m.Organisation) -> tuple[locality.LocalArea, bool]:
    """(the anchor's local area, whether it is the default for its kind)."""
    if org.local_lad_codes:
        return locality.custom_area(
            org.local_lad_codes, label=f"{org.name} local area ({len(org.local_lad_codes)} LADs)"
        ), False
    if org.local_preset:
        return area_for_preset(org, org.local_preset), False
    try:
        return area_for_preset(org, default_preset(org)), True
    except ValueError:
        return locality.local_area("wm_region"), True


async def get_org(session: AsyncSession, org_id: int) -> m.Organisation:
    return await get_or_not_found(session, m.Organisation, org_id, "organisation")


async def set_local_area(
    session: AsyncSession,
    org_id: int,
    actor: Principal,
    *,
    preset: str | None,
    lad_codes: Sequence[str] | None,
    label: str | None,
) -> m.Organisation:
    org = await get_org(session, org_id)
    ensure_can_write_for(actor, org.id)
    if (preset is None) == (lad_codes is None):
        raise DomainError("Give either a preset or a list of LAD codes.")
    if preset is not None:
        if preset not in locality.PRESETS:
            raise DomainError(f"Unknown preset {preset!r}; expected one of {', '.join(locality.PRESETS)}.")
        try:
            area_for_preset(org, preset)
        except ValueError as exc:
            raise DomainError(f"Preset {preset} does not fit this organisation: {exc}.") from exc
        new: tuple[str | None, list[str] | None] = (preset, None)
    else:
        try:
            area = locality.custom_area(lad_codes or [], label=label or "custom")
        except ValueError as exc:
            raise DomainError(str(exc)) from exc
        new = (None, sorted(area.lad_codes))
    old = (org.local_preset, org.local_lad_codes)
    if old != new:
        org.local_preset, org.local_lad_codes = new
        changes: dict[str, tuple[Any, Any]] = {"local_preset": (old[0], new[0]), "local_lad_codes": (old[1], new[1])}
        if label:
            changes["local_label"] = (None, label)
        await record_audit(
            session,
            actor=actor,
            action="organisation.local_area",
            entity_type="organisation",
            entity_id=org.id,
            organisation_id=org.id,
            changes=changes,
        )
        await session.flush()
        await figures.anchors_changed(session, [org.id])
    await session.flush()
    return org
