"""Published payment ("spend") files -> one polars frame of payment lines, per-file facts and row notes.

Pure: bytes or a path in, plain data out; no database, no network. Covers the three layouts public bodies
publish: the HM Treasury "spend over £25,000" layout (NHS bodies, departments), the Local Government
Transparency Code 2015 "over £500" layout, and the older local spending data schema (CamelCase headers), plus
anything else whose headers name the same things, or for which the caller saves a mapping (plain data:
header name -> field name, e.g. Brent CCG's PDF export, whose "Expense Area" and "Expense Type" headings sit
over each other's values).

How a file is read:

1. The bytes are decoded once: a UTF-8 BOM (also a double-encoded one, ``ï»¿``) is dropped, invalid UTF-8
   is read byte by byte as cp1252 and double-encoded UTF-8 is repaired (``importers.decoding``). Valid UTF-8
   without mojibake is handed to polars as is, without a copy.
2. The header row is the first of the first 30 records in which at least three cells name a known field
   (one of them the supplier or the amount); title, blank and "Report run on ..." lines above it are skipped.
3. Columns are mapped by normalised header ("DatePaid", "Date paid" and "date_paid" are one header) against
   per-field synonym lists in priority order, then against the same lists allowing one typo (two in long
   headers), so ``Entuty`` is ``Entity``. A saved mapping wins over both.
4. Every cell is read as text; dates, amounts and flags are parsed with polars expressions (no per-row
   Python). Supplier names are cleaned once per distinct name.
5. A value that does not parse becomes null and a note (row, column, value, problem); the file goes on.
   Blank rows are dropped silently; a totals row (supplier "Total"/"Grand total", or blank supplier and
   transaction with a cell starting "Total") is dropped with a note.

Money is integer pence (``Int64``), never float; dates are calendar dates. Row numbers are 1-based record
numbers in the file, the header row included, so row 2 is the first data row of a file without a title.

Redactions (see ``redaction_kind``): a curated rule, applied to the whole supplier text. A redacted line
keeps its amount, date and the rest, but has no ``supplier_clean`` and is never matched to a supplier.
"""

import codecs
import csv
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl
from rapidfuzz.distance import Levenshtein

from importers.decoding import ERROR_HANDLER, repair_mojibake
from socialvalue.identifiers import clean_org_name, normalise_company_number, normalise_identifier

FIELDS: Final = (
    "date",
    "amount",
    "supplier",
    "transaction",
    "expense_type",
    "expense_area",
    "body",
    "department_family",
    "vat_number",
    "company_number",
    "charity_number",
    "postcode",
    "vcse",
    "supplier_code",
    "description",
    "irrecoverable_vat",
)

# Normalised header spellings per field, best first: when two columns name one field, the earlier spelling
# wins and the other column is left unmapped (Calderdale's "Body" is a URI, "Organisation Name" the name).
SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "date": (
        "date paid", "payment date", "invoice payment date", "paid date", "date", "transaction date",
        "inv date", "invoice date", "posting date", "clearing date",
    ),
    "amount": (
        "amount", "net amount", "gbp net", "amount gbp", "gbp", "amount paid", "net amount gbp", "value",
        "value gbp", "total", "total amount", "gross amount", "amount excl vat", "amount exc vat",
        "payment amount", "line amount", "invoice amount", "amount net", "spend",
    ),
    "supplier": (
        "supplier name", "supplier", "payee", "payee name", "supplier beneficiary name", "beneficiary",
        "beneficiary name", "vendor name", "vendor", "merchant name", "recipient", "recipient name",
    ),
    "transaction": (
        "transaction number", "transaction no", "transaction reference", "transaction ref", "transaction id",
        "internal ref number", "payment reference", "payment number", "document number", "ref", "reference",
    ),
    "expense_type": (
        "expense type", "expenses type", "detailed expenditure type", "expenditure type",
        "expenditure code", "expense category", "expenditure category", "category", "account description",
    ),
    "expense_area": (
        "expense area", "service area", "service division label", "service label", "service", "directorate",
        "cost centre", "cost centre description",
    ),
    "body": (
        "entity", "body name", "organisation name", "ccg", "trust", "council", "authority", "organisation",
        "body",
    ),
    "department_family": ("department family", "dept family", "departmental family", "department"),
    "vat_number": (
        "vat registration number", "vat number", "supplier vat number", "vat reg no", "vat registration",
        "vat reg number",
    ),
    "company_number": (
        "supplier registered company number", "company number", "company registration number",
        "registered company number", "company reg no", "companies house number",
    ),
    "charity_number": (
        "supplier registered charity number", "charity number", "registered charity number",
        "charity registration number",
    ),
    "postcode": ("supplier postcode", "postcode", "post code", "supplier post code"),
    "vcse": (
        "voluntary community and social enterprise supplier", "vcse", "vcse supplier", "vcse flag",
        "vcs supplier", "voluntary sector",
    ),
    "supplier_code": ("supplier id", "vendor id", "supplier code", "vendor code", "supplier number", "vendor number"),
    "description": ("description", "details", "narrative", "extended description", "purpose"),
    "irrecoverable_vat": ("irrecoverable vat", "vat irrecoverable", "irrecoverable vat amount"),
}  # fmt: skip

