"""Influenceable spend: which payment lines an anchor could have placed with a local supplier at all.

Pure polars. Payments to other public bodies (NHS trusts and commissioners, councils, central government),
taxes (HMRC, business rates) and pension schemes (NHS Pensions, the Local Government Pension Scheme) are
not procurement choices; a local-spend view leaves them out and says so. Every excluded line carries the
rule that excluded it, so the figure can be traced.

The rules, first match wins, on the payee name lower-cased with punctuation as spaces (redacted lines have
no payee and stay influenceable, counted as redacted):

* ``tax``: HMRC / HM Revenue & Customs / Inland Revenue, VAT/PAYE/NI/business-rates payees.
* ``pension scheme``: NHS Pensions, NHS Business Services Authority pensions, LGPS, "... Pension Fund",
  Teachers' Pensions, Civil Service Pensions.
* ``nhs body``: NHS trusts and foundation trusts (also "NHST", "NHS FT"), CCGs, ICBs, NHS England,
  NHS Resolution, NHS Property Services, Health Education England, UK Health Security Agency.
* ``council``: city/county/borough/district/metropolitan/town/parish councils, "London Borough of ...",
  "Royal Borough of ...", combined authorities, fire and police authorities.
* ``central government``: Cabinet Office, HM Treasury/Courts, "Department for/of ...", "Ministry of ...",
  Crown Commercial Service, Government Property Agency, Scottish/Welsh Government.
* ``tax or pension (expense type)``: the line's expense type says VAT, PAYE, national insurance, NNDR,
  business rates, superannuation or employer pension contributions, whatever the payee.
"""

from typing import Final

import polars as pl

RULES: Final[tuple[tuple[str, str], ...]] = (
    ("tax", r"\b(?:hmrc|hm revenue|h m revenue|inland revenue|revenue and customs|revenue customs)\b"),
    (
        "pension scheme",
        r"\bnhs pensions?\b|\bnhsbsa pensions?\b|\blgps\b|\blocal government pension|\bpension fund\b|"
        r"\bteachers pensions?\b|\bcivil service pensions?\b|\bpensions agency\b",
    ),
    (
        "nhs body",
        r"\bnhs (?:foundation )?trust\b|\bfoundation trust\b|\bnhst\b|\bnhs ft\b|\bnhs trust\b|\bccg\b|"
        r"\bclinical commissioning group\b|\bintegrated care board\b|\bicb\b|\bnhs england\b|\bnhs resolution\b|"
        r"\bnhs litigation authority\b|\bnhs property services\b|\bhealth education england\b|"
        r"\bhealth security agency\b|\bnhs business services authority\b",
    ),
    (
        "council",
        r"\b(?:city|county|borough|district|metropolitan|town|parish|county borough) council\b|"
        r"\b(?:london|royal) bor(?:ough)? of\b|\bcombined authority\b|\bfire (?:and rescue )?authority\b|"
        r"\bpolice and crime commissioner\b|\b(?:mbc|cbc)\b",
    ),
    (
        "central government",
        r"^cabinet office\b|\bhm treasury\b|\bhm courts\b|^department (?:for|of)\b|^ministry of\b|"
        r"\bcrown commercial service\b|\bgovernment property agency\b|\b(?:scottish|welsh) government\b",
    ),
)
EXPENSE_TYPE_RULE: Final = (
    "tax or pension (expense type)",
    r"\b(?:vat|paye|national insurance|nndr|business rates|superannuation|employers? pension|pension contrib)",
)


def _normalised(expr: pl.Expr) -> pl.Expr:
    return expr.fill_null("").str.to_lowercase().str.replace_all(r"[^a-z0-9]+", " ").str.strip_chars()


def influenceable_rule(payee: pl.Expr, expense_type: pl.Expr | None = None) -> pl.Expr:
    """The rule that makes a line non-influenceable, or null when it is influenceable."""
    name = _normalised(payee)
    checks = [(name.str.contains(pattern), rule) for rule, pattern in RULES]
    if expense_type is not None:
        checks.append((_normalised(expense_type).str.contains(EXPENSE_TYPE_RULE[1]), EXPENSE_TYPE_RULE[0]))
    result: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, rule in reversed(checks):  # built inside out, so the first rule wins
        result = pl.when(condition).then(pl.lit(rule)).otherwise(result)
    return result


def classify_influenceable(
    lines: pl.DataFrame, payee: str = "supplier_clean", expense_type: str = "expense_type"
) -> pl.DataFrame:
    """``lines`` plus ``influenceable`` (bool) and ``not_influenceable_rule`` (the rule, or null)."""
    et = pl.col(expense_type) if expense_type in lines.columns else None
    return lines.with_columns(not_influenceable_rule=influenceable_rule(pl.col(payee), et)).with_columns(
        influenceable=pl.col("not_influenceable_rule").is_null()
    )
