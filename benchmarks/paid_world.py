"""Payment lines for ``api_metrics_bench``, as a run of ``localvalue import spend`` per anchor and month leaves them.

Each anchor publishes one spend file a month for the 36 months of the contract lines' twelve quarters (2023-04 to
2026-03): every fifth anchor like an NHS body (payments over £25,000, the HM Treasury layout), the others like
councils (over £500, the Transparency Code layout), imported month by month as published (so one anchor's lines
are spread through the table). About 1.5 % of the files were replaced by a corrected file (the replaced file's
row stays, without lines). Of the payment lines:

* about 90 % pay one of the bench's suppliers (drawn 1/rank, like its contract lines), spelled as the supplier is
  named or in capitals, matched automatically, made new or confirmed by a person;
* 5 % are redacted (no payee, no match), 3 % pay one of a dozen public bodies, tax or pension schemes (matched to
  suppliers of their own; the influenceable view leaves them out by rule), 2 % pay close names waiting for review
  and 0.3 % payees a person rejected;
* 2 % carry only the month they were published for, 1.4 % are credits, 0.1 % have no amount, 5 % are split
  lines sharing the previous line's transaction number.

Payee keys and the influenceable rule come from the service's own functions (``socialvalue.payees.payee_key``,
``socialvalue.influenceable``), each worked out once per distinct value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import polars as pl

from socialvalue.influenceable import classify_influenceable
from socialvalue.payees import payee_key

MONTHS = [f"{2023 + (3 + i) // 12}-{(3 + i) % 12 + 1:02}" for i in range(36)]  # 2023-04 .. 2026-03
PUBLIC_BODIES = (
    "HM Revenue & Customs",
    "NHS Pensions",
    "West Midlands Pension Fund",
    "Birmingham City Council",
    "London Borough of Camden",
    "Guy's and St Thomas' NHS Foundation Trust",
    "NHS Property Services Ltd",
    "NHS England",
    "Department for Work and Pensions",
    "Crown Commercial Service",
    "West Midlands Fire and Rescue Authority",
    "Leeds City Council",
)
EXPENSE_TYPES = ("Building Expenditure", "Equipment Expenditure", "Professional Fees", "Supplies and Services",
                 "Agency Staff", "Transport", "Catering", "Energy", "IT Services", "Grants")  # fmt: skip
EXPENSE_AREAS = ("Estates", "Corporate Services", "Adult Social Care", "Children's Services", "Highways",
                 "Finance", "Clinical Services", "Facilities")  # fmt: skip
REDACTION_KINDS = ("personal", "personal", "commercial", "other")
# What share of the lines (per 1000) each kind of payee takes, in this order; the rest pay the bench's suppliers.
REDACTED, PUBLIC, REVIEW, REJECTED = 50, 80, 100, 103

Rows = tuple[list[str], list[tuple[Any, ...]]]


def _pick(seed: int, modulo: int) -> pl.Expr:
    return (pl.col("i").hash(seed) % modulo).cast(pl.Int64)


def _payee_class() -> pl.Expr:
    kind = _pick(103, 1000)
    return (
        pl.when(kind < REDACTED)
        .then(pl.lit("redacted"))
        .when(kind < PUBLIC)
        .then(pl.lit("public"))
        .when(kind < REVIEW)
        .then(pl.lit("review"))
        .when(kind < REJECTED)
        .then(pl.lit("rejected"))
        .otherwise(pl.lit("supplier"))
    )


def _lines(n: int, anchors: int, n_suppliers: int) -> pl.DataFrame:
    """One row per payment line, in file and row order, with its payee's class and key."""
    zipf = pl.lit(float(n_suppliers)).pow((pl.col("i").hash(104) % 1_000_000) / 1_000_000).floor().cast(pl.Int64)
    starts = pl.Series([dt.date.fromisoformat(f"{m}-01") for m in MONTHS])
    frame = (
        pl.DataFrame({"i": pl.int_range(n, eager=True)})
        .with_columns(
            anchor_id=_pick(101, anchors) + 1,
            month_index=_pick(102, len(MONTHS)),
            payee_class=_payee_class(),
            supplier=zipf.clip(1, n_suppliers),
            u=(pl.col("i").hash(107) % 100_000) / 100_000,
        )
        .with_columns(
            nhs=pl.col("anchor_id") % 5 == 0,
            # Files are imported month by month as they are published, so one anchor's lines are spread out.
            file_id=pl.col("month_index") * anchors + pl.col("anchor_id"),
        )
        .sort("file_id", "i")
        .with_columns(
            id=pl.int_range(1, n + 1),
            row_number=pl.int_range(pl.len()).over("file_id") + 2,  # row 1 is the header
        )
    )
    month_start = pl.lit(starts).gather(pl.col("month_index"))
    pounds = pl.when(pl.col("nhs")).then(25_000 * 10 ** (pl.col("u") * 2.6)).otherwise(500 * 10 ** (pl.col("u") * 3.3))
    pence = (pounds * 100).round().cast(pl.Int64)
    split = (_pick(110, 20) == 0) & (pl.col("row_number") > 2)
    named = pl.col("payee_class")
    frame = frame.with_columns(
        month=pl.lit(pl.Series(MONTHS)).gather(pl.col("month_index")),
        payment_date=pl.when(_pick(106, 50) != 0).then(month_start + pl.duration(days=_pick(105, 28))),
        amount_pence=pl.when(_pick(109, 1000) == 0).then(None).when(_pick(108, 70) == 0).then(-pence).otherwise(pence),
        transaction_number=(pl.col("file_id") * 1_000_000 + pl.col("row_number") - split.cast(pl.Int64)).cast(
            pl.String
        ),
        payee_name=pl.when(named == "public")
        .then(pl.lit(pl.Series(PUBLIC_BODIES)).gather(_pick(112, len(PUBLIC_BODIES))))
        .when(named == "review")
        .then(pl.format("Supplier {} Trading", _pick(113, 3000) + 1))
        .when(named == "rejected")
        .then(pl.format("Refund to resident {}", _pick(114, 300) + 1))
        .when(named == "supplier")
        .then(pl.format("Supplier {} Ltd", pl.col("supplier")))
        .otherwise(None),
        expense_type=pl.when(_pick(116, 400) == 0)
        .then(pl.lit("Employers Superannuation"))
        .otherwise(pl.lit(pl.Series(EXPENSE_TYPES)).gather(_pick(111, len(EXPENSE_TYPES)))),
        expense_area=pl.lit(pl.Series(EXPENSE_AREAS)).gather(_pick(117, len(EXPENSE_AREAS))),
        redaction_kind=pl.when(named == "redacted").then(
            pl.lit(pl.Series(REDACTION_KINDS)).gather(_pick(115, len(REDACTION_KINDS)))
        ),
    ).with_columns(
        # Publishers spell the same payee differently; the key is the same.
        payee_name=pl.when((named == "supplier") & (_pick(118, 4) == 0))
        .then(pl.col("payee_name").str.to_uppercase())
        .otherwise(pl.col("payee_name"))
    )
    names = frame["payee_name"].drop_nulls().unique()
    keys = pl.DataFrame({"payee_name": names, "payee_key": [payee_key(x) for x in names]})
    combos = frame.select("payee_name", "expense_type").unique()
    rules = classify_influenceable(combos, payee="payee_name", expense_type="expense_type")
    return frame.join(keys, on="payee_name", how="left", maintain_order="left").join(
        rules, on=["payee_name", "expense_type"], how="left", maintain_order="left", nulls_equal=True
    )


