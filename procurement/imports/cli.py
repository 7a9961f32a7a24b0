"""`localvalue import ...`: feeds, files, sync, resume, runs and notes."""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from procurement import clock
from procurement.commands import fail, run_async
from procurement.imports.service import FILE_BATCH
from procurement.models import RunStatus

T = TypeVar("T")


SOURCE_CHOICE = click.Choice(["contracts_finder", "find_a_tender"])


_INTERRUPTED = "import interrupted; continue it with `localvalue import resume RUN_ID` (see `import runs`)"


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    return run_async(fn, interrupted=_INTERRUPTED)


def _parse_when(value: str, *, end: bool = False) -> dt.datetime:
    """A date (UTC midnight; for --to the day is included) or an ISO instant."""
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            moment = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            return moment + dt.timedelta(days=1) if end else moment
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or ISO date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _policy(throttle_wait: float | None, max_retries: int, timeout: float, backoff: float, min_interval: float) -> Any:
    from importers.http import RetryPolicy

    defaults = RetryPolicy()
    return RetryPolicy(
        throttle_wait_s=defaults.throttle_wait_s if throttle_wait is None else throttle_wait,
        rate_limit_wait_s=defaults.rate_limit_wait_s if throttle_wait is None else throttle_wait,
        max_retries=max_retries,
        backoff_base_s=backoff,
        backoff_max_s=max(backoff, defaults.backoff_max_s) if backoff >= 1 else backoff * 8,
        timeout_s=timeout,
        min_interval_s=min_interval,
    )


