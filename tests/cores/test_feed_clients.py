"""The CF and FTS clients against a real local HTTP server that injects faults (tests/support/feedserver.py).

Every fault run is compared with a clean run: same releases, none lost or duplicated, and anything that
could not be read is a Note naming the URL or the release.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from importers.contracts_finder import CONTRACTS_FINDER
from importers.files import iter_releases_from_file
from importers.find_a_tender import FIND_A_TENDER
from importers.http import Checkpoint, FeedError, Page, RetryPolicy, iter_feed
from importers.ocds import Note, canonical_json
from tests.support.feedserver import CF_RELEASES_2025, RunningFeedServer, running_feed_server

# 100 releases on 2025-01-23 and 80 on 2025-03-11: four 15-day windows, two of them empty.
START = datetime(2025, 1, 20, tzinfo=UTC)
END = datetime(2025, 3, 12, tzinfo=UTC)
FAST = RetryPolicy(max_retries=3, timeout_s=5.0)
Key = tuple[str, str]
# FTS: 6-hour windows over 2025-03-11, whose 80 releases all fall between 06:00 and 18:00 UTC.
FTS_START = datetime(2025, 3, 11, tzinfo=UTC)


@dataclass
class Run:
    pages: list[Page]
    waits: list[float]
    releases: dict[Key, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0

    @property
    def notes(self) -> list[Note]:
        return [n for p in self.pages for n in p.notes]


async def _run(
    server: RunningFeedServer,
    feed: str = "cf",
    policy: RetryPolicy = FAST,
    start: datetime = START,
    end: datetime = END,
    window: timedelta = timedelta(days=15),
    resume: Checkpoint | None = None,
    max_pages: int | None = None,
) -> Run:
    waits: list[float] = []

    async def fast_sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    run = Run([], waits)
    async with httpx.AsyncClient() as client:
        pages = iter_feed(
            client,
            CONTRACTS_FINDER if feed == "cf" else FIND_A_TENDER,
            start,
            end,
            window=window,
            resume=resume,
            policy=policy,
            base_url=server.base_url,
            sleep=fast_sleep,
        )
        async for page in pages:
            run.pages.append(page)
            for release in page.releases:
                key = (release["ocid"], release["id"])
                run.duplicates += key in run.releases
                run.releases[key] = release
            if max_pages is not None and len(run.pages) >= max_pages:
                break
    return run


@pytest.fixture(scope="module")
def clean_cf() -> Run:
    with running_feed_server({"page_size": 25}) as server:
        run = asyncio.run(_run(server))
        assert server.max_in_flight() == 1
        return run


@pytest.fixture(scope="module")
def clean_fts() -> Run:
    with running_feed_server({"page_size": 25}) as server:
        return asyncio.run(_run(server, feed="fts", window=timedelta(hours=6), start=FTS_START))


def _targets(server: RunningFeedServer) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(r.target).query) for r in server.requests]


def test_clean_run_equals_the_sample_file(clean_cf: Run) -> None:
    from_file = {(r["ocid"], r["id"]): r for i in iter_releases_from_file(CF_RELEASES_2025) if (r := i.release)}
    print(f"clean CF run: {len(clean_cf.pages)} pages, {len(clean_cf.releases)} releases")
    assert len(clean_cf.releases) == 180
    assert clean_cf.duplicates == 0
    assert clean_cf.releases == from_file
    assert clean_cf.notes == [n for n in clean_cf.notes if "double-encoded" in n.message]
    assert clean_cf.waits == []
    assert clean_cf.pages[-1].checkpoint_after is None
    amounts = [a["value"]["amount"] for r in clean_cf.releases.values() for a in r.get("awards", []) if "value" in a]
    assert Decimal("3036.96") in amounts
    assert not any(isinstance(a, float) for a in amounts)


async def test_request_shape_and_one_request_at_a_time() -> None:
    with running_feed_server({"page_size": 25}) as server:
        run = await _run(server)
        requests = _targets(server)
        assert server.max_in_flight() == 1
    first = requests[0]
    assert "cursor" not in first
    assert first["limit"] == ["100"]
    assert first["publishedFrom"] == ["2025-01-20T00:00:00"]
    assert first["publishedTo"] == ["2025-02-04T00:00:00"]
    # 4 pages in window 1, an empty window 2, an empty window 3, 4 pages in window 4.
    assert len(requests) == 10
    assert "cursor" in requests[1]
    assert [p.url for p in run.pages][1] == server.base_url + server.requests[1].target


async def test_cf_403_bursts_wait_the_throttle_time(clean_cf: Run) -> None:
    policy = RetryPolicy(max_retries=3, throttle_wait_s=300.0)
    script = {
        "page_size": 25,
        "faults": [
            {"kind": "status", "status": 403, "requests": [2, 3]},
            {"kind": "status", "status": 403, "requests": [7]},
        ],
    }
    with running_feed_server(script) as server:
        run = await _run(server, policy=policy)
        statuses = [r.status for r in server.requests]
    assert statuses.count(403) == 3
    assert run.waits == [300.0, 300.0, 300.0]
    assert run.releases == clean_cf.releases
    assert run.duplicates == 0


async def test_cf_403_forever_raises_feed_error() -> None:
    script = {"faults": [{"kind": "status", "status": 403}]}
    with running_feed_server(script) as server:
        with pytest.raises(FeedError, match=r"gave up .* after 3 attempts: HTTP 403"):
            await _run(server, policy=RetryPolicy(max_retries=2))
        assert len(server.requests) == 3


async def test_other_client_errors_are_not_retried() -> None:
    script = {"faults": [{"kind": "status", "status": 400, "body": '{"code":"ValidationError"}'}]}
    with running_feed_server(script) as server:
        with pytest.raises(FeedError, match="HTTP 400"):
            await _run(server)
        assert len(server.requests) == 1


async def test_fts_429_uses_retry_after_else_the_rate_limit_wait(clean_fts: Run) -> None:
    policy = RetryPolicy(max_retries=3, rate_limit_wait_s=30.0)
    script = {
        "page_size": 25,
        "faults": [
            {"kind": "status", "status": 429, "requests": [3], "headers": {"Retry-After": "7"}},
            {"kind": "status", "status": 429, "requests": [5, 6]},
        ],
    }
    with running_feed_server(script) as server:
        run = await _run(server, feed="fts", policy=policy, window=timedelta(hours=6), start=FTS_START)
        assert server.max_in_flight() == 1
        first = _targets(server)[0]
    assert first["updatedFrom"] == ["2025-03-11T00:00:00"]
    assert first["updatedTo"] == ["2025-03-11T06:00:00"]
    assert run.waits == [7.0, 30.0, 30.0]
    assert run.releases == clean_fts.releases
    assert len(clean_fts.releases) == 80


async def test_5xx_back_off_exponentially(clean_cf: Run) -> None:
    policy = RetryPolicy(max_retries=4, backoff_base_s=2.0, backoff_max_s=5.0)
    script = {
        "page_size": 25,
        "faults": [
            {"kind": "status", "status": 503, "requests": [1, 2]},
            {"kind": "status", "status": 504, "requests": [3]},
        ],
    }
    with running_feed_server(script) as server:
        run = await _run(server, policy=policy)
    assert run.waits == [2.0, 4.0, 5.0]
    assert run.releases == clean_cf.releases


async def test_slow_response_times_out_and_is_retried(clean_cf: Run) -> None:
    policy = RetryPolicy(max_retries=3, timeout_s=0.3)
    script = {"page_size": 25, "faults": [{"kind": "slow", "delay_s": 1.0, "requests": [2]}]}
    with running_feed_server(script) as server:
        run = await _run(server, policy=policy)
        assert server.requests[1].fault == "slow"
    assert run.waits == [2.0]
    assert run.releases == clean_cf.releases
    assert run.duplicates == 0


@pytest.mark.parametrize("mode", ["json", "connection"])
async def test_truncated_body_is_retried(clean_cf: Run, mode: str) -> None:
    script = {"page_size": 25, "faults": [{"kind": "truncate", "mode": mode, "requests": [2, 6]}]}
    with running_feed_server(script) as server:
        run = await _run(server)
    assert run.releases == clean_cf.releases
    assert len(run.waits) == 2


async def test_body_that_stays_broken_becomes_a_page_note_and_the_next_window_goes_on(clean_cf: Run) -> None:
    # Every attempt at the second page of the first window is cut short.
    with running_feed_server({"page_size": 25}) as probe:
        await _run(probe, max_pages=2)
        second_url = probe.requests[1].target
    cursor = second_url.split("cursor=", 1)[1]  # as sent, still URL-encoded
    script = {"page_size": 25, "faults": [{"kind": "truncate", "match": cursor}]}
    with running_feed_server(script) as server:
        run = await _run(server, policy=RetryPolicy(max_retries=2))
    errors = [n for n in run.notes if n.level == "error"]
    assert len(errors) == 1
    assert errors[0].path is not None
    assert cursor in errors[0].path
    assert "rest of this window was skipped" in errors[0].message
    # Window 1 keeps only its first page; window 4 (80 releases) is complete.
    assert len(run.releases) == 25 + 80
    assert set(run.releases) <= set(clean_cf.releases)
    broken_page = next(p for p in run.pages if p.url.endswith(cursor))
    assert broken_page.releases == []
    assert broken_page.checkpoint_after is not None
    assert broken_page.checkpoint_after.next_url is None


@pytest.mark.parametrize("kind", ["bad_utf8", "double_encoded"])
async def test_encoding_damage_is_repaired(clean_cf: Run, kind: str) -> None:
    script = {"page_size": 25, "faults": [{"kind": kind}]}
    with running_feed_server(script) as server:
        run = await _run(server)
    assert run.releases == clean_cf.releases
    assert any("invalid UTF-8" in n.message or "double-encoded" in n.message for n in run.notes)


async def test_fts_invalid_numbers(clean_fts: Run) -> None:
    script = {
        "page_size": 25,
        "faults": [
            {"kind": "bad_numbers", "huge": 1, "match": "updatedFrom=2025-03-11T06", "count": 1},
            {"kind": "bad_numbers"},
        ],
    }
    with running_feed_server(script) as server:
        run = await _run(server, feed="fts", window=timedelta(hours=6), start=FTS_START)
    assert set(run.releases) == set(clean_fts.releases)
    changed = [k for k in run.releases if run.releases[k] != clean_fts.releases[k]]
    assert len(changed) == 1
    # The first non-zero amount of that page (a tender or award value) now reads 9999999, as kingfisher does.
    assert b'"amount":9999999' in canonical_json(run.releases[changed[0]])
    assert b'"amount":9999999' not in canonical_json(clean_fts.releases[changed[0]])
    assert any("1e9999" in n.message for n in run.notes)
    assert any("leading zeros" in n.message for n in run.notes)


async def test_page_without_next_moves_on_and_a_full_page_is_flagged(clean_cf: Run) -> None:
    # One 60-day window holds all 180 releases: pages of 100 and 80. The first loses links.next.
    script = {"page_size": 100, "faults": [{"kind": "no_next", "requests": [1]}]}
    with running_feed_server(script) as server:
        run = await _run(server, window=timedelta(days=60))
        assert len(server.requests) == 1
    assert len(run.releases) == 100
    [gap] = [n for n in run.notes if "without links.next" in n.message]
    assert gap.path == run.pages[0].url


async def test_repeated_next_link_does_not_loop(clean_cf: Run) -> None:
    script = {"page_size": 25, "faults": [{"kind": "repeat_next", "requests": [2]}]}
    with running_feed_server(script) as server:
        run = await _run(server)
        targets = [r.target for r in server.requests]
    assert len(targets) == len(set(targets))
    [loop] = [n for n in run.notes if "repeats an already-fetched page" in n.message]
    assert loop.value == run.pages[1].url
    # Window 1 stopped after its second page; the last window is complete.
    assert len(run.releases) == 50 + 80
    assert set(run.releases) <= set(clean_cf.releases)


async def test_release_without_ocid_or_id_is_a_note_and_only_it_is_skipped(clean_cf: Run) -> None:
    script = {
        "page_size": 25,
        "faults": [
            {"kind": "drop_ids", "n": 2, "requests": [1]},
            {"kind": "drop_ids", "n": 1, "both": True, "requests": [7]},
        ],
    }
    with running_feed_server(script) as server:
        run = await _run(server)
    missing = set(clean_cf.releases) - set(run.releases)
    assert len(missing) == 3
    assert set(run.releases) <= set(clean_cf.releases)
    skipped = [n for n in run.notes if "skipped" in n.message]
    assert [n.message.split(" (")[0] for n in skipped] == [
        "release without ocid; skipped",
        "release without ocid; skipped",
        "release without ocid and id; skipped",
    ]
    # The two that kept their id are named by it.
    assert {n.release_id for n in skipped if n.release_id} < {rid for _, rid in missing}
    assert all(n.path and n.path.startswith(server.base_url) for n in skipped)


async def test_resume_from_a_checkpoint_starts_at_its_url(clean_cf: Run) -> None:
    with running_feed_server({"page_size": 25}) as server:
        first = await _run(server, max_pages=2)
        checkpoint = first.pages[-1].checkpoint_after
        assert checkpoint is not None
        assert checkpoint.next_url is not None
        already = len(server.requests)
        second = await _run(server, resume=checkpoint)
        resumed_first = server.base_url + server.requests[already].target
    assert resumed_first == checkpoint.next_url
    assert set(first.releases).isdisjoint(second.releases)
    assert {**first.releases, **second.releases} == clean_cf.releases


async def test_min_interval_paces_every_request() -> None:
    with running_feed_server({"page_size": 25}) as server:
        run = await _run(server, policy=RetryPolicy(min_interval_s=10.0))
        count = len(server.requests)
    assert len(run.waits) == count - 1
    assert all(0 < w <= 10.0 for w in run.waits)


async def test_naive_datetimes_are_refused() -> None:
    with running_feed_server() as server, pytest.raises(ValueError, match="timezone-aware"):
        await _run(server, start=datetime(2025, 1, 20))
