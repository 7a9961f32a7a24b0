"""Suppliers' tiers (local, regional, rest of UK, outside UK, unknown) for each anchor's local area."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import models as m
from procurement.errors import NotFound
from procurement.memo import Memo, content_digest
from procurement.organisations.local_area import anchor_area
from procurement.suppliers.classification import classify
from socialvalue import geography, locality

_CLASSIFICATION_COLUMNS = (
    "supplier_id",
    "postcode_used",
    "place_method",
    "place_confidence",
    "lad_code",
    "region_code",
    "country_code",
    "country_hint",
    "category",
    "sme",
    "vcse",
    "social_enterprise",
)


_remembered: Memo[pl.DataFrame] = Memo(256)


def _tiers(frame: pl.DataFrame, area: locality.LocalArea) -> pl.DataFrame:
    """tiers_for over stored classification rows, remembered by their content and the area (each anchor of a
    scope costs about 8 ms of fixed polars work otherwise, on every page)."""
    return _remembered.get_or_compute((content_digest(frame), area), lambda: _compute_tiers(frame, area))


def _compute_tiers(frame: pl.DataFrame, area: locality.LocalArea) -> pl.DataFrame:
    """tiers_for over stored classification rows (supplier_id, place_method, postcode_used, ...)."""
    postcode = pl.col("postcode_used")
    outward = postcode.str.split(" ").list.first()
    method = pl.col("place_method")
    manual = method == "manual_lad"
    lads = geography.lad_reference().select("lad_code", "lad_name")
    places = frame.join(lads, on="lad_code", how="left", maintain_order="left").select(
        # A LAD set by hand is as certain as a unit postcode; its method is restored below.
        method=pl.when(manual).then(pl.lit("unit")).otherwise(method),
        postcode=postcode,
        lookup_key=pl.when(method == "sector")
        .then(pl.when(postcode.str.contains(r" [0-9][A-Z]{2}$")).then(postcode.str.head(-2)).otherwise(postcode))
        .when(method == "district")
        .then(outward)
        .when(method == "area")
        .then(outward.str.extract(r"^([A-Z]+)"))
        .otherwise(postcode),
        confidence=pl.col("place_confidence"),
        lad_code=pl.col("lad_code"),
        lad_name=pl.col("lad_name"),
        region_code=pl.col("region_code"),
        country_code=pl.col("country_code"),
    )
    tiers = locality.tiers_for(places, area, country_hints=frame["country_hint"].to_list())
    return tiers.with_columns(
        tier_method=pl.when(frame["place_method"] == "manual_lad").then(pl.lit("manual_lad")).otherwise("tier_method"),
        tier_reason=pl.when(frame["place_method"] == "manual_lad")
        .then(pl.col("tier_reason").str.strip_suffix(".") + pl.lit(" (LAD set by override)."))
        .otherwise("tier_reason"),
    )


async def _classification_frame(session: AsyncSession, supplier_ids: Sequence[int] | None = None) -> pl.DataFrame:
    sc = m.SupplierClassification
    query = select(*(getattr(sc, c) for c in _CLASSIFICATION_COLUMNS)).order_by(sc.supplier_id)
    if supplier_ids is not None:
        query = query.where(sc.supplier_id.in_(list(supplier_ids)))
    rows = (await session.execute(query)).all()
    schema = {
        "supplier_id": pl.Int64,
        "postcode_used": pl.String,
        "place_method": pl.String,
        "place_confidence": pl.Float64,
        "lad_code": pl.String,
        "region_code": pl.String,
        "country_code": pl.String,
        "country_hint": pl.String,
        "category": pl.String,
        "sme": pl.Boolean,
        "vcse": pl.Boolean,
        "social_enterprise": pl.Boolean,
    }
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


async def anchor_areas(
    session: AsyncSession, anchor_ids: Sequence[int]
) -> list[tuple[m.Organisation, locality.LocalArea]]:
    orgs = (await session.scalars(select(m.Organisation).where(m.Organisation.id.in_(list(anchor_ids))))).all()
    found = {o.id: o for o in orgs}
    missing = sorted(set(anchor_ids) - set(found))
    if missing:
        raise NotFound(f"No organisation with id {', '.join(map(str, missing))}.")
    return [(found[i], anchor_area(found[i])[0]) for i in dict.fromkeys(anchor_ids)]


async def supplier_tiers(
    session: AsyncSession, anchor_ids: Sequence[int], *, supplier_ids: Sequence[int] | None = None, refresh: bool = True
) -> pl.DataFrame:
    """One row per (anchor, supplier): tier against that anchor's area, plus the supplier's category flags.

    Every supplier id appears, duplicates merged into another included (with the target's answer and its id in
    ``effective_supplier_id``), so contract links that still name a duplicate join directly. With ``refresh``
    the classification is brought up to date first (incremental, so cheap when nothing changed).
    """
    if refresh:
        await classify(session, supplier_ids)
    supplier_query = select(m.Supplier.id, m.Supplier.merged_into_id)
    if supplier_ids is not None:
        supplier_query = supplier_query.where(m.Supplier.id.in_(list(supplier_ids)))
    pairs = (await session.execute(supplier_query)).all()
    links = pl.DataFrame(
        {"supplier_id": [p[0] for p in pairs], "effective_supplier_id": [p[1] or p[0] for p in pairs]},
        schema={"supplier_id": pl.Int64, "effective_supplier_id": pl.Int64},
    )
    stored = await _classification_frame(
        session, None if supplier_ids is None else links["effective_supplier_id"].unique().to_list()
    )
    frames = []
    for org, area in await anchor_areas(session, anchor_ids):
        tiers = (
            pl.concat([stored.select("supplier_id"), _tiers(stored, area)], how="horizontal") if stored.height else None
        )
        base = stored.select("supplier_id", "category", "sme", "vcse", "social_enterprise")
        joined = base if tiers is None else base.join(tiers, on="supplier_id", how="left")
        if tiers is None:
            joined = joined.with_columns(
                tier=pl.lit(None, pl.String),
                tier_confidence=pl.lit(None, pl.Float64),
                tier_method=pl.lit(None, pl.String),
                tier_reason=pl.lit(None, pl.String),
            )
        frame = links.join(
            joined.rename({"supplier_id": "effective_supplier_id"}), on="effective_supplier_id", how="left"
        ).with_columns(anchor_id=pl.lit(org.id, pl.Int64))
        frames.append(frame)
    columns = [
        "anchor_id",
        "supplier_id",
        "tier",
        "tier_confidence",
        "tier_method",
        "category",
        "sme",
        "vcse",
        "social_enterprise",
        "effective_supplier_id",
        "tier_reason",
    ]
    if not frames:
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.String)).cast(
            {"anchor_id": pl.Int64, "supplier_id": pl.Int64}
        )
    return pl.concat([f.select(columns) for f in frames]).sort("anchor_id", "supplier_id")


async def tiers_for_anchor(session: AsyncSession, anchor_id: int) -> dict[int, locality.TierResult]:
    frame = await supplier_tiers(session, [anchor_id])
    return {
        row["supplier_id"]: locality.TierResult(
            row["tier"], row["tier_confidence"], row["tier_method"], row["tier_reason"]
        )
        for row in frame.iter_rows(named=True)
        if row["tier"] is not None
    }


async def anchor_ids(session: AsyncSession) -> list[int]:
    return list(
        (
            await session.scalars(
                select(m.Organisation.id).where(m.Organisation.is_anchor.is_(True)).order_by(m.Organisation.id)
            )
        ).all()
    )
