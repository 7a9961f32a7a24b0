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


def _report(result: Any) -> None:
    click.echo(f"run {result.run_id} {result.status}", err=True)
    click.echo(result.counts.summary())
    if result.error:
        click.echo(f"error: {result.error}", err=True)
    if result.status != RunStatus.COMPLETED:
        sys.exit(1)


async def _feed(
    source: str,
    params: Any,
    policy: Any,
    *,
    resume_run_id: int | None = None,
    auto_resume: bool = True,
) -> Any:
    from procurement import models as m
    from procurement.db import get_alchemy_config, session_scope
    from procurement.imports.runs import run_feed_import, superseded, unfinished_run

    resume = None
    async with session_scope() as session:
        if resume_run_id is not None:
            resume = await session.get(m.ImportRun, resume_run_id)
        elif auto_resume:
            resume = await unfinished_run(session, source, "feed", params.as_json())
            if resume is not None and await superseded(session, resume.id):
                resume = None
    if resume is not None:
        click.echo(f"resuming run {resume.id} from {resume.checkpoint}", err=True)
    progress = _Progress(params.start, params.end)
    try:
        return await run_feed_import(
            get_alchemy_config().get_engine(),
            source,
            params,
            policy=policy,
            resume_run=resume,
            on_page=progress.page,
        )
    finally:
        progress.close()


def _feed_command(source: str, start: str, end: str, base_url: str | None, window: dt.timedelta, policy: Any) -> None:
    from importers import contracts_finder, find_a_tender
    from procurement.imports.runs import FeedParameters

    default_url = contracts_finder.BASE_URL if source == "contracts_finder" else find_a_tender.BASE_URL
    params = FeedParameters(_parse_when(start), _parse_when(end, end=True), window, base_url or default_url)
    if params.end <= params.start:
        raise click.BadParameter("--to is before --from")
    _report(_run(lambda: _feed(source, params, policy)))


@click.group(name="import", help="Import contracts from Contracts Finder, Find a Tender or OCDS files.")
def import_group() -> None:
    pass


@import_group.command(name="contracts-finder")
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD) or ISO instant.")
@click.option("--to", "end", required=True, help="Last day, included (YYYY-MM-DD), or ISO instant (excluded).")
@click.option("--base-url", default=None, help="Default: https://www.contractsfinder.service.gov.uk")
@click.option("--window-days", type=float, default=7.0, show_default=True, help="Days per publishedFrom/To window.")
@_policy_options
def contracts_finder_command(
    start: str,
    end: str,
    base_url: str | None,
    window_days: float,
    throttle_wait: float | None,
    max_retries: int,
    timeout: float,
    backoff: float,
    min_interval: float | None,
) -> None:
    """Releases published on Contracts Finder between --from and --to."""
    policy = _policy(throttle_wait, max_retries, timeout, backoff, min_interval or 0.0)
    _feed_command("contracts_finder", start, end, base_url, dt.timedelta(days=window_days), policy)


@import_group.command(name="find-a-tender")
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD) or ISO instant.")
@click.option("--to", "end", required=True, help="Last day, included (YYYY-MM-DD), or ISO instant (excluded).")
@click.option("--base-url", default=None, help="Default: https://www.find-tender.service.gov.uk")
@click.option("--window-hours", type=float, default=6.0, show_default=True, help="Hours per updatedFrom/To window.")
@_policy_options
def find_a_tender_command(
    start: str,
    end: str,
    base_url: str | None,
    window_hours: float,
    throttle_wait: float | None,
    max_retries: int,
    timeout: float,
    backoff: float,
    min_interval: float | None,
) -> None:
    """Releases updated on Find a Tender between --from and --to."""
    policy = _policy(throttle_wait, max_retries, timeout, backoff, 10.0 if min_interval is None else min_interval)
    _feed_command("find_a_tender", start, end, base_url, dt.timedelta(hours=window_hours), policy)


