"""A contracts register as a spreadsheet (CSV or XLSX): the template, reading an upload, and each row read as typed.

Pure: bytes in, rows out (no database). Columns are found by their heading, the template's or a common
alternative ("Contract reference", "Value (£)", "Supplier name"); every cell is read as text and then by
``people_input``, so a sheet takes the same "£80,000" and "12/05/2025" as the forms, with the same messages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass, field

import polars as pl
from rapidfuzz import fuzz, process

from procurement.contracts.people_input import PeopleInputError, parse_cpv_list, parse_date, parse_money
from procurement.schemas import normalise_uk_postcode
from socialvalue.identifiers import normalise_company_number

MAX_UPLOAD_BYTES = 5_000_000
MAX_ROWS = 10_000
TEMPLATE_COLUMNS = (
    "reference",
    "title",
    "value",
    "award_date",
    "start_date",
    "end_date",
    "cpv_codes",
    "supplier_name",
    "supplier_companies_house_number",
    "supplier_postcode",
)
REQUIRED = ("reference", "title", "supplier_name")
# Headings people use for the same things (compared lower-case, without punctuation).
_ALIASES = {
    "reference": ("contract reference", "contract ref", "ref", "contract id", "contract number", "our reference"),
    "title": ("contract title", "description", "contract name", "name of contract"),
    "value": ("contract value", "value £", "value gbp", "total value", "amount", "award value"),
    "award_date": ("award date", "date awarded", "awarded"),
    "start_date": ("start date", "contract start", "start"),
    "end_date": ("end date", "contract end", "end"),
    "cpv_codes": ("cpv", "cpv code", "cpv codes"),
    "supplier_name": ("supplier", "supplier name", "contractor", "provider"),
    "supplier_companies_house_number": ("companies house number", "company number", "crn", "supplier company number"),
    "supplier_postcode": ("postcode", "supplier postcode"),
}
# What each template field is called on the mapping page.
FIELD_LABELS = {
    "reference": "Contract reference",
    "title": "Contract title",
    "value": "Value",
    "award_date": "Award date",
    "start_date": "Start date",
    "end_date": "End date",
    "cpv_codes": "CPV codes",
    "supplier_name": "Supplier name",
    "supplier_companies_house_number": "Supplier's Companies House number",
    "supplier_postcode": "Supplier's postcode",
}
# A heading this close (rapidfuzz token-set ratio, 0-100) to a field's name or alias is offered as the guess.
GUESS_SCORE = 80
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class SheetError(ValueError):
    """The file as a whole cannot be read (its type, size, row count or headings); the message says why."""


def _heading_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def column_map(headings: list[str]) -> dict[str, str]:
    """Template column -> the sheet's heading for it."""
    wanted = {_heading_key(c): c for c in TEMPLATE_COLUMNS}
    for column, aliases in _ALIASES.items():
        wanted.update({_heading_key(a): column for a in aliases})
    found: dict[str, str] = {}
    for heading in headings:
        target = wanted.get(_heading_key(heading))
        if target is not None and target not in found:
            found[target] = heading
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        raise SheetError(
            f"The sheet has no column for {', '.join(m.replace('_', ' ') for m in missing)}. "
            f"Its headings are: {', '.join(headings) or 'none'}. Download the template to see the columns."
        )
    return found


def header_key(headings: list[str]) -> str:
    """The sheet's heading set (normalised, order ignored) as a sha256: what a remembered mapping is found by."""
    return hashlib.sha256("\n".join(sorted({_heading_key(h) for h in headings})).encode()).hexdigest()


def is_template(headings: list[str]) -> bool:
    """Every template column is there under its own name: no mapping step is needed."""
    return {_heading_key(c) for c in TEMPLATE_COLUMNS} <= {_heading_key(h) for h in headings}


