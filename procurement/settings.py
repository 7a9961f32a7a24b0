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


@dataclass(frozen=True)
class Settings:
    database_url: str
    debug: bool
    echo_sql: bool
    max_body_bytes: int
    page_size_default: int
    page_size_max: int
    work_dir: Path
    # Who answers accessibility questions, named on /accessibility-statement (a legal requirement).
    accessibility_contact: str
    # Strict-Transport-Security only when the service is reached over HTTPS (LOCALVALUE_HSTS=true): sent over plain
    # HTTP on a laptop it would make the browser refuse http://127.0.0.1 for a year.
    hsts: bool = False

    @property
    def dialect(self) -> str:
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
            debug=_bool("LOCALVALUE_DEBUG", default=False),
            echo_sql=_bool("LOCALVALUE_ECHO_SQL", default=False),
            max_body_bytes=_int("LOCALVALUE_MAX_BODY_BYTES", 1_048_576),
            page_size_default=_int("LOCALVALUE_PAGE_SIZE", 50),
            page_size_max=_int("LOCALVALUE_PAGE_SIZE_MAX", 200),
            work_dir=Path(os.environ.get("LOCALVALUE_WORK_DIR", ".")).resolve(),
            accessibility_contact=os.environ.get("LOCALVALUE_ACCESSIBILITY_CONTACT", "").strip()
            or "accessibility@localvalue.example",
            hsts=_bool("LOCALVALUE_HSTS", default=False),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
