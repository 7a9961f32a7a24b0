"""Where tests find the repository, its fixtures and the shared reference material.

Tests and benchmarks may read ../shared; the product never does.
"""

from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_DIR / "tests" / "fixtures"
SHARED_DIR = REPO_DIR.parent / "shared"
SHARED_DATA = SHARED_DIR / "data"
FEEDS_DIR = SHARED_DATA / "feeds"
GEO_DIR = SHARED_DATA / "geo"
SOCIAL_VALUE_DIR = SHARED_DATA / "social-value"
