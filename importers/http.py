"""The shared machinery of the two OCDS feed clients: date windows, cursor paging, retries, pacing.

One request at a time, always: both services throttle hard (CF answers 403, FTS 429) and kingfisher-collect
runs both with a single concurrent request.

Resuming: every ``Page`` carries ``checkpoint_after``, the place to restart from once that page has been
stored. Store the page and its checkpoint together; after a crash, pass the last stored checkpoint as
``resume`` and nothing is fetched twice or skipped (except the page being stored at the crash, which is
fetched again - upserts by (ocid, release id) make that harmless).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from importers.decoding import load_json_lenient
from importers.ocds import ERROR, WARNING, Note, release_identity

Sleep = Callable[[float], Awaitable[None]]
PAGE_LIMIT = 100


@dataclass(frozen=True)
class RetryPolicy:
    throttle_wait_s: float = 300.0  # CF 403 = throttling ("wait 5 minutes", CF docs)
    rate_limit_wait_s: float = 30.0  # FTS 429 without Retry-After (none sent since Dec 2025)
    max_retries: int = 5
    backoff_base_s: float = 2.0
    backoff_max_s: float = 120.0
    timeout_s: float = 60.0
    min_interval_s: float = 0.0  # polite pacing between requests (FTS: 10 s in production)

    def backoff(self, attempt: int) -> float:
        """Exponential back-off before retry number ``attempt`` (1-based)."""
        return float(min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Checkpoint:
    """Resume point: the window being read, and the ``links.next`` URL to fetch next (None = window start)."""

    window_start: datetime
    window_end: datetime
    next_url: str | None


@dataclass(frozen=True)
class Page:
    checkpoint_after: Checkpoint | None  # where to resume AFTER this page is stored; None = whole range done
    url: str
    releases: list[dict[str, Any]]
    notes: list[Note]
    window_start: datetime
    window_end: datetime


class FeedError(Exception):
    """The feed could not be read (retries exhausted, or a response that retrying cannot fix)."""


@dataclass(frozen=True)
class FeedSpec:
    """What differs between the two services."""

    name: str
    path: str
    from_param: str
    to_param: str
    throttle_statuses: frozenset[int]  # statuses meaning "slow down", answered by waiting
    throttle_wait: Callable[[RetryPolicy, httpx.Response], float]
    extra_params: tuple[tuple[str, str], ...] = field(default=())


def format_window_time(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` in UTC, the 19-character form both APIs accept."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), if present and sane."""
    header = response.headers.get("Retry-After")
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def iter_windows(start: datetime, end: datetime, window: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive [from, to) windows covering [start, end); the last one is cut at ``end``."""
    current = start
    while current < end:
        upper = min(current + window, end)
        yield current, upper
        current = upper


def _require_aware(**values: datetime) -> None:
    for name, value in values.items():
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass
class _Fetched:
    package: dict[str, Any] | None
    notes: list[Note]


class _Fetcher:
    """GETs one URL with the retry policy; pacing covers every request, retries included."""

    def __init__(self, client: httpx.AsyncClient, spec: FeedSpec, policy: RetryPolicy, sleep: Sleep) -> None:
        self.client = client
        self.spec = spec
        self.policy = policy
        self.sleep = sleep
        self._last_request: float | None = None

    async def _pace(self) -> None:
        if self.policy.min_interval_s > 0 and self._last_request is not None:
            wait = self.policy.min_interval_s - (time.monotonic() - self._last_request)
            if wait > 0:
                await self.sleep(wait)
        self._last_request = time.monotonic()

    async def fetch(self, url: str) -> _Fetched:
        """The parsed package, or ``package=None`` with a note when the body stays broken.

        Raises ``FeedError`` when throttling, server errors or timeouts outlast the retries, or on a
        client error (4xx other than throttling) that no retry can fix.
        """
        failures: list[str] = []
        body_problems = 0
        for attempt in range(1, self.policy.max_retries + 2):
            await self._pace()
            outcome = await self._attempt(url, attempt)
            if isinstance(outcome, _Fetched):
                return outcome
            failure, wait, body_problem = outcome
            failures.append(failure)
            body_problems += body_problem
            if attempt <= self.policy.max_retries:
                await self.sleep(wait)
        summary = "; ".join(failures)
        if body_problems == len(failures):
            # The server answers but the body stays broken: skip this page, keep going, and say so.
            message = (
                f"page could not be read after {len(failures)} attempts; the rest of this window was skipped "
                f"({url}: {summary})"
            )
            return _Fetched(None, [Note(ERROR, message, path=url, value=url)])
        raise FeedError(f"{self.spec.name}: gave up on {url} after {len(failures)} attempts: {summary}")

    async def _attempt(self, url: str, attempt: int) -> "_Fetched | tuple[str, float, bool]":
        """One GET: the page, or (what went wrong, seconds to wait, whether it was a broken body)."""
        policy = self.policy
        try:
            response = await self.client.get(url, timeout=policy.timeout_s)
        except httpx.TransportError as exc:  # includes timeouts
            # A body cut short by the server (RemoteProtocolError) is a broken page, like an unparseable one.
            return (
                f"{type(exc).__name__}: {exc}",
                policy.backoff(attempt),
                isinstance(exc, httpx.RemoteProtocolError),
            )
        return self._judge(url, response, attempt)

    def _judge(self, url: str, response: httpx.Response, attempt: int) -> "_Fetched | tuple[str, float, bool]":
        policy = self.policy
        status = response.status_code
        if status in self.spec.throttle_statuses:
            return f"HTTP {status} (throttled)", self.spec.throttle_wait(policy, response), False
        if status >= 500:
            return f"HTTP {status}", retry_after_seconds(response) or policy.backoff(attempt), False
        if status != 200:
            snippet = response.text[:200].replace("\n", " ")
            raise FeedError(f"{self.spec.name}: HTTP {status} for {url}: {snippet}")
        try:
            package, fix_notes = load_json_lenient(response.content)
        except ValueError as exc:
            return f"unparseable body ({len(response.content)} bytes: {exc})", policy.backoff(attempt), True
        if not isinstance(package, dict) or not isinstance(package.get("releases"), list):
            return "body is JSON but not a release package", policy.backoff(attempt), True
        notes = [Note(WARNING, f"{message} in {url}", path=url) for message in fix_notes]
        return _Fetched(package, notes)


def _first_url(base_url: str, spec: FeedSpec, window_start: datetime, window_end: datetime) -> str:
    params = [
        *spec.extra_params,
        (spec.from_param, format_window_time(window_start)),
        (spec.to_param, format_window_time(window_end)),
        ("limit", str(PAGE_LIMIT)),
    ]
    return f"{base_url.rstrip('/')}{spec.path}?{urlencode(params)}"


def _releases_of(package: dict[str, Any], url: str) -> tuple[list[dict[str, Any]], list[Note]]:
    releases: list[dict[str, Any]] = []
    notes: list[Note] = []
    for index, release in enumerate(package["releases"]):
        identity, note = release_identity(release)
        if identity is None:
            assert note is not None
            notes.append(
                Note(
                    note.level,
                    f"{note.message} (releases[{index}] of {url})",
                    note.ocid,
                    note.release_id,
                    path=url,
                    value=note.value,
                )
            )
            continue
        releases.append(release)
    return releases, notes


async def iter_feed(
    client: httpx.AsyncClient,
    spec: FeedSpec,
    start: datetime,
    end: datetime,
    *,
    window: timedelta,
    resume: Checkpoint | None,
    policy: RetryPolicy,
    base_url: str,
    sleep: Sleep = asyncio.sleep,
) -> AsyncIterator[Page]:
    """Pages of releases for [start, end), window by window, following ``links.next`` verbatim."""
    _require_aware(start=start, end=end)
    if window <= timedelta(0):
        raise ValueError("window must be positive")
    windows: list[tuple[datetime, datetime]]
    next_url: str | None = None
    if resume is not None:
        _require_aware(window_start=resume.window_start, window_end=resume.window_end)
        windows = [(resume.window_start, resume.window_end), *iter_windows(resume.window_end, end, window)]
        next_url = resume.next_url
    else:
        windows = list(iter_windows(start, end, window))
    fetcher = _Fetcher(client, spec, policy, sleep)

    for index, (window_start, window_end) in enumerate(windows):
        following = windows[index + 1] if index + 1 < len(windows) else None
        after_window = Checkpoint(following[0], following[1], None) if following else None
        url = next_url or _first_url(base_url, spec, window_start, window_end)
        next_url = None
        seen: set[str] = set()
        while True:
            seen.add(url)
            fetched = await fetcher.fetch(url)
            notes = list(fetched.notes)
            if fetched.package is None:
                yield Page(after_window, url, [], notes, window_start, window_end)
                break
            releases, release_notes = _releases_of(fetched.package, url)
            notes.extend(release_notes)
            links = fetched.package.get("links")
            link = links.get("next") if isinstance(links, dict) else None
            following_url = link.strip() if isinstance(link, str) and link.strip() else None
            if following_url is not None and following_url in seen:
                notes.append(
                    Note(
                        ERROR,
                        f"links.next repeats an already-fetched page; the rest of this window was skipped ({url})",
                        path=url,
                        value=following_url,
                    )
                )
                following_url = None
            elif following_url is None and len(fetched.package["releases"]) >= PAGE_LIMIT:
                # FTS has dropped links.next mid-window (kingfisher-collect #1306): releases may be missing.
                notes.append(
                    Note(
                        WARNING,
                        f"full page without links.next; releases after it in this window may be missing ({url})",
                        path=url,
                    )
                )
            checkpoint = Checkpoint(window_start, window_end, following_url) if following_url else after_window
            yield Page(checkpoint, url, releases, notes, window_start, window_end)
            if following_url is None:
                break
            url = following_url