# Headers each published layout prescribes (normalised); the layout with most of them present is reported.
PRESETS: Final[dict[str, frozenset[str]]] = {
    # HM Treasury guidance for "spend over £25,000" (departments and every English NHS body).
    "hmt_25k": frozenset(
        {"department family", "entity", "date", "expense type", "expense area", "supplier",
         "transaction number", "amount", "supplier postcode", "supplier type", "contract number"}
    ),
    # Local Government Transparency Code 2015, expenditure over £500.
    "transparency_code_500": frozenset(
        {"body name", "organisation name", "service area", "expenditure category", "payment date",
         "transaction number", "net amount", "supplier name", "supplier id", "irrecoverable vat",
         "supplier registered company number", "supplier registered charity number", "vat registration number",
         "voluntary community and social enterprise supplier", "expense area", "purpose of spend", "body",
         "invoice payment date", "expenses type", "capital revenue", "service label", "expenditure code"}
    ),
    # The older local spending data schema (LGA/esd "Spend over £500", CamelCase column names).
    "local_spending_data": frozenset(
        {"body name", "service label", "service division label", "expenditure category",
         "detailed expenditure type", "detailed expenditure code", "date paid", "transaction number",
         "net amount", "capital or revenue", "supplier name", "body"}
    ),
}  # fmt: skip

_HEADER_SCAN_RECORDS = 30
_HEADER_SCAN_BYTES = 256 * 1024
_MIN_HEADER_FIELDS = 3

# ----------------------------------------------------------------------------------------------- redactions
# The rule, applied to the supplier text lower-cased with punctuation turned into spaces:
# * empty (or only punctuation)                                                -> "blank"
# * a whole word "redacted"/"redaction"/"redacated"/"redcated"/"redated" or "withheld", "undisclosed",
#   "not disclosed", "removed" as the start of the text                       -> redacted
# * the whole text one of a few phrases: "personal data", "personal information", "private individual",
#   "individual", "commercial in confidence", "commercially sensitive", "confidential", ...
# The kind is "commercial" when the text speaks of commerce/confidence, "personal" when it speaks of
# personal data/information/individuals, else "other". "Redactive Publishing Ltd" and "RedCare" do not
# match (no whole word), nor does "Personal Budgets" or "Total Gas & Power".
_REDACT_WORD = re.compile(r"\b(?:re[dc]a?[ct]a?ted|redaction|redacated|withheld|undisclosed|not disclosed)\b")
_REDACT_WHOLE = re.compile(
    r"(?:personal (?:data|information|details)(?: removed| withheld)?|(?:private )?individuals?|"
    r"data protection|commercial(?:ly)? (?:in )?(?:confidence|confidential|sensitive|sensitivity)|"
    r"confidential|sensitive|name removed|removed)"
)
_COMMERCIAL = re.compile(r"\bcommerc|\bconfiden|\bsensitiv")
_PERSONAL = re.compile(r"\bpersonal\b|\bindividual|\bprivate\b|\bdata protection\b|\bgdpr\b")
_PUNCT = re.compile(r"[^a-z0-9]+")


def redaction_kind(supplier: str | None) -> str | None:
    """ "personal", "commercial", "other" or "blank" for a redacted supplier text; None for a real name."""
    text = _PUNCT.sub(" ", (supplier or "").casefold()).strip()
    if not text:
        return "blank"
    if not (_REDACT_WORD.search(text) or _REDACT_WHOLE.fullmatch(text)):
        return None
    if _COMMERCIAL.search(text):
        return "commercial"
    if _PERSONAL.search(text):
        return "personal"
    return "other"


# Vendor codes glued to names by ERP exports: "UK0479435601 : Prime Care Solutions (Kingston) Ltd".
_VENDOR_PREFIX = re.compile(r"^\s*([A-Z0-9]{5,16})\s*[:|]\s*(\S.*)$")


