"""`localvalue run`: serve the app with uvicorn, on as many worker processes as asked, shutting down gracefully.

Litestar's own `run` starts uvicorn in a child process when there is more than one worker, so a SIGTERM to it
left the workers running; this command runs uvicorn's supervisor in its own process instead. On SIGTERM (or
Ctrl-C) each worker stops accepting connections, lets the requests in flight finish (at most
``--graceful-timeout`` seconds), closes idle keep-alive connections and exits; then the command exits 0.
"""

from __future__ import annotations

import os

import click

APP = "procurement.app:create_app"
SERVED_APP = "procurement.app:create_served_app"  # the same app, tuned for a long-lived worker


@click.command(name="run")
@click.option("--host", "-H", default="127.0.0.1", show_default=True, help="Listen on this address.")
@click.option("--port", "-p", default=8000, show_default=True, type=int, help="Listen on this port.")
@click.option(
    "--workers",
    "--wc",
    "--web-concurrency",
    "-W",
    "workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1, max=64),
    envvar="LOCALVALUE_WORKERS",
    help="Worker processes, each with its own database pool (about one per core; env LOCALVALUE_WORKERS).",
)
@click.option(
    "--graceful-timeout",
    default=30,
    show_default=True,
    type=click.IntRange(min=1),
    help="On SIGTERM, seconds to let requests in flight finish before closing them.",
)
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    envvar="FORWARDED_ALLOW_IPS",
    help="Proxies whose X-Forwarded-For/-Proto headers are trusted (comma-separated, or * behind a private proxy).",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log every request.")
@click.option("--uds", "-U", default=None, help="Listen on this UNIX domain socket instead (e.g. behind nginx).")
@click.option("--fd", "-F", default=None, type=int, help="Listen on a socket passed as this file descriptor.")
@click.option("--reload", "-r", is_flag=True, help="Restart on code changes (development; one worker).")
@click.option("--ssl-certfile", default=None, help="Serve HTTPS with this certificate (usually the proxy does).")
@click.option("--ssl-keyfile", default=None, help="The certificate's key.")
def run_command(
    host: str,
    port: int,
    workers: int,
    graceful_timeout: int,
    forwarded_allow_ips: str,
    access_log: bool,
    uds: str | None,
    fd: int | None,
    reload: bool,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
) -> None:
    """Serve Local Value (API, OpenAPI docs and pages) with uvicorn, on one or more worker processes.

    In production run about one worker per core behind a reverse proxy that terminates TLS (see README,
    "Serving in production"); SIGTERM lets requests in flight finish, then exits 0.
    """
    import uvicorn

    if reload and workers > 1:
        raise click.ClickException("--reload serves one worker; leave out --workers")
    # Workers are fresh processes that import the app by name; they inherit this environment (DATABASE_URL...).
    os.environ.setdefault("LITESTAR_APP", APP)
    uvicorn.run(
        SERVED_APP,
        factory=True,
        host=host,
        port=port,
        uds=uds,
        fd=fd,
        workers=workers,
        reload=reload,
        timeout_graceful_shutdown=graceful_timeout,
        # uvicorn kills a worker that has not answered its supervisor in 5 s; a worker still importing the app on a
        # busy machine can take longer, and its replacement would start just as slowly.
        timeout_worker_healthcheck=30,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        access_log=access_log,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        server_header=False,
    )