def _policy_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--throttle-wait",
            type=float,
            default=None,
            envvar="LOCALVALUE_IMPORT_THROTTLE_WAIT",
            help="Seconds to wait after a 403/429 (default: 300 for CF, 30 for FTS).",
        ),
        click.option("--max-retries", type=int, default=5, envvar="LOCALVALUE_IMPORT_MAX_RETRIES", show_default=True),
        click.option(
            "--timeout",
            type=float,
            default=60.0,
            envvar="LOCALVALUE_IMPORT_TIMEOUT",
            show_default=True,
            help="Seconds.",
        ),
        click.option(
            "--backoff",
            type=float,
            default=2.0,
            envvar="LOCALVALUE_IMPORT_BACKOFF",
            show_default=True,
            help="First retry wait after a 5xx or broken body; doubles each time.",
        ),
        click.option(
            "--min-interval",
            type=float,
            default=None,
            envvar="LOCALVALUE_IMPORT_MIN_INTERVAL",
            help="Seconds between requests (default: 0 for CF, 10 for FTS, as kingfisher-collect).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


class _Progress:
    """A progress bar on stderr over the windows of a feed import (hidden when stderr is not a terminal)."""

    def __init__(self, start: dt.datetime, end: dt.datetime) -> None:
        self.start = start
        self.span = max((end - start).total_seconds(), 1.0)
        self.bar: Any = click.progressbar(length=1000, label="importing", file=sys.stderr, show_eta=True)
        self.bar.__enter__()
        self.releases = 0

    def page(self, page: Any, counts: Any) -> None:
        self.releases += counts.fetched
        after = page.checkpoint_after
        reached = page.window_end if after is None or after.next_url is None else page.window_start
        done = int(1000 * (reached - self.start).total_seconds() / self.span)
        self.bar.label = f"{self.releases} releases, at {reached:%Y-%m-%d %H:%M}"
        self.bar.update(max(0, done - self.bar.pos))

    def close(self) -> None:
        self.bar.__exit__(None, None, None)


_WAIT = click.option(
    "--wait", is_flag=True, help="If another import of the same source is running, wait for it instead of stopping."
)


def _waiting(holder: Any) -> None:
    click.echo(f"waiting for {holder.describe()} to finish", err=True)


def _report(result: Any) -> None:
    click.echo(f"run {result.run_id} {result.status}", err=True)
    click.echo(result.counts.summary())
    if result.error:
        click.echo(f"error: {result.error.splitlines()[0]}", err=True)
    if result.status != RunStatus.COMPLETED:
        sys.exit(1)


async def _feed(
    source: str,
    params: Any,
    policy: Any,
    *,
    resume_run_id: int | None = None,
    auto_resume: bool = True,
    wait: bool = False,
) -> Any:
    from procurement.db import get_alchemy_config
    from procurement.imports.locks import import_lock
    from procurement.imports.runs import run_feed_import

    engine = get_alchemy_config().get_engine()
    # What to resume is decided under the lock: a run is resumable only once no live process holds it.
    async with import_lock(engine, source, wait=wait, on_wait=_waiting, resume_of=resume_run_id) as lock:
        resume = await _resumable(source, "feed", params.as_json(), resume_run_id, auto_resume=auto_resume)
        progress = _Progress(params.start, params.end)
        try:
            return await run_feed_import(
                engine, source, params, policy=policy, resume_run=resume, on_page=progress.page, lock=lock
            )
        finally:
            progress.close()


async def _resumable(
    source: str | None, kind: str, parameters: dict[str, Any], run_id: int | None, *, auto_resume: bool = True
) -> Any:
    """The run to continue (with the lock held): the one asked for, or the latest unfinished one alike."""
    from procurement.db import session_scope
    from procurement.imports.runs import superseded, unfinished_run

    async with session_scope() as session:
        if run_id is not None:
            resume = await _resumable_run(session, run_id)
        elif not auto_resume:
            return None
        else:
            resume = await unfinished_run(session, source, kind, parameters)
            if resume is not None and await superseded(session, resume.id):
                resume = None
    if resume is not None:
        click.echo(f"resuming run {resume.id} from {resume.checkpoint}", err=True)
    return resume


async def _resumable_run(session: Any, run_id: int) -> Any:
    from procurement import models as m
    from procurement.errors import ConflictError, NotFound
    from procurement.imports.runs import superseded

    run = await session.get(m.ImportRun, run_id)
    if run is None:
        raise NotFound(f"no import run {run_id} (see `localvalue import runs`)")
    if run.status == RunStatus.COMPLETED:
        raise ConflictError(f"run {run_id} completed; nothing to resume")
    if await superseded(session, run_id):
        raise ConflictError(f"run {run_id} was already resumed by a later run")
    return run


def _feed_command(
    source: str, start: str, end: str, base_url: str | None, window: dt.timedelta, policy: Any, *, wait: bool
) -> None:
    from importers import contracts_finder, find_a_tender
    from procurement.imports.runs import FeedParameters

    default_url = contracts_finder.BASE_URL if source == "contracts_finder" else find_a_tender.BASE_URL
    params = FeedParameters(_parse_when(start), _parse_when(end, end=True), window, base_url or default_url)
    if params.end <= params.start:
        raise click.BadParameter("--to is before --from")
    _report(_run(lambda: _feed(source, params, policy, wait=wait)))


@click.group(name="import", help="Import contracts from Contracts Finder, Find a Tender or OCDS files.")
def import_group() -> None:
    pass


@import_group.command(name="contracts-finder")
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD) or ISO instant.")
@click.option("--to", "end", required=True, help="Last day, included (YYYY-MM-DD), or ISO instant (excluded).")
@click.option("--base-url", default=None, help="Default: https://www.contractsfinder.service.gov.uk")
@click.option("--window-days", type=float, default=7.0, show_default=True, help="Days per publishedFrom/To window.")
@_WAIT
@_policy_options
def contracts_finder_command(
    start: str,
    end: str,
    base_url: str | None,
    window_days: float,
    wait: bool,
    throttle_wait: float | None,
    max_retries: int,
    timeout: float,
    backoff: float,
    min_interval: float | None,
) -> None:
    """Releases published on Contracts Finder between --from and --to."""
    policy = _policy(throttle_wait, max_retries, timeout, backoff, min_interval or 0.0)
    _feed_command("contracts_finder", start, end, base_url, dt.timedelta(days=window_days), policy, wait=wait)


@import_group.command(name="find-a-tender")
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD) or ISO instant.")
@click.option("--to", "end", required=True, help="Last day, included (YYYY-MM-DD), or ISO instant (excluded).")
@click.option("--base-url", default=None, help="Default: https://www.find-tender.service.gov.uk")
@click.option("--window-hours", type=float, default=6.0, show_default=True, help="Hours per updatedFrom/To window.")
@_WAIT
@_policy_options
def find_a_tender_command(
    start: str,
    end: str,
    base_url: str | None,
    window_hours: float,
    wait: bool,
    throttle_wait: float | None,
    max_retries: int,
    timeout: float,
    backoff: float,
    min_interval: float | None,
) -> None:
    """Releases updated on Find a Tender between --from and --to."""
    policy = _policy(throttle_wait, max_retries, timeout, backoff, 10.0 if min_interval is None else min_interval)
    _feed_command("find_a_tender", start, end, base_url, dt.timedelta(hours=window_hours), policy, wait=wait)


