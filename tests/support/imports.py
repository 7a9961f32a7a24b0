"""Helpers for import tests: a comparable snapshot of everything an import derives, and fast retry policies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from importers.http import RetryPolicy
from procurement import models as m
from tests.support.paths import FEEDS_DIR

CF_FILES = (
    FEEDS_DIR / "contracts-finder" / "releases-2025-01-23_2025-03-11.json",
    FEEDS_DIR / "contracts-finder" / "ocds-search-page-2022-10-20.json",
)
# Waits of a few milliseconds instead of minutes; a 0.5 s timeout so a "slow" fault of 1.5 s times out.
FAST = RetryPolicy(
    throttle_wait_s=0.01, rate_limit_wait_s=0.01, max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=0.5
)
FAST_CLI = ["--throttle-wait", "0.01", "--backoff", "0.01", "--timeout", "2", "--max-retries", "3"]


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    """Everything an import derives, without surrogate ids or timestamps, so two runs can be compared."""
    async with engine.connect() as conn:
        orgs = {r.id: r for r in await conn.execute(select(m.Organisation))}
        org_idents: dict[int, list[str]] = {}
        for r in await conn.execute(select(m.OrganisationIdentifier)):
            org_idents.setdefault(r.organisation_id, []).append(f"{r.scheme}:{r.value}")
        suppliers = {r.id: r for r in await conn.execute(select(m.Supplier))}
        sup_idents: dict[int, list[str]] = {}
        for r in await conn.execute(select(m.SupplierIdentifier)):
            sup_idents.setdefault(r.supplier_id, []).append(f"{r.scheme}:{r.value}")
        cpv: dict[int, list[str]] = {}
        for r in await conn.execute(select(m.ContractCpv).order_by(m.ContractCpv.position)):
            cpv.setdefault(r.contract_id, []).append(r.code)
        shares: dict[int, list[tuple[Any, ...]]] = {}
        for r in await conn.execute(select(m.ContractSupplier).order_by(m.ContractSupplier.position)):
            shares.setdefault(r.contract_id, []).append(
                (suppliers[r.supplier_id].name, r.share_pence, r.share_basis, r.position)
            )
        contracts = sorted(
            (
                r.source,
                r.source_id,
                r.award_id,
                orgs[r.buyer_id].name,
                r.title,
                r.value_pence,
                r.currency,
                r.award_date,
                r.start_date,
                r.end_date,
                r.status,
                r.withdrawn_reason,
                tuple(cpv.get(r.id, [])),
                tuple(shares.get(r.id, [])),
            )
            for r in await conn.execute(select(m.Contract))
        )
        matches = sorted(
            (
                r.source,
                r.ocid,
                r.party_id,
                suppliers[r.supplier_id].name,
                r.method,
                r.evidence,
                r.party_name,
                r.declared_scale,
                r.declared_vcse,
                r.postcode,
            )
            for r in await conn.execute(select(m.SupplierMatch))
        )
        raw = sorted(
            (r.source, r.ocid, r.release_id, r.version, r.content_hash)
            for r in await conn.execute(
                select(
                    m.RawRelease.source,
                    m.RawRelease.ocid,
                    m.RawRelease.release_id,
                    m.RawRelease.version,
                    m.RawRelease.content_hash,
                )
            )
        )
        watermarks = sorted(
            tuple(r) for r in await conn.execute(select(m.FeedWatermark.source, m.FeedWatermark.watermark))
        )
    return {
        "contracts": contracts,
        "suppliers": sorted(
            (
                s.name,
                s.name_key,
                s.postcode,
                s.postcode_source,
                s.street_address,
                s.country,
                s.declared_scale,
                s.declared_vcse,
                s.declared_source,
                tuple(sorted(sup_idents.get(s.id, []))),
            )
            for s in suppliers.values()
        ),
        "organisations": sorted(
            (o.name, o.kind, o.is_anchor, o.name_key, tuple(sorted(org_idents.get(o.id, [])))) for o in orgs.values()
        ),
        "matches": matches,
        "raw": raw,
        "watermarks": watermarks,
    }


def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per table, the rows only in a and only in b (empty when equal)."""
    out = {}
    for key, rows in a.items():
        left, right = set(rows), set(b[key])
        if left != right or len(rows) != len(b[key]):
            out[key] = (sorted(left - right, key=repr)[:5], sorted(right - left, key=repr)[:5])
    return out
