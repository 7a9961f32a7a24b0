"""`localvalue classify`, `localvalue registers load|status` and `localvalue geo build`."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click

from procurement.commands import run_async


@click.group(name="classify", invoke_without_command=True, help="Reclassify suppliers whose inputs or rules changed.")
@click.option("--full", is_flag=True, help="Reclassify every supplier, changed or not.")
def classify_group(*, full: bool) -> None:
    # Litestar's CLI wraps group callbacks itself, so the context is fetched rather than passed.
    if click.get_current_context().invoked_subcommand is not None:
        return
    from procurement.db import session_scope
    from procurement.suppliers.classification import ClassifyCounts, classify_rows
    from procurement.suppliers.registers import coverage, coverage_change
    from procurement.suppliers.tiers import refresh_tiers

    async def go() -> tuple[ClassifyCounts, str]:
        async with session_scope() as session:
            before = await coverage(session)
            counts = await classify_rows(session, full=full)
            await refresh_tiers(session, classify_first=False)  # every pair, with today's rules and areas
            return counts, coverage_change(before, await coverage(session))

    start = time.perf_counter()
    counts, change = run_async(go)
    elapsed = time.perf_counter() - start
    click.echo(
        f"suppliers: {counts.examined}; classified {counts.classified}, unchanged {counts.unchanged}, "
        f"overridden {counts.overridden} ({elapsed:.1f} s)"
    )
    click.echo(change)


@classify_group.command(name="show")
@click.argument("supplier_id", type=int)
@click.option("--anchor", "anchor_id", type=int, default=None, help="Also show the tier for this anchor id.")
def classify_show(supplier_id: int, anchor_id: int | None) -> None:
    """Print SUPPLIER_ID's classification and the why record behind every flag."""
    from procurement.db import session_scope
    from procurement.suppliers.explain import classification_out
    from procurement.suppliers.schemas import Classification

    async def go() -> Classification:
        async with session_scope() as session:
            return await classification_out(session, supplier_id, [anchor_id] if anchor_id else [], anchor_id)

    out = run_async(go)
    place = out.place
    merged = f" (merged into {out.merged_into_id})" if out.merged_into_id else ""
    click.echo(f"supplier {out.supplier_id}: {out.name}{merged}")
    click.echo(
        f"place: {place.lad_name or place.lad_code or 'unknown'} [{place.lad_code or '-'}]"
        f", region {place.region_code or '-'}"
        f"; postcode {place.postcode_used or '-'} ({place.postcode_basis or 'none'}); method {place.method}"
        f", confidence {'-' if place.confidence is None else f'{place.confidence:.2f}'}"
    )

    click.echo(f"decision: {out.decision}")
    for tier in out.tiers:
        click.echo(f"tier for {tier.anchor_name} ({tier.area}): {tier.tier} - {tier.reason}")
    click.echo("why:")
    for why in out.why:
        mark = " [overruled]" if why.overruled else ""
        confidence = "-" if why.confidence is None else f"{why.confidence:.2f}"
        click.echo(
            f"  {why.flag}={why.value}{mark}: {why.method}, {why.source}; evidence {why.evidence!r}; "
            f"confidence {confidence}; rule {why.rule_id} {why.rule_version}; at {why.at}"
        )
    click.echo(f"rule versions: {', '.join(f'{k}={v}' for k, v in sorted(out.rule_versions.items()) if v)}")
    click.echo(out.attribution)


@click.group(name="geo", help="Geography tables (ONS postcode directory, OGL v3.0).")
def geo_group() -> None:
    pass