def guess_mapping(headings: list[str]) -> dict[str, str]:
    """The best guess of each field's heading: a known name first, then the closest heading by rapidfuzz."""
    wanted = {_heading_key(c): c for c in TEMPLATE_COLUMNS}
    for column, aliases in _ALIASES.items():
        wanted.update({_heading_key(a): column for a in aliases})
    guess: dict[str, str] = {}
    for heading in headings:
        target = wanted.get(_heading_key(heading))
        if target is not None and target not in guess:
            guess[target] = heading
    free = {h: _heading_key(h) for h in headings if h not in guess.values() and _heading_key(h)}
    for column in TEMPLATE_COLUMNS:
        if column in guess or not free:
            continue
        names = [_heading_key(n) for n in (column, FIELD_LABELS[column], *_ALIASES.get(column, ()))]
        best = max(
            (
                (hit[1], hit[2])
                for name in names
                if (hit := process.extractOne(name, free, scorer=fuzz.token_set_ratio, score_cutoff=GUESS_SCORE))
            ),
            default=None,
        )
        if best is not None:
            guess[column] = best[1]
            free.pop(best[1])
    return guess


def check_mapping(mapping: dict[str, str], headings: list[str]) -> dict[str, str]:
    """Problems with chosen columns, by field: a needed field left out, a column chosen twice, one not in the sheet."""
    errors: dict[str, str] = {}
    used: dict[str, str] = {}
    for column in TEMPLATE_COLUMNS:
        heading = mapping.get(column)
        label = FIELD_LABELS[column]
        if not heading:
            if column in REQUIRED:
                errors[column] = f"Choose the column that holds the {label.lower()}: every row needs one"
        elif heading not in headings:
            errors[column] = f"The sheet has no column called {heading!r}: choose one of its columns"
        elif heading in used:
            errors[column] = (
                f"The column {heading!r} is already chosen for the {FIELD_LABELS[used[heading]].lower()}: "
                "choose a different column, or none"
            )
        else:
            used[heading] = column
    return errors


def read_table(data: bytes, filename: str) -> pl.DataFrame:
    """The sheet as uploaded: every cell as text under its own headings, within the size and row limits."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise SheetError(
            f"The file is {len(data) / 1e6:.1f} MB: upload a file of {MAX_UPLOAD_BYTES // 1_000_000} MB or less"
        )
    name = filename.lower()
    try:
        if name.endswith(".csv"):
            frame = pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8-lossy", truncate_ragged_lines=True)
        elif name.endswith(".xlsx"):
            frame = pl.read_excel(io.BytesIO(data), engine="calamine", infer_schema_length=0)
        else:
            raise SheetError(f"{filename!r} is not a CSV or XLSX file: save the sheet as .csv or .xlsx and upload that")
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        if isinstance(exc, SheetError):
            raise
        raise SheetError(f"{filename!r} could not be read as a spreadsheet: save it again as .csv or .xlsx") from exc
    if frame.height > MAX_ROWS:
        raise SheetError(f"The sheet has {frame.height:,} rows: upload {MAX_ROWS:,} rows or fewer at a time")
    return frame


def read_sheet(data: bytes, filename: str, mapping: dict[str, str] | None = None) -> pl.DataFrame:
    """Every cell as text, headings as in the template: by ``mapping`` (field -> heading), else by known names."""
    frame = read_table(data, filename)
    return apply_mapping(frame, column_map(frame.columns) if mapping is None else mapping)


def apply_mapping(frame: pl.DataFrame, mapping: dict[str, str]) -> pl.DataFrame:
    mapping = {column: heading for column, heading in mapping.items() if heading and column in TEMPLATE_COLUMNS}
    frame = frame.select([pl.col(heading).cast(pl.String).alias(column) for column, heading in mapping.items()])
    missing = [c for c in TEMPLATE_COLUMNS if c not in frame.columns]
    return frame.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in missing]).select(TEMPLATE_COLUMNS)


# A date typed into Excel is a date cell, read back as "2025-05-12 00:00:00": the time is dropped.
_EXCEL_MIDNIGHT = re.compile(r"(?<=^\d{4}-\d{2}-\d{2})[ T]00:00:00(?:\.0+)?$")


_NO_REFERENCE = "Enter a reference: each contract needs its own, so uploading again updates it"


@dataclass
class SheetRow:
    """One row as understood: ``line`` is its row number in the sheet (the heading is row 1)."""

    line: int
    reference: str
    title: str
    value_pence: int | None = None
    award_date: dt.date | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    cpv_codes: list[str] = field(default_factory=list)
    supplier_name: str = ""
    supplier_number: str | None = None
    supplier_postcode: str | None = None
    errors: list[str] = field(default_factory=list)


def read_rows(frame: pl.DataFrame) -> list[SheetRow]:
    """Each row read with the forms' rules; a reference used twice is an error on the second."""
    rows: list[SheetRow] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(frame.iter_rows(named=True)):
        cell = {k: _EXCEL_MIDNIGHT.sub("", (v or "").strip()) for k, v in raw.items()}
        if not any(cell.values()):
            continue
        row = _read_row(cell, index + 2)
        if row.reference in seen:
            row.errors.insert(
                0, f"Reference {row.reference!r} is also on row {seen[row.reference]}: each row needs its own"
            )
        elif row.reference:
            seen[row.reference] = row.line
        rows.append(row)
    return rows


