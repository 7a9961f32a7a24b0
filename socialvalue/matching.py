"""Match suppliers to register entries: identifiers first, then name + postcode, then name alone.

Names are compared on ``socialvalue.identifiers.normalise_org_name`` keys (legal suffixes, "the", "&"/"and",
punctuation and trading-as parts removed). The register side is a polars frame in the schema written by
``importers.registers``; ``RegisterIndex`` is built once and answers whole batches with joins:

1. identifier - a supplier's GB-COH / GB-CHC / GB-SC / GB-MPR id equals an entry's number (the name must not
   contradict it: a wrong id typed into a feed is sent to review, not accepted);
2. exact name key - accepted when exactly one organisation holds the key, or when the postcode picks exactly
   one among several (a dissolved namesake, a charity of the same name elsewhere);
3. fuzzy - candidates come from token blocking (the supplier's two rarest tokens, ignoring tokens shared by
   more than ``MAX_BLOCK`` entries) and are scored by rapidfuzz ``token_sort_ratio``. A fuzzy match is accepted
   only when it scores at least ``AUTO_SCORE`` and is the one organisation at the supplier's postcode among those
   within ``AUTO_GAP`` of the best score; anything else with a candidate of at least ``REVIEW_SCORE`` waits for a
   reviewer.

Entries in different registers that are the same organisation (a charitable company in the Charity Commission
register carries its company number) count as one organisation, so they never make each other ambiguous; the
chosen entry's linked entries are returned with it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from socialvalue.identifiers import normalise_org_name

MATCHING_VERSION = "matching-2026.11.1"
AUTO_SCORE = 90.0  # fuzzy score needed for an automatic match (with the same postcode)
AUTO_GAP = 8.0  # ... and this lead over the best other organisation
REVIEW_SCORE = 80.0  # weaker candidates are not shown
IDENTIFIER_NAME_FLOOR = 50.0  # an id whose entry's names all score below this is suspect
MAX_BLOCK = 2000  # tokens held by more entries than this are too common to block on
MAX_CANDIDATES = 5

Status = Literal["matched", "review", "none"]
Method = Literal["identifier", "name+postcode", "name"]

# Identifier scheme -> register kind whose `number` it names.
SCHEME_REGISTER = {"GB-COH": "companies_house", "GB-CHC": "ccew", "GB-SC": "oscr", "GB-MPR": "fca_mutuals"}


@dataclass(frozen=True)
class SupplierQuery:
    name: str | None
    postcode: str | None = None  # any form; compared without spaces, upper case
    identifiers: tuple[tuple[str, str], ...] = ()  # (scheme, id) normalised by identifiers.normalise_identifier


@dataclass(frozen=True)
class Candidate:
    row: int  # row in RegisterIndex.entries
    register: str
    number: str
    name: str
    postcode: str | None
    current: bool
    score: float
    via: str  # "identifier" | "name" | "previous_name" | "fuzzy"


@dataclass(frozen=True)
class MatchResult:
    status: Status
    method: Method | None
    score: float
    entry: Candidate | None  # the chosen entry when matched; the best candidate when in review
    linked: tuple[Candidate, ...]  # the same organisation in other registers
    candidates: tuple[Candidate, ...]  # best first, one per organisation
    register: str | None
    version: str | None
    reason: str
    matching_version: str = MATCHING_VERSION


def _compact_postcode(value: str | None) -> str:
    return "".join((value or "").split()).upper()


INDEX_COLUMNS = ("register", "number", "name", "name_key", "previous_names", "postcode", "current", "company_number")
_TOKEN_SEED = 20261101
_CHUNK_ROWS = 500_000
_BUCKETS = 1 << 24  # rows tokenised at a time while building, so the exploded tokens never exist whole


def _tokens(keys: pl.DataFrame, by: str) -> pl.DataFrame:
    """(by, token) per word of two or more characters in the ``key`` column; tokens are 64-bit hashes."""
    return (
        keys.select(by, pl.col("key").str.split(" ").list.unique().alias("token"))
        .explode("token")
        .filter(pl.col("token").str.len_chars() >= 2)
        .select(by, pl.col("token").hash(seed=_TOKEN_SEED))
    )


def _isin(column: str, values: pl.Series) -> pl.Expr:
    return pl.col(column).is_in(values.implode())


class _Row(NamedTuple):
    """What the decisions need of one entry; gathered only for the rows a batch hits."""

    register: str
    number: str
    name: str
    postcode: str | None
    pc: str
    current: bool
    entity: int
    key: str


_EMPTY_SCHEMA: dict[str, pl.DataType] = {
    "register": pl.String(),
    "number": pl.String(),
    "name": pl.String(),
    "name_key": pl.String(),
    "previous_names": pl.List(pl.String()),
    "postcode": pl.String(),
    "current": pl.Boolean(),
    "company_number": pl.String(),
}


class RegisterIndex:
    """One or more loaded registers, indexed for batch matching. Build once, reuse for every batch.

    Memory stays near the size of the columns themselves: the entries are one polars frame (register and postcode
    as categoricals, the organisation as a row number), exact look-ups scan a column with a hash set of the
    batch's keys, and the blocking tokens are a (token, row) frame of the rare tokens only, built a slice of rows
    at a time. Nothing is held per row in Python objects; a batch gathers only the rows it hits.
    """

    def __init__(self, registers: Mapping[str, tuple[pl.DataFrame | pl.LazyFrame, str]]) -> None:
        """``registers`` maps kind -> (frame in importers.registers.REGISTER_SCHEMA, version).

        Pass ``pl.scan_parquet`` frames for a large register: each is then read column by column, in streaming
        passes, and never held whole.
        """
        self.versions = {kind: version for kind, (_, version) in registers.items()}
        frames = [frame.lazy().select(INDEX_COLUMNS) for frame, _ in registers.values()]
        if not frames:
            frames = [pl.LazyFrame(schema={c: _EMPTY_SCHEMA[c] for c in INDEX_COLUMNS})]
        source = pl.concat(frames, how="vertical_relaxed").with_row_index("row")
        self.entries = source.select(
            "row",
            pl.col("register").cast(pl.Categorical),
            "number",
            "name",
            "name_key",
            pl.col("postcode").cast(pl.Categorical),
            pl.col("current").fill_null(value=False),
        ).collect(engine="streaming")
        self.entries = self.entries.with_columns(self._entities(source))
        previous = (
            source.select("row", pl.col("previous_names").alias("previous"))
            .filter(pl.col("previous").list.len() > 0)
            .explode("previous")
            .filter(pl.col("previous").is_not_null() & (pl.col("previous") != ""))
            .collect(engine="streaming")
        )
        distinct = previous.get_column("previous").unique()
        keys = pl.DataFrame(
            {"previous": distinct, "key": [normalise_org_name(n) for n in distinct.to_list()]},
            schema={"previous": pl.String, "key": pl.String},
        )
        self.previous = previous.join(keys, on="previous").select("key", "row").filter(pl.col("key") != "").sort("row")
        del previous, keys, distinct
        shared = (
            self.entries.select("entity", "row")
            .filter(pl.col("entity").is_duplicated())
            .group_by("entity")
            .agg(pl.col("row"))
        )
        self._by_entity: dict[int, list[int]] = dict(shared.iter_rows())
        self.tokens = self._postings()

    def _entities(self, source: pl.LazyFrame) -> pl.Series:
        """Each entry's organisation: the smallest row among the entries that are the same organisation.

        Entries in the charity and mutuals registers name themselves (register:number) or, when they carry one,
        their company number; a Companies House entry is its company number. Only the (few) non-company entries
        and the companies they name are grouped, so the 5M company numbers are never hashed.
        """
        identity = (
            pl.when(pl.col("company_number").is_not_null())
            .then(pl.format("COH:{}", pl.col("company_number")))
            .otherwise(pl.format("{}:{}", pl.col("register"), pl.col("number")))
            .alias("identity")
        )
        others = (
            source.filter(pl.col("register") != "companies_house").select("row", identity).collect(engine="streaming")
        )
        named = others.filter(pl.col("identity").str.starts_with("COH:")).select(pl.col("identity").str.slice(4))
        companies = (
            source.filter((pl.col("register") == "companies_house") & _isin("number", named.to_series()))
            .select("row", identity)
            .collect(engine="streaming")
        )
        grouped = pl.concat([others, companies]).with_columns(pl.col("row").min().over("identity").alias("entity"))
        moved = grouped.filter(pl.col("entity") != pl.col("row"))
        entity = self.entries.get_column("row").alias("entity")
        if moved.height:
            entity = entity.scatter(moved.get_column("row"), moved.get_column("entity"))
        return entity

    def _postings(self) -> pl.DataFrame:
        """(token, row) for every token of a name or previous name held by at most MAX_BLOCK entries.

        Tokens are 64-bit hashes (``_tokens``), tokenised a slice of rows at a time so that split strings never
        exist for the whole register. Document frequencies are counted in a fixed table of 2**24 buckets by hash
        instead of a group-by over millions of distinct tokens (which needs several times the memory): a rare
        token whose bucket it shares with a common one is only skipped for blocking, never mismatched.
        """
        counts = np.zeros(_BUCKETS, dtype=np.uint32)
        parts = []
        for start in range(0, self.entries.height, _CHUNK_ROWS):
            names = self.entries.slice(start, _CHUNK_ROWS).select(pl.col("name_key").alias("key"), "row")
            older = self.previous.filter(pl.col("row").is_between(start, start + _CHUNK_ROWS - 1))
            # A previous name sharing words with the current one posts them twice: harmless, and cheaper than a
            # unique() over millions of postings.
            part = _tokens(pl.concat([names, older]), "row")
            np.add.at(counts, part.get_column("token").to_numpy() & (_BUCKETS - 1), 1)
            parts.append(part)
        if not parts:
            return pl.DataFrame(schema={"row": pl.UInt32, "token": pl.UInt64})
        for i, part in enumerate(parts):  # in place, so each slice's full postings go as its kept ones arrive
            parts[i] = part.filter(pl.Series(counts[part.get_column("token").to_numpy() & (_BUCKETS - 1)] <= MAX_BLOCK))
        return pl.concat(parts)

    def __len__(self) -> int:
        return self.entries.height

    # -----------------------------------------------------------------------------------------------------------

    def _gather(self, rows: Iterable[int]) -> dict[int, _Row]:
        wanted = sorted(set(rows))
        if not wanted:
            return {}
        picked = self.entries.select("register", "number", "name", "postcode", "current", "entity", "name_key").gather(
            wanted
        )
        return {
            row: _Row(reg, num, name, pc, _compact_postcode(pc), bool(cur), ent, key)
            for row, (reg, num, name, pc, cur, ent, key) in zip(wanted, picked.iter_rows(), strict=True)
        }

    def _previous_keys(self, rows: Iterable[int]) -> dict[int, list[str]]:
        wanted = pl.Series("row", sorted(set(rows)), dtype=pl.UInt32)
        out: dict[int, list[str]] = defaultdict(list)
        for key, row in self.previous.filter(_isin("row", wanted)).iter_rows():
            out[row].append(key)
        return out

    def lookup(self, register: str, number: str) -> tuple[Candidate, tuple[Candidate, ...]] | None:
        """The entry ``number`` of ``register`` (e.g. one a reviewer confirmed) and its linked entries."""
        rows = (
            self.entries.filter((pl.col("register") == register) & (pl.col("number") == number))
            .get_column("row")
            .to_list()
        )
        if not rows:
            return None
        info = self._gather(rows)
        info |= self._gather(set(self._by_entity.get(info[rows[0]].entity, ())) - set(rows))
        return self.candidate(info, rows[0], 100.0, "reviewer"), self.linked(info, rows[0])

    def candidate(self, info: Mapping[int, _Row], row: int, score: float, via: str) -> Candidate:
        r = info[row]
        return Candidate(row, r.register, r.number, r.name, r.postcode, r.current, round(score, 1), via)

    def linked(self, info: Mapping[int, _Row], row: int) -> tuple[Candidate, ...]:
        rows = self._by_entity.get(info[row].entity, [])
        return tuple(self.candidate(info, r, 100.0, "linked") for r in rows if r != row)

    def match(self, suppliers: Sequence[SupplierQuery]) -> list[MatchResult]:
        """Match a batch of suppliers; one result per supplier, in order."""
        keys = [normalise_org_name(s.name) if s.name else "" for s in suppliers]
        pcs = [_compact_postcode(s.postcode) for s in suppliers]
        id_hits = self._identifier_hits(suppliers)
        exact = self._exact_hits(keys, skip=id_hits)
        fuzzy_for = [i for i, key in enumerate(keys) if key and i not in id_hits and i not in exact]
        fuzzy = self._fuzzy_hits(keys, fuzzy_for)
        hit_rows = {r for rows in id_hits.values() for r in rows}
        hit_rows |= {r for hits in exact.values() for r, _ in hits}
        hit_rows |= {r for hits in fuzzy.values() for r, _ in hits}
        info = self._gather(hit_rows)
        linked = {r for row in info.values() for r in self._by_entity.get(row.entity, ())} - hit_rows
        info |= self._gather(linked)
        previous = self._previous_keys(hit_rows) if id_hits else {}
        results = []
        for i, supplier in enumerate(suppliers):
            if i in id_hits:
                results.append(self._decide_identifier(info, previous, keys[i], id_hits[i], supplier))
            elif i in exact:
                results.append(self._decide_exact(info, pcs[i], exact[i]))
            else:
                results.append(self._decide_fuzzy(info, pcs[i], fuzzy.get(i, [])))
        return results

    def _identifier_hits(self, suppliers: Sequence[SupplierQuery]) -> dict[int, list[int]]:
        pairs = [
            (i, SCHEME_REGISTER[scheme], value)
            for i, s in enumerate(suppliers)
            for scheme, value in s.identifiers
            if scheme in SCHEME_REGISTER
        ]
        if not pairs:
            return {}
        query = pl.DataFrame(pairs, schema={"q": pl.Int64, "register": pl.String, "id": pl.String}, orient="row")
        ids = query.get_column("id").unique()
        found = self.entries.filter(_isin("number", ids)).select(
            pl.col("register").cast(pl.String), pl.col("number").alias("id"), "row"
        )
        # FCA societies are also cited by bare society number (the register number without its suffix).
        societies = self.entries.filter(pl.col("register") == "fca_mutuals").select(
            pl.col("register").cast(pl.String), pl.col("number").str.extract(r"^(\d+)").alias("id"), "row"
        )
        found = pl.concat([found, societies.filter(_isin("id", ids))])
        hits: dict[int, list[int]] = defaultdict(list)
        for q, row in query.join(found, on=["register", "id"]).select("q", "row").unique().sort("q", "row").iter_rows():
            hits[q].append(row)
        return hits

    def _exact_hits(self, keys: list[str], skip: Mapping[int, object]) -> dict[int, list[tuple[int, str]]]:
        query = pl.DataFrame({"q": range(len(keys)), "key": keys}, schema={"q": pl.Int64, "key": pl.String})
        query = query.filter((pl.col("key") != "") & ~pl.col("q").is_in(list(skip)))
        wanted = query.get_column("key").unique()
        found = pl.concat(
            [
                self.entries.filter(_isin("name_key", wanted)).select(
                    pl.col("name_key").alias("key"), "row", pl.lit("name").alias("via")
                ),
                self.previous.filter(_isin("key", wanted)).select("key", "row", pl.lit("previous_name").alias("via")),
            ]
        )
        hits: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for q, row, via in query.join(found, on="key").select("q", "row", "via").iter_rows():
            hits[q].append((row, via))
        return hits

    def _fuzzy_hits(self, keys: list[str], which: list[int]) -> dict[int, list[tuple[int, float]]]:
        if not which:
            return {}
        query = pl.DataFrame({"q": which, "key": [keys[i] for i in which]}, schema={"q": pl.Int64, "key": pl.String})
        words = _tokens(query, "q")
        postings = self.tokens.filter(_isin("token", words.get_column("token").unique()))
        rare = postings.group_by("token").agg(pl.len().alias("df"))
        blocks = words.join(rare, on="token").sort("q", "df", "token").group_by("q", maintain_order=True).head(2)
        pairs = blocks.join(postings, on="token").select("q", "row").unique()
        if pairs.is_empty():
            return {}
        q_list = pairs["q"].to_list()
        row_list = pairs["row"].to_list()
        row_keys = self.entries.get_column("name_key").gather(row_list).to_list()
        scores = process.cpdist([keys[q] for q in q_list], row_keys, scorer=fuzz.token_sort_ratio, workers=-1)
        hits: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for q, row, score in zip(q_list, row_list, scores.tolist(), strict=True):
            if score >= REVIEW_SCORE:
                hits[q].append((row, float(score)))
        return hits

    # -----------------------------------------------------------------------------------------------------------

    def _best_per_entity(
        self, info: Mapping[int, _Row], scored: list[tuple[int, float, str]], pc: str
    ) -> list[Candidate]:
        """One candidate per organisation (its best-scoring, then same-postcode, then current entry), best first."""
        best: dict[int, tuple[tuple[float, bool, bool], int, float, str]] = {}
        for row, score, via in scored:
            r = info[row]
            rank = (score, bool(pc) and r.pc == pc, r.current)
            if r.entity not in best or rank > best[r.entity][0]:
                best[r.entity] = (rank, row, score, via)
        ordered = sorted(best.values(), key=lambda item: (item[0], -item[1]), reverse=True)
        return [self.candidate(info, row, score, via) for _, row, score, via in ordered]

    def _result(
        self,
        info: Mapping[int, _Row],
        status: Status,
        method: Method | None,
        candidates: list[Candidate],
        reason: str,
        score: float | None = None,
    ) -> MatchResult:
        entry = candidates[0] if candidates else None
        return MatchResult(
            status=status,
            method=method,
            score=entry.score if entry and score is None else (score or 0.0),
            entry=entry,
            linked=self.linked(info, entry.row) if entry and status == "matched" else (),
            candidates=tuple(candidates[:MAX_CANDIDATES]),
            register=entry.register if entry else None,
            version=self.versions.get(entry.register) if entry else None,
            reason=reason,
        )

    def _decide_identifier(
        self,
        info: Mapping[int, _Row],
        previous: Mapping[int, list[str]],
        key: str,
        rows: list[int],
        supplier: SupplierQuery,
    ) -> MatchResult:
        scored = [(row, 100.0, "identifier") for row in rows]
        candidates = self._best_per_entity(info, scored, _compact_postcode(supplier.postcode))
        if len(candidates) > 1:
            return self._result(info, "review", "identifier", candidates, "identifiers name different organisations")
        chosen = candidates[0]
        names = [info[chosen.row].key, *previous.get(chosen.row, [])]
        if key and max(fuzz.token_sort_ratio(key, k) for k in names) < IDENTIFIER_NAME_FLOOR:
            return self._result(info, "review", "identifier", candidates, "the identifier's entry has a different name")
        return self._result(info, "matched", "identifier", candidates, "register identifier")

    def _decide_exact(self, info: Mapping[int, _Row], pc: str, hits: list[tuple[int, str]]) -> MatchResult:
        scored = [(row, 100.0 if via == "name" else 95.0, via) for row, via in hits]
        candidates = self._best_per_entity(info, scored, pc)
        same_pc = [c for c in candidates if pc and info[c.row].pc == pc]
        if len(same_pc) == 1:
            ordered = same_pc + [c for c in candidates if c is not same_pc[0]]
            return self._result(info, "matched", "name+postcode", ordered, "exact name key at the same postcode")
        on_name = [c for c in candidates if c.via == "name"]
        if len(candidates) == 1 and on_name:
            return self._result(info, "matched", "name", candidates, "the only organisation with this exact name key")
        reason = (
            "exact name key held by several organisations" if len(candidates) > 1 else "matches a previous name only"
        )
        return self._result(info, "review", "name", candidates, reason)

    def _decide_fuzzy(self, info: Mapping[int, _Row], pc: str, hits: list[tuple[int, float]]) -> MatchResult:
        if not hits:
            return self._result(info, "none", None, [], "no register entry with a similar name")
        candidates = self._best_per_entity(info, [(row, score, "fuzzy") for row, score in hits], pc)
        top = candidates[0]
        # Organisations whose names are about as close as the best one; the postcode must pick exactly one.
        contenders = [c for c in candidates if c.score > top.score - AUTO_GAP]
        at_pc = [c for c in contenders if pc and info[c.row].pc == pc]
        if len(at_pc) == 1 and at_pc[0].score >= AUTO_SCORE:
            ordered = at_pc + [c for c in candidates if c is not at_pc[0]]
            return self._result(info, "matched", "name+postcode", ordered, "similar name at the same postcode")
        method: Method = "name+postcode" if pc and info[top.row].pc == pc else "name"
        return self._result(info, "review", method, candidates, "similar name only: needs a reviewer")