@geo_group.command(name="build")
@click.argument("onspd_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder."
)
@click.option(
    "--lad-reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A newer lad_reference_uk.csv (default: keep the one in --out, or copy the shipped one).",
)
@click.option("--data-version", default=None, help="Label shown on every result (default: file name and date).")
def geo_build(onspd_csv: Path, out_dir: Path, lad_reference: Path | None, data_version: str | None) -> None:
    """Rebuild the unit and partial-postcode tables from an ONS postcode directory CSV (ONSPD or NSPD, .csv or .gz).

    To replace the tables shipped with the package, pass --out to the folder printed as "shipped tables".
    """
    from socialvalue.geo_build import ICB_REFERENCE_FILE, LAD_REFERENCE_FILE, build_tables
    from socialvalue.geography import DATA_DIR

    out_dir.mkdir(parents=True, exist_ok=True)
    if lad_reference is None and not (out_dir / LAD_REFERENCE_FILE).exists():
        shutil.copyfile(DATA_DIR / LAD_REFERENCE_FILE, out_dir / LAD_REFERENCE_FILE)
    if not (out_dir / ICB_REFERENCE_FILE).exists():
        shutil.copyfile(DATA_DIR / ICB_REFERENCE_FILE, out_dir / ICB_REFERENCE_FILE)
    start = time.perf_counter()
    try:
        counts = build_tables(onspd_csv, out_dir, lad_reference_csv=lad_reference, data_version=data_version)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(", ".join(f"{k} {v}" for k, v in counts.items()) + f" ({time.perf_counter() - start:.1f} s)")
    click.echo(f"written to {out_dir}; shipped tables: {DATA_DIR}")
    click.echo("Remember the attribution: Source: Office for National Statistics licensed under the OGL v3.0.")


@click.group(
    name="registers", help="Supplier registers: Companies House, the charity regulators, FCA mutuals (OGL v3)."
)
def registers_group() -> None:
    pass


@registers_group.command(name="load")
@click.argument("register", type=click.Choice(["companies-house", "charity-commission", "oscr", "mutuals"]))
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", "version", default=None, help="Date of the FCA SocietyList.csv download (YYYY-MM-DD).")
def registers_load(register: str, paths: tuple[Path, ...], version: str | None) -> None:
    """Load a downloaded register (replacing the loaded one atomically), then match and reclassify suppliers.

    \b
    localvalue registers load companies-house BasicCompanyDataAsOneFile-2025-11-01.zip
    localvalue registers load charity-commission publicextract.charity.zip
    localvalue registers load oscr CharityExport-01-Nov-2025.csv CharityExport-Removed-01-Nov-2025.csv
    localvalue registers load mutuals SocietyList.csv --version 2025-11-03
    """
    from procurement.db import session_scope
    from procurement.errors import DomainError
    from procurement.suppliers.classification import classify
    from procurement.suppliers.registers import coverage, coverage_change, load_files, record_load, store_dir

    size = sum(p.stat().st_size for p in paths)
    click.echo(f"[1/2] loading {register}: {len(paths)} file(s), {size / 1e6:,.1f} MB into {store_dir()} ...", err=True)
    start = time.perf_counter()
    try:
        summary = load_files(register, list(paths), version)
    except DomainError as exc:  # the file work needs no database, so run_async is not around it
        raise click.ClickException(exc.detail) from None
    loaded = time.perf_counter() - start
    click.echo(f"[2/2] matching suppliers and reclassifying ({loaded:.1f} s so far) ...", err=True)

    async def go() -> str:
        async with session_scope() as session:
            before = await coverage(session)
            await record_load(session, summary)
            counts = await classify(session)
            return f"suppliers reclassified {counts.classified}; " + coverage_change(before, await coverage(session))

    change = run_async(go)
    notes = summary.skipped
    click.echo(
        f"{register}: {summary.rows:,} rows, version {summary.version} ({summary.version_source}), "
        f"{notes:,} malformed row(s) skipped{'' if not summary.notes else f' (first: {summary.notes[0].problem})'}; "
        f"{change} ({time.perf_counter() - start:.1f} s)"
    )


@registers_group.command(name="status")
def registers_status() -> None:
    """Each loaded register: version, rows, when it was loaded and from which files."""
    from importers.registers import loaded_registers
    from procurement.suppliers.registers import CLI_NAME, store_dir

    store = store_dir()
    manifests = loaded_registers(store) if store.is_dir() else {}
    click.echo(f"store: {store}")
    if not manifests:
        click.echo("no register loaded yet; see `localvalue registers load --help`")
    for kind, s in manifests.items():
        files = ", ".join(x["name"] for x in s.sources)
        click.echo(
            f"{CLI_NAME[kind]}: version {s.version}, {s.rows:,} rows ({s.skipped:,} skipped), "
            f"loaded at {s.loaded_at}, from {files}"
        )
