"""Settings read once from the environment.

Tests set the environment before the first call, because the result is cached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///localvalue.db"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        msg = f"environment variable {name} must be an integer, got {raw!r}"
        raise ValueError(msg) from exc


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

    @property
    def dialect(self) -> str:
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"

    @classmethod
    def from_env(cls) -> Settings:
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
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