def _matches(lines: pl.DataFrame, first_public: int) -> pl.DataFrame:
    """One payee match per anchor and payee key, with its status as the import (or a person) left it."""
    first = (
        lines.filter(pl.col("payee_key").is_not_null())
        .group_by("anchor_id", "payee_key", maintain_order=True)
        .agg(
            pl.col("payee_name").first(),
            pl.col("payee_class").first(),
            pl.col("supplier").first(),
            pl.col("payee_name").str.extract(r"(\d+)").first().alias("number"),
        )
        .with_columns(id=pl.int_range(1, pl.len() + 1), i=pl.int_range(pl.len()))
    )
    how = _pick(119, 100)
    cls = pl.col("payee_class")
    public_id = pl.lit(first_public) + pl.col("payee_name").replace_strict(
        {name: k for k, name in enumerate(PUBLIC_BODIES)}, default=0, return_dtype=pl.Int64
    )
    return first.with_columns(
        status=pl.when(cls == "review")
        .then(pl.lit("review"))
        .when(cls == "rejected")
        .then(pl.lit("rejected"))
        .when((cls == "supplier") & (how >= 97))
        .then(pl.lit("confirmed"))
        .when((cls == "supplier") & (how >= 85))
        .then(pl.lit("new"))
        .otherwise(pl.lit("matched")),
        supplier_id=pl.when(cls == "supplier").then(pl.col("supplier")).when(cls == "public").then(public_id),
    )


