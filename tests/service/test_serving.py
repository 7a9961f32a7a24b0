"""`localvalue run --workers 2` as a real process: it serves, and on SIGTERM lets a request in flight finish and
exits 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS, dispose_database, free_port, new_database
from tests.support.cli import LOCALVALUE, cli_env, localvalue, wait_for_http
from tests.support.paths import REPO_DIR


def _read_response(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_workers_serve_and_finish_in_flight_request_on_sigterm(backend: str, tmp_path: Path) -> None:
    url, name = await new_database(backend, tmp_path, "serve")
    server: subprocess.Popen[bytes] | None = None
    try:
        localvalue("database", "upgrade", "--no-prompt", database_url=url)
        localvalue("seed", "anchors", database_url=url)
        editor = localvalue(
            "tokens", "create", "--role", "editor", "--org", "RBK", "--name", "jo@walsall", database_url=url
        ).stdout.strip()
        port = free_port()
        log = tmp_path / "server.log"
        server = subprocess.Popen(
            [LOCALVALUE, "run", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env=cli_env(url),
            cwd=REPO_DIR,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        base = f"http://127.0.0.1:{port}"
        assert wait_for_http(f"{base}/health", timeout=60).status_code == 200
        deadline = time.monotonic() + 90
        while log.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, log.read_text()
            assert server.poll() is None, log.read_text()
            time.sleep(0.2)
        assert "died" not in log.read_text()
        for _ in range(10):  # a connection each: the kernel spreads them over both workers
            with httpx.Client(base_url=base, timeout=10) as client:
                assert client.get("/organisations?anchor=true&limit=5").json()["total"] == 45
        # HEAD through the real server: the GET's headers, no body, and the connection still good for a GET.
        with httpx.Client(base_url=base, timeout=10) as client:
            heads = [client.head("/health"), client.head("/")]
            assert [h.status_code for h in heads] == [200, 200]
            assert [h.content for h in heads] == [b"", b""]
            assert min(int(h.headers["content-length"]) for h in heads) > 0
            assert client.get("/health").status_code == 200
        assert "Exception in ASGI application" not in log.read_text()

        # A slow upload: the headers and half the body are sent, so the app is mid-request when SIGTERM arrives.
        body = json.dumps({"name": "Slow Upload Community Interest Company", "postcode": "WS2 9PS"}).encode()
        head = (
            f"POST /suppliers HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {editor}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head + body[:20])
            time.sleep(1.0)
            server.send_signal(signal.SIGTERM)
            time.sleep(1.5)
            assert server.poll() is None, "the server exited with a request in flight"
            sock.sendall(body[20:])
            response = _read_response(sock, timeout=15)
        status_line, _, rest = response.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 201"), response[:500]
        assert b"connection: close" in rest.lower()  # the worker is shutting down: no keep-alive
        assert b"Slow Upload Community Interest Company" in rest
        assert server.wait(timeout=30) == 0, log.read_text()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/health", timeout=2)
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        await dispose_database(backend, name)
