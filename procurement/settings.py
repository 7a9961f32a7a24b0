"""Settings read once from the environment.

Tests set the environment before the first call, because the result is cached.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///localvalue.db"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
SECRET_FILE = ".localvalue-secret"  # noqa: S105 - the file name, not the secret


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        msg = f"environment variable {name} must be an integer, got {raw!r}"
        raise ValueError(msg) from exc


def _fraction(name: str, default: str) -> Decimal:
    raw = os.environ.get(name, "").strip() or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(1):
        msg = f"environment variable {name} must be a fraction from 0 to 1 such as 0.50, got {raw!r}"
        raise ValueError(msg)
    return value


def _bool(name: str, *, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _beside(database_url: str, work_dir: Path) -> Path:
    """`registers/` beside an SQLite database file, else in the work folder."""
    prefix = "sqlite+aiosqlite:///"
    if database_url.startswith(prefix) and ":memory:" not in database_url:
        return Path(database_url.removeprefix(prefix).split("?")[0]).expanduser().resolve().parent / "registers"
    return work_dir / "registers"


@dataclass(frozen=True)
class Settings:
    database_url: str
    debug: bool
    echo_sql: bool
    max_body_bytes: int
    page_size_default: int
    page_size_max: int
    work_dir: Path
    # Where `localvalue registers load` keeps the supplier registers (parquet files with their manifests).
    registers_dir: Path
    # Who answers accessibility questions, named on /accessibility-statement (a legal requirement).
    accessibility_contact: str
    # A share judged on less of the value than this (a fraction) is published as "not known", never as 0%.
    coverage_threshold: Decimal
    # Where people reach the service; set-password links start with it. https:// makes cookies Secure.
    base_url: str = DEFAULT_BASE_URL
    cookie_secure: bool = False
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    # Signs CSRF tokens; when unset, one is generated and kept in the work folder (see ``secret_key``).
    secret: str | None = None
    # Strict-Transport-Security only when the service is reached over HTTPS (LOCALVALUE_HSTS=true): sent over plain
    # HTTP on a laptop it would make the browser refuse http://127.0.0.1 for a year.
    hsts: bool = False
    # An upload checked but neither saved nor discarded is deleted (file and draft) after this many hours.
    upload_max_age_hours: int = 24
    # Copies the service can rebuild from the database (the contract lines as Arrow files); default work_dir/cache.
    cache_dir: Path | None = None

    @property
    def dialect(self) -> str:
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"

    @classmethod
    def from_env(cls) -> Settings:
        base_url = (os.environ.get("LOCALVALUE_BASE_URL", "").strip() or DEFAULT_BASE_URL).rstrip("/")
        database_url = os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
        work_dir = Path(os.environ.get("LOCALVALUE_WORK_DIR", ".")).resolve()
        return cls(
            database_url=database_url,
            debug=_bool("LOCALVALUE_DEBUG", default=False),
            echo_sql=_bool("LOCALVALUE_ECHO_SQL", default=False),
            max_body_bytes=_int("LOCALVALUE_MAX_BODY_BYTES", 1_048_576),
            page_size_default=_int("LOCALVALUE_PAGE_SIZE", 50),
            page_size_max=_int("LOCALVALUE_PAGE_SIZE_MAX", 200),
            work_dir=work_dir,
            registers_dir=Path(
                os.environ.get("LOCALVALUE_REGISTERS_DIR", "").strip() or _beside(database_url, work_dir)
            )
            .expanduser()
            .resolve(),
            accessibility_contact=os.environ.get("LOCALVALUE_ACCESSIBILITY_CONTACT", "").strip()
            or "accessibility@localvalue.example",
            coverage_threshold=_fraction("LOCALVALUE_COVERAGE_THRESHOLD", "0.50"),
            base_url=base_url,
            cookie_secure=_bool("LOCALVALUE_COOKIE_SECURE", default=base_url.startswith("https://")),
            session_idle_minutes=_int("LOCALVALUE_SESSION_IDLE_MINUTES", 30),
            session_absolute_hours=_int("LOCALVALUE_SESSION_HOURS", 12),
            secret=os.environ.get("LOCALVALUE_SECRET", "").strip() or None,
            hsts=_bool("LOCALVALUE_HSTS", default=False),
            upload_max_age_hours=_int("LOCALVALUE_UPLOAD_MAX_AGE_HOURS", 24),
            cache_dir=Path(os.environ.get("LOCALVALUE_CACHE_DIR", "").strip() or work_dir / "cache")
            .expanduser()
            .resolve(),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()


def secret_key(settings: Settings) -> str:
    """LOCALVALUE_SECRET, or the one generated into the work folder on first run (so restarts keep forms
    valid); several workers on one host share the file."""
    if settings.secret:
        return settings.secret
    path = settings.work_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_text(encoding="utf-8").strip()
