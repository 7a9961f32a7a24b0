"""Find a Tender OCDS release packages (``/api/1.0/ocdsReleasePackages``): what `iter_feed` needs to know.

FTS answers HTTP 429 "12 request limit in 2 minute exceeded" (without Retry-After since Dec 2025) and
sometimes 503/504. It misses releases when windows are long, hence 6-hour windows; in production pace
requests with ``RetryPolicy(min_interval_s=10)`` as kingfisher-collect does. Its bodies have contained
invalid numbers (``1e9999``, ``000``), which ``load_json_lenient`` fixes before parsing.
"""

import httpx

from importers.http import FeedSpec, RetryPolicy, retry_after_seconds

BASE_URL = "https://www.find-tender.service.gov.uk"
SOURCE = "find_a_tender"
PRODUCTION_POLICY = RetryPolicy(min_interval_s=10.0)


def _throttle_wait(policy: RetryPolicy, response: httpx.Response) -> float:
    return retry_after_seconds(response) or policy.rate_limit_wait_s


FIND_A_TENDER = FeedSpec(
    name="Find a Tender",
    path="/api/1.0/ocdsReleasePackages",
    from_param="updatedFrom",
    to_param="updatedTo",
    throttle_statuses=frozenset({429}),
    throttle_wait=_throttle_wait,
)
