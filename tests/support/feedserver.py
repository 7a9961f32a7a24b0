"""A real local HTTP server that imitates the Contracts Finder and Find a Tender OCDS feeds, with faults.

It serves REAL releases (the shared samples) as release packages, newest first, filtered by the window
parameters, split into pages of ``page_size`` with base64 cursors and ``links.next`` like the real APIs.
A fault script decides which requests get a fault instead of (or on top of) the normal answer.

Endpoints
- ``GET /Published/Notices/OCDS/Search?publishedFrom=&publishedTo=&limit=&cursor=`` (CF)
- ``GET /api/1.0/ocdsReleasePackages?updatedFrom=&updatedTo=&limit=&cursor=`` (FTS)
- ``GET /_requests``: JSON list of the feed requests received so far (for a server in another process).

Window parameters are ``YYYY-MM-DDTHH:MM:SS`` (taken as UTC) or with an offset; a release is in the window
when ``from <= release.date < to`` so consecutive windows never share a release.

Data: CF serves the 180 releases of ``releases-2025-01-23_2025-03-11.json`` plus the 100 of
``ocds-search-page-2022-10-20.json``. FTS serves the one real FTS release plus the same 180 CF releases,
because no larger real FTS sample exists; they exercise the client's paging and fault handling.

Fault script (JSON object; every key optional)::

    {
      "page_size": 25,                       # releases per page (default 25)
      "faults": [                            # checked in order; the first rule that matches applies
        {
          "kind": "status",                  # see kinds below
          "requests": [2, 3],                # 1-based numbers of feed requests this rule hits, or
          "match": "cursor=",                # ... a substring of the request path+query, with
          "count": 2,                        # ... the first `count` matching requests (omit = all)
          "endpoint": "cf",                  # optional: "cf" or "fts" only
          ...kind-specific keys
        }
      ]
    }

Kinds:
- ``status``: answer ``status`` (e.g. 403, 429, 503, 504) with ``body`` (default: CF's HTML "Forbidden -
  Contracts Finder" page for 403, "12 request limit in 2 minute exceeded" for 429, "Service Unavailable"
  otherwise) and optional ``headers`` (e.g. ``{"Retry-After": "1"}``).
- ``slow``: sleep ``delay_s`` seconds (default 2.0) before answering normally.
- ``truncate``: send only ``fraction`` (default 0.5) of the page. ``mode`` ``"json"`` (default) sends a
  consistent Content-Length with broken JSON; ``"connection"`` announces the full length and closes early.
- ``bad_utf8``: the page with every 3-byte UTF-8 character sent as kingfisher-collect #1004 saw it (first
  byte double-encoded, the other two raw, e.g. ``\\xc3\\xa2\\x80\\x93`` for an en dash) and every other
  non-ASCII character in cp1252 where possible: invalid UTF-8 that decodes back to the same text.
- ``double_encoded``: the page's UTF-8 bytes read as cp1252 and encoded again (``Â£`` for ``£``).
- ``bad_numbers``: every ``"amount":0`` becomes ``"amount":000``; with ``"huge": N`` the first N non-zero
  ``"amount":<n>`` become ``"amount":1e9999`` (invalid JSON numbers, as FTS has sent).
- ``no_next``: the page is served without ``links.next``.
- ``repeat_next``: ``links.next`` is the URL of this very request (a page that points back to itself).
- ``drop_ids``: the first ``n`` (default 1) releases of the page lose their ``ocid`` (and ``id`` when
  ``both`` is true).

Run standalone: ``python -m tests.support.feedserver --port 8765 --fault-script '{"faults": []}'`` (or
``--fault-script @script.json``); it prints ``serving on http://127.0.0.1:PORT`` and serves until killed.
"""

import argparse
import base64
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgspec

from tests.support.paths import FEEDS_DIR

CF_PATH = "/Published/Notices/OCDS/Search"
FTS_PATH = "/api/1.0/ocdsReleasePackages"
CF_RELEASES_2025 = FEEDS_DIR / "contracts-finder" / "releases-2025-01-23_2025-03-11.json"
CF_PAGE_2022 = FEEDS_DIR / "contracts-finder" / "ocds-search-page-2022-10-20.json"
FTS_PACKAGE = FEEDS_DIR / "find-a-tender" / "release-package-032703-2026-tender.json"

FORBIDDEN_BODY = (
    "<html><head><title>Forbidden - Contracts Finder</title></head><body><h1>Request forbidden</h1>"
    "<p>The request rate limit may have been exceeded. Please wait 5 minutes before trying again.</p></body></html>"
)
RATE_LIMIT_BODY = "12 request limit in 2 minute exceeded"
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _load(path: Path) -> Any:
    return json.loads(path.read_bytes(), parse_float=Decimal)


def load_cf_releases() -> list[dict[str, Any]]:
    releases: list[dict[str, Any]] = list(_load(CF_RELEASES_2025))
    releases.extend(_load(CF_PAGE_2022)["releases"])
    return releases


