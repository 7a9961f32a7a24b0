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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

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


class RegisterIndex:
    """One or more loaded registers, indexed for batch matching. Build once, reuse for every batch."""

    def __init__(self, registers: Mapping[str, tuple[pl.DataFrame, str]]) -> None:
        """``registers`` maps kind -> (frame in importers.registers.REGISTER_SCHEMA, version)."""
        self.versions = {kind: version for kind, (_, version) in registers.items()}
        frames = [
            frame.select(
                "register", "number", "name", "name_key", "previous_names", "postcode", "current", "company_number"
            )
            for frame, _ in registers.values()
        ]
        entries = pl.concat(frames) if frames else pl.DataFrame()
        entries = entries.with_row_index("row").with_columns(
            pl.col("postcode").fill_null("").str.replace_all(" ", "").alias("pc"),
            pl.when(pl.col("company_number").is_not_null())
            .then(pl.format("COH:{}", pl.col("company_number")))
            .otherwise(pl.format("{}:{}", pl.col("register"), pl.col("number")))
            .alias("entity"),
        )
        self.entries = entries
        self._register = entries["register"].to_list()
        self._number = entries["number"].to_list()
        self._name = entries["name"].to_list()
        self._key = entries["name_key"].to_list()
        self._postcode = entries["postcode"].to_list()
        self._pc = entries["pc"].to_list()
        self._current = entries["current"].to_list()
        self._entity = entries["entity"].to_list()
        shared = entries.group_by("entity").agg(pl.col("row")).filter(pl.col("row").list.len() > 1)
        self._by_entity: dict[str, list[int]] = dict(shared.iter_rows())
        self.ids = entries.select(
            pl.col("register").replace_strict({v: k for k, v in SCHEME_REGISTER.items()}, default=None).alias("scheme"),
            pl.col("number").alias("id"),
            "row",
        ).vstack(
            # FCA societies are also cited by bare society number (kept in linked_number by the loader).
            entries.filter(pl.col("register") == "fca_mutuals").select(
                pl.lit("GB-MPR").alias("scheme"), pl.col("number").str.extract(r"^(\d+)").alias("id"), "row"
            )
        )
        names = entries.select(pl.col("name_key").alias("key"), "row", pl.lit("name").alias("via"))
        previous = (
            entries.select("row", "previous_names")
            .explode("previous_names")
            .filter(pl.col("previous_names").is_not_null())
        )
        distinct = previous.select(pl.col("previous_names").unique())["previous_names"].to_list()
        normalised = pl.DataFrame(
            {"previous_names": distinct, "key": [normalise_org_name(n) for n in distinct]},
            schema={"previous_names": pl.String, "key": pl.String},
        )
        previous_keys = previous.join(normalised, on="previous_names").select(
            "key", "row", pl.lit("previous_name").alias("via")
        )
        self._previous_key: dict[int, list[str]] = defaultdict(list)
        for key, row in previous_keys.select("key", "row").iter_rows():
            self._previous_key[row].append(key)
        self.keys = pl.concat([names, previous_keys]).filter(pl.col("key") != "")
        tokens = (
            self.keys.select(pl.col("key").str.split(" ").alias("token"), "row")
            .explode("token")
            .filter(pl.col("token").str.len_chars() >= 2)
            .unique()
        )
        frequency = tokens.group_by("token").agg(pl.len().alias("df"))
        self.token_df = frequency
        self.tokens = tokens.join(frequency.filter(pl.col("df") <= MAX_BLOCK), on="token").select("token", "row")

    def __len__(self) -> int:
        return self.entries.height

    def candidate(self, row: int, score: float, via: str) -> Candidate:
        return Candidate(
            row, self._register[row], self._number[row], self._name[row], self._postcode[row], self._current[row],
            round(score, 1), via,
        )  # fmt: skip

    def linked(self, row: int) -> tuple[Candidate, ...]:
        rows = self._by_entity.get(self._entity[row], [])
        return tuple(self.candidate(r, 100.0, "linked") for r in rows if r != row)

    def name_score(self, key: str, row: int) -> float:
        keys = [self._key[row], *self._previous_key.get(row, [])]
        return max(fuzz.token_sort_ratio(key, k) for k in keys)

    # -----------------------------------------------------------------------------------------------------------

    def match(self, suppliers: Sequence[SupplierQuery]) -> list[MatchResult]:
        """Match a batch of suppliers; one result per supplier, in order."""
        keys = [normalise_org_name(s.name) if s.name else "" for s in suppliers]
        pcs = [_compact_postcode(s.postcode) for s in suppliers]
        id_hits = self._identifier_hits(suppliers)
        exact = self._exact_hits(keys, skip=id_hits)
        fuzzy_for = [i for i, key in enumerate(keys) if key and i not in id_hits and i not in exact]
        fuzzy = self._fuzzy_hits(keys, fuzzy_for)
        results = []
        for i, supplier in enumerate(suppliers):
            if i in id_hits:
                results.append(self._decide_identifier(keys[i], id_hits[i], supplier))
            elif i in exact:
                results.append(self._decide_exact(pcs[i], exact[i]))
            else:
                results.append(self._decide_fuzzy(pcs[i], fuzzy.get(i, [])))
        return results

    def _identifier_hits(self, suppliers: Sequence[SupplierQuery]) -> dict[int, list[int]]:
        pairs = [
            (i, scheme, value)
            for i, s in enumerate(suppliers)
            for scheme, value in s.identifiers
            if scheme in SCHEME_REGISTER
        ]
        if not pairs:
            return {}
        query = pl.DataFrame(pairs, schema={"q": pl.Int64, "scheme": pl.String, "id": pl.String}, orient="row")
        hits: dict[int, list[int]] = defaultdict(list)
        for q, row in (
            query.join(self.ids, on=["scheme", "id"]).select("q", "row").unique().sort("q", "row").iter_rows()
        ):
            hits[q].append(row)
        return hits

    def _exact_hits(self, keys: list[str], skip: Mapping[int, object]) -> dict[int, list[tuple[int, str]]]:
        query = pl.DataFrame({"q": range(len(keys)), "key": keys}, schema={"q": pl.Int64, "key": pl.String})
        query = query.filter((pl.col("key") != "") & ~pl.col("q").is_in(list(skip)))
        hits: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for q, row, via in query.join(self.keys, on="key").select("q", "row", "via").iter_rows():
            hits[q].append((row, via))
        return hits

    def _fuzzy_hits(self, keys: list[str], which: list[int]) -> dict[int, list[tuple[int, float]]]:
        if not which:
            return {}
        query = pl.DataFrame({"q": which, "key": [keys[i] for i in which]}, schema={"q": pl.Int64, "key": pl.String})
        blocks = (
            query.select("q", pl.col("key").str.split(" ").alias("token"))
            .explode("token")
            .join(self.token_df, on="token")
            .filter(pl.col("df") <= MAX_BLOCK)
            .sort("q", "df", "token")
            .group_by("q", maintain_order=True)
            .head(2)
        )
        pairs = blocks.join(self.tokens, on="token").select("q", "row").unique()
        if pairs.is_empty():
            return {}
        q_list = pairs["q"].to_list()
        row_list = pairs["row"].to_list()
        scores = process.cpdist(
            [keys[q] for q in q_list],
            [self._key[r] for r in row_list],
            scorer=fuzz.token_sort_ratio,
            workers=-1,
        )
        hits: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for q, row, score in zip(q_list, row_list, scores.tolist(), strict=True):
            if score >= REVIEW_SCORE:
                hits[q].append((row, float(score)))
        return hits

    # -----------------------------------------------------------------------------------------------------------

    def _best_per_entity(self, scored: list[tuple[int, float, str]], pc: str) -> list[Candidate]:
        """One candidate per organisation (its best-scoring, then same-postcode, then current entry), best first."""
        best: dict[str, tuple[tuple[float, bool, bool], int, float, str]] = {}
        for row, score, via in scored:
            rank = (score, bool(pc) and self._pc[row] == pc, self._current[row])
            entity = self._entity[row]
            if entity not in best or rank > best[entity][0]:
                best[entity] = (rank, row, score, via)
        ordered = sorted(best.values(), key=lambda item: (item[0], -item[1]), reverse=True)
        return [self.candidate(row, score, via) for _, row, score, via in ordered]

    def _result(
        self,
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
            linked=self.linked(entry.row) if entry and status == "matched" else (),
            candidates=tuple(candidates[:MAX_CANDIDATES]),
            register=entry.register if entry else None,
            version=self.versions.get(entry.register) if entry else None,
            reason=reason,
        )

    def _decide_identifier(self, key: str, rows: list[int], supplier: SupplierQuery) -> MatchResult:
        scored = [(row, 100.0, "identifier") for row in rows]
        candidates = self._best_per_entity(scored, _compact_postcode(supplier.postcode))
        if len(candidates) > 1:
            return self._result("review", "identifier", candidates, "identifiers name different organisations")
        chosen = candidates[0]
        if key and self.name_score(key, chosen.row) < IDENTIFIER_NAME_FLOOR:
            return self._result("review", "identifier", candidates, "the identifier's entry has a different name")
        return self._result("matched", "identifier", candidates, "register identifier")

    def _decide_exact(self, pc: str, hits: list[tuple[int, str]]) -> MatchResult:
        scored = [(row, 100.0 if via == "name" else 95.0, via) for row, via in hits]
        candidates = self._best_per_entity(scored, pc)
        same_pc = [c for c in candidates if pc and self._pc[c.row] == pc]
        if len(same_pc) == 1:
            ordered = same_pc + [c for c in candidates if c is not same_pc[0]]
            return self._result("matched", "name+postcode", ordered, "exact name key at the same postcode")
        on_name = [c for c in candidates if c.via == "name"]
        if len(candidates) == 1 and on_name:
            return self._result("matched", "name", candidates, "the only organisation with this exact name key")
        reason = (
            "exact name key held by several organisations" if len(candidates) > 1 else "matches a previous name only"
        )
        return self._result("review", "name", candidates, reason)

    def _decide_fuzzy(self, pc: str, hits: list[tuple[int, float]]) -> MatchResult:
        if not hits:
            return self._result("none", None, [], "no register entry with a similar name")
        candidates = self._best_per_entity([(row, score, "fuzzy") for row, score in hits], pc)
        top = candidates[0]
        # Organisations whose names are about as close as the best one; the postcode must pick exactly one.
        contenders = [c for c in candidates if c.score > top.score - AUTO_GAP]
        at_pc = [c for c in contenders if pc and self._pc[c.row] == pc]
        if len(at_pc) == 1 and at_pc[0].score >= AUTO_SCORE:
            ordered = at_pc + [c for c in candidates if c is not at_pc[0]]
            return self._result("matched", "name+postcode", ordered, "similar name at the same postcode")
        method: Method = "name+postcode" if pc and self._pc[top.row] == pc else "name"
        return self._result("review", method, candidates, "similar name only: needs a reviewer")
