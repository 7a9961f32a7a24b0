"""Corrections of a supplier's classification: overrides and attestations, merge, split and undo, each with a
reason and audited. Who may make them, and when they wait for a reviewer, is decided in `corrections`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal
from procurement.db import get_or_not_found
from procurement.errors import ConflictError, DomainError
from procurement.suppliers.classification import PLACE_FLAGS, _gather_inputs, get_supplier
from procurement.suppliers.service import check_postcode
from procurement.suppliers.tiers import refresh_tiers
from socialvalue import enterprise, geography
from socialvalue.identifiers import normalise_org_name
from socialvalue.postcodes import normalise_postcode

OVERRIDE_FLAGS = (*enterprise.OVERRIDE_VALUES, *PLACE_FLAGS)


MIN_REASON = 10


def check_override(flag: str, value: str, *, confirm_postcode: bool = False) -> str:
    """The canonical value for a flag, or a DomainError saying what is allowed."""
    text = value.strip()
    if flag == "category":
        if text.lower() not in enterprise.CATEGORIES:
            raise DomainError(f"category must be one of {', '.join(enterprise.CATEGORIES)}.")
        return text.lower()
    if flag in enterprise.BOOL_FLAGS:
        if text.lower() not in enterprise.OVERRIDE_VALUES[flag]:
            raise DomainError(f"{flag} must be true, false or unknown.")
        return text.lower()
    if flag == "lad_code":
        code = text.upper()
        if code not in set(geography.lad_reference()["lad_code"].to_list()):
            raise DomainError(f"unknown LAD code {text!r}.")
        return code
    if flag == "delivery_postcode":
        postcode = normalise_postcode(text)
        if postcode is None:
            raise DomainError(f"delivery_postcode {text!r} is not a valid UK postcode; send one like B15 2GW.")
        check_postcode(postcode, confirmed=confirm_postcode, field="delivery_postcode")
        return postcode
    raise DomainError(f"flag must be one of {', '.join(OVERRIDE_FLAGS)}.")


async def add_override(
    session: AsyncSession,
    supplier_id: int,
    actor: Principal,
    *,
    flag: str,
    value: str,
    reason: str,
    confirm_postcode: bool = False,
) -> m.ClassificationOverride:
    supplier = await get_supplier(session, supplier_id)
    if supplier.merged_into_id is not None:
        raise DomainError(f"Supplier {supplier_id} is merged into {supplier.merged_into_id}; override that one.")
    if len(reason.strip()) < MIN_REASON:
        raise DomainError(f"An override needs a reason of at least {MIN_REASON} characters.")
    canonical = check_override(flag, value, confirm_postcode=confirm_postcode)
    now = clock.now()
    co = m.ClassificationOverride
    active = (await session.scalars(select(co).where(co.supplier_id == supplier_id, co.revoked_at.is_(None)))).all()
    superseded = [o for o in active if o.flag == flag]
    if flag not in PLACE_FLAGS:
        # One decision: the new override must fit the category it leads to; older ones it contradicts give way.
        superseded += await _contradicted(session, supplier_id, flag, canonical, [o for o in active if o.flag != flag])
    override = m.ClassificationOverride(
        supplier_id=supplier_id,
        flag=flag,
        value=canonical,
        reason=reason.strip(),
        created_by=actor.name,
        created_at=now,
    )
    session.add(override)
    await session.flush()
    for old in superseded:
        old.revoked_at, old.revoked_by = now, actor.name
        old.revoke_reason = f"superseded by override #{override.id} ({flag}={canonical})"
    changes: dict[str, tuple[object, object]] = {
        flag: ([o.value for o in superseded if o.flag == flag] or None, canonical),
        "override_id": (None, override.id),
    }
    changes |= {f"override #{o.id}": (f"{o.flag}={o.value}", None) for o in superseded if o.flag != flag}
    await record_audit(
        session,
        actor=actor,
        action="supplier.override",
        entity_type="supplier",
        entity_id=supplier_id,
        changes=changes,
        reason=override.reason,
    )
    await refresh_tiers(session, suppliers=[supplier_id])
    return override


_EXAMPLE_REASON = "checked the register entry"


async def _contradicted(
    session: AsyncSession, supplier_id: int, flag: str, value: str, others: Sequence[m.ClassificationOverride]
) -> list[m.ClassificationOverride]:
    """Older overrides the new one contradicts, or a DomainError when the decided category cannot honour it."""
    inputs = (await _gather_inputs(session, [supplier_id]))[0]
    proposed = enterprise.Override(0, flag, value, "proposed", "proposed", clock.now())
    kept = tuple(o for o in inputs.facts.overrides if o.flag != flag)
    result = enterprise.classify_enterprise(replace(inputs.facts, overrides=(*kept, proposed)))
    if result.value_text(flag) != value:
        category = result.category
        if category in {"cic", "registered_society"}:
            why = f"a {category.replace('_', ' ')} is a social enterprise by its legal form"
            send = f'{{"flag": "category", "value": "other_vcse", "reason": "{_EXAMPLE_REASON}"}}'
        else:
            why = "social enterprises are VCSEs, so one that is not a VCSE is not a social enterprise"
            send = f'{{"flag": "vcse", "value": "unknown", "reason": "{_EXAMPLE_REASON}"}}'
            if result.vcse is None:
                why = "social enterprises are VCSEs, and this supplier's VCSE status is unknown"
                send = f'{{"flag": "vcse", "value": "true", "reason": "{_EXAMPLE_REASON}"}}'
        raise DomainError(
            f"{flag} cannot be {value} while the supplier's category is {category} (vcse {result.value_text('vcse')}):"
            f" {why}. To change it, first send an override of the category or vcse, e.g. {send}."
        )
    overruled = result.overruled_overrides()
    # A person's category says more than a flag: refuse a flag that would overturn it and say which category to send.
    # An older flag override the new one re-decides gives way (superseded, audited).
    for o in others:
        if o.id in overruled and o.flag == "category" and result.category != o.value:
            raise DomainError(
                f"Override #{o.id} by {o.created_by} sets the category to {o.value}, which {flag}={value} contradicts."
                f" Send the category instead, e.g. "
                f'{{"flag": "category", "value": "{result.category}", "reason": "{_EXAMPLE_REASON}"}}.'
            )
    return [o for o in others if o.id in overruled and o.flag != "category"]


async def revoke_override(
    session: AsyncSession, override_id: int, actor: Principal, reason: str
) -> m.ClassificationOverride:
    override = await get_or_not_found(session, m.ClassificationOverride, override_id, "override")
    if override.revoked_at is not None:
        raise ConflictError(f"Override {override_id} is already revoked.")
    override.revoked_at, override.revoked_by, override.revoke_reason = clock.now(), actor.name, reason.strip()
    await record_audit(
        session,
        actor=actor,
        action="supplier.override_revoke",
        entity_type="supplier",
        entity_id=override.supplier_id,
        changes={override.flag: (override.value, None), "override_id": (override.id, None)},
        reason=reason.strip(),
    )
    await session.flush()
    await refresh_tiers(session, suppliers=[override.supplier_id])
    return override


def check_attestation_kind(kind: str) -> None:
    if kind not in enterprise.ATTESTATION_KINDS:
        raise DomainError(f"kind must be one of {', '.join(sorted(enterprise.ATTESTATION_KINDS))}.")


async def add_attestation(
    session: AsyncSession, supplier_id: int, actor: Principal, *, kind: str, reference: str, reason: str
) -> m.SupplierAttestation:
    supplier = await get_supplier(session, supplier_id)
    check_attestation_kind(kind)
    target = supplier.merged_into_id or supplier.id
    attestation = m.SupplierAttestation(
        supplier_id=target, kind=kind, reference=reference.strip(), attested_by=actor.name, attested_at=clock.now()
    )
    await _check_not_overridden(session, target, kind)
    session.add(attestation)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action="supplier.attest",
        entity_type="supplier",
        entity_id=target,
        changes={"attestation": (None, f"{kind}: {attestation.reference}"), "attestation_id": (None, attestation.id)},
        reason=reason.strip(),
    )
    await refresh_tiers(session, suppliers=[target])
    return attestation


async def _check_not_overridden(session: AsyncSession, supplier_id: int, kind: str) -> None:
    """An attestation a person's override would hide is refused: say which override decides the flag."""
    flag, value = enterprise.ATTESTATION_CLAIMS[kind]
    inputs = (await _gather_inputs(session, [supplier_id]))[0]
    attestation = enterprise.Attestation(kind, "proposed", "proposed", clock.now())
    facts = replace(inputs.facts, attestations=(*inputs.facts.attestations, attestation))
    result = enterprise.classify_enterprise(facts)
    decided = result.value_text(flag)
    winner = result.evidence_for(flag)[0]
    agrees = decided == value or (flag == "category" and value in enterprise.BROADER.get(decided, ()))
    if not agrees and winner.override_id is not None:
        raise DomainError(
            f"Override #{winner.override_id} decides {flag} = {decided} for this supplier, so a {kind} attestation"
            f" would not change it. Revoke the override first (POST /overrides/{winner.override_id}/revoke with a"
            " reason), or send a new override."
        )


