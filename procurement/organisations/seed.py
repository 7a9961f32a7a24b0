"""The West Midlands anchor institutions shipped with the package, loaded idempotently."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import figures
from procurement import models as m
from procurement.audit import record_audit

_KIND = {
    "nhs_trust": m.OrganisationKind.NHS_TRUST,
    "icb": m.OrganisationKind.ICB,
    "combined_authority": m.OrganisationKind.COMBINED_AUTHORITY,
    "metropolitan_district": m.OrganisationKind.LOCAL_AUTHORITY,
    "county": m.OrganisationKind.LOCAL_AUTHORITY,
    "unitary": m.OrganisationKind.LOCAL_AUTHORITY,
}


_KEEP_UPPER = {"NHS", "ICB", "UK", "II"}


_KEEP_LOWER = {"and", "of", "the", "for", "on", "in", "upon", "under"}


def display_name(name: str) -> str:
    """ODS names are upper case; anchors' statements should read naturally ("The Dudley Group NHS ...")."""
    if name != name.upper():
        return name

    def fix(i: int, word: str) -> str:
        if word in _KEEP_UPPER:
            return word
        lower = word.lower()
        if i > 0 and lower in _KEEP_LOWER:
            return lower
        return "-".join(p[:1].upper() + p[1:] for p in lower.split("-"))

    titled = " ".join(fix(i, w) for i, w in enumerate(name.split()))
    return re.sub(r"'S\b", "'s", titled)


@dataclass(frozen=True)
class AnchorRow:
    kind: m.OrganisationKind
    name: str
    ods_code: str | None
    gss_code: str | None
    icb_ods_code: str | None
    address: str | None
    postcode: str | None
    lad_code: str | None


# The shipped anchor lists: the West Midlands anchors, and the trust whose payments the demo imports.
ANCHOR_LISTS = {
    "west-midlands": "data/anchor_institutions_west_midlands.csv",
    "spend-demo": "data/anchor_institutions_spend_demo.csv",
}


def anchor_rows(anchor_list: str = "west-midlands") -> list[AnchorRow]:
    text = resources.files("procurement").joinpath(ANCHOR_LISTS[anchor_list]).read_text("utf-8")
    rows = []
    for row in csv.DictReader(text.splitlines()):
        rows.append(
            AnchorRow(
                kind=_KIND.get(row["kind"], m.OrganisationKind.OTHER),
                name=display_name(row["name"].strip()),
                ods_code=row["ods_code"].strip() or None,
                gss_code=row["gss_code"].strip() or None,
                icb_ods_code=row["icb_ods_code"].strip() or None,
                address=row["address"].strip().title() or None if row["address"] else None,
                postcode=row["postcode"].strip() or None,
                lad_code=row["postcode_lad_code"].strip()
                or (row["gss_code"].strip() if row["kind"] in {"metropolitan_district", "unitary"} else None)
                or None,
            )
        )
    return rows


async def seed_anchors(session: AsyncSession, anchor_list: str = "west-midlands") -> tuple[int, int]:
    """Idempotent: matched on ODS or GSS code; returns (created, updated)."""
    from socialvalue.identifiers import normalise_org_name

    created = updated = 0
    changed: list[int] = []
    for row in anchor_rows(anchor_list):
        codes = [
            c
            for c in (
                m.Organisation.ods_code == row.ods_code if row.ods_code else None,
                m.Organisation.gss_code == row.gss_code if row.gss_code else None,
            )
            if c is not None
        ]
        org = (await session.scalars(select(m.Organisation).where(or_(*codes)))).first() if codes else None
        fields = {
            "name": row.name,
            "kind": row.kind.value,
            "ods_code": row.ods_code,
            "gss_code": row.gss_code,
            "icb_ods_code": row.icb_ods_code,
            "address": row.address,
            "postcode": row.postcode,
            "lad_code": row.lad_code,
            "is_anchor": True,
            "name_key": normalise_org_name(row.name),
        }
        if org is None:
            org = m.Organisation(**fields)
            session.add(org)
            await session.flush()
            created += 1
            await record_audit(
                session,
                actor=None,
                actor_name="seed anchors",
                action="organisation.seed",
                entity_type="organisation",
                entity_id=org.id,
                organisation_id=org.id,
                changes={"name": (None, row.name)},
            )
            continue
        changes = {k: (getattr(org, k), v) for k, v in fields.items() if getattr(org, k) != v}
        if changes:
            for key, (_old, new) in changes.items():
                setattr(org, key, new)
            updated += 1
            changed.append(org.id)
            await record_audit(
                session,
                actor=None,
                actor_name="seed anchors",
                action="organisation.seed",
                entity_type="organisation",
                entity_id=org.id,
                organisation_id=org.id,
                changes=changes,
            )
    await session.flush()
    if changed:
        await figures.anchors_changed(session, changed)
    return created, updated
