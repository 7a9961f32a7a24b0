"""Suppliers' tiers (local, regional, rest of UK, outside UK, unknown) for each anchor's local area."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import polars as pl
from sqlalchemy import delete, func, insert, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession

from procurement import figures
from procurement import models as m
from procurement.bulk import among, bulk_insert_watched
from procurement.errors import NotFound
from procurement.memo import Memo, content_digest
from procurement.organisations.local_area import anchor_area
from procurement.suppliers.classification import classify_rows, rule_versions
from socialvalue import geography, locality

_CHUNK = 5000  # ids per IN list, well under either database's parameter limit
_TIERS_LOCK = 0x7469657273  # PostgreSQL advisory lock key of the stored tiers' writers ("tiers")

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
        await classify_rows(session, supplier_ids)
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


# The stored tiers: one row per (anchor, supplier as a line names it) that has lines, kept by ``refresh_tiers``.

TIER_SCHEMA: dict[str, Any] = {
    "anchor_id": pl.Int64,
    "supplier_id": pl.Int64,
    "effective_supplier_id": pl.Int64,
    "tier": pl.String,
    "tier_confidence": pl.Float64,
    "tier_method": pl.String,
    "tier_reason": pl.String,
    "category": pl.String,
    "sme": pl.Boolean,
    "vcse": pl.Boolean,
    "social_enterprise": pl.Boolean,
}
TIER_COLUMNS = tuple(TIER_SCHEMA)


def tiers_rules() -> str:
    """What the stored tiers depend on besides the data: the rule and geography versions."""
    return hashlib.sha256(msgspec.json.encode(sorted(rule_versions().items()))).hexdigest()


def _ids(values: Iterable[int] | None) -> list[int] | None:
    return None if values is None else sorted({int(v) for v in values})


async def _with_duplicates(session: AsyncSession, supplier_ids: list[int]) -> list[int]:
    """The suppliers and every supplier merged into one of them (lines may name a duplicate)."""
    s = m.Supplier
    dialect = session.get_bind().dialect.name
    found: set[int] = set(supplier_ids)
    for start in range(0, len(supplier_ids), _CHUNK):
        part = supplier_ids[start : start + _CHUNK]
        found.update((await session.scalars(select(s.id).where(among(dialect, s.merged_into_id, part)))).all())
    return sorted(found)


def _pair_query(anchors: Sequence[int] | None, suppliers: Sequence[int] | None) -> Any:
    """(anchor_id, supplier_id) of the contract lines and matched payment lines, as one UNION."""
    c, cs, p = m.Contract, m.ContractSupplier, m.PaymentLine
    contract = (
        select(c.buyer_id.label("anchor_id"), cs.supplier_id.label("supplier_id"))
        .join(c, c.id == cs.contract_id)
        .where(c.status != m.ContractStatus.PENDING.value)
    )
    paid = select(p.anchor_id.label("anchor_id"), p.supplier_id.label("supplier_id")).where(p.supplier_id.is_not(None))
    if anchors is not None:
        contract = contract.where(c.buyer_id.in_(list(anchors)))
        paid = paid.where(p.anchor_id.in_(list(anchors)))
    if suppliers is not None:
        contract = contract.where(cs.supplier_id.in_(list(suppliers)))
        paid = paid.where(p.supplier_id.in_(list(suppliers)))
    return union(contract, paid)


def _pair_frame(rows: Sequence[Any]) -> pl.DataFrame:
    return pl.DataFrame(
        {"anchor_id": [int(r[0]) for r in rows], "supplier_id": [int(r[1]) for r in rows]},
        schema={"anchor_id": pl.Int64, "supplier_id": pl.Int64},
    )


async def line_pairs(
    session: AsyncSession, anchors: Sequence[int] | None = None, suppliers: Sequence[int] | None = None
) -> pl.DataFrame:
    """(anchor_id, supplier_id) for every pair with a contract line or a matched payment line."""
    found: list[Any] = []
    for part in [None] if suppliers is None else [suppliers[i : i + _CHUNK] for i in range(0, len(suppliers), _CHUNK)]:
        found += (await session.execute(_pair_query(anchors, part))).all()
    return _pair_frame(found)


async def unstored_pairs(session: AsyncSession) -> pl.DataFrame:
    """``line_pairs`` without a stored tier row (read on the fly until ``store_missing_tiers`` stores them)."""
    pairs = _pair_query(None, None).subquery()
    t = m.AnchorSupplierTier
    stored = select(t.id).where(t.anchor_id == pairs.c.anchor_id, t.supplier_id == pairs.c.supplier_id)
    query = select(pairs.c.anchor_id, pairs.c.supplier_id).where(~stored.exists())
    return _pair_frame((await session.execute(query)).all())


async def compute_pair_tiers(session: AsyncSession, pairs: pl.DataFrame) -> pl.DataFrame:
    """``TIER_COLUMNS`` for these pairs from the stored classification and each anchor's area; writes nothing."""
    schema = TIER_SCHEMA
    pairs = pairs.unique(["anchor_id", "supplier_id"])
    if pairs.height == 0:
        return pl.DataFrame(schema=schema)
    ids = pairs["supplier_id"].unique().to_list()
    links_rows: list[tuple[int, int | None]] = []
    for start in range(0, len(ids), _CHUNK):
        part = ids[start : start + _CHUNK]
        links_rows += [
            (r[0], r[1])
            for r in (
                await session.execute(select(m.Supplier.id, m.Supplier.merged_into_id).where(m.Supplier.id.in_(part)))
            ).all()
        ]
    links = pl.DataFrame(
        {"supplier_id": [r[0] for r in links_rows], "effective_supplier_id": [r[1] or r[0] for r in links_rows]},
        schema={"supplier_id": pl.Int64, "effective_supplier_id": pl.Int64},
    )
    effective = links["effective_supplier_id"].unique().to_list()
    stored = pl.concat(
        [
            await _classification_frame(session, effective[start : start + _CHUNK])
            for start in range(0, max(len(effective), 1), _CHUNK)
        ]
    )
    pairs = pairs.join(links, on="supplier_id", how="left")
    # Anchors with the same area share one judgement of the union of their suppliers: tiers_for costs about
    # 8 ms of fixed polars work per call, and most buyers have the same default area.
    by_area: dict[locality.LocalArea, list[int]] = {}
    for org, area in await anchor_areas(session, pairs["anchor_id"].unique().sort().to_list()):
        by_area.setdefault(area, []).append(org.id)
    frames = []
    for area, ids in by_area.items():
        mine = pairs.filter(pl.col("anchor_id").is_in(ids))
        wanted = stored.filter(pl.col("supplier_id").is_in(mine["effective_supplier_id"].implode()))
        judged = (
            pl.concat([wanted.select("supplier_id"), _tiers(wanted, area)], how="horizontal")
            if wanted.height
            else pl.DataFrame(schema={"supplier_id": pl.Int64, "tier": pl.String})
        )
        base = wanted.select("supplier_id", "category", "sme", "vcse", "social_enterprise").join(
            judged, on="supplier_id", how="left"
        )
        frames.append(
            mine.join(
                base.rename({"supplier_id": "effective_supplier_id"}), on="effective_supplier_id", how="left"
            ).with_columns(effective_supplier_id=pl.coalesce("effective_supplier_id", "supplier_id"))
        )
    out = pl.concat(frames, how="diagonal_relaxed")
    for name, dtype in schema.items():
        if name not in out.columns:
            out = out.with_columns(pl.lit(None, dtype).alias(name))
    return out.select([pl.col(k).cast(v) for k, v in schema.items()])