def payments(n: int, anchors: int, n_suppliers: int, now: dt.datetime) -> dict[str, Rows]:
    """The rows of every table a run of spend imports writes (beside the public bodies' suppliers, which
    ``public_suppliers`` gives), in insertion order: ``{table: (columns, rows)}``."""
    first_public = n_suppliers + 1
    lines = _lines(n, anchors, n_suppliers)
    matches = _matches(lines, first_public)
    lines = lines.join(
        matches.select("anchor_id", "payee_key", "status", pl.col("supplier_id").alias("matched")),
        on=["anchor_id", "payee_key"],
        how="left",
        maintain_order="left",
    )
    files = _files(lines)
    payment_columns = ["id", "file_id", "anchor_id", "row_number", "payment_date", "month", "amount_pence",
                       "currency", "supplier_id", "payee_name", "payee_key", "redacted", "redaction_kind",
                       "transaction_number", "expense_type", "expense_area", "influenceable",
                       "not_influenceable_rule"]  # fmt: skip
    payment_rows = lines.select(
        "id", "file_id", "anchor_id", "row_number", "payment_date", "month", "amount_pence", pl.lit("GBP"),
        pl.col("matched"), "payee_name", "payee_key", pl.col("payee_class") == "redacted", "redaction_kind",
        "transaction_number", "expense_type", "expense_area", "influenceable", "not_influenceable_rule",
    ).rows()  # fmt: skip
    match_rows = []
    for r in matches.iter_rows(named=True):
        person = r["status"] in ("confirmed", "rejected")
        # A close name's candidate: the supplier it nearly names.
        candidates = [{"supplier_id": r["number"], "name": f"Supplier {r['number']} Ltd", "score": 86.0}]
        method = {"review": "close name", "new": "no close name", "matched": "exact name"}.get(r["status"], "person")
        match_rows.append(
            (r["id"], r["anchor_id"], r["payee_key"], r["payee_name"], r["status"], r["supplier_id"], method,
             {"review": 86.0, "new": 0.0, "matched": 100.0}.get(r["status"], 0.0),
             json.dumps(candidates if r["status"] == "review" else []),
             None if r["status"] == "review" else "bench reviewer" if person else "automatic (cli)",
             None if r["status"] == "review" else now,
             "A refund to a resident, not a supplier" if r["status"] == "rejected" else None)
        )  # fmt: skip
    return {
        "import_run": (
            [
                "id",
                "source",
                "kind",
                "parameters",
                "status",
                "started_at",
                "finished_at",
                "fetched",
                "new",
                "changed",
                "unchanged",
                "skipped",
                "failed",
                "pages",
            ],
            [
                (
                    f["id"],
                    "spend",
                    "file",
                    json.dumps({"path": f["source_name"], "anchor_id": f["anchor_id"]}),
                    "completed",
                    now,
                    now,
                    f["line_count"],
                    f["line_count"],
                    0,
                    0,
                    0,
                    0,
                    0,
                )
                for f in files
            ],
        ),
        "spend_file": (list(files[0]), [tuple(f.values()) for f in files]),
        "payee_match": (
            [
                "id",
                "anchor_id",
                "payee_key",
                "payee_name",
                "status",
                "supplier_id",
                "method",
                "score",
                "candidates",
                "decided_by",
                "decided_at",
                "reason",
            ],
            match_rows,
        ),
        "payment_line": (payment_columns, payment_rows),
    }