@import_group.command(name="sync")
@click.option("--source", type=SOURCE_CHOICE, default=None, help="Default: both feeds.")
@click.option("--base-url", default=None, help="Override the feed's URL (tests, mirrors).")
@_WAIT
@_policy_options
def sync_command(
    source: str | None,
    base_url: str | None,
    wait: bool,
    throttle_wait: float | None,
    max_retries: int,
    timeout: float,
    backoff: float,
    min_interval: float | None,
) -> None:
    """Continue each feed from its watermark (the end of its last completed window) up to now."""
    from sqlalchemy import select

    from importers import contracts_finder, find_a_tender
    from procurement import models as m
    from procurement.db import session_scope
    from procurement.imports.runs import FeedParameters

    sources = [source] if source else ["contracts_finder", "find_a_tender"]

    async def marks() -> dict[str, dt.datetime]:
        async with session_scope() as session:
            rows = await session.execute(select(m.FeedWatermark.source, m.FeedWatermark.watermark))
            return dict(rows.tuples().all())

    watermarks = _run(marks)
    now = clock.now().replace(microsecond=0)
    failed = False
    for name in sources:
        if name not in watermarks:
            click.echo(f"{name}: no watermark yet; run `localvalue import {name.replace('_', '-')} --from ...` first")
            continue
        cf = name == "contracts_finder"
        window = dt.timedelta(days=7) if cf else dt.timedelta(hours=6)
        url = base_url or (contracts_finder.BASE_URL if cf else find_a_tender.BASE_URL)
        params = FeedParameters(watermarks[name], now, window, url)
        if params.end <= params.start:
            click.echo(f"{name}: up to date")
            continue
        interval = min_interval if min_interval is not None else (0.0 if cf else 10.0)
        policy = _policy(throttle_wait, max_retries, timeout, backoff, interval)
        click.echo(f"{name}: from {params.start.isoformat()} to {params.end.isoformat()}", err=True)
        result = _run(functools.partial(_feed, name, params, policy, auto_resume=False, wait=wait))
        click.echo(f"{name}: {result.counts.summary()}")
        failed = failed or result.status != RunStatus.COMPLETED
    if failed:
        sys.exit(1)


