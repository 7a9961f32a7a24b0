"""Contracts Finder OCDS search (``/Published/Notices/OCDS/Search``): what `importers.http.iter_feed` needs to know.

CF answers HTTP 403 (an HTML "Forbidden - Contracts Finder" page) when requests come too fast; the
documentation says to wait 5 minutes, so 403 is throttling here, not a permissions error.
"""

import httpx

from importers.http import FeedSpec, RetryPolicy, retry_after_seconds

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
