"""Payees on payment lines -> suppliers in the supplier master: matched, sent to review, or new.

Pure: polars frames in, a polars frame out. Each distinct payee is matched once (a year of lines has far
fewer payees than lines). Redacted lines are never payees (``importers.spend`` gives them no name).

The order of evidence, strongest first:

1. ``company_number`` / ``charity_number`` / ``vat_number`` published in the file equal to exactly one
   supplier's: matched, score 100. Two suppliers sharing the number: review.
2. The normalised name (``socialvalue.identifiers.normalise_org_name``, vendor-code prefixes already
   stripped by the importer, plus a short list of NHS/council abbreviations such as "NHST" and "Bor") equal
   to exactly one supplier's: matched, score 100 - unless the file publishes an identifier that contradicts
   that supplier's (review). Several suppliers with that name: review.
3. The same name with every space (and a leading "the") removed ("Thebigword" = "The Big Word"): matched,
   score 99.
4. Otherwise fuzzy candidates (rapidfuzz token-sort ratio over suppliers sharing a word's first four letters): the best
   ones are listed with their scores and the payee goes to review when the best reaches ``review_score``,
   else it is new. A fuzzy score alone never matches automatically: one letter separates "Castle Water"
   from "Castle Waters", and a wrong automatic match moves money to the wrong supplier.
"""

from collections import defaultdict
from typing import Any, Final

import polars as pl
from rapidfuzz import fuzz, process

from socialvalue.identifiers import normalise_org_name

REVIEW_SCORE: Final = 80.0
MAX_CANDIDATES: Final = 3
_COMMON_TOKEN_LIMIT = 200  # a word start shared by more suppliers than this does not select candidates
_BLOCK = 4  # candidates share the first four letters of a word (so "Castel" still finds "Castle")

# Abbreviations spelled out before comparing, both sides (whole tokens of the normalised key).
_ABBREVIATIONS: Final[dict[str, str]] = {
    "nhst": "nhs trust",
    "nhsft": "nhs foundation trust",
    "ft": "foundation trust",
    "bor": "borough",
    "boro": "borough",
    "cc": "city council",
    "mbc": "metropolitan borough council",
    "dc": "district council",
    "univ": "university",
    "hosp": "hospital",
    "hosps": "hospitals",
    "st": "saint",
    "intl": "international",
    "assoc": "association",
    "svcs": "services",
    "co": "company",
}
_ID_FIELDS: Final = ("company_number", "charity_number", "vat_number")

RESULT_SCHEMA: Final[dict[str, Any]] = {
    "name": pl.String,
    "company_number": pl.String,
    "charity_number": pl.String,
    "vat_number": pl.String,
    "status": pl.String,  # matched | review | new
    "supplier_id": pl.String,
    "method": pl.String,
    "score": pl.Float64,
    "candidates": pl.List(pl.Struct({"supplier_id": pl.String, "name": pl.String, "score": pl.Float64})),
}


def payee_key(name: str) -> str:
    """Matching key: normalised organisation name with common abbreviations spelled out."""
    tokens = normalise_org_name(name).split()
    return " ".join(_ABBREVIATIONS.get(t, t) for t in tokens)


def _compact(key: str) -> str:
    """The key without spaces or a leading "the": "thebigword" = "the big word" = "big word"."""
    return key.replace(" ", "").removeprefix("the")


def _ids(row: dict[str, object]) -> dict[str, str]:
    return {f: str(row[f]) for f in _ID_FIELDS if row.get(f)}


class _Master:
    def __init__(self, master: pl.DataFrame) -> None:
        columns = set(master.columns)
        rows = master.select(
            pl.col("supplier_id").cast(pl.String),
            pl.col("name"),
            *[(pl.col(f) if f in columns else pl.lit(None)).cast(pl.String).alias(f) for f in _ID_FIELDS],
        ).to_dicts()
        self.names: dict[str, str] = {}
        self.ids: dict[str, dict[str, str]] = {}
        self.by_id: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.by_key: dict[str, set[str]] = defaultdict(set)
        self.by_compact: dict[str, set[str]] = defaultdict(set)
        self.keys: list[str] = []
        self.key_ids: list[str] = []
        self.by_token: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            sid = str(row["supplier_id"])
            name = str(row["name"])
            self.names[sid] = name
            self.ids[sid] = _ids(row)
            for scheme, value in self.ids[sid].items():
                self.by_id[(scheme, value)].add(sid)
            key = payee_key(name)
            if not key:
                continue
            self.by_key[key].add(sid)
            self.by_compact[_compact(key)].add(sid)
            position = len(self.keys)
            self.keys.append(key)
            self.key_ids.append(sid)
            for block in {t[:_BLOCK] for t in key.split()}:
                self.by_token[block].append(position)

    def candidates(self, key: str) -> list[tuple[str, str, float]]:
        positions: set[int] = set()
        for block in {t[:_BLOCK] for t in key.split()}:
            found = self.by_token.get(block, [])
            if len(found) <= _COMMON_TOKEN_LIMIT:
                positions.update(found)
        if not positions:
            return []
        ordered = sorted(positions)
        choices = [self.keys[i] for i in ordered]
        best: dict[str, float] = {}
        for _choice, score, index in process.extract(
            key, choices, scorer=fuzz.token_sort_ratio, limit=MAX_CANDIDATES * 3, score_cutoff=50
        ):
            sid = self.key_ids[ordered[index]]
            best[sid] = max(best.get(sid, 0.0), float(score))
        top = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CANDIDATES]
        return [(sid, self.names[sid], round(score, 1)) for sid, score in top]