def _files(lines: pl.DataFrame) -> list[dict[str, Any]]:
    """The active spend file of every anchor and month, then the replaced ones (no lines left, as replacing leaves
    them)."""
    per_file = (
        lines.group_by("file_id", maintain_order=True)
        .agg(
            pl.col("anchor_id").first(),
            pl.col("month").first(),
            pl.col("nhs").first(),
            pl.len().alias("line_count"),
            pl.col("transaction_number").n_unique().alias("transaction_count"),
            pl.col("amount_pence").sum().alias("total_pence"),
            (pl.col("payee_class") == "redacted").sum().alias("redacted_lines"),
            pl.col("amount_pence").filter(pl.col("payee_class") == "redacted").sum().alias("redacted_pence"),
            *[
                pl.col("payee_key").filter(pl.col("status").is_in(statuses)).n_unique().alias(f"payees_{name}")
                for name, statuses in (("matched", ["matched", "confirmed"]), ("review", ["review"]), ("new", ["new"]))
            ],
        )
        .sort("file_id")
    )
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    active: list[dict[str, Any]] = []
    replaced: list[dict[str, Any]] = []
    for r in per_file.iter_rows(named=True):
        nhs = r["nhs"]
        publisher, over = ("nhs", "25k") if nhs else ("council", "500")
        name = f"{publisher}-anchor-{r['anchor_id']:02}_{r['month']}_over{over}.csv"
        row = {
            "id": r["file_id"], "anchor_id": r["anchor_id"], "run_id": r["file_id"], "source_name": name,
            "sha256": hashlib.sha256(name.encode()).hexdigest(), "status": "active", "replaced_by_id": None,
            "months": json.dumps([r["month"]]), "layout": "hmt_25k" if nhs else "transparency_code_500",
            "header_row": 1, "mapping_name": None, "amount_basis": "unstated" if nhs else "net",
            "amount_basis_reason": "amount header 'Amount' says neither net nor gross" if nhs
            else "amount header 'Net Amount'",
            "currency": "GBP", "line_count": r["line_count"], "transaction_count": r["transaction_count"],
            "total_pence": r["total_pence"], "redacted_lines": r["redacted_lines"],
            "redacted_pence": r["redacted_pence"], "payees_matched": r["payees_matched"],
            "payees_review": r["payees_review"], "payees_new": r["payees_new"], "notes": 0,
            "facts": json.dumps({"encoding": "utf-8", "rows_skipped_blank": 0, "rows_skipped_totals": 0}),
            "imported_at": now, "imported_by": "cli",
        }  # fmt: skip
        active.append(row)
        if r["file_id"] % 67 == 0:
            replaced.append(row | {"status": "replaced", "replaced_by_id": r["file_id"], "sha256": "0" * 64})
    ids = max(r["id"] for r in active) + 1
    for k, row in enumerate(replaced):
        row |= {"id": ids + k, "run_id": ids + k}
    return active + replaced


def public_suppliers(n_suppliers: int) -> pl.DataFrame:
    """The public bodies paid, as suppliers (the import made them new suppliers, not yet placed)."""
    return pl.DataFrame(
        {
            "id": pl.int_range(n_suppliers + 1, n_suppliers + 1 + len(PUBLIC_BODIES), eager=True),
            "name": list(PUBLIC_BODIES),
            "category": ["unknown"] * len(PUBLIC_BODIES),
        }
    )
