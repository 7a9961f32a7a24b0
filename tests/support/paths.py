"""Where tests and benchmarks find the repository and its fixtures.

Everything they read is inside the repository (a bare clone passes); each fixture folder has a SOURCES.md
naming where its files came from and their licence.
"""

from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_DIR / "tests" / "fixtures"
FEEDS_DIR = FIXTURES_DIR / "feeds"
GEO_DIR = FIXTURES_DIR / "geo"
SOCIAL_VALUE_DIR = FIXTURES_DIR / "social-value"