def load_fts_releases() -> list[dict[str, Any]]:
    releases: list[dict[str, Any]] = list(_load(FTS_PACKAGE)["releases"])
    releases.extend(_load(CF_RELEASES_2025))
    return releases


def parse_param_time(text: str) -> datetime:
    value = text.strip().replace("Z", "+00:00").replace(" ", "+")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def release_instant(release: dict[str, Any]) -> datetime:
    return parse_param_time(str(release["date"]))


@dataclass
class RequestRecord:
    number: int
    endpoint: str
    target: str  # path + query, as received
    started: float
    finished: float = 0.0
    in_flight_at_start: int = 0
    status: int = 0
    fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "endpoint": self.endpoint,
            "target": self.target,
            "started": self.started,
            "finished": self.finished,
            "in_flight_at_start": self.in_flight_at_start,
            "status": self.status,
            "fault": self.fault,
        }


@dataclass
class FaultRule:
    spec: dict[str, Any]
    hits: int = 0

    def matches(self, number: int, endpoint: str, target: str) -> bool:
        spec = self.spec
        if spec.get("endpoint") and spec["endpoint"] != endpoint:
            return False
        if "requests" in spec:
            return number in spec["requests"]
        if "match" in spec and spec["match"] not in target:
            return False
        count = spec.get("count")
        return count is None or self.hits < count


@dataclass
class FeedState:
    script: dict[str, Any]
    datasets: dict[str, list[dict[str, Any]]]
    base_url: str = ""
    requests: list[RequestRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    rules: list[FaultRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rules = [FaultRule(dict(spec)) for spec in self.script.get("faults", [])]

    @property
    def page_size(self) -> int:
        return int(self.script.get("page_size", 25))

    def begin(self, endpoint: str, target: str) -> tuple[RequestRecord, dict[str, Any] | None]:
        with self.lock:
            record = RequestRecord(len(self.requests) + 1, endpoint, target, time.monotonic(), 0.0, self.in_flight)
            self.in_flight += 1
            self.requests.append(record)
            fault: dict[str, Any] | None = None
            for rule in self.rules:
                if rule.matches(record.number, endpoint, target):
                    rule.hits += 1
                    fault = rule.spec
                    record.fault = str(rule.spec.get("kind"))
                    break
            return record, fault

    def end(self, record: RequestRecord, status: int) -> None:
        with self.lock:
            self.in_flight -= 1
            record.status = status
            record.finished = time.monotonic()

    def max_in_flight(self) -> int:
        with self.lock:
            return max((r.in_flight_at_start for r in self.requests), default=0) + 1


def encode_cursor(params: dict[str, str], offset: int) -> str:
    """Like the real cursors: base64 of the filters plus an internal position."""
    parts = [f"{k}={v}" for k, v in params.items() if k != "cursor"] + [f"nextCursor={offset}"]
    return base64.b64encode("|".join(parts).encode()).decode()


def decode_cursor(cursor: str) -> int:
    text = base64.b64decode(cursor.encode()).decode()
    return int(text.rsplit("nextCursor=", 1)[1])


def build_page(state: FeedState, endpoint: str, path: str, params: dict[str, str]) -> dict[str, Any]:
    from_key, to_key = ("publishedFrom", "publishedTo") if endpoint == "cf" else ("updatedFrom", "updatedTo")
    releases = state.datasets[endpoint]
    lower = parse_param_time(params[from_key]) if from_key in params else None
    upper = parse_param_time(params[to_key]) if to_key in params else None
    selected = [
        r
        for r in releases
        if (lower is None or release_instant(r) >= lower) and (upper is None or release_instant(r) < upper)
    ]
    # Newest first, like the real APIs; ties in a stable order.
    selected.sort(key=lambda r: (release_instant(r), str(r.get("ocid")), str(r.get("id"))), reverse=True)
    size = min(state.page_size, int(params.get("limit", "100")))
    offset = decode_cursor(params["cursor"]) if "cursor" in params else 0
    chunk = selected[offset : offset + size]
    package: dict[str, Any] = {
        "uri": f"{state.base_url}{path}?{urlencode(params)}",
        "version": "1.1",
        "publishedDate": datetime.now(UTC).isoformat(timespec="seconds"),
        "publisher": {"name": "Cabinet Office", "scheme": "GB-GOR", "uid": "D2"},
        "license": "http://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/",
        "releases": chunk,
    }
    if offset + size < len(selected):
        next_params = {k: v for k, v in params.items() if k != "cursor"}
        next_params["cursor"] = encode_cursor(next_params, offset + size)
        package["links"] = {"next": f"{state.base_url}{path}?{urlencode(next_params)}"}
    return package


def _bad_utf8(body: bytes) -> bytes:
    out = bytearray()
    for char in body.decode("utf-8"):
        encoded = char.encode("utf-8")
        if len(encoded) == 1:
            out += encoded
        elif len(encoded) == 3:
            out += _latin_as_utf8(encoded[0])
            out += encoded[1:]
        else:
            try:
                out += char.encode("cp1252")
            except UnicodeEncodeError:
                out += encoded
    return bytes(out)


def _latin_as_utf8(byte: int) -> bytes:
    # The byte as cp1252 would read it, written as UTF-8.
    return bytes([byte]).decode("cp1252").encode("utf-8")


def _double_encode(body: bytes) -> bytes:
    out = []
    for byte in body:
        if byte < 0x80:
            out.append(bytes([byte]))
        else:
            try:
                out.append(bytes([byte]).decode("cp1252").encode("utf-8"))
            except UnicodeDecodeError:
                out.append(chr(byte).encode("utf-8"))
    return b"".join(out)


def _bad_numbers(body: bytes, huge: int) -> bytes:
    body = re.sub(rb'"amount":0(?=[,}\]])', b'"amount":000', body)
    if huge:
        body = re.sub(rb'"amount":[1-9]\d*(?:\.\d+)?(?=[,}\]])', b'"amount":1e9999', body, count=huge)
    return body


class Handler(BaseHTTPRequestHandler):
    server: "FeedHTTPServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        if split.path == "/_requests":
            with state.lock:
                payload = json.dumps([r.as_dict() for r in state.requests]).encode()
            self._send(200, payload, "application/json")
            return
        endpoint = {CF_PATH: "cf", FTS_PATH: "fts"}.get(split.path)
        if endpoint is None:
            self._send(404, b'{"code":"NotFound"}', "application/json")
            return
        record, fault = state.begin(endpoint, self.path)
        status = 500
        try:
            status = self._serve(state, endpoint, split.path, dict(parse_qsl(split.query)), fault)
        finally:
            state.end(record, status)

    def _serve(
        self, state: FeedState, endpoint: str, path: str, params: dict[str, str], fault: dict[str, Any] | None
    ) -> int:
        kind = fault.get("kind") if fault else None
        if fault and kind == "status":
            status = int(fault["status"])
            default = FORBIDDEN_BODY if status == 403 else RATE_LIMIT_BODY if status == 429 else "Service Unavailable"
            body = str(fault.get("body", default)).encode()
            self._send(status, body, "text/plain", fault.get("headers", {}))
            return status
        if fault and kind == "slow":
            time.sleep(float(fault.get("delay_s", 2.0)))
        package = build_page(state, endpoint, path, params)
        if kind == "no_next":
            package.pop("links", None)
        elif kind == "repeat_next":
            package["links"] = {"next": f"{state.base_url}{self.path}"}
        elif fault and kind == "drop_ids":
            releases = [dict(r) for r in package["releases"]]
            for release in releases[: int(fault.get("n", 1))]:
                release.pop("ocid", None)
                if fault.get("both"):
                    release.pop("id", None)
            package["releases"] = releases
        body = _ENCODER.encode(package)
        if kind == "bad_utf8":
            body = _bad_utf8(body)
        elif kind == "double_encoded":
            body = _double_encode(body)
        elif fault and kind == "bad_numbers":
            body = _bad_numbers(body, int(fault.get("huge", 0)))
        if fault and kind == "truncate":
            cut = body[: int(len(body) * float(fault.get("fraction", 0.5)))]
            if fault.get("mode", "json") == "connection":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(cut)
                self.wfile.flush()
                self.close_connection = True
                return 200
            body = cut
        self._send(200, body, "application/json")
        return 200

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout fired during a slow fault).
            self.close_connection = True


class FeedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: FeedState) -> None:
        super().__init__(address, Handler)
        self.state = state


