"""`localvalue metrics` and `localvalue seed measures`."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from procurement.metrics.schemas import PeriodMetrics, Share


@click.command(name="measures")
def seed_measures_command() -> None:
    """Load the social value measure catalogue shipped with the package (idempotent)."""
    from procurement.commands import run_async
    from procurement.db import session_scope
    from procurement.metrics.measures import seed_measures

    async def go() -> tuple[int, int]:
        async with session_scope() as session:
            return await seed_measures(session)

    created, updated = run_async(go)
    click.echo(f"measures: created {created}, updated {updated}")


@click.command(name="metrics")
@click.option("--anchor", default=None, help="Anchor id, ODS or GSS code.")
@click.option("--group", default=None, help="Anchor group slug, e.g. birmingham-and-solihull.")
@click.option("--period", required=True, help="A quarter (2025Q1 = Apr-Jun 2025) or a financial year (2025/26).")
@click.option("--basis", type=click.Choice(["awarded", "spread"]), default=None, help="Both when omitted.")
def metrics_command(anchor: str | None, group: str | None, period: str, basis: str | None) -> None:
    """Print headline local-spend figures for an anchor, a group or (with neither) all anchors."""
    from procurement.commands import run_async
    from procurement.db import session_scope
    from procurement.metrics.lines import resolve_scope, scope_metrics
    from procurement.metrics.service import parse_period, period_metrics
    from procurement.organisations.service import find_organisation

    try:
        kind = parse_period(period)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from exc

    async def go() -> list[str]:
        async with session_scope() as session:
            anchor_id = (await find_organisation(session, anchor)).id if anchor is not None else None
            scope = await resolve_scope(session, anchor_id=anchor_id, group=group)
            lines = [f"{scope.name} ({scope.key}), {period}"]
            for b in [basis] if basis else ["awarded", "spread"]:
                result = await scope_metrics(session, scope, basis=b, periods=kind)
                (p,) = period_metrics(result, scope.key, [period])
                lines.extend(_headline_lines(b, p))
            return lines

    for line in run_async(go):
        click.echo(line)


def _headline_lines(basis: str, p: PeriodMetrics) -> list[str]:
    """The headline of one basis, each share with the share of value whose status is known beside it."""
    h, c = p.headline, p.coverage

    def pounds(text: str) -> str:
        return f"£{Decimal(text):,.2f}"

    def share(label: str, value: str, s: Share) -> str:
        judged = f"judged on {s.coverage or '-'} of value"
        if s.status == "not_known":
            return f"    {label:<18} {pounds(value):>18}  share not known ({judged})"
        return f"    {label:<18} {pounds(value):>18}  share {s.share}, of known {s.share_known or '-'}, {judged}"

    excluded = c.excluded_withdrawn_lines + c.excluded_non_gbp_lines + c.excluded_no_value_lines
    fallback = c.spread_fallback_lines if basis == "spread" else c.award_fallback_lines
    named = f": {', '.join(h.supplier_names)}" if h.supplier_names else ""
    return [
        f"  {basis}: total {pounds(h.total)}, lines {h.lines}, contracts {h.contracts}, suppliers {h.suppliers} "
        f"(local {h.local_suppliers}, new local {h.new_local_suppliers}){named}",
        share("local", h.local, h.local_share),
        share("regional", h.regional, h.regional_share),
        share("SME", h.sme, h.sme_share),
        share("VCSE", h.vcse, h.vcse_share),
        share("social enterprise", h.social_enterprise, h.social_enterprise_share),
        f"    excluded lines {excluded}: withdrawn {c.excluded_withdrawn_lines}, not GBP {c.excluded_non_gbp_lines}, "
        f"no value {c.excluded_no_value_lines}",
        f"    lines on their {'award date (no contract period)' if basis == 'spread' else 'start date (no award date)'}"
        f": {fallback}",
    ]