def split_vendor_code(text: str) -> tuple[str | None, str]:
    """(vendor code, name) when the name carries a code prefix containing a digit; else (None, text)."""
    match = _VENDOR_PREFIX.match(text)
    if match and any(c.isdigit() for c in match.group(1)):
        return match.group(1), match.group(2)
    return None, text


# ------------------------------------------------------------------------------------------------ headers
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalise_header(header: str) -> str:
    """ "DatePaid", "Date paid", " date_paid " -> "date paid"; "£ (net)" -> "gbp net"; BOMs dropped."""
    text = _CAMEL.sub(" ", header.replace("\ufeff", "").replace("£", " GBP "))
    return _NON_ALNUM.sub(" ", text.casefold()).strip()


_SYNONYM_RANK: Final[dict[str, tuple[str, int]]] = {
    spelling: (name, rank) for name, spellings in SYNONYMS.items() for rank, spelling in enumerate(spellings)
}


def _field_for_header(header: str) -> tuple[str, int, bool] | None:
    """(field, rank, exact) for one header; a typo match ranks after every exact spelling."""
    key = normalise_header(header)
    if not key:
        return None
    if key in _SYNONYM_RANK:
        name, rank = _SYNONYM_RANK[key]
        return name, rank, True
    if len(key) < 5:
        return None
    allowed = 2 if len(key) >= 12 else 1
    best: tuple[int, str, int] | None = None
    for spelling, (name, rank) in _SYNONYM_RANK.items():
        if abs(len(spelling) - len(key)) > allowed:
            continue
        distance = Levenshtein.distance(key, spelling, score_cutoff=allowed)
        if distance <= allowed and (best is None or (distance, rank) < (best[0], best[2])):
            best = (distance, name, rank)
    return (best[1], 100 + best[2], False) if best else None


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which column (by index) feeds which field, and what was left over."""

    fields: dict[str, int]
    mapped: dict[str, str]  # header -> field
    unmapped: list[str]
    fuzzy: dict[str, str]  # header -> the spelling it was read as


def map_columns(headers: list[str], mapping: Mapping[str, str] | None = None) -> ColumnMap:
    """Map headers to fields: the saved mapping first (by header, compared normalised), then synonyms."""
    unknown = set((mapping or {}).values()) - set(FIELDS) - {"ignore"}
    if unknown:
        raise ValueError(f"mapping names unknown fields: {sorted(unknown)}; fields are {list(FIELDS)} or 'ignore'")
    saved = {normalise_header(k): v for k, v in (mapping or {}).items()}
    chosen: dict[str, tuple[int, int]] = {}  # field -> (rank, column index)
    fuzzy: dict[str, str] = {}
    for index, header in enumerate(headers):
        key = normalise_header(header)
        if key in saved:
            if saved[key] != "ignore":
                chosen[saved[key]] = (-1, index)
            continue
        found = _field_for_header(header)
        if found is None:
            continue
        name, rank, exact = found
        if name in saved.values():
            continue  # the mapping already says which column feeds this field
        if name not in chosen or rank < chosen[name][0]:
            chosen[name] = (rank, index)
            if not exact:
                fuzzy[header] = name
    fields = {name: index for name, (_rank, index) in chosen.items()}
    used = set(fields.values())
    return ColumnMap(
        fields=fields,
        mapped={headers[i]: name for name, i in fields.items()},
        unmapped=[h for i, h in enumerate(headers) if i not in used],
        fuzzy={h: f for h, f in fuzzy.items() if h in {headers[i] for i in used}},
    )


def detect_layout(headers: list[str]) -> str:
    """The preset whose prescribed headers the file uses most (at least three), else "custom"."""
    keys = {normalise_header(h) for h in headers}
    scores = {name: len(keys & preset) for name, preset in PRESETS.items()}
    # CamelCase headers with no spaces are the local spending data schema's signature.
    if sum(1 for h in headers if _CAMEL.search(h) and " " not in h.strip()) >= _MIN_HEADER_FIELDS:
        scores["local_spending_data"] += 100
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] >= _MIN_HEADER_FIELDS else "custom"


def find_header_row(records: list[list[str]], mapping: Mapping[str, str] | None = None) -> int | None:
    """Index of the first record that names at least three fields (one the supplier or the amount)."""
    for index, record in enumerate(records[:_HEADER_SCAN_RECORDS]):
        cells = [c for c in record if c.strip()]
        if len(cells) < _MIN_HEADER_FIELDS:
            continue
        fields = map_columns(record, mapping).fields
        if len(fields) >= _MIN_HEADER_FIELDS and ("supplier" in fields or "amount" in fields):
            return index
    return None


# ----------------------------------------------------------------------------------------------- decoding
_MOJIBAKE_MARKERS = re.compile(b"\xc3[\x82\x83]|\xc3\xa2\xe2\x82\xac")
_DOUBLE_BOM = b"\xc3\xaf\xc2\xbb\xc2\xbf"  # a UTF-8 BOM read as cp1252 and written again as UTF-8


def decode_to_utf8(raw: bytes) -> tuple[bytes, str, list[str]]:
    """UTF-8 bytes without a BOM, the encoding found, and notes on what was repaired."""
    notes: list[str] = []
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    if raw.startswith(_DOUBLE_BOM):
        raw = raw[len(_DOUBLE_BOM) :]
        notes.append("dropped a double-encoded byte order mark")
    encoding = "utf-8"
    try:
        raw.decode("utf-8")
        text: str | None = None
    except UnicodeDecodeError as exc:
        encoding = "cp1252"
        text = raw.decode("utf-8", errors=ERROR_HANDLER)
        notes.append(f"invalid UTF-8 (first bad byte at offset {exc.start}); read as Windows-1252")
    if _MOJIBAKE_MARKERS.search(raw):
        text, repaired = repair_mojibake(text if text is not None else raw.decode("utf-8"))
        if repaired:
            notes.append(f"repaired {repaired} double-encoded UTF-8 sequence(s)")
    if text is None:
        return raw, encoding, notes
    text = text.removeprefix("\ufeff")
    return text.encode("utf-8"), encoding, notes


# ------------------------------------------------------------------------------------------------ parsing
# (guard regex, strptime format): the guard makes sure "05/04/20" never reads as the year 20 AD.
_DATE_FORMATS: Final = (
    (r"^\d{4}-\d{1,2}-\d{1,2}$", "%Y-%m-%d"),
    (r"^\d{1,2}/\d{1,2}/\d{4}$", "%d/%m/%Y"),
    (r"^\d{1,2}/\d{1,2}/\d{2}$", "%d/%m/%y"),
    (r"^\d{1,2}-[A-Za-z]{3}-\d{2}$", "%d-%b-%y"),
    (r"^\d{1,2}-[A-Za-z]{3}-\d{4}$", "%d-%b-%Y"),
    (r"^\d{1,2} [A-Za-z]{3} \d{4}$", "%d %b %Y"),
    (r"^\d{1,2} [A-Za-z]{4,9} \d{4}$", "%d %B %Y"),
    (r"^\d{1,2}-\d{1,2}-\d{4}$", "%d-%m-%Y"),
    (r"^\d{1,2}\.\d{1,2}\.\d{4}$", "%d.%m.%Y"),
    (r"^\d{4}/\d{1,2}/\d{1,2}$", "%Y/%m/%d"),
)
_EXCEL_EPOCH_DAYS = -25569  # 1899-12-30 relative to 1970-01-01 (Excel's 1900 leap-year bug included)
_EXCEL_SERIAL_RANGE = (25569, 73051)  # 1970-01-01 .. 2099-12-31
_DATE_RANGE = (pl.date(1990, 1, 1), pl.date(2100, 1, 1))


def parse_date(raw: pl.Expr) -> pl.Expr:
    """UK (DD/MM/YYYY, DD-Mon-YY), ISO (with or without a time) and Excel serial dates -> Date."""
    text = raw.str.strip_chars().str.replace(r"[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$", "")
    parsed = [
        pl.when(text.str.contains(guard)).then(text.str.strptime(pl.Date, fmt, strict=False))
        for guard, fmt in _DATE_FORMATS
    ]
    serial = text.str.extract(r"^(\d{5})(?:\.0+)?$").cast(pl.Int32, strict=False)
    in_range = serial.is_between(*_EXCEL_SERIAL_RANGE)
    parsed.append(pl.when(in_range).then((serial + _EXCEL_EPOCH_DAYS).cast(pl.Date)))
    date = pl.coalesce(parsed)
    return pl.when(date.is_between(_DATE_RANGE[0], _DATE_RANGE[1], closed="left")).then(date)


_AMOUNT = r"^([+-]?)(\d*)(?:\.(\d{0,2})(\d*))?$"


def parse_pence(raw: pl.Expr, *, round_extra_decimals: bool = False) -> pl.Expr:
    """'£1,234.50', '(1,234.50)', '1234.50-', '-£5', '12 CR' -> pence (Int64); null when not an amount.

    More than two decimal places is refused (null), unless the extra digits are zeros, or the caller says
    the text came from a binary float (an XLSX number cell), where it is rounded half up to the penny.
    """
    text = raw.str.strip_chars().str.to_uppercase().str.replace_all(r"[£,\s]|^GBP", "")
    negative = text.str.contains(r"^\(.*\)$|-$|CR$|^-\(|^\(-")
    text = text.str.replace_all(r"^\(|\)$|-$|CR$|^-\(|^\(-|\)-$", "")
    text = pl.when(negative & text.str.starts_with("-")).then(text.str.slice(1)).otherwise(text)
    parts = text.str.extract_groups(_AMOUNT)
    sign, whole, frac, extra = (parts.struct.field(f"{i}") for i in range(1, 5))
    has_digits = (whole.str.len_chars() > 0) | (frac.fill_null("").str.len_chars() > 0)
    pence = pl.when(whole.str.len_chars() > 0).then(whole).otherwise(pl.lit("0")).cast(
        pl.Int64, strict=False
    ) * 100 + frac.fill_null("").str.pad_end(2, "0").cast(pl.Int64, strict=False)
    extra_nonzero = extra.fill_null("").str.contains(r"[1-9]")
    if round_extra_decimals:
        pence = pence + pl.when(extra.fill_null("").str.slice(0, 1).cast(pl.Int8, strict=False) >= 5).then(1).otherwise(
            0
        )
        ok = has_digits
    else:
        ok = has_digits & ~extra_nonzero
    signed = pl.when((sign == "-") ^ negative).then(-pence).otherwise(pence)
    return pl.when(ok).then(signed)


_PLAIN_AMOUNT = r"^-?\d+(?:\.\d{1,2})?$"


def _with_pence(frame: pl.DataFrame, raw: str, out: str, *, round_extra_decimals: bool) -> pl.DataFrame:
    """``parse_pence`` with a fast path: plain "-1234.56" amounts (almost all) are cast through an exact
    Decimal; only the rest (brackets, trailing minus, "CR", more decimals) go through the full parser."""
    text = pl.col(raw).str.replace_all(",", "", literal=True).str.replace_all("£", "", literal=True)
    plain = text.str.contains(_PLAIN_AMOUNT)
    fast = (text.cast(pl.Decimal(22, 2), strict=False) * 100).cast(pl.Int64, strict=False)
    frame = frame.with_columns(pl.when(plain).then(fast).alias(out))
    rest = frame.filter(pl.col(raw).is_not_null() & pl.col(out).is_null())
    if rest.height == 0:
        return frame
    slow = rest.select("row", parse_pence(pl.col(raw), round_extra_decimals=round_extra_decimals).alias(out))
    return frame.update(slow, on="row")


def _with_dates(frame: pl.DataFrame, raw: str, out: str) -> pl.DataFrame:
    """``parse_date`` once per distinct text (a month of payments has a few dozen dates)."""
    distinct = frame.select(pl.col(raw).unique()).with_columns(parse_date(pl.col(raw)).alias(out))
    return frame.join(distinct, on=raw, how="left", nulls_equal=True)


_TRUE = ("Y", "YES", "TRUE", "1", "VCSE", "T")
_FALSE = ("N", "NO", "FALSE", "0", "F", "NOT VCSE")


def parse_flag(raw: pl.Expr) -> pl.Expr:
    text = raw.str.strip_chars().str.to_uppercase()
    return pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False)


def normalise_vat_number(value: str) -> str | None:
    """UK VAT registration number: 9 digits (12 for a branch), "GB" and spaces dropped; None otherwise."""
    compact = re.sub(r"[\s.\-]", "", value).upper().removeprefix("GB")
    return compact if re.fullmatch(r"\d{9}(?:\d{3})?", compact) else None


def normalise_charity_number(value: str) -> str | None:
    found = normalise_identifier("GB-CHC", value)
    return found[1] if found else None


# -------------------------------------------------------------------------------------------------- result
LINE_SCHEMA: Final = {
    "row": pl.Int64,
    "date": pl.Date,
    "amount_pence": pl.Int64,
    "supplier_raw": pl.String,
    "supplier_clean": pl.String,
    "vendor_code": pl.String,
    "redacted": pl.Boolean,
    "redaction_kind": pl.String,
    "transaction": pl.String,
    "expense_type": pl.String,
    "expense_area": pl.String,
    "body": pl.String,
    "department_family": pl.String,
    "vat_number": pl.String,
    "company_number": pl.String,
    "charity_number": pl.String,
    "postcode": pl.String,
    "vcse": pl.Boolean,
    "supplier_code": pl.String,
    "description": pl.String,
    "irrecoverable_vat_pence": pl.Int64,
}
NOTE_SCHEMA: Final = {"row": pl.Int64, "column": pl.String, "value": pl.String, "problem": pl.String}


@dataclass(frozen=True, slots=True)
class SpendFile:
    """One file read: its lines (``LINE_SCHEMA``), what was found out about it, and a note per bad value."""

    name: str
    lines: pl.DataFrame
    notes: pl.DataFrame  # NOTE_SCHEMA
    layout: str  # hmt_25k | transparency_code_500 | local_spending_data | custom
    header_row: int  # 1-based record number of the header
    columns_mapped: dict[str, str]  # header -> field
    columns_unmapped: list[str]
    fuzzy_headers: dict[str, str]  # header read with a typo allowed -> field
    amount_basis: str  # net | gross | unstated
    amount_basis_reason: str
    currency: str
    encoding: str
    file_notes: list[str] = field(default_factory=list)
    rows_skipped_blank: int = 0
    rows_skipped_totals: int = 0

    @property
    def line_count(self) -> int:
        return self.lines.height

    @property
    def total_pence(self) -> int:
        return int(self.lines["amount_pence"].sum())

    @property
    def redacted_total_pence(self) -> int:
        return int(self.lines.filter(pl.col("redacted"))["amount_pence"].sum())

    @property
    def transaction_count(self) -> int:
        return transaction_count(self.lines)


def transaction_count(lines: pl.DataFrame) -> int:
    """Split lines of one transaction number count once; a line without a number is its own transaction."""
    numbered = lines.filter(pl.col("transaction").is_not_null())
    return int(numbered["transaction"].n_unique()) + (lines.height - numbered.height)


def _amount_basis(header: str | None, override: str | None) -> tuple[str, str]:
    if override is not None:
        if override not in {"net", "gross", "unstated"}:
            raise ValueError("amount_basis must be net, gross or unstated")
        return override, "stated by the caller"
    key = normalise_header(header or "")
    if re.search(r"\bgross\b|\binc(?:l|luding)? vat\b", key):
        return "gross", f"amount header {header!r}"
    if re.search(r"\bnet\b|\bexc(?:l|luding)? vat\b", key):
        return "net", f"amount header {header!r}"
    return "unstated", f"amount header {header!r} says neither net nor gross"


# --------------------------------------------------------------------------------------------------- read
def read_spend_file(
    path: Path,
    mapping: Mapping[str, str] | None = None,
    *,
    amount_basis: str | None = None,
) -> SpendFile:
    """Read a CSV or XLSX spend file. ``mapping``: saved header -> field (or "ignore") for unusual headers."""
    if path.suffix.lower() in {".xlsx", ".xlsm", ".xls"}:
        return _read_excel(path, mapping, amount_basis)
    return read_spend_bytes(path.read_bytes(), path.name, mapping, amount_basis=amount_basis)


def read_spend_bytes(
    raw: bytes,
    name: str,
    mapping: Mapping[str, str] | None = None,
    *,
    amount_basis: str | None = None,
) -> SpendFile:
    data, encoding, file_notes = decode_to_utf8(raw)
    head = data[:_HEADER_SCAN_BYTES].decode("utf-8", errors="replace")
    records = list(csv.reader(io.StringIO(head)))[: _HEADER_SCAN_RECORDS + 1]
    header_index = find_header_row(records, mapping)
    if header_index is None:
        raise ValueError(
            f"{name}: no header row naming a supplier or an amount in the first {_HEADER_SCAN_RECORDS} records"
        )
    headers = records[header_index]
    columns = [f"c{i}" for i in range(len(headers))]
    frame = pl.scan_csv(
        data,
        has_header=False,
        skip_rows=header_index + 1,
        infer_schema=False,
        new_columns=columns,
        truncate_ragged_lines=True,
        missing_columns="insert",
        quote_char='"',
        raise_if_empty=False,
    )
    return _build(frame, headers, header_index, name, mapping, amount_basis, encoding, file_notes, xlsx=False)


def _read_excel(path: Path, mapping: Mapping[str, str] | None, amount_basis: str | None) -> SpendFile:
    sheet = pl.read_excel(path, has_header=False, infer_schema_length=0, drop_empty_rows=False)
    sheet = sheet.select(pl.all().cast(pl.String))
    records = [["" if v is None else str(v) for v in row] for row in sheet.head(_HEADER_SCAN_RECORDS).iter_rows()]
    header_index = find_header_row(records, mapping)
    if header_index is None:
        raise ValueError(f"{path.name}: no header row naming a supplier or an amount")
    headers = records[header_index]
    columns = [f"c{i}" for i in range(len(headers))]
    body = sheet.slice(header_index + 1)
    body.columns = columns
    return _build(body.lazy(), headers, header_index, path.name, mapping, amount_basis, "xlsx", [], xlsx=True)


def _build(
    frame: pl.LazyFrame,
    headers: list[str],
    header_index: int,
    name: str,
    mapping: Mapping[str, str] | None,
    basis_override: str | None,
    encoding: str,
    file_notes: list[str],
    *,
    xlsx: bool,
) -> SpendFile:
    cmap = map_columns(headers, mapping)
    missing = [f for f in ("amount", "supplier") if f not in cmap.fields]
    if missing:
        raise ValueError(f"{name}: no column for {', '.join(missing)}; headers are {headers}")
    raw_cols = [f"c{i}" for i in range(len(headers))]
    first_row = header_index + 2  # 1-based record number of the first data row

    def col(name_: str) -> pl.Expr:
        index = cmap.fields.get(name_)
        if index is None:
            return pl.lit(None, dtype=pl.String)
        text = pl.col(f"c{index}").str.strip_chars()
        return pl.when(text.str.len_bytes() > 0).then(text)

    base = frame.with_row_index("row", offset=first_row).with_columns(pl.col("row").cast(pl.Int64))
    # polars reads an empty cell as null; a row of nulls is blank.
    blank = pl.all_horizontal([pl.col(c).is_null() for c in raw_cols])
    # A totals label sits in the first column or in a text column the mapping knows; checking every cell of
    # every row with a regex would cost more than the rest of the parse.
    label_cols = {0} | {
        cmap.fields[f] for f in ("date", "description", "expense_type", "expense_area", "body", "transaction")
        if f in cmap.fields
    }  # fmt: skip
    total_word = r"(?i)^\s*(?:grand |sub ?)?totals?\b"
    supplier_text = col("supplier").fill_null("")
    is_total = supplier_text.str.contains(r"(?i)^(?:grand |sub ?)?totals?:?$") | (
        (supplier_text == "")
        & col("transaction").is_null()
        & pl.any_horizontal([pl.col(f"c{i}").str.contains(total_word).fill_null(value=False) for i in label_cols])
    )
    collected = base.select(
        "row",
        _blank=blank,
        _total=is_total & ~blank,
        date_raw=col("date"),
        amount_raw=col("amount"),
        supplier_raw=col("supplier"),
        transaction=col("transaction"),
        expense_type=col("expense_type"),
        expense_area=col("expense_area"),
        body=col("body"),
        department_family=col("department_family"),
        vat_raw=col("vat_number"),
        company_raw=col("company_number"),
        charity_raw=col("charity_number"),
        postcode=col("postcode").str.to_uppercase(),
        vcse_raw=col("vcse"),
        supplier_code=col("supplier_code"),
        description=col("description"),
        vat_amount_raw=col("irrecoverable_vat"),
    ).collect()
    rows_blank = int(collected["_blank"].sum())
    parsed = collected.filter(~pl.col("_blank")).with_columns(vcse=parse_flag(pl.col("vcse_raw")))
    parsed = _with_dates(parsed, "date_raw", "date")
    parsed = _with_pence(parsed, "amount_raw", "amount_pence", round_extra_decimals=xlsx)
    parsed = _with_pence(parsed, "vat_amount_raw", "irrecoverable_vat_pence", round_extra_decimals=xlsx)
    if "postcode" in cmap.fields:
        parsed = parsed.with_columns(pl.col("postcode").str.replace_all(r"\s+", " "))

    totals = parsed.filter(pl.col("_total"))
    lines = parsed.filter(~pl.col("_total"))

    # Supplier names, identifiers: once per distinct value.
    lines = lines.join(_supplier_table(lines["supplier_raw"]), on="supplier_raw", how="left", nulls_equal=True)
    ident_notes: list[pl.DataFrame] = []
    for raw_name, out_name, fn, label in (
        ("vat_raw", "vat_number", normalise_vat_number, "not a UK VAT number"),
        ("company_raw", "company_number", normalise_company_number, "not a Companies House number"),
        ("charity_raw", "charity_number", normalise_charity_number, "not a charity number"),
    ):
        lines, bad = _normalise_distinct(lines, raw_name, out_name, fn)
        if bad.height:
            column = headers[cmap.fields[out_name]]
            ident_notes.append(
                _notes_for(lines.filter(pl.col(raw_name).is_in(bad["value"].implode())), raw_name, column, label)
            )

    notes = [_notes_for(totals, "supplier_raw", "(row)", "totals row skipped", value_col=None)]
    checks = (
        ("date", "date_raw", "date", "not a date (expected DD/MM/YYYY, DD-Mon-YY, ISO or an Excel serial)"),
        ("amount", "amount_raw", "amount_pence", "not an amount in pounds and pence"),
        ("vcse", "vcse_raw", "vcse", "not a yes/no flag"),
        ("irrecoverable_vat", "vat_amount_raw", "irrecoverable_vat_pence", "not an amount in pounds and pence"),
    )
    for fname, raw_name, out_name, problem in checks:
        if fname not in cmap.fields:
            continue
        column = headers[cmap.fields[fname]]
        bad_rows = lines.filter(pl.col(raw_name).is_not_null() & pl.col(out_name).is_null())
        if fname == "irrecoverable_vat":
            bad_rows = bad_rows.filter(~pl.col(raw_name).str.to_uppercase().is_in(["N/A", "NA", "-", "NIL"]))
        notes.append(_notes_for(bad_rows, raw_name, column, problem))
        if fname in {"date", "amount"}:
            notes.append(_notes_for(lines.filter(pl.col(raw_name).is_null()), raw_name, column, f"missing {fname}"))
    notes.extend(ident_notes)
    note_frame = pl.concat(notes, how="vertical").sort("row") if notes else pl.DataFrame(schema=NOTE_SCHEMA)

    basis, reason = _amount_basis(headers[cmap.fields["amount"]], basis_override)
    currency = "EUR" if "€" in headers[cmap.fields["amount"]] else "GBP"
    return SpendFile(
        name=name,
        lines=lines.select(list(LINE_SCHEMA)).cast(LINE_SCHEMA).sort("row"),  # type: ignore[arg-type]
        notes=note_frame,
        layout=detect_layout(headers),
        header_row=header_index + 1,
        columns_mapped=cmap.mapped,
        columns_unmapped=cmap.unmapped,
        fuzzy_headers=cmap.fuzzy,
        amount_basis=basis,
        amount_basis_reason=reason,
        currency=currency,
        encoding=encoding,
        file_notes=file_notes,
        rows_skipped_blank=rows_blank,
        rows_skipped_totals=totals.height,
    )


def _notes_for(
    frame: pl.DataFrame, raw_name: str, column: str, problem: str, *, value_col: str | None = ""
) -> pl.DataFrame:
    value = pl.col(value_col or raw_name) if value_col is not None else pl.lit(None, dtype=pl.String)
    return frame.select(
        pl.col("row"),
        column=pl.lit(column, dtype=pl.String),
        value=value.cast(pl.String),
        problem=pl.lit(problem, dtype=pl.String),
    )


def _normalise_distinct(
    lines: pl.DataFrame, raw_name: str, out_name: str, fn: Callable[[str], str | None]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    values = lines[raw_name].drop_nulls().unique().to_list()
    table = pl.DataFrame(
        {raw_name: values, out_name: [fn(v) for v in values]}, schema={raw_name: pl.String, out_name: pl.String}
    )
    placeholders = {"N/A", "NA", "-", "NONE", "NIL", "0", "N/K", "TBC", "UNKNOWN"}
    bad = table.filter(pl.col(out_name).is_null() & ~pl.col(raw_name).str.to_uppercase().is_in(list(placeholders)))
    return lines.join(table, on=raw_name, how="left"), bad.select(value=pl.col(raw_name))


def _supplier_table(raw: pl.Series) -> pl.DataFrame:
    """Per distinct supplier text: clean name, vendor code, redaction."""
    rows: dict[str, list[object]] = {
        "supplier_raw": [], "supplier_clean": [], "vendor_code": [], "redacted": [], "redaction_kind": []
    }  # fmt: skip
    for text in raw.unique().to_list():
        code, rest = split_vendor_code(text) if text else (None, "")
        kind = redaction_kind(rest)
        rows["supplier_raw"].append(text)
        rows["supplier_clean"].append(None if kind else clean_org_name(rest))
        rows["vendor_code"].append(code)
        rows["redacted"].append(kind is not None)
        rows["redaction_kind"].append(kind)
    schema = {
        "supplier_raw": pl.String, "supplier_clean": pl.String, "vendor_code": pl.String,
        "redacted": pl.Boolean, "redaction_kind": pl.String,
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema)
