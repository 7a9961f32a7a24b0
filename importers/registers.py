"""Load downloaded organisation registers into a compact, versioned store the supplier matcher queries.

Four registers, one loader each, all writing one common schema (``REGISTER_SCHEMA``):

* ``companies_house`` - the Free Company Data Product, ``BasicCompanyDataAsOneFile-YYYY-MM-DD.zip`` or the
  multi-part ``BasicCompanyData-YYYY-MM-DD-partN_M.zip`` (or the CSVs inside them). ~5.5M rows: parsed by
  polars' streaming engine one part at a time, never held whole in memory.
* ``ccew`` - Charity Commission for England and Wales ``publicextract.charity`` table, JSON (one array) or
  the tab-separated text variant, zipped or not. The JSON array is decoded object by object.
* ``oscr`` - Scottish Charity Register ``CharityExport-DD-Mon-YYYY.csv`` and its removed-charities file.
* ``fca_mutuals`` - FCA Mutuals Public Register ``SocietyList.csv``.

A load writes ``<store_dir>/<kind>.parquet`` through a temporary file and ``os.replace``, so readers see the
old register or the new one, never a mix. The manifest (version = the register's own date, row count, source
files with sha256, notes on malformed rows) is stored inside the parquet file's metadata, which makes it part
of the same atomic replace; ``<kind>.json`` is a copy for people. Malformed rows are reported in the notes
(row, problem, value) and skipped; they never stop a load.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from socialvalue.identifiers import normalise_org_name
from socialvalue.postcodes import extract_postcode, normalise_postcode

RegisterKind = Literal["companies_house", "ccew", "oscr", "fca_mutuals"]
REGISTER_KINDS: tuple[RegisterKind, ...] = ("companies_house", "ccew", "oscr", "fca_mutuals")
MANIFEST_KEY = "localvalue.register_manifest"
MAX_NOTES = 1000  # malformed rows listed individually; the rest are only counted
_BATCH_ROWS = 50_000

REGISTER_SCHEMA: dict[str, pl.DataType] = {
    "register": pl.String(),
    "number": pl.String(),  # canonical id in its scheme: CH 8 chars, CCEW "123456" or "123456-1", OSCR SC012345
    "name": pl.String(),
    "name_key": pl.String(),  # socialvalue.identifiers.normalise_org_name(name)
    "previous_names": pl.List(pl.String()),
    "postcode": pl.String(),  # canonical unit postcode or null
    "status": pl.String(),
    "current": pl.Boolean(),  # live company / registered charity / registered society
    "category": pl.String(),  # CompanyCategory, charity type, OSCR constitutional form, FCA "Registered As"
    "account_category": pl.String(),
    "sic": pl.List(pl.String()),
    "incorporated": pl.Date(),
    "removed": pl.Date(),  # dissolution, removal, cessation or deregistration date
    "linked_number": pl.String(),  # CCEW linked charity number (null for the main charity)
    "company_number": pl.String(),  # the entry's Companies House number, when it has one
}

# Companies House bulk header (names after stripping the leading spaces the real file has on some).
CH_COLUMNS = {
    "name": "CompanyName",
    "number": "CompanyNumber",
    "postcode": "RegAddress.PostCode",
    "category": "CompanyCategory",
    "status": "CompanyStatus",
    "dissolved": "DissolutionDate",
    "incorporated": "IncorporationDate",
    "account_category": "Accounts.AccountCategory",
}
CH_SIC_COLUMNS = tuple(f"SICCode.SicText_{i}" for i in range(1, 5))
CH_PREVIOUS_NAME_COLUMNS = tuple(f"PreviousName_{i}.CompanyName" for i in range(1, 11))
CCEW_FIELDS = (
    "date_of_extract", "organisation_number", "registered_charity_number", "linked_charity_number", "charity_name",
    "charity_type", "charity_registration_status", "date_of_registration", "date_of_removal",
    "charity_reporting_status", "latest_acc_fin_period_start_date", "latest_acc_fin_period_end_date",
    "latest_income", "latest_expenditure", "charity_contact_address1", "charity_contact_address2",
    "charity_contact_address3", "charity_contact_address4", "charity_contact_address5", "charity_contact_postcode",
    "charity_contact_phone", "charity_contact_email", "charity_contact_web", "charity_company_registration_number",
    "charity_insolvent", "charity_in_administration", "charity_previously_excepted", "charity_is_cdf_or_cif",
    "charity_is_cio", "cio_is_dissolved", "date_cio_dissolution_notice", "charity_activities", "charity_gift_aid",
    "charity_has_land",
)  # fmt: skip
OSCR_REQUIRED = ("Charity Number", "Charity Name")
FCA_REQUIRED = ("Society Number", "Society Name")
_CH_NUMBER = re.compile(r"[A-Z0-9]{2}\d{5}[0-9A-Z]")
_CH_FILE_DATE = re.compile(r"BasicCompanyData(?:AsOneFile)?-(\d{4}-\d{2}-\d{2})(?:-part(\d+)_(\d+))?", re.IGNORECASE)
_OSCR_FILE_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})")
_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%b-%Y", "%d %b %Y", "%d/%m/%y")


class RegisterError(ValueError):
    """The input cannot be loaded at all (unknown format, missing parts); malformed rows never raise this."""


@dataclass(frozen=True)
class RowNote:
    source: str
    row: int  # 1-based data row within the source file (the header is row 0)
    problem: str
    value: str


@dataclass(frozen=True)
class LoadSummary:
    kind: str
    version: str  # ISO date of the register's own extract
    version_source: str  # where the version came from: "file name", "date_of_extract", "latest date in data"
    rows: int
    skipped: int
    sources: tuple[dict[str, str], ...]  # {"name", "sha256"}
    notes: tuple[RowNote, ...] = ()
    notes_truncated: int = 0  # malformed rows not listed in notes
    path: str = ""
    loaded_at: str = field(default="")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_manifest(path: Path) -> LoadSummary:
    """The manifest stored inside a register parquet file (always consistent with its rows)."""
    raw = pl.read_parquet_metadata(path)[MANIFEST_KEY]
    data = json.loads(raw)
    data["sources"] = tuple(data["sources"])
    data["notes"] = tuple(RowNote(**n) for n in data["notes"])
    return LoadSummary(**data)


def open_register(store_dir: Path, kind: RegisterKind) -> tuple[pl.DataFrame, LoadSummary]:
    """The loaded register and its manifest, read from one file so they always agree."""
    path = Path(store_dir) / f"{kind}.parquet"
    with path.open("rb") as handle:  # one open file: a concurrent os.replace cannot split the pair
        data = handle.read()
    buffer = io.BytesIO(data)
    raw = pl.read_parquet_metadata(buffer)[MANIFEST_KEY]
    buffer.seek(0)
    frame = pl.read_parquet(buffer)
    summary = json.loads(raw)
    summary["sources"] = tuple(summary["sources"])
    summary["notes"] = tuple(RowNote(**n) for n in summary["notes"])
    return frame, LoadSummary(**summary)


def scan_register(store_dir: Path, kind: RegisterKind | str) -> tuple[pl.LazyFrame, LoadSummary]:
    """A loaded register as a lazy scan (read column by column when collected) and its manifest.

    A reload may replace the file between this call and the scan's collection; a caller that needs rows and
    manifest from one load compares ``loaded_registers`` before and after (see the supplier matcher's cache).
    """
    path = Path(store_dir) / f"{kind}.parquet"
    return pl.scan_parquet(path), read_manifest(path)


def loaded_registers(store_dir: Path) -> dict[str, LoadSummary]:
    """The manifest of every register loaded in ``store_dir``, by kind (metadata only: cheap)."""
    out: dict[str, LoadSummary] = {}
    for kind in REGISTER_KINDS:
        path = Path(store_dir) / f"{kind}.parquet"
        if path.is_file():
            out[kind] = read_manifest(path)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Shared helpers


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse_date(text: str | None) -> date | None:
    """A date in any of the registers' formats; raises ValueError on text that is not one."""
    if text is None:
        return None
    value = text.strip()
    if not value:
        return None
    if len(value) >= 10 and value[4] == "-" and (len(value) == 10 or value[10] in "T "):
        return date.fromisoformat(value[:10])
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a calendar date, no time zone
        except ValueError:
            continue
    raise ValueError(value)


def _postcode(text: str | None) -> str | None:
    if not text or not text.strip():
        return None
    return normalise_postcode(text) or extract_postcode(text)


class _Notes:
    def __init__(self) -> None:
        self.items: list[RowNote] = []
        self.count = 0

    def add(self, source: str, row: int, problem: str, value: object) -> None:
        self.count += 1
        if len(self.items) < MAX_NOTES:
            self.items.append(RowNote(source, row, problem, str(value)[:200]))


def _open_text(path: Path, workdir: Path, member_suffixes: tuple[str, ...]) -> list[tuple[str, Path]]:
    """(display name, plain file path) for a file or each matching member of a zip, extracted as a stream."""
    if not zipfile.is_zipfile(path):
        return [(path.name, path)]
    out: list[tuple[str, Path]] = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.lower().endswith(member_suffixes):
                continue
            target = workdir / f"{len(out)}-{Path(info.filename).name}"
            with archive.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            out.append((f"{path.name}:{info.filename}", target))
    if not out:
        raise RegisterError(f"{path.name} has no {'/'.join(member_suffixes)} member")
    return out


def _write_store(
    frames: Iterable[pl.DataFrame] | pl.LazyFrame, store_dir: Path, kind: RegisterKind, summary: LoadSummary
) -> LoadSummary:
    """Write the register and its manifest atomically; returns the summary with the row count filled in."""
    store_dir.mkdir(parents=True, exist_ok=True)
    final = store_dir / f"{kind}.parquet"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{kind}-", suffix=".parquet.tmp", dir=store_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if isinstance(frames, pl.LazyFrame):
            lazy = frames
        else:
            parts = [f for f in frames if f.height]
            lazy = (pl.concat(parts) if parts else pl.DataFrame(schema=REGISTER_SCHEMA)).lazy()
        # The row count is only known after writing; write once, then stamp the manifest by rewriting the
        # footer is not possible with polars, so count first from the lazy plan (cheap for parquet staging).
        rows = lazy.select(pl.len()).collect(engine="streaming").item()
        done = replace(
            summary,
            rows=int(rows),
            path=str(final),
            loaded_at=datetime.now().astimezone().isoformat(timespec="seconds"),
        )
        manifest = json.dumps(done.to_json(), default=str)
        lazy.sink_parquet(tmp, metadata={MANIFEST_KEY: manifest}, row_group_size=_BATCH_ROWS * 2)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    json_tmp = store_dir / f".{kind}.json.tmp"
    json_tmp.write_text(json.dumps(done.to_json(), indent=2, default=str), encoding="utf-8")
    os.replace(json_tmp, store_dir / f"{kind}.json")
    return done


def _rows_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=REGISTER_SCHEMA, orient="row") if rows else pl.DataFrame(schema=REGISTER_SCHEMA)


