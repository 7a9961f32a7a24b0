"""Evidence files for returns: an allow-list of types, checked on the bytes (not the name or the browser's word),
a size limit, the sha256 kept, and a download that can never be rendered as a page."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal, InvalidOperation

from procurement.contracts.people_input import PeopleInputError, parse_quarter

MAX_EVIDENCE_BYTES = 5_000_000
# extension -> (content type served, magic bytes the file must start with; None = text checked below)
ALLOWED: dict[str, tuple[str, bytes | None]] = {
    "pdf": ("application/pdf", b"%PDF-"),
    "png": ("image/png", b"\x89PNG\r\n\x1a\n"),
    "jpg": ("image/jpeg", b"\xff\xd8\xff"),
    "jpeg": ("image/jpeg", b"\xff\xd8\xff"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK\x03\x04"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK\x03\x04"),
    "csv": ("text/csv", None),
    "txt": ("text/plain", None),
}
_ALLOWED_TEXT = "PDF, PNG, JPEG, Word (.docx), Excel (.xlsx), CSV or plain text"


def checked_evidence(data: bytes, filename: str) -> tuple[str, str, str]:
    """(safe file name, content type, sha256) for an allowed file, else a ValueError saying what is allowed."""
    name = re.sub(r"[^A-Za-z0-9._ -]+", "_", filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip(" .")[:200]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if not data:
        raise ValueError(f"{filename!r} is empty: choose the evidence file again")
    if len(data) > MAX_EVIDENCE_BYTES:
        raise ValueError(f"{filename!r} is {len(data) / 1e6:.1f} MB: evidence files can be up to 5 MB")
    if extension not in ALLOWED:
        raise ValueError(f"{filename!r} is not an accepted type: upload a {_ALLOWED_TEXT} file")
    content_type, magic = ALLOWED[extension]
    if magic is not None and not data.startswith(magic):
        raise ValueError(f"{filename!r} is not really a .{extension} file: save it again as {extension.upper()}")
    if magic is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{filename!r} is not a text file: save it as UTF-8 text or CSV") from None
        if "\x00" in text or re.search(r"<\s*(html|script|svg)", text, re.IGNORECASE):
            raise ValueError(
                f"{filename!r} looks like a web page, not {extension.upper()}: upload a {_ALLOWED_TEXT} file"
            )
    return name or f"evidence.{extension}", content_type, hashlib.sha256(data).hexdigest()


def parse_targets(text: str) -> list[tuple[str, Decimal]]:
    """Quarterly targets typed one a line, "Q1 2025/26: 10" or "2025Q1 10" -> [("2025Q1", Decimal("10"))]."""
    targets = []
    for line in (ln.strip() for ln in text.splitlines()):
        if not line:
            continue
        match = re.fullmatch(r"(.+?)\s*[:=,]?\s+([\d,]+(?:\.\d+)?)", line)
        if match is None:
            raise PeopleInputError(f"Write each target as a quarter and an amount, like Q1 2025/26: 10 (not {line!r})")
        period = parse_quarter(match[1], field="the target's quarter")
        try:
            quantity = Decimal(match[2].replace(",", ""))
        except InvalidOperation:  # pragma: no cover - the pattern admits only digits
            raise PeopleInputError(f"{match[2]!r} is not a number") from None
        targets.append((period, quantity))
    if not targets:
        raise PeopleInputError("Enter at least one quarterly target, like Q1 2025/26: 10")
    return targets
