"""Publish, correct, withdraw and verify statements; the public listing and the figures as CSV."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from procurement import clock
from procurement import models as m
from procurement.audit import record_audit
from procurement.auth import Principal, ensure_can_review_for
from procurement.coalesce import Coalesced
from procurement.db import changes_of
from procurement.errors import ConflictError, DomainError, NotFound
from procurement.exports import SafeCsvWriter
from procurement.metrics.lines import Scope
from procurement.statements.snapshot import build_snapshot, sha256
from socialvalue.snapshot import SCHEMA, canonical_json, figures_sha256
from socialvalue.statement_pdf import render_statement_pdf


async def next_statement_number(session: AsyncSession) -> int:
    return int((await session.scalar(select(func.max(m.Statement.id)))) or 0) + 1


async def preview_pdf(
    session: AsyncSession, scope: Scope, period: str, *, basis: str = "awarded", influenceable: bool = False
) -> tuple[bytes, dict[str, Any]]:
    snapshot = await build_snapshot(
        session, scope, period, statement_id="draft", status="draft", basis=basis, influenceable=influenceable
    )
    return render_statement_pdf(snapshot), snapshot


async def publish(
    session: AsyncSession,
    scope: Scope,
    period: str,
    *,
    actor: Principal | None,
    actor_name: str | None = None,
    reason: str | None = None,
    today: dt.date | None = None,
    basis: str = "awarded",
    influenceable: bool = False,
) -> m.Statement:
    """Freeze a quarter's figures and PDF. Only a quarter that is over (``today`` defaults to today in the UK)
    can be published, and a correction must change some figure."""
    not_over = clock.quarter_not_over(period, today)
    if not_over is not None:
        raise DomainError(f"{not_over}, so it cannot be published yet; preview a draft instead.")
    if actor is not None:
        ensure_can_review_for(actor, scope.anchor_ids)
    current = (
        await session.scalars(
            select(m.Statement)
            .where(m.Statement.scope_key == scope.key, m.Statement.period == period)
            .order_by(m.Statement.version.desc())
        )
    ).first()
    if current is not None and current.status == m.StatementStatus.PUBLISHED and not (reason and reason.strip()):
        raise DomainError(
            f"{scope.name} {period} is already published (version {current.version}); a correction needs a reason."
        )
    version = (current.version + 1) if current is not None else 1
    published_at = clock.now().replace(microsecond=0)
    number = await next_statement_number(session)
    supersedes: dict[str, Any] | None = None
    correction = (reason or "").strip()
    if current is not None and current.status == m.StatementStatus.PUBLISHED:
        supersedes = {"id": str(current.id), "version": current.version, "reason": correction}
    snapshot = await build_snapshot(
        session,
        scope,
        period,
        statement_id=str(number),
        status=m.StatementStatus.PUBLISHED,
        version=version,
        published_at=published_at,
        supersedes=supersedes,
        basis=basis,
        influenceable=influenceable,
    )
    if supersedes and current is not None:
        differences = compare_figures(json.loads(current.snapshot_json), snapshot)
        if not differences:
            raise ConflictError(
                f"Nothing changed since version {current.version}: its figures are the same as today's, so there "
                "is nothing to correct."
            )
    snapshot_bytes = canonical_json(snapshot)
    pdf = render_statement_pdf(snapshot)
    who = actor.name if actor else (actor_name or "system")
    statement = m.Statement(
        id=number,
        scope_key=scope.key,
        scope_kind=scope.kind,
        organisation_id=scope.organisation_id,
        group_id=scope.group_id,
        scope_name=scope.name,
        period=period,
        version=version,
        status=m.StatementStatus.PUBLISHED,
        snapshot_json=snapshot_bytes.decode("utf-8"),
        snapshot_sha256=sha256(snapshot_bytes),
        figures_sha256=snapshot["figures_sha256"],
        pdf=pdf,
        pdf_sha256=sha256(pdf),
        published_at=published_at,
        published_by=who,
        supersedes_id=current.id if supersedes and current else None,
        correction_reason=correction if supersedes else None,
    )
    session.add(statement)
    await session.flush()
    if supersedes and current is not None:
        current.status = m.StatementStatus.SUPERSEDED
        current.superseded_by_id = statement.id
        current.superseded_reason = correction
    await record_audit(
        session,
        actor=actor,
        actor_name=who,
        action="statement.publish",
        entity_type="statement",
        entity_id=statement.id,
        organisation_id=scope.organisation_id,
        changes={"version": (None, version), "pdf_sha256": (None, statement.pdf_sha256)},
        reason=statement.correction_reason,
    )
    return statement


async def _organisations_of(session: AsyncSession, statement: m.Statement) -> list[int]:
    if statement.organisation_id is not None:
        return [statement.organisation_id]
    if statement.group_id is None:  # a statement for all anchors
        return list((await session.scalars(select(m.Organisation.id).where(m.Organisation.is_anchor.is_(True)))).all())
    gm = m.AnchorGroupMember
    return list((await session.scalars(select(gm.organisation_id).where(gm.group_id == statement.group_id))).all())


async def withdraw(session: AsyncSession, statement_id: int, *, actor: Principal, reason: str) -> m.Statement:
    statement = await session.get(m.Statement, statement_id)
    if statement is None:
        raise NotFound(f"No statement {statement_id}.")
    ensure_can_review_for(actor, await _organisations_of(session, statement))
    if statement.status == m.StatementStatus.WITHDRAWN:
        raise DomainError("The statement is already withdrawn.")
    old = statement.status
    statement.status = m.StatementStatus.WITHDRAWN
    statement.withdrawn_at = clock.now()
    statement.withdrawn_by = actor.name
    statement.withdrawn_reason = reason.strip()
    await record_audit(
        session,
        actor=actor,
        action="statement.withdraw",
        entity_type="statement",
        entity_id=statement.id,
        organisation_id=statement.organisation_id,
        changes={"status": (old, m.StatementStatus.WITHDRAWN)},
        reason=reason.strip(),
    )
    return statement


@dataclass(frozen=True)
class Verification:
    statement_id: int
    ok: bool
    problems: tuple[str, ...]


def verify_statement(statement: m.Statement) -> Verification:
    problems = []
    snapshot_bytes = statement.snapshot_json.encode("utf-8")
    if sha256(snapshot_bytes) != statement.snapshot_sha256:
        problems.append("snapshot JSON does not match its stored SHA-256")
    try:
        snapshot = json.loads(snapshot_bytes)
    except ValueError:
        return Verification(statement.id, ok=False, problems=(*problems, "snapshot JSON does not parse"))
    if (
        figures_sha256(snapshot) != statement.figures_sha256
        or snapshot.get("figures_sha256") != statement.figures_sha256
    ):
        problems.append("figures do not match their stored SHA-256")
    if sha256(statement.pdf) != statement.pdf_sha256:
        problems.append("PDF bytes do not match their stored SHA-256")
    if snapshot.get("schema") != SCHEMA:
        # Rendered by an earlier version of the renderer, which is gone; its hashes above are what bind it.
        return Verification(statement.id, ok=not problems, problems=tuple(problems))
    try:
        if render_statement_pdf(snapshot) != statement.pdf:
            problems.append("re-rendering the snapshot does not give the stored PDF byte for byte")
    except ValueError as exc:
        problems.append(f"the snapshot cannot be rendered: {exc}")
    return Verification(statement.id, ok=not problems, problems=tuple(problems))


async def verify_all(session: AsyncSession) -> list[Verification]:
    statements = (await session.scalars(select(m.Statement).order_by(m.Statement.id))).all()
    return [verify_statement(s) for s in statements]


def _shown_share(key: str, value: Any) -> Any:
    """A share that could not be judged reads "not known" in a spreadsheet, where an empty cell reads as 0."""
    return "not known" if value is None and key.endswith(("share", "share_known")) else value


def figures_csv(snapshot: dict[str, Any]) -> str:  # noqa: PLR0912 - one flat walk over every section
    """The frozen figures as a flat CSV (section, item, measure, value) for spreadsheets."""
    import io

    out = io.StringIO()
    writer = SafeCsvWriter(out, lineterminator="\n")
    writer.writerow(["section", "item", "measure", "value"])
    info = snapshot["statement"]
    for key in ("id", "anchor_name", "anchor_code", "period", "period_label", "version", "status", "published_at"):
        writer.writerow(["statement", "", key, info.get(key)])
    for section in ("headline", "spread_headline"):
        head = snapshot.get(section)
        if not head:
            continue
        for key, value in head.items():
            if key in {"excluded", "coverage"}:
                for part, figure in value.items():
                    name = f"excluded_{part}" if key == "excluded" else f"coverage_{part}"
                    writer.writerow([section, head["basis"], name, figure])
            elif key == "supplier_names":
                writer.writerow([section, head["basis"], key, "; ".join(value)])
            elif key != "basis":
                writer.writerow([section, head["basis"], key, _shown_share(key, value)])
    for row in snapshot["trend"]:
        writer.writerow(["trend", row["period"], "local_share", _shown_share("local_share", row["local_share"])])
        writer.writerow(["trend", row["period"], "coverage", row.get("coverage")])
        writer.writerow(["trend", row["period"], "total_value_pence", row["total_value_pence"]])
    for row in snapshot["by_tier"]:
        writer.writerow(["by_tier", row["tier"], "value_pence", row["value_pence"]])
        writer.writerow(["by_tier", row["tier"], "share", _shown_share("share", row["share"])])
    for row in snapshot["by_supplier_type"]:
        writer.writerow(["by_supplier_type", row["category"], "value_pence", row["value_pence"]])
        writer.writerow(["by_supplier_type", row["category"], "share", _shown_share("share", row["share"])])
        writer.writerow(["by_supplier_type", row["category"], "suppliers", row["suppliers"]])
    for row in snapshot.get("top_suppliers", []):
        writer.writerow(["top_suppliers", row["name"], "value_pence", row["value_pence"]])
    for row in snapshot["top_local_suppliers"]:
        writer.writerow(["top_local_suppliers", row["name"], "value_pence", row["value_pence"]])
    for row in snapshot["commitments"]:
        item = f"{row['contract']} / {row['measure']}"
        for key in ("committed", "delivered", "verified"):
            writer.writerow(["commitments", item, f"{key} ({row['unit']})", row[key]])
    writer.writerow(["hash", "", "figures_sha256", snapshot["figures_sha256"]])
    return out.getvalue()


_S = m.Statement
# Every publication and correction adds a row, a correction marks the one it supersedes and a withdrawal stamps its
# row, so this moves whenever the listing would; the hashes and times tell apart a restored or re-seeded table.
_LISTING_VERSION = select(
    func.count(),
    func.max(_S.id),
    func.count(_S.superseded_by_id),
    func.count(_S.withdrawn_at),
    func.max(_S.published_at),
    func.max(_S.withdrawn_at),
    func.min(_S.snapshot_sha256),
    func.max(_S.snapshot_sha256),
)
# What the listing shows: no PDF, no snapshot.
_LISTING = select(
    _S.id,
    _S.scope_name,
    _S.scope_kind,
    _S.organisation_id,
    _S.group_id,
    _S.period,
    _S.version,
    _S.status,
    _S.published_at,
    _S.figures_sha256,
    _S.pdf_sha256,
    _S.snapshot_sha256,
    _S.correction_reason,
    _S.superseded_by_id,
    _S.superseded_reason,
    _S.withdrawn_reason,
).order_by(_S.scope_name, _S.period.desc(), _S.version.desc())


P = TypeVar("P")  # an encoded listing page

# Encoded listing pages kept per table version: a bound on memory, since anyone may ask for any anchor and period.
MAX_LISTING_PAGES = 256


@dataclass(frozen=True)
class _Listed:
    version: tuple[Any, ...]
    rows: tuple[Row[Any], ...]
    pages: dict[tuple[Any, ...], Any]


class PublishedListing:
    """The public listing's rows, and its encoded pages, reused while the statement table is unchanged.

    Each worker process keeps its own copy and checks it against one aggregate over the (small) table on every
    request, so a publication, correction or withdrawal made by any worker or the CLI shows at once: a withdrawn
    statement is never listed as current. The rows are read after the check, so they are never older than it.
    Concurrent requests share one check that started after each of them asked (``Coalesced``); on SQLite no
    check is made while the file's change counter has not moved since the last one started.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._listed = _Listed(version=(), rows=(), pages={})
        self._check = Coalesced(self._refresh, changes=changes_of(engine))

    async def _refresh(self) -> _Listed:
        async with self._engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")  # no BEGIN/ROLLBACK round trips
            version = tuple((await connection.execute(_LISTING_VERSION)).one())
            if version != self._listed.version:
                rows = tuple((await connection.execute(_LISTING)).all())
                self._listed = _Listed(version=version, rows=rows, pages={})
        return self._listed

    async def page(
        self,
        key: tuple[Any, ...],
        *,
        anchor_id: int | None,
        period: str | None,
        encode: Callable[[list[Row[Any]]], P],
    ) -> P:
        """The encoded page ``key`` of the rows matching ``anchor_id`` and ``period``, encoded once per version."""
        listed = await self._check.get()
        body: P | None = listed.pages.get(key)
        if body is None:
            body = encode(_matching(listed.rows, anchor_id, period))
            if len(listed.pages) >= MAX_LISTING_PAGES:
                listed.pages.clear()
            listed.pages[key] = body
        return body