@dataclass
class RunningFeedServer:
    server: FeedHTTPServer
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return self.server.state.base_url

    @property
    def requests(self) -> list[RequestRecord]:
        with self.server.state.lock:
            return list(self.server.state.requests)

    def max_in_flight(self) -> int:
        return self.server.state.max_in_flight()


def make_server(
    script: dict[str, Any] | None = None, port: int = 0, datasets: dict[str, list[dict[str, Any]]] | None = None
) -> FeedHTTPServer:
    data = datasets if datasets is not None else {"cf": load_cf_releases(), "fts": load_fts_releases()}
    state = FeedState(script or {}, data)
    server = FeedHTTPServer(("127.0.0.1", port), state)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


@contextmanager
def running_feed_server(
    script: dict[str, Any] | None = None, datasets: dict[str, list[dict[str, Any]]] | None = None
) -> Iterator[RunningFeedServer]:
    """A server on a random free port in a background thread, stopped on exit."""
    server = make_server(script, 0, datasets)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield RunningFeedServer(server, thread)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local fault-injecting CF/FTS OCDS feed server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fault-script", default="{}", help="JSON text, or @path to a JSON file")
    args = parser.parse_args(argv)
    text = args.fault_script
    if text.startswith("@"):
        text = Path(text[1:]).read_text("utf-8")
    server = make_server(json.loads(text), args.port)
    print(f"serving on {server.state.base_url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