async def bump_data_version(session: AsyncSession, *, tiers_rules: str | None = None) -> None:
    dv = m.DataVersion
    values: dict[str, object] = {"version": dv.version + 1}
    if tiers_rules is not None:
        values["tiers_rules"] = tiers_rules
    result = await session.execute(update(dv).where(dv.id == 1).values(**values))
    if not getattr(result, "rowcount", 1):
        await session.execute(insert(dv).values(id=1, version=1, epoch=uuid.uuid4().hex, tiers_rules=tiers_rules))
    session.info.pop(m.FIGURES_DIRTY, None)


async def _insert_tiers(session: AsyncSession, records: Sequence[dict[str, Any]]) -> None:
    await bulk_insert_watched(session, m.AnchorSupplierTier, records)


async def refresh_tiers(
    session: AsyncSession,
    *,
    anchors: Iterable[int] | None = None,
    suppliers: Iterable[int] | None = None,
    classify_first: bool = True,
) -> int:
    """Bring the stored tiers up to date for these anchors and/or suppliers (everything when neither is given),
    in the caller's transaction: reclassify the suppliers whose inputs changed, recompute every pair with lines
    that involves them (their merged duplicates too), and bump the data version. Returns the pairs written."""
    anchor_ids, supplier_ids = _ids(anchors), _ids(suppliers)
    if anchor_ids == [] or supplier_ids == []:
        return 0
    if classify_first:
        await classify_rows(session, supplier_ids)
    await _lock_tiers(session)
    if not await stored_tiers_usable(session):
        # Never built, or built with other rules or geography: every pair is rebuilt once, here.
        anchor_ids = supplier_ids = None
    if supplier_ids is not None:
        supplier_ids = await _with_duplicates(session, supplier_ids)
    pairs = await line_pairs(session, anchor_ids, supplier_ids)
    rows = await compute_pair_tiers(session, pairs)
    t = m.AnchorSupplierTier
    where = []
    if anchor_ids is not None:
        where.append(t.anchor_id.in_(anchor_ids))
    if supplier_ids is not None:
        where.append(t.supplier_id.in_(supplier_ids))
    if supplier_ids is None:
        await session.execute(delete(t).where(*where))
    for start in range(0, len(supplier_ids or []), _CHUNK):
        part = (supplier_ids or [])[start : start + _CHUNK]
        await session.execute(delete(t).where(*where[:-1], t.supplier_id.in_(part)))
    records = rows.to_dicts()
    await _insert_tiers(session, records)
    if anchor_ids is None and supplier_ids is None:
        await bump_data_version(session, tiers_rules=tiers_rules())
    else:
        # Bumped at commit (procurement.models.classification), so the version row is locked only then.
        session.info[m.FIGURES_DIRTY] = True
    return len(records)


