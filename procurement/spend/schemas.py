"""API shapes of spend files and the payee review queue."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

from procurement.schemas import Id, Reason


class Candidate(msgspec.Struct):
    supplier_id: str
    name: str
    score: float


class PayeeReview(msgspec.Struct):
    id: int
    anchor_id: int
    payee_name: str
    status: str
    method: str
    score: float
    candidates: list[Candidate]
    lines: int
    paid_pence: int
    paid: str


class PayeeDecision(msgspec.Struct, forbid_unknown_fields=True):
    decision: Literal["confirm", "new", "reject"]
    reason: Reason
    supplier_id: Id | None = None


class PayeeMatch(msgspec.Struct):
    id: int
    anchor_id: int
    payee_name: str
    status: str
    supplier_id: int | None
    method: str
    decided_by: str | None
    decided_at: dt.datetime | None
    reason: str | None


class SpendFileOut(msgspec.Struct):
    id: int
    anchor_id: int
    run_id: int | None
    source_name: str
    sha256: str
    status: str
    replaced_by_id: int | None
    months: list[str]
    layout: str
    amount_basis: str
    currency: str
    line_count: int
    transaction_count: int
    total_pence: int
    redacted_lines: int
    redacted_pence: int
    payees_matched: int
    payees_review: int
    payees_new: int
    notes: int
    imported_at: dt.datetime
    imported_by: str
