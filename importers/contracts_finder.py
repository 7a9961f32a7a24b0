"""Contracts Finder OCDS search client (``/Published/Notices/OCDS/Search``).

CF answers HTTP 403 (an HTML "Forbidden - Contracts Finder" page) when requests come too fast; the
documentation says to wait 5 minutes, so 403 is throttling here, not a permissions error.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx

from importers.http import Checkpoint, FeedSpec, Page, RetryPolicy, Sleep, iter_feed, retry_after_seconds

BASE_URL = "https://www.contractsfinder.service.gov.uk"
SOURCE = "contracts_finder"


def _throttle_wait(policy: RetryPolicy, response: httpx.Response) -> float:
    if response.status_code == 429:
        return retry_after_seconds(response) or policy.rate_limit_wait_s
    return policy.throttle_wait_s


CONTRACTS_FINDER = FeedSpec(
    name="Contracts Finder",
    path="/Published/Notices/OCDS/Search",
    from_param="publishedFrom",
    to_param="publishedTo",
    throttle_statuses=frozenset({403, 429}),
    throttle_wait=_throttle_wait,
)


async def iter_contracts_finder(
    client: httpx.AsyncClient,
    start: datetime,
    end: datetime,
    *,
    window: timedelta = timedelta(days=15),
    resume: Checkpoint | None = None,
    policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen dataclass, safe as a default
    base_url: str = BASE_URL,
    sleep: Sleep = asyncio.sleep,
) -> AsyncIterator[Page]:
    """Pages of CF releases published in [start, end), in ``window``-sized windows (publishedFrom/To)."""
    async for page in iter_feed(
        client,
        CONTRACTS_FINDER,
        start,
        end,
        window=window,
        resume=resume,
        policy=policy,
        base_url=base_url,
        sleep=sleep,
    ):
        yield page