def _entry(register: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(REGISTER_SCHEMA)
    row.update({"register": register, "previous_names": [], "sic": []})
    row.update(values)
    row["name_key"] = normalise_org_name(row["name"])
    return row


# ---------------------------------------------------------------------------------------------------------------
# Companies House


def _ch_version(paths: Sequence[Path]) -> str:
    dates: set[str] = set()
    parts: dict[int, set[int]] = {}
    for path in paths:
        match = _CH_FILE_DATE.search(path.name)
        if not match:
            raise RegisterError(f"{path.name}: not a BasicCompanyData file name (needs its YYYY-MM-DD date)")
        dates.add(match.group(1))
        if match.group(2):
            parts.setdefault(int(match.group(3)), set()).add(int(match.group(2)))
    if len(dates) != 1:
        raise RegisterError(f"files from different register dates: {sorted(dates)}")
    for total, seen in parts.items():
        missing = sorted(set(range(1, total + 1)) - seen)
        if missing or len(parts) > 1:
            raise RegisterError(f"multi-part Companies House download is incomplete: missing parts {missing}")
    return dates.pop()


def _ch_date(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().str.strptime(pl.Date, "%d/%m/%Y", strict=False)


def _ch_names(series: pl.Series) -> pl.Series:
    return pl.Series([normalise_org_name(n) if n else "" for n in series.to_list()], dtype=pl.String)


def _ch_stage(source: str, path: Path, staging: Path) -> None:
    """Parse one BasicCompanyData CSV into a staging parquet: every row, with a `problem` column."""
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        header = next(csv.reader([handle.readline()]))
    stripped = [h.strip() for h in header]
    needed = (*CH_COLUMNS.values(), *CH_SIC_COLUMNS, *CH_PREVIOUS_NAME_COLUMNS)
    missing = [c for c in CH_COLUMNS.values() if c not in stripped]
    if missing:
        raise RegisterError(f"{source}: not a BasicCompanyData CSV, missing columns {missing}")
    lazy = pl.scan_csv(
        path,
        infer_schema=False,
        encoding="utf8-lossy",
        truncate_ragged_lines=True,
        with_column_names=lambda names: [n.strip() for n in names],
        row_index_name="row",
        row_index_offset=1,
        missing_columns="insert",
    )
    raw_number = pl.col("CompanyNumber").fill_null("").str.strip_chars().str.to_uppercase()
    number = pl.when(raw_number.str.contains(r"^\d{1,8}$")).then(raw_number.str.zfill(8)).otherwise(raw_number)
    name = pl.col("CompanyName").fill_null("").str.strip_chars()
    bad_date = pl.lit(None, pl.String)
    for column in ("IncorporationDate", "DissolutionDate"):
        text = pl.col(column).fill_null("").str.strip_chars()
        bad_date = (
            pl.when(bad_date.is_null() & (text != "") & _ch_date(column).is_null())
            .then(pl.format("unparseable {}", pl.lit(column)))
            .otherwise(bad_date)
        )
    problem = (
        pl.when(~number.str.contains(f"^{_CH_NUMBER.pattern}$"))
        .then(pl.lit("CompanyNumber is not a company number"))
        .when(name == "")
        .then(pl.lit("CompanyName is empty"))
        .otherwise(bad_date)
    )
    present = [c for c in needed if c in stripped]
    sic = [pl.col(c) for c in CH_SIC_COLUMNS if c in present]
    previous = [pl.col(c) for c in CH_PREVIOUS_NAME_COLUMNS if c in present]
    status = pl.col("CompanyStatus").str.strip_chars()
    dissolved = _ch_date("DissolutionDate")

    def non_empty(column: str) -> pl.Expr:
        text = pl.col(column).str.strip_chars()
        return pl.when(text != "").then(text)

    staged = lazy.with_columns(problem.alias("problem"), number.alias("number_norm"), name.alias("name_clean")).select(
        pl.col("row"),
        pl.col("problem"),
        pl.when(pl.col("problem").str.starts_with("CompanyNumber"))
        .then(pl.col("CompanyNumber"))
        .when(pl.col("problem").str.contains("IncorporationDate"))
        .then(pl.col("IncorporationDate"))
        .when(pl.col("problem").str.contains("DissolutionDate"))
        .then(pl.col("DissolutionDate"))
        .otherwise(pl.col("CompanyName"))
        .fill_null("")
        .alias("problem_value"),
        pl.lit("companies_house").alias("register"),
        pl.col("number_norm").alias("number"),
        pl.col("name_clean").alias("name"),
        pl.col("name_clean").map_batches(_ch_names, return_dtype=pl.String, is_elementwise=True).alias("name_key"),
        (
            pl.concat_list([non_empty(c) for c in CH_PREVIOUS_NAME_COLUMNS if c in present]).list.drop_nulls()
            if previous
            else pl.lit([], pl.List(pl.String))
        ).alias("previous_names"),
        pl.col("RegAddress.PostCode").str.strip_chars().str.to_uppercase().alias("postcode"),
        status.alias("status"),
        (dissolved.is_null() & ~status.str.to_lowercase().str.starts_with("dissolved").fill_null(False)).alias(
            "current"
        ),
        pl.col("CompanyCategory").str.strip_chars().alias("category"),
        pl.col("Accounts.AccountCategory").str.strip_chars().alias("account_category"),
        (
            pl.concat_list(
                [pl.col(c).str.extract(r"^\s*(\d{4,5})\b") for c in CH_SIC_COLUMNS if c in present]
            ).list.drop_nulls()
            if sic
            else pl.lit([], pl.List(pl.String))
        ).alias("sic"),
        _ch_date("IncorporationDate").alias("incorporated"),
        dissolved.alias("removed"),
        pl.lit(None, pl.String).alias("linked_number"),
        pl.col("number_norm").alias("company_number"),
    )
    staged.sink_parquet(staging, row_group_size=_BATCH_ROWS * 2)


def _ch_repair(source: str, path: Path, notes: _Notes) -> tuple[Path, list[int]]:
    """Line-by-line copy without the lines polars cannot parse (unbalanced quotes); returns the copy and the
    original row number of each kept data row. Only used when the fast parse fails."""
    repaired = path.with_suffix(".repaired.csv")
    kept: list[int] = []
    with (
        path.open("r", encoding="utf-8-sig", errors="replace", newline="") as src,
        repaired.open("w", encoding="utf-8", newline="") as dst,
    ):
        dst.write(src.readline())
        for row, line in enumerate(src, start=1):
            if not line.strip():
                continue
            if line.count('"') % 2:
                notes.add(source, row, "unbalanced quotes (row cut off or broken)", line.strip()[:80])
                continue
            dst.write(line if line.endswith("\n") else line + "\n")
            kept.append(row)
    return repaired, kept


def load_companies_house(paths: Sequence[Path], store_dir: Path, workdir: Path) -> LoadSummary:
    version = _ch_version(paths)
    notes = _Notes()
    staged: list[Path] = []
    sources = []
    repair_skipped = 0
    for path in paths:
        sources.append({"name": path.name, "sha256": _sha256(path)})
        for source, plain in _open_text(path, workdir, (".csv",)):
            stage = workdir / f"stage-{len(staged)}.parquet"
            try:
                _ch_stage(source, plain, stage)
            except pl.exceptions.ComputeError:
                before = notes.count
                repaired, kept = _ch_repair(source, plain, notes)
                repair_skipped += notes.count - before
                _ch_stage(source, repaired, stage)
                repaired.unlink()
                # Map the repaired file's row numbers back to the original file's.
                original = pl.DataFrame(
                    {"row": range(1, len(kept) + 1), "original": kept}, schema={"row": pl.Int64, "original": pl.Int64}
                )
                fixed = pl.read_parquet(stage).with_columns(pl.col("row").cast(pl.Int64))
                fixed = fixed.join(original, on="row", how="left", maintain_order="left")
                fixed.with_columns(pl.col("original").alias("row")).drop("original").write_parquet(stage)
            if plain != path:
                plain.unlink()  # keep at most one extracted part on disk
            bad = (
                pl.scan_parquet(stage)
                .filter(pl.col("problem").is_not_null())
                .select("row", "problem", "problem_value")
                .head(MAX_NOTES)
                .collect()
            )
            total_bad = pl.scan_parquet(stage).filter(pl.col("problem").is_not_null()).select(pl.len()).collect()
            for row, problem, value in bad.iter_rows():
                notes.add(source, row, problem, value)
            notes.count += int(total_bad.item()) - bad.height
            staged.append(stage)
    # Rows with only a bad date are kept (the date is null); rows without a number or name are skipped.
    lazy = (
        pl.scan_parquet(staged)
        .filter(pl.col("problem").is_null() | pl.col("problem").str.starts_with("unparseable"))
        .select(list(REGISTER_SCHEMA))
    )
    skipped = (
        pl.scan_parquet(staged)
        .filter(pl.col("problem").is_not_null() & ~pl.col("problem").str.starts_with("unparseable"))
        .select(pl.len())
        .collect()
        .item()
    )
    summary = LoadSummary(
        "companies_house", version, "file name", 0, int(skipped) + repair_skipped, tuple(sources), tuple(notes.items),
        max(0, notes.count - len(notes.items)),
    )  # fmt: skip
    return _write_store(lazy, store_dir, "companies_house", summary)


# ---------------------------------------------------------------------------------------------------------------
# Charity Commission for England and Wales


def _iter_json_array(path: Path, source: str, notes: _Notes) -> Iterator[tuple[int, dict[str, Any]]]:
    """Objects of a top-level JSON array, decoded one at a time from a buffered stream."""
    decoder = json.JSONDecoder()
    reader = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    buffer = ""
    started = False
    index = 0
    with path.open("rb") as handle:
        eof = False
        while True:
            if not eof and len(buffer) < (1 << 20):
                chunk = handle.read(1 << 20)
                eof = not chunk
                buffer += reader.decode(chunk, final=eof)
            buffer = buffer.lstrip(" \t\r\n,")
            if not started:
                if not buffer:
                    return
                if buffer[0] != "[":
                    raise RegisterError(f"{source}: not a JSON array")
                buffer = buffer[1:]
                started = True
                continue
            if buffer.startswith("]") or (eof and not buffer):
                return
            try:
                obj, end = decoder.raw_decode(buffer)
            except json.JSONDecodeError as exc:
                if not eof and len(buffer) < (1 << 24):
                    more = handle.read(1 << 20)
                    if more:
                        buffer += reader.decode(more)
                        continue
                    eof = True
                    buffer += reader.decode(b"", final=True)
                    continue
                index += 1
                notes.add(source, index, f"invalid JSON: {exc.msg}", buffer[:80])
                # Resynchronise on the next object start.
                nxt = buffer.find("{", max(1, exc.pos))
                if nxt < 0:
                    return
                buffer = buffer[nxt:]
                continue
            buffer = buffer[end:]
            index += 1
            if isinstance(obj, dict):
                yield index, obj
            else:
                notes.add(source, index, "array element is not an object", str(obj)[:80])


def _iter_tsv(path: Path, source: str, notes: _Notes) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.strip() for h in next(reader, [])]
        if "registered_charity_number" not in header:
            raise RegisterError(f"{source}: not a publicextract.charity text file (no registered_charity_number)")
        for index, fields in enumerate(reader, start=1):
            if not fields or fields == [""]:
                continue
            if len(fields) != len(header):
                notes.add(source, index, f"{len(fields)} fields, header has {len(header)}", "\t".join(fields)[:80])
                continue
            yield index, dict(zip(header, fields, strict=True))


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in {"true", "1", "yes", "y", "t"}


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _ccew_row(obj: dict[str, Any]) -> dict[str, Any]:
    number = _text(obj.get("registered_charity_number"))
    if not number.isdigit() or int(number) == 0:
        raise ValueError(f"registered_charity_number {number!r} is not a charity number")
    linked = _text(obj.get("linked_charity_number")) or "0"
    if not linked.isdigit():
        raise ValueError(f"linked_charity_number {linked!r} is not a number")
    name = _text(obj.get("charity_name"))
    if not name:
        raise ValueError("charity_name is empty")
    status = _text(obj.get("charity_registration_status"))
    removed = _parse_date(_text(obj.get("date_of_removal")))
    company = _text(obj.get("charity_company_registration_number")).upper()
    if company.isdigit():
        company = company.zfill(8)
    is_cio = _truthy(obj.get("charity_is_cio"))
    return _entry(
        "ccew",
        number=str(int(number)) if int(linked) == 0 else f"{int(number)}-{int(linked)}",
        name=name,
        postcode=_postcode(_text(obj.get("charity_contact_postcode"))),
        status=status,
        current=status.lower() == "registered" and removed is None,
        category="CIO" if is_cio else (_text(obj.get("charity_type")) or None),
        incorporated=_parse_date(_text(obj.get("date_of_registration"))),
        removed=removed,
        linked_number=None if int(linked) == 0 else str(int(linked)),
        company_number=company if _CH_NUMBER.fullmatch(company) else None,
    )


def load_ccew(paths: Sequence[Path], store_dir: Path, workdir: Path) -> LoadSummary:
    notes = _Notes()
    sources = []
    extract_dates: set[str] = set()

    def frames() -> Iterator[pl.DataFrame]:
        for path in paths:
            sources.append({"name": path.name, "sha256": _sha256(path)})
            for source, plain in _open_text(path, workdir, (".json", ".txt")):
                with plain.open("rb") as probe:
                    head = probe.read(64).lstrip(codecs.BOM_UTF8).lstrip()
                rows_iter = (
                    _iter_json_array(plain, source, notes) if head.startswith(b"[") else _iter_tsv(plain, source, notes)
                )
                batch: list[dict[str, Any]] = []
                for index, obj in rows_iter:
                    try:
                        batch.append(_ccew_row(obj))
                    except ValueError as exc:
                        notes.add(source, index, str(exc), obj.get("registered_charity_number"))
                        continue
                    extract = _text(obj.get("date_of_extract"))[:10]
                    if extract:
                        extract_dates.add(extract)
                    if len(batch) >= _BATCH_ROWS:
                        yield _rows_frame(batch)
                        batch = []
                yield _rows_frame(batch)

    return _load_batched("ccew", frames, store_dir, workdir, notes, sources, extract_dates)


def _load_batched(
    kind: RegisterKind,
    frames: Callable[[], Iterator[pl.DataFrame]],
    store_dir: Path,
    workdir: Path,
    notes: _Notes,
    sources: list[dict[str, str]],
    dates: set[str],
    version_source: str = "date_of_extract",
) -> LoadSummary:
    """Stage python-parsed batches to parquet (bounded memory), then write the store.

    Every note here is a skipped row, so the skipped count is the note count.
    """
    staged = []
    for i, frame in enumerate(frames()):
        if frame.height:
            stage = workdir / f"stage-{i}.parquet"
            frame.write_parquet(stage)
            staged.append(stage)
    if not dates:
        raise RegisterError(f"{kind}: no register date found ({version_source})")
    lazy = pl.scan_parquet(staged) if staged else pl.DataFrame(schema=REGISTER_SCHEMA).lazy()
    summary = LoadSummary(
        kind, max(dates), version_source, 0, notes.count, tuple(sources), tuple(notes.items),
        max(0, notes.count - len(notes.items)),
    )  # fmt: skip
    return _write_store(lazy, store_dir, kind, summary)


# ---------------------------------------------------------------------------------------------------------------
# OSCR and FCA Mutuals (small CSVs: ~25k and ~32k rows)


def _iter_csv(path: Path, source: str, required: Sequence[str], notes: _Notes) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise RegisterError(f"{source}: missing columns {missing}")
        for index, fields in enumerate(reader, start=1):
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                notes.add(source, index, f"{len(fields)} fields, header has {len(header)}", ",".join(fields)[:80])
                continue
            yield index, dict(zip(header, fields, strict=True))


def _oscr_version(path: Path) -> str | None:
    match = _OSCR_FILE_DATE.search(path.name)
    if not match:
        return None
    return datetime.strptime("-".join(match.groups()), "%d-%b-%Y").date().isoformat()  # noqa: DTZ007


def _oscr_row(row: dict[str, str], removed_file: bool) -> dict[str, Any]:
    number = row["Charity Number"].strip().upper().replace(" ", "")
    if not re.fullmatch(r"SC\d{6}", number):
        raise ValueError(f"Charity Number {number!r} is not an OSCR number")
    name = row["Charity Name"].strip()
    if not name:
        raise ValueError("Charity Name is empty")
    ceased = _parse_date(row.get("Ceased Date"))
    status = row.get("Charity Status", "").strip() or ("Removed" if removed_file else "")
    return _entry(
        "oscr",
        number=number,
        name=name,
        previous_names=[k.strip()] if (k := row.get("Known As", "")) and k.strip() and k.strip() != name else [],
        postcode=_postcode(row.get("Postcode")),
        status=status,
        current=not removed_file and ceased is None and status.lower() not in {"removed", "ceased"},
        category=row.get("Constitutional Form", "").strip() or None,
        incorporated=_parse_date(row.get("Registered Date")),
        removed=ceased,
    )


def load_oscr(paths: Sequence[Path], store_dir: Path, workdir: Path) -> LoadSummary:
    notes = _Notes()
    sources: list[dict[str, str]] = []
    dates: set[str] = set()

    def frames() -> Iterator[pl.DataFrame]:
        for path in paths:
            sources.append({"name": path.name, "sha256": _sha256(path)})
            if version := _oscr_version(path):
                dates.add(version)
            for source, plain in _open_text(path, workdir, (".csv",)):
                removed_file = "removed" in source.lower() or "former" in source.lower()
                batch = []
                for index, row in _iter_csv(plain, source, OSCR_REQUIRED, notes):
                    try:
                        batch.append(_oscr_row(row, removed_file))
                    except ValueError as exc:
                        notes.add(source, index, str(exc), row.get("Charity Number", ""))
                yield _rows_frame(batch)

    return _load_batched("oscr", frames, store_dir, workdir, notes, sources, dates, "file name")


def _fca_row(row: dict[str, str]) -> dict[str, Any]:
    number = row["Society Number"].strip()
    if not number.isdigit():
        raise ValueError(f"Society Number {number!r} is not a number")
    suffix = row.get("Society Suffix", "").strip().upper()
    full = (row.get("Full Registation Number") or row.get("Full Registration Number") or "").strip().upper()
    name = row["Society Name"].strip()
    if not name:
        raise ValueError("Society Name is empty")
    deregistered = _parse_date(row.get("Deregistration Date"))
    status = row.get("Society Status", "").strip()
    return _entry(
        "fca_mutuals",
        number=full.replace(" ", "") or f"{int(number)}{suffix}",
        name=name,
        postcode=_postcode(row.get("Society Address")),
        status=status,
        current=deregistered is None and status.lower() == "registered",
        category=row.get("Registered As", "").strip() or None,
        sic=re.findall(r"\d{4,5}", row.get("Standard Industrial Classification Code (SIC)", "")),
        incorporated=_parse_date(row.get("Registration Date")),
        removed=deregistered,
        linked_number=str(int(number)),
    )


def load_fca_mutuals(paths: Sequence[Path], store_dir: Path, workdir: Path, version: str | None = None) -> LoadSummary:
    notes = _Notes()
    sources: list[dict[str, str]] = []
    dates: set[str] = set()

    def frames() -> Iterator[pl.DataFrame]:
        for path in paths:
            sources.append({"name": path.name, "sha256": _sha256(path)})
            for source, plain in _open_text(path, workdir, (".csv",)):
                batch = []
                for index, row in _iter_csv(plain, source, FCA_REQUIRED, notes):
                    try:
                        entry = _fca_row(row)
                    except ValueError as exc:
                        notes.add(source, index, str(exc), row.get("Society Number", ""))
                        continue
                    batch.append(entry)
                    for when in (entry["incorporated"], entry["removed"]):
                        if when is not None:
                            dates.add(when.isoformat())
                yield _rows_frame(batch)

    # SocietyList.csv carries no extract date: use the caller's (e.g. the download date) or the latest
    # registration/deregistration date in the file, which is a lower bound on when it was extracted.
    if version:
        return _load_batched(
            "fca_mutuals", frames, store_dir, workdir, notes, sources, {version}, "given"
        )  # the given date wins over any found
    return _load_batched("fca_mutuals", frames, store_dir, workdir, notes, sources, dates, "latest date in data")


# ---------------------------------------------------------------------------------------------------------------


def load_register(
    kind: RegisterKind, paths: Sequence[Path | str], store_dir: Path | str, *, version: str | None = None
) -> LoadSummary:
    """Load one register's downloaded files into ``<store_dir>/<kind>.parquet``, replacing it atomically.

    ``version`` is only used for the FCA list, which carries no date of its own.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise RegisterError("no files given")
    for path in files:
        if not path.is_file():
            raise RegisterError(f"{path} is not a file")
    store = Path(store_dir)
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{kind}-work-", dir=store) as work:
        workdir = Path(work)
        match kind:
            case "companies_house":
                return load_companies_house(files, store, workdir)
            case "ccew":
                return load_ccew(files, store, workdir)
            case "oscr":
                return load_oscr(files, store, workdir)
            case "fca_mutuals":
                return load_fca_mutuals(files, store, workdir, version)
    raise RegisterError(f"unknown register kind {kind!r}; expected one of {REGISTER_KINDS}")
