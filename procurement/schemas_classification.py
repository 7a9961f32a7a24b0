"""msgspec structs for supplier classification, overrides, attestations, merges and anchors' local areas."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec

from procurement.schemas import Id

OverrideReason = Annotated[str, msgspec.Meta(min_length=10, max_length=2000)]
Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=2000)]
FlagName = Annotated[str, msgspec.Meta(min_length=2, max_length=32)]
FlagValue = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Reference = Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
LadCode = Annotated[str, msgspec.Meta(min_length=9, max_length=9, pattern=r"^[A-Za-z][0-9]{8}$")]
SupplierName = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class OverrideIn(msgspec.Struct, forbid_unknown_fields=True):
    flag: FlagName
    value: FlagValue
    reason: OverrideReason

    def __post_init__(self) -> None:
        if len(self.reason.strip()) < 10:
            raise ValueError("reason must say why, in at least 10 characters")


class RevokeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class AttestationIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: FlagName
    reference: Reference


class MergeIn(msgspec.Struct, forbid_unknown_fields=True):
    source_id: Id
    target_id: Id
    reason: Reason


class SplitIn(msgspec.Struct, forbid_unknown_fields=True):
    name: SupplierName
    reason: Reason
    party_match_ids: list[Id] = msgspec.field(default_factory=list)
    contract_supplier_ids: list[Id] = msgspec.field(default_factory=list)


class UndoIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason | None = None


class LocalAreaIn(msgspec.Struct, forbid_unknown_fields=True):
    preset: str | None = None
    lad_codes: Annotated[list[LadCode], msgspec.Meta(min_length=1, max_length=400)] | None = None
    label: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class Lad(msgspec.Struct):
    code: str
    name: str | None


class LocalAreaOut(msgspec.Struct):
    organisation_id: int
    organisation_name: str
    preset: str | None
    is_default: bool
    label: str
    region_code: str
    lad_codes: list[str]
    lads: list[Lad]


class Why(msgspec.Struct, omit_defaults=True):
    """One reason for one flag: how it was decided, from what, how sure, under which rule, when."""

    flag: str
    value: str
    method: str
    source: str
    evidence: str
    confidence: float | None
    rule_id: str
    rule_version: str
    at: str
    overruled: bool = False
    override_id: int | None = None
    by: str | None = None


class PlaceOut(msgspec.Struct):
    postcode_used: str | None
    postcode_basis: str | None
    method: str
    confidence: float | None
    lad_code: str | None
    lad_name: str | None
    region_code: str | None
    region_name: str | None
    country_code: str | None
    country_hint: str | None


class TierOut(msgspec.Struct):
    anchor_id: int
    anchor_name: str
    area: str
    tier: str
    confidence: float | None
    method: str
    reason: str


class OverrideOut(msgspec.Struct):
    id: int
    supplier_id: int
    flag: str
    value: str
    reason: str
    created_by: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None


class AttestationOut(msgspec.Struct):
    id: int
    supplier_id: int
    kind: str
    reference: str
    attested_by: str
    attested_at: dt.datetime
    revoked_at: dt.datetime | None = None


class Classification(msgspec.Struct):
    supplier_id: int
    effective_supplier_id: int
    name: str
    merged_into_id: int | None
    place: PlaceOut
    category: str
    sme: bool | None
    vcse: bool | None
    social_enterprise: bool | None
    why: list[Why]
    overrides: list[OverrideOut]
    attestations: list[AttestationOut]
    tiers: list[TierOut]
    tier: TierOut | None
    rule_versions: dict[str, Any]
    classified_at: dt.datetime
    data_version: str
    attribution: str


class MergeOut(msgspec.Struct):
    id: int
    kind: str
    source_supplier_id: int
    target_supplier_id: int
    moved: dict[str, Any]
    reason: str
    created_by: str
    created_at: dt.datetime
    undone_at: dt.datetime | None = None
    undone_by: str | None = None


class Attribution(msgspec.Struct):
    attribution: str
    data_version: str
    licence: str
    licence_url: str