def _read_row(cell: dict[str, str], line: int) -> SheetRow:
    row = SheetRow(line=line, reference=cell["reference"], title=cell["title"], supplier_name=cell["supplier_name"])
    for text, limit, what, message in (
        (
            row.reference,
            200,
            "reference",
            "Enter a reference: each contract needs its own, so uploading again updates it",
        ),
        (row.title, 500, "title", "Enter the contract title"),
        (row.supplier_name, 500, "supplier's name", "Enter the supplier's name"),
    ):
        if not text:
            row.errors.append(message)
        elif len(text) > limit:
            row.errors.append(f"The {what} is {len(text):,} characters long: shorten it to {limit} or fewer")
    for name, label, reader in (
        ("value", "the value", parse_money),
        ("award_date", "the award date", parse_date),
        ("start_date", "the start date", parse_date),
        ("end_date", "the end date", parse_date),
    ):
        if cell[name]:
            try:
                setattr(row, name if name != "value" else "value_pence", reader(cell[name], field=label))
            except PeopleInputError as exc:
                row.errors.append(str(exc))
    if row.start_date and row.end_date and row.end_date < row.start_date:
        row.errors.append("The end date is before the start date")
    try:
        row.cpv_codes = parse_cpv_list(cell["cpv_codes"])
    except PeopleInputError as exc:
        row.errors.append(str(exc))
    if number := cell["supplier_companies_house_number"]:
        row.supplier_number = normalise_company_number(number)
        if row.supplier_number is None:
            row.errors.append(f"{number!r} is not a Companies House number; for example 01234567")
    if postcode := cell["supplier_postcode"]:
        try:
            row.supplier_postcode = normalise_uk_postcode(postcode)
        except ValueError:
            row.errors.append(f"{postcode!r} is not a UK postcode; for example B15 2GW")
    return row


def template(kind: str) -> bytes:
    """The template with one example row (CSV or XLSX)."""
    example = pl.DataFrame(
        {
            "reference": ["BCC-0001"],
            "title": ["Community meals service"],
            "value": ["£80,000.00"],
            "award_date": ["12/05/2025"],
            "start_date": ["1 June 2025"],
            "end_date": ["31 May 2027"],
            "cpv_codes": ["55520000-1"],
            "supplier_name": ["Edgbaston Catering Ltd"],
            "supplier_companies_house_number": ["01234567"],
            "supplier_postcode": ["B15 2GW"],
        }
    )
    buffer = io.BytesIO()
    if kind == "xlsx":
        example.write_excel(buffer, worksheet="contracts")
    else:
        example.write_csv(buffer)
    return buffer.getvalue()