@import_group.command(name="sync")
@click.option("--source", type=SOURCE_CHOICE, default=None, help="Default: both feeds.")
@click.option("--base-url", default=None, help="Override the feed's URL (tests, mirrors).")
@_policy_options
def sync_command(
    source: str | None,
    base_url: str | None,
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
        result = _run(functools.partial(_feed, name, params, policy, auto_resume=False))
        click.echo(f"{name}: {result.counts.summary()}")
        failed = failed or result.status != RunStatus.COMPLETED
    if failed:
        sys.exit(1)


@import_group.command(name="file")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--source",
    type=SOURCE_CHOICE,
    default=None,
    help="Store every release under this source. Default: each release's own, from its ocid prefix "
    "(ocds-b5fd17 Contracts Finder, ocds-h6vhtk Find a Tender) or its package's publisher.",
)
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=FILE_BATCH, show_default=True)
def file_command(paths: tuple[Path, ...], source: str | None, batch_size: int) -> None:
    """Import OCDS files: release or record packages, arrays of releases, JSON lines."""
    from procurement.db import get_alchemy_config, session_scope
    from procurement.imports.runs import file_parameters, run_file_import, superseded, unfinished_run

    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        fail(f"no such file: {', '.join(missing)}")
    resolved = [p.resolve() for p in paths]

    async def go() -> Any:
        async with session_scope() as session:
            parameters = file_parameters(resolved, batch_size, source)
            resume = await unfinished_run(session, None, "file", parameters)
            if resume is not None and await superseded(session, resume.id):
                resume = None
        if resume is not None:
            click.echo(f"resuming run {resume.id} from {resume.checkpoint}", err=True)
        with click.progressbar(length=len(resolved), label="files", file=sys.stderr) as bar:
            seen = {"releases": 0}

            def on_batch(file_index: int, counts: Any) -> None:
                seen["releases"] += counts.fetched
                bar.label = f"{seen['releases']} releases"
                bar.update(file_index - bar.pos)

            result = await run_file_import(
                get_alchemy_config().get_engine(),
                source,
                resolved,
                batch_size=batch_size,
                resume_run=resume,
                on_batch=on_batch,
            )
            bar.update(len(resolved) - bar.pos)
            return result

    _report(_run(go))


@import_group.command(name="resume")
@click.argument("run_id", type=int)
@_policy_options
def resume_command(
    run_id: int,
    throttle_wait: float | None,
    max_retries: int,
    timeout: float,
    backoff: float,
    min_interval: float | None,
) -> None:
    """Continue a killed, interrupted or failed run from its last stored page or batch."""
    from procurement import models as m
    from procurement.db import get_alchemy_config, session_scope
    from procurement.imports.runs import FeedParameters, run_file_import, superseded

    async def load() -> Any:
        async with session_scope() as session:
            run = await session.get(m.ImportRun, run_id)
            if run is None:
                raise click.ClickException(f"no import run {run_id}")
            if run.status == RunStatus.COMPLETED:
                raise click.ClickException(f"run {run_id} completed; nothing to resume")
            if await superseded(session, run_id):
                raise click.ClickException(f"run {run_id} was already resumed by a later run")
            return run

    run = _run(load)
    if run.kind == "feed":
        params = FeedParameters.from_json(run.parameters)
        interval = min_interval if min_interval is not None else (0.0 if run.source == "contracts_finder" else 10.0)
        policy = _policy(throttle_wait, max_retries, timeout, backoff, interval)
        _report(_run(lambda: _feed(run.source, params, policy, resume_run_id=run.id)))
        return
    paths = [Path(p) for p in run.parameters["paths"]]
    batch = int(run.parameters.get("batch_size", FILE_BATCH))
    # Runs from before per-release detection name their one source only on the row.
    source = run.parameters.get("source", run.source)
    _report(
        _run(
            lambda: run_file_import(get_alchemy_config().get_engine(), source, paths, batch_size=batch, resume_run=run)
        )
    )


@import_group.command(name="runs")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def runs_command(limit: int) -> None:
    """The latest import runs with their counts."""
    from sqlalchemy import select

    from procurement import models as m
    from procurement.db import session_scope

    async def go() -> list[m.ImportRun]:
        async with session_scope() as session:
            return list(await session.scalars(select(m.ImportRun).order_by(m.ImportRun.id.desc()).limit(limit)))

    for run in _run(go):
        started = run.started_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{run.id:>5}  {run.source:<16} {run.kind:<4} {run.status:<11} {started}  pages {run.pages}, "
            f"fetched {run.fetched}, new {run.new}, changed {run.changed}, unchanged {run.unchanged}, "
            f"skipped {run.skipped}, failed {run.failed}"
        )


@import_group.command(name="notes")
@click.argument("run_id", type=int)
@click.option("--level", type=click.Choice(["info", "warning", "error"]), default=None)
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of one line per note.")
def notes_command(run_id: int, level: str | None, as_csv: bool) -> None:
    """The notes of one run: which release, where in it, what value, what happened."""
    import csv

    from sqlalchemy import select

    from procurement import models as m
    from procurement.db import session_scope
    from procurement.imports.runs import note_filter

    async def go() -> list[m.ImportNote]:
        async with session_scope() as session:
            rows = await session.scalars(
                select(m.ImportNote).where(*note_filter(run_id, level)).order_by(m.ImportNote.id)
            )
            return list(rows)

    notes = _run(go)
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["level", "ocid", "release_id", "path", "value", "message"])
        for n in notes:
            writer.writerow([n.level, n.ocid, n.release_id, n.path, n.value, n.message])
        return
    for n in notes:
        where = " ".join(x for x in (n.ocid, n.release_id, n.path) if x)
        value = f" [{n.value}]" if n.value else ""
        click.echo(f"{n.level:<7} {where}: {n.message}{value}")
