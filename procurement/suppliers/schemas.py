"""API shapes of suppliers and of their classification: flags, evidence, overrides, attestations, merges."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec

from procurement.schemas import ID_ITEMS, Id, Identifier, IdentifierIn, LongName, normalise_uk_postcode

ReviewReason = Annotated[str, msgspec.Meta(min_length=3, max_length=2000)]


class SupplierCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: LongName
    street_address: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    locality: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    postcode: str | None = None
    country: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    identifiers: Annotated[list[IdentifierIn], msgspec.Meta(max_length=20)] = []
    # A well-formed postcode the ONS directory does not have is refused until the caller confirms it.
    confirm_postcode: bool = False

    def __post_init__(self) -> None:
        if self.postcode is not None:
            self.postcode = normalise_uk_postcode(self.postcode)


class SupplierUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A correction of shared supplier data; ``reason`` says why (it moves every buyer's figures)."""

    reason: ReviewReason
    name: LongName | msgspec.UnsetType = msgspec.UNSET
    street_address: Annotated[str, msgspec.Meta(max_length=1000)] | msgspec.UnsetType | None = msgspec.UNSET
    locality: Annotated[str, msgspec.Meta(max_length=200)] | msgspec.UnsetType | None = msgspec.UNSET
    postcode: str | msgspec.UnsetType | None = msgspec.UNSET
    country: Annotated[str, msgspec.Meta(max_length=100)] | msgspec.UnsetType | None = msgspec.UNSET
    identifiers: Annotated[list[IdentifierIn], msgspec.Meta(max_length=20)] | msgspec.UnsetType = msgspec.UNSET
    confirm_postcode: bool | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        if isinstance(self.postcode, str):
            self.postcode = normalise_uk_postcode(self.postcode)


class Supplier(msgspec.Struct):
    id: int
    name: str
    street_address: str | None
    locality: str | None
    postcode: str | None
    postcode_source: str | None
    # found | not_in_directory_best_fit | not_in_directory_no_fit | classified_by_rule; null without a postcode
    postcode_status: str | None
    postcode_note: str | None  # for a postcode the directory lacks: its best fit and confidence
    country: str | None
    declared_scale: str | None
    declared_vcse: bool | None
    identifiers: list[Identifier]


OverrideReason = Annotated[str, msgspec.Meta(min_length=10, max_length=2000)]


FlagName = Annotated[str, msgspec.Meta(min_length=2, max_length=32)]


FlagValue = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


Reference = Annotated[str, msgspec.Meta(min_length=3, max_length=500)]


SupplierName = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class OverrideIn(msgspec.Struct, forbid_unknown_fields=True):
    flag: FlagName
    value: FlagValue
    reason: OverrideReason
    confirm_postcode: bool = False  # for a delivery_postcode the ONS directory does not have

    def __post_init__(self) -> None:
        if len(self.reason.strip()) < 10:
            raise ValueError("reason must say why, in at least 10 characters")


class RevokeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: ReviewReason


class AttestationIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: FlagName
    reference: Reference
    reason: ReviewReason


class MergeIn(msgspec.Struct, forbid_unknown_fields=True):
    source_id: Id
    target_id: Id
    reason: ReviewReason


class SplitIn(msgspec.Struct, forbid_unknown_fields=True):
    name: SupplierName
    reason: ReviewReason
    party_match_ids: Annotated[list[Id], msgspec.Meta(extra_json_schema=ID_ITEMS)] = msgspec.field(default_factory=list)
    contract_supplier_ids: Annotated[list[Id], msgspec.Meta(extra_json_schema=ID_ITEMS)] = msgspec.field(
        default_factory=list
    )


class UndoIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: ReviewReason


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: ReviewReason


class ChangeRequestOut(msgspec.Struct):
    """A correction waiting for (or decided by) a reviewer who may act for every affected organisation."""

    id: int
    kind: str
    supplier_id: int
    payload: dict[str, Any]
    reason: str
    affected_organisation_ids: list[int]
    status: str
    requested_by: str
    requested_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    result: dict[str, Any] | None


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
    postcode_status: str | None
    postcode_note: str | None
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
    decision: str  # the one decision the category and flags come from, in words
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


# --- Supplier registers: candidates waiting for a reviewer, and reviewers' decisions ---------------------------


class RegisterCandidateOut(msgspec.Struct):
    register: str  # companies-house | charity-commission | oscr | mutuals
    number: str
    name: str
    postcode: str | None
    current: bool
    score: float
    via: str  # identifier | name | previous_name | fuzzy


class RegisterReviewOut(msgspec.Struct):
    supplier_id: int
    supplier_name: str
    value_at_stake: str  # pounds, active GBP contract value (for the anchor when one is given)
    value_at_stake_pence: int
    method: str | None
    reason: str
    candidates: list[RegisterCandidateOut]


class RegisterMatchIn(msgspec.Struct, forbid_unknown_fields=True):
    decision: Annotated[str, msgspec.Meta(pattern="^(confirm|reject)$", examples=["confirm"])]
    register: Annotated[str, msgspec.Meta(max_length=32, examples=["companies-house"])]
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=32, examples=["07687209"])]
    reason: Annotated[str, msgspec.Meta(max_length=2000)]


class RegisterDecisionOut(msgspec.Struct):
    id: int
    decision: str  # confirmed | rejected
    register: str
    number: str
    reason: str
    decided_by: str
    decided_at: dt.datetime
    superseded_at: dt.datetime | None


class RegisterMatchOut(msgspec.Struct):
    supplier_id: int
    status: str  # matched | confirmed | review | none
    method: str | None
    score: float | None
    register: str | None
    number: str | None
    version: str | None
    reason: str
    candidates: list[RegisterCandidateOut]
    decisions: list[RegisterDecisionOut]