def _matching(rows: Sequence[Row[Any]], anchor_id: int | None, period: str | None) -> list[Row[Any]]:
    return [
        r
        for r in rows
        if (anchor_id is None or r.organisation_id == anchor_id) and (period is None or r.period == period)
    ]


def scopes_of(statements: Sequence[m.Statement]) -> list[str]:
    return sorted({s.scope_name for s in statements})


# Parts of a snapshot that describe the document rather than the figures.
_NOT_FIGURES = frozenset({"schema", "statement", "figures_sha256", "sources"})


_ROW_KEYS = ("tier", "category", "period")


def _flatten(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if path or key not in _NOT_FIGURES:
                yield from _flatten(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for i, item in enumerate(value):
            name = next((str(item[k]) for k in _ROW_KEYS if k in item), str(i + 1))
            yield from _flatten(item, f"{path}[{name}]")
    else:
        yield path, value


@dataclass(frozen=True)
class Difference:
    figure: str
    published: Any
    live: Any


def compare_figures(frozen: Mapping[str, Any], live: Mapping[str, Any]) -> list[Difference]:
    """Every figure whose frozen value differs from the live one, side by side.

    A snapshot of an older schema is compared on the figures it recorded, so a figure added since is not
    mistaken for a change."""
    old = dict(_flatten(frozen, ""))
    new = dict(_flatten(live, ""))
    paths = list(old) if frozen.get("schema") != SCHEMA else [*old, *(p for p in new if p not in old)]
    return [Difference(p, old.get(p), new.get(p)) for p in paths if old.get(p) != new.get(p)]


@dataclass(frozen=True)
class Staleness:
    statement_id: int
    scope_name: str
    period: str
    version: int
    status: str
    stale: bool
    differences: tuple[Difference, ...]


async def statement_scope(session: AsyncSession, statement: m.Statement) -> Scope:
    from procurement.metrics.lines import resolve_scope

    if statement.group_id is not None:
        group = await session.get(m.AnchorGroup, statement.group_id)
        return await resolve_scope(session, group=group.slug if group else None)
    return await resolve_scope(session, anchor_id=statement.organisation_id)


def snapshot_basis(snapshot: Mapping[str, Any]) -> tuple[str, bool]:
    """The basis a snapshot was built on, so live figures are compared like with like (a paid statement with
    today's payments, never with contract awards)."""
    bases = snapshot.get("methodology", {}).get("bases") or ["awarded"]
    if bases == ["paid"]:
        return "paid", bool((snapshot.get("paid") or {}).get("influenceable_only"))
    return "awarded", False


async def staleness(session: AsyncSession, statement: m.Statement) -> Staleness:
    """Whether the live figures of a statement's quarter still match what was frozen when it was published."""
    scope = await statement_scope(session, statement)
    frozen = json.loads(statement.snapshot_json)
    basis, influenceable = snapshot_basis(frozen)
    live = await build_snapshot(
        session, scope, statement.period, statement_id="live", status="draft", basis=basis, influenceable=influenceable
    )
    differences = compare_figures(frozen, live)
    return Staleness(
        statement_id=statement.id,
        scope_name=statement.scope_name,
        period=statement.period,
        version=statement.version,
        status=statement.status,
        stale=bool(differences),
        differences=tuple(differences),
    )