async def _lock_tiers(session: AsyncSession) -> None:
    """Writers of stored tiers take turns until they commit (PostgreSQL; SQLite has one writer at a time anyway).

    Without it a tier computed from a classification read just before another transaction changed it and
    dropped its rows could be stored after that, and two writers could store the same new pair."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(_TIERS_LOCK)))


async def forget_tiers(session: AsyncSession, supplier_ids: Iterable[int]) -> None:
    """Drop the stored tiers of these suppliers (whose classification just changed) and of their duplicates, in
    the caller's transaction. Reads judge the pairs left without a row on the fly, so figures stay right
    until ``store_missing_tiers`` stores them again (imports do so once, at the end of a run)."""
    ids = _ids(supplier_ids)
    if not ids:
        return
    await _lock_tiers(session)
    ids = await _with_duplicates(session, ids)
    t = m.AnchorSupplierTier
    dialect = session.get_bind().dialect.name
    for start in range(0, len(ids), _CHUNK):
        await session.execute(delete(t).where(among(dialect, t.supplier_id, ids[start : start + _CHUNK])))
    session.info[m.FIGURES_DIRTY] = True


async def _drop_lineless(session: AsyncSession) -> None:
    """Drop stored tiers of pairs left without lines (an import replaced a contract's suppliers): never read, but
    the stored tiers stay exactly what a full rebuild gives."""
    t, c, cs, p = m.AnchorSupplierTier, m.Contract, m.ContractSupplier, m.PaymentLine
    contract = (
        select(cs.id)
        .join(c, c.id == cs.contract_id)
        .where(c.buyer_id == t.anchor_id, cs.supplier_id == t.supplier_id, c.status != m.ContractStatus.PENDING.value)
    )
    paid = select(p.id).where(p.anchor_id == t.anchor_id, p.supplier_id == t.supplier_id)
    # Found first, so that a run that changed nothing does not bump the data version.
    ids = list((await session.scalars(select(t.id).where(~contract.exists(), ~paid.exists()))).all())
    for start in range(0, len(ids), _CHUNK):
        await session.execute(delete(t).where(t.id.in_(ids[start : start + _CHUNK])))


async def store_missing_tiers(session: AsyncSession) -> int:
    """Store the tier of every pair that has lines but no stored row, in the caller's transaction: those an
    import left to be read on the fly (also a run that stopped part-way), or every pair when the stored tiers
    were built with other rules. Set-based steps; returns the pairs written."""
    await _lock_tiers(session)
    if not await stored_tiers_usable(session):
        return await refresh_tiers(session, classify_first=False)
    await _drop_lineless(session)
    rows = await compute_pair_tiers(session, await unstored_pairs(session))
    records = rows.to_dicts()
    await _insert_tiers(session, records)
    if records:
        session.info[m.FIGURES_DIRTY] = True
    return len(records)


async def stored_tiers_usable(session: AsyncSession) -> bool:
    """Whether the stored tiers were built with today's rules and geography (else read them from scratch)."""
    rules = await session.scalar(select(m.DataVersion.tiers_rules).where(m.DataVersion.id == 1))
    return rules == tiers_rules()


async def data_version(session: AsyncSession) -> tuple[str, int, bool] | None:
    """(epoch, version, stored tiers usable), or None when there is no version row (nothing may be cached)."""
    dv = m.DataVersion
    row = (await session.execute(select(dv.epoch, dv.version, dv.tiers_rules).where(dv.id == 1))).first()
    return None if row is None else (row[0], int(row[1]), row[2] == tiers_rules())


async def _anchors_changed(session: AsyncSession, anchor_ids: Sequence[int]) -> None:
    await refresh_tiers(session, anchors=anchor_ids, classify_first=False)


async def _suppliers_classified(session: AsyncSession, supplier_ids: Sequence[int]) -> None:
    if not await stored_tiers_usable(session):
        await refresh_tiers(session, classify_first=False)
    elif supplier_ids:
        await refresh_tiers(session, suppliers=supplier_ids, classify_first=False)


async def _suppliers_changed(session: AsyncSession, supplier_ids: Sequence[int]) -> None:
    await refresh_tiers(session, suppliers=supplier_ids)


figures.on_anchors_changed(_anchors_changed)
figures.on_suppliers_classified(_suppliers_classified)
figures.on_suppliers_changed(_suppliers_changed)