async def revoke_attestation(
    session: AsyncSession, attestation_id: int, actor: Principal, reason: str
) -> m.SupplierAttestation:
    attestation = await get_or_not_found(session, m.SupplierAttestation, attestation_id, "attestation")
    if attestation.revoked_at is not None:
        raise ConflictError(f"Attestation {attestation_id} is already revoked.")
    attestation.revoked_at, attestation.revoked_by = clock.now(), actor.name
    await record_audit(
        session,
        actor=actor,
        action="supplier.attest_revoke",
        entity_type="supplier",
        entity_id=attestation.supplier_id,
        changes={"attestation": (f"{attestation.kind}: {attestation.reference}", None)},
        reason=reason.strip(),
    )
    await session.flush()
    await refresh_tiers(session, suppliers=[attestation.supplier_id])
    return attestation


async def merge_suppliers(
    session: AsyncSession, source_id: int, target_id: int, actor: Principal, reason: str
) -> m.SupplierMerge:
    """Merge a duplicate into a target: it points at the target and its identifiers move there."""
    if source_id == target_id:
        raise DomainError("A supplier cannot be merged into itself.")
    source = await get_supplier(session, source_id)
    target = await get_supplier(session, target_id)
    if source.merged_into_id is not None:
        raise ConflictError(f"Supplier {source_id} is already merged into {source.merged_into_id}.")
    if target.merged_into_id is not None:
        raise DomainError(f"Supplier {target_id} is itself merged into {target.merged_into_id}; merge into that one.")
    si = m.SupplierIdentifier
    ident_ids = list((await session.scalars(select(si.id).where(si.supplier_id == source_id))).all())
    children = list((await session.scalars(select(m.Supplier.id).where(m.Supplier.merged_into_id == source_id))).all())
    if ident_ids:
        await session.execute(update(si).where(si.id.in_(ident_ids)).values(supplier_id=target_id))
    if children:
        await session.execute(update(m.Supplier).where(m.Supplier.id.in_(children)).values(merged_into_id=target_id))
    source.merged_into_id = target_id
    merge = m.SupplierMerge(
        kind="merge",
        source_supplier_id=source_id,
        target_supplier_id=target_id,
        moved={"identifiers": ident_ids, "merged_suppliers": children},
        reason=reason.strip(),
        created_by=actor.name,
        created_at=clock.now(),
    )
    session.add(merge)
    await session.flush()
    for entity, change in ((source_id, (None, target_id)), (target_id, (None, source_id))):
        await record_audit(
            session,
            actor=actor,
            action="supplier.merge",
            entity_type="supplier",
            entity_id=entity,
            changes={"merged_into_id" if entity == source_id else "absorbed": change, "merge_id": (None, merge.id)},
            reason=merge.reason,
        )
    session.expire(source, ["identifiers"])
    session.expire(target, ["identifiers"])
    await refresh_tiers(session, suppliers=[target_id])
    return merge


