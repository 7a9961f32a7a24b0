"""`localvalue metrics` and `localvalue seed measures`."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from procurement.metrics.schemas import PaidPeriod, PeriodMetrics, Share


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
@click.option(
    "--basis",
    type=click.Choice(["awarded", "spread", "paid"]),
    default=None,
    help="awarded and spread when omitted; paid = payment lines from spend files.",
)
@click.option(
    "--influenceable",
    is_flag=True,
    help="With --basis paid: leave out payments to other public bodies, taxes and pension schemes.",
)
def metrics_command(anchor: str | None, group: str | None, period: str, basis: str | None, influenceable: bool) -> None:
    """Print headline local-spend figures for an anchor, a group or (with neither) all anchors."""
    from procurement.commands import run_async
    from procurement.db import session_scope
    from procurement.metrics.lines import resolve_scope
    from procurement.metrics.service import basis_metrics, compute_bases, parse_period
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
            for computed in await compute_bases(session, scope, kind, period, basis, influenceable=influenceable):
                shown = basis_metrics(computed, scope.key, period)
                (p,) = shown.periods
                lines.extend(_headline_lines(shown.basis, p))
                if shown.paid:
                    lines.extend(_paid_lines(shown.paid[0], shown.label if shown.influenceable_only else None))
            return lines

    for line in run_async(go):
        click.echo(line)


def _headline_lines(basis: str, p: PeriodMetrics) -> list[str]:
    """The headline of one basis, each share with the share of value whose status is known beside it."""
    h, c = p.headline, p.coverage

    def pounds(text: str) -> str:
        return f"£{Decimal(text):,.2f}"

    def percent(fraction: str | None) -> str:
        # As the pages show shares (0.1234 -> 12.3%); "-" where there is none.
        from procurement.web.setup import share as as_percent

        return "-" if fraction is None else as_percent(fraction)

    def share(label: str, value: str, s: Share) -> str:
        judged = f"judged on {percent(s.coverage)} of value"
        if s.status == "not_known":
            return f"    {label:<18} {pounds(value):>18}  share not known ({judged})"
        given = f"share {percent(s.share)}, of known {percent(s.share_known)}"
        return f"    {label:<18} {pounds(value):>18}  {given}, {judged}"

    excluded = c.excluded_withdrawn_lines + c.excluded_non_gbp_lines + c.excluded_no_value_lines
    fallback = c.spread_fallback_lines if basis == "spread" else c.award_fallback_lines
    named = f": {', '.join(h.supplier_names)}" if h.supplier_names else ""
    fallback_line = (
        f"    lines on their {'award date (no contract period)' if basis == 'spread' else 'start date (no award date)'}"
        f": {fallback}"
    )
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
        *([] if basis == "paid" else [fallback_line]),
    ]


def _paid_lines(paid: PaidPeriod, influenceable_label: str | None) -> list[str]:
    """What the paid figures rest on: lines and transactions, redacted value as its own line, the view."""
    out = [
        f"    payment lines {paid.lines}, transactions {paid.transactions} (split lines counted once), "
        f"months {', '.join(paid.months) or '-'}",
        f"    redacted payee     {f'£{Decimal(paid.redacted):,.2f}':>18}  in {paid.redacted_lines} lines "
        "(counted, never named; location and status unknown)",
    ]
    if influenceable_label is not None:
        rules = ", ".join(f"{rule} £{Decimal(p) / 100:,.2f}" for rule, p in paid.left_out_by_rule.items())
        out.append(f"    {influenceable_label}")
        out.append(f"    left out: {paid.left_out_lines} lines, £{Decimal(paid.left_out):,.2f} ({rules or 'none'})")
    return out