@import_group.command(name="file")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--source",
    type=SOURCE_CHOICE,
    default=None,
    help="Store every release under this source. Default: each release's own, from its ocid prefix "
    "(ocds-b5fd17 Contracts Finder, ocds-h6vhtk Find a Tender) or its package's publisher.",
)
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=FILE_BATCH, show_default=True)
@_WAIT
def file_command(paths: tuple[Path, ...], source: str | None, batch_size: int, wait: bool) -> None:
    """Import OCDS files: release or record packages, arrays of releases, JSON lines."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        fail(f"no such file: {', '.join(missing)}")
    resolved = [p.resolve() for p in paths]
    _report(_run(lambda: _files(source, resolved, batch_size, wait=wait)))


async def _files(
    source: str | None, paths: list[Path], batch_size: int, *, wait: bool, resume_run_id: int | None = None
) -> Any:
    from procurement.db import get_alchemy_config
    from procurement.imports.locks import import_lock
    from procurement.imports.runs import file_lock_source, file_parameters, run_file_import

    engine = get_alchemy_config().get_engine()
    lock_source = file_lock_source(source)
    async with import_lock(engine, lock_source, wait=wait, on_wait=_waiting, resume_of=resume_run_id) as lock:
        # A file run's row may name several sources, so a run to continue is found by its parameters alone.
        resume = await _resumable(None, "file", file_parameters(paths, batch_size, source), resume_run_id)
        with click.progressbar(length=len(paths), label="files", file=sys.stderr) as bar:
            seen = {"releases": 0}

            def on_batch(file_index: int, counts: Any) -> None:
                seen["releases"] += counts.fetched
                bar.label = f"{seen['releases']} releases"
                bar.update(file_index - bar.pos)

            result = await run_file_import(
                engine, source, paths, batch_size=batch_size, resume_run=resume, on_batch=on_batch, lock=lock
            )
            bar.update(len(paths) - bar.pos)
            return result


@import_group.command(name="resume")
@click.argument("run_id", type=int)
@_WAIT
@_policy_options
def resume_command(
    run_id: int,
    wait: bool,
    throttle_wait: float | None,
    max_retries: int,
    timeout: float,
    backoff: float,
    min_interval: float | None,
) -> None:
    """Continue a killed, interrupted or failed run from its last stored page or batch.

    A run that is still live (its process holds the source's import lock) is never touched.
    """
    from procurement.db import session_scope
    from procurement.imports.runs import FeedParameters

    async def load() -> Any:
        async with session_scope() as session:
            return await _resumable_run(session, run_id)

    run = _run(load)  # checked again under the lock
    if run.kind == "feed":
        params = FeedParameters.from_json(run.parameters)
        interval = min_interval if min_interval is not None else (0.0 if run.source == "contracts_finder" else 10.0)
        policy = _policy(throttle_wait, max_retries, timeout, backoff, interval)
        _report(_run(lambda: _feed(run.source, params, policy, resume_run_id=run.id, wait=wait)))
        return
    paths = [Path(p) for p in run.parameters["paths"]]
    batch = int(run.parameters.get("batch_size", FILE_BATCH))
    # Runs from before per-release detection name their one source only on the row.
    source = run.parameters.get("source", run.source)
    _report(_run(lambda: _files(source, paths, batch, wait=wait, resume_run_id=run.id)))


@import_group.command(name="runs")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def runs_command(limit: int) -> None:
    """The latest import runs with their counts."""
    from sqlalchemy import select

    from procurement import models as m
    from procurement.db import session_scope

    async def go() -> tuple[list[m.ImportRun], set[str]]:
        from procurement.imports.locks import holder_now

        async with session_scope() as session:
            runs = list(await session.scalars(select(m.ImportRun).order_by(m.ImportRun.id.desc()).limit(limit)))
            # A run still marked running whose source nobody holds has lost its process. The lock is only
            # looked at, never taken: taking it could make an import starting this moment think it busy.
            sources = {r.source for r in runs if r.status == RunStatus.RUNNING}
            return runs, {s for s in sources if await holder_now(session, s) is None}

    runs, orphaned = _run(go)
    for run in runs:
        started = run.started_at.strftime("%Y-%m-%d %H:%M:%S")
        dead = run.status == RunStatus.RUNNING and run.source in orphaned
        click.echo(
            f"{run.id:>5}  {run.source:<16} {run.kind:<4} {'interrupted' if dead else run.status:<11} {started}  "
            f"pages {run.pages}, fetched {run.fetched}, new {run.new}, changed {run.changed}, "
            f"unchanged {run.unchanged}, skipped {run.skipped}, failed {run.failed}"
            + (f"  (its process stopped; `localvalue import resume {run.id}`)" if dead else "")
        )


@import_group.command(name="notes")
@click.argument("run_id", type=int)
@click.option("--level", type=click.Choice(["info", "warning", "error"]), default=None)
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of one line per note.")
def notes_command(run_id: int, level: str | None, as_csv: bool) -> None:
    """The notes of one run: which release, where in it, what value, what happened."""
    from sqlalchemy import select

    from procurement import models as m
    from procurement.db import session_scope
    from procurement.exports import SafeCsvWriter
    from procurement.imports.runs import note_filter

    async def go() -> list[m.ImportNote]:
        async with session_scope() as session:
            rows = await session.scalars(
                select(m.ImportNote).where(*note_filter(run_id, level)).order_by(m.ImportNote.id)
            )
            return list(rows)

    notes = _run(go)
    if as_csv:
        writer = SafeCsvWriter(sys.stdout)
        writer.writerow(["level", "ocid", "release_id", "path", "value", "message"])
        for n in notes:
            writer.writerow([n.level, n.ocid, n.release_id, n.path, n.value, n.message])
        return
    for n in notes:
        where = " ".join(x for x in (n.ocid, n.release_id, n.path) if x)
        value = f" [{n.value}]" if n.value else ""
        click.echo(f"{n.level:<7} {where}: {n.message}{value}")