async def split_supplier(
    session: AsyncSession,
    supplier_id: int,
    actor: Principal,
    *,
    name: str,
    reason: str,
    match_ids: Sequence[int],
    contract_supplier_ids: Sequence[int],
) -> m.SupplierMerge:
    """Move feed parties and contract links that are really another organisation to a new supplier."""
    supplier = await get_supplier(session, supplier_id)
    if supplier.merged_into_id is not None:
        raise DomainError(f"Supplier {supplier_id} is merged into {supplier.merged_into_id}; undo that first.")
    if not match_ids and not contract_supplier_ids:
        raise DomainError("Say which feed parties (party_match_ids) or contract links (contract_supplier_ids) move.")
    matches = (await session.scalars(select(m.SupplierMatch).where(m.SupplierMatch.id.in_(list(match_ids))))).all()
    links = (
        await session.scalars(select(m.ContractSupplier).where(m.ContractSupplier.id.in_(list(contract_supplier_ids))))
    ).all()
    wrong = [f"party match {x.id}" for x in matches if x.supplier_id != supplier_id] + [
        f"contract link {x.id}" for x in links if x.supplier_id != supplier_id
    ]
    missing = [f"party match {i}" for i in sorted(set(match_ids) - {x.id for x in matches})] + [
        f"contract link {i}" for i in sorted(set(contract_supplier_ids) - {x.id for x in links})
    ]
    if wrong or missing:
        raise DomainError(f"Not links of supplier {supplier_id}: {', '.join(missing + wrong)}.")
    first = matches[0] if matches else None
    new = m.Supplier(
        name=name.strip(),
        name_key=normalise_org_name(name),
        street_address=first.street_address if first else None,
        postcode=first.postcode if first else None,
        postcode_source="split" if first and first.postcode else None,
    )
    session.add(new)
    await session.flush()
    if matches:
        await session.execute(
            update(m.SupplierMatch).where(m.SupplierMatch.id.in_([x.id for x in matches])).values(supplier_id=new.id)
        )
    if links:
        await session.execute(
            update(m.ContractSupplier)
            .where(m.ContractSupplier.id.in_([x.id for x in links]))
            .values(supplier_id=new.id)
        )
    split = m.SupplierMerge(
        kind="split",
        source_supplier_id=supplier_id,
        target_supplier_id=new.id,
        moved={"matches": sorted(x.id for x in matches), "contract_suppliers": sorted(x.id for x in links)},
        reason=reason.strip(),
        created_by=actor.name,
        created_at=clock.now(),
    )
    session.add(split)
    await session.flush()
    for entity in (supplier_id, new.id):
        await record_audit(
            session,
            actor=actor,
            action="supplier.split",
            entity_type="supplier",
            entity_id=entity,
            changes={"split_from": (None, supplier_id), "split_to": (None, new.id), "moved": (None, split.moved)},
            reason=split.reason,
        )
    new_id = new.id
    session.expire_all()
    await refresh_tiers(session, suppliers=[supplier_id, new_id])
    await session.refresh(split)
    return split