def _result(
    row: dict[str, object], status: str, sid: str | None, method: str, score: float, cands: list[tuple[str, str, float]]
) -> dict[str, object]:
    return {
        "name": row["name"],
        **{f: row.get(f) for f in _ID_FIELDS},
        "status": status,
        "supplier_id": sid,
        "method": method,
        "score": score,
        "candidates": [{"supplier_id": s, "name": n, "score": sc} for s, n, sc in cands],
    }


def _match_one(  # noqa: PLR0911 - one return per rule reads as the rule list in the docstring
    row: dict[str, object], master: _Master, review_score: float
) -> dict[str, object]:
    name = str(row["name"])
    ids = _ids(row)
    for scheme, value in ids.items():
        hits = master.by_id.get((scheme, value), set())
        if len(hits) == 1:
            sid = next(iter(hits))
            return _result(row, "matched", sid, scheme, 100.0, [(sid, master.names[sid], 100.0)])
        if len(hits) > 1:
            cands = [(s, master.names[s], 100.0) for s in sorted(hits)]
            return _result(row, "review", None, f"{scheme} shared by {len(hits)} suppliers", 100.0, cands)
    key = payee_key(name)
    if not key:
        return _result(row, "new", None, "no name", 0.0, [])
    for method, hits, score in (
        ("name", master.by_key.get(key, set()), 100.0),
        ("name without spaces", master.by_compact.get(_compact(key), set()), 99.0),
    ):
        if len(hits) == 1:
            sid = next(iter(hits))
            conflict = [s for s, v in ids.items() if master.ids[sid].get(s) not in {None, v}]
            if conflict:
                return _result(
                    row, "review", None, f"{method}; {conflict[0]} differs", score, [(sid, master.names[sid], score)]
                )
            return _result(row, "matched", sid, method, score, [(sid, master.names[sid], score)])
        if len(hits) > 1:
            cands = [(s, master.names[s], score) for s in sorted(hits)]
            return _result(row, "review", None, f"{method} shared by {len(hits)} suppliers", score, cands)
    cands = master.candidates(key)
    if cands and cands[0][2] >= review_score:
        return _result(row, "review", None, "fuzzy name", cands[0][2], cands)
    return _result(row, "new", None, "no close name", cands[0][2] if cands else 0.0, cands)


def match_payees(payees: pl.DataFrame, master: pl.DataFrame, *, review_score: float = REVIEW_SCORE) -> pl.DataFrame:
    """Match distinct payees (``name`` plus optional ``company_number``/``charity_number``/``vat_number``,
    already normalised) to ``master`` (``supplier_id``, ``name`` and the same optional identifiers).

    Returns one row per distinct payee (``RESULT_SCHEMA``): status matched/review/new, supplier id when
    matched, the method, a 0-100 score and up to three candidates for a reviewer.
    """
    columns = set(payees.columns)
    distinct = (
        payees.select(
            pl.col("name").cast(pl.String),
            *[(pl.col(f) if f in columns else pl.lit(None)).cast(pl.String).alias(f) for f in _ID_FIELDS],
        )
        .filter(pl.col("name").is_not_null())
        .unique(maintain_order=True)
    )
    index = _Master(master)
    results = [_match_one(row, index, review_score) for row in distinct.iter_rows(named=True)]
    if not results:
        return pl.DataFrame(schema=RESULT_SCHEMA)
    return pl.DataFrame(results, schema=RESULT_SCHEMA)


def payees_of(lines: pl.DataFrame) -> pl.DataFrame:
    """Distinct (name, identifiers) pairs of a spend file's unredacted lines, ready for ``match_payees``."""
    return (
        lines.filter(~pl.col("redacted") & pl.col("supplier_clean").is_not_null())
        .select(pl.col("supplier_clean").alias("name"), *_ID_FIELDS)
        .unique(maintain_order=True)
    )


def attach_matches(lines: pl.DataFrame, matches: pl.DataFrame) -> pl.DataFrame:
    """Lines with ``match_status``, ``supplier_id`` and ``match_method`` (null on redacted lines)."""
    table = matches.select(
        pl.col("name").alias("supplier_clean"),
        *[pl.col(f) for f in _ID_FIELDS if f in matches.columns],
        pl.col("status").alias("match_status"),
        "supplier_id",
        pl.col("method").alias("match_method"),
    )
    on = ["supplier_clean", *[f for f in _ID_FIELDS if f in matches.columns]]
    return lines.join(table, on=on, how="left", nulls_equal=True)