async def undo_merge(session: AsyncSession, merge_id: int, actor: Principal, reason: str) -> m.SupplierMerge:
    merge = await get_or_not_found(session, m.SupplierMerge, merge_id, "merge or split")
    if merge.undone_at is not None:
        raise ConflictError(f"{merge.kind.capitalize()} {merge_id} is already undone.")
    source_id, target_id = merge.source_supplier_id, merge.target_supplier_id
    moved = merge.moved or {}
    if merge.kind == "merge":
        source = await get_supplier(session, source_id)
        if source.merged_into_id != target_id:
            raise ConflictError(f"Supplier {source_id} is no longer merged into {target_id}.")
        si = m.SupplierIdentifier
        ids = [int(i) for i in moved.get("identifiers", [])]
        if ids:
            await session.execute(
                update(si).where(si.id.in_(ids), si.supplier_id == target_id).values(supplier_id=source_id)
            )
        children = [int(i) for i in moved.get("merged_suppliers", [])]
        if children:
            await session.execute(
                update(m.Supplier)
                .where(m.Supplier.id.in_(children), m.Supplier.merged_into_id == target_id)
                .values(merged_into_id=source_id)
            )
        source.merged_into_id = None
    else:
        matches = [int(i) for i in moved.get("matches", [])]
        links = [int(i) for i in moved.get("contract_suppliers", [])]
        if links:
            contract_ids = (
                await session.scalars(select(m.ContractSupplier.contract_id).where(m.ContractSupplier.id.in_(links)))
            ).all()
            clash = (
                await session.scalars(
                    select(m.ContractSupplier.contract_id).where(
                        m.ContractSupplier.contract_id.in_(list(contract_ids)),
                        m.ContractSupplier.supplier_id == source_id,
                    )
                )
            ).all()
            if clash:
                raise ConflictError(
                    f"Supplier {source_id} is already linked to contract {', '.join(map(str, sorted(clash)))}."
                )
            await session.execute(
                update(m.ContractSupplier)
                .where(m.ContractSupplier.id.in_(links), m.ContractSupplier.supplier_id == target_id)
                .values(supplier_id=source_id)
            )
        if matches:
            await session.execute(
                update(m.SupplierMatch)
                .where(m.SupplierMatch.id.in_(matches), m.SupplierMatch.supplier_id == target_id)
                .values(supplier_id=source_id)
            )
        # The split-off supplier is kept (audit refers to it) as a duplicate of the original.
        await session.execute(update(m.Supplier).where(m.Supplier.id == target_id).values(merged_into_id=source_id))
    merge.undone_at, merge.undone_by = clock.now(), actor.name
    for entity in (source_id, target_id):
        await record_audit(
            session,
            actor=actor,
            action=f"supplier.{merge.kind}_undo",
            entity_type="supplier",
            entity_id=entity,
            changes={"merge_id": (merge.id, None)},
            reason=reason.strip(),
        )
    await session.flush()
    session.expire_all()
    await refresh_tiers(session, suppliers=[source_id, target_id])
    await session.refresh(merge)
    return merge
