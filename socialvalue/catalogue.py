"""The social-value measure catalogue: the UK Government Social Value Model and the project's local measures.

Pure: the shipped JSON (or any dict of the same shape) in, a list of measure dicts out. Every measure has a
source line and keeps the verification status the research gave it. National TOMs wording and proxy values are
deliberately absent (their licence is CC BY-NC-ND); see ``data/social-value/SOURCES.md``.

Units: a model award criterion has no unit of its own, so its unit is ``CONTRACT_UNIT`` and each commitment
states the unit it is counted in. Cash measures are counted in pounds (two decimal places) and reported apart
from monetised proxies.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, TypedDict

OGL_LINE = "Contains public sector information licensed under the Open Government Licence v3.0."
CONTRACT_UNIT = "stated per commitment"
CASH_UNIT = "pounds"
KINDS = ("cash", "output")
FRAMEWORKS = ("ppn-06-20", "ppn-002", "local")
_SOURCE_MAX = 1000


class MeasureSpec(TypedDict):
    framework: str
    code: str
    theme: str | None
    outcome: str | None
    name: str
    unit: str
    kind: str
    source: str
    verification_status: str | None
    proxy_value_pence: int | None
    proxy_source: str | None
    proxy_year: int | None
    proxy_price_base: str | None


def shipped_model() -> dict[str, Any]:
    text = resources.files("socialvalue").joinpath("data/social-value/ppn-social-value-model.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _source_line(model: dict[str, Any], item_sources: list[str], sources: dict[str, Any], where: str) -> str:
    titles = [f"{sid} {sources[sid]['title']}" for sid in item_sources if sid in sources]
    checked = f"Checked against: {'; '.join(titles)}" if titles else "Not re-seen in a stored source: check the model."
    line = f"{model['name']}, {where}. {OGL_LINE} {checked}"
    return line if len(line) <= _SOURCE_MAX else line[: _SOURCE_MAX - 1] + "…"


def _measure(
    framework: str, code: str, theme: str, outcome: str, name: str, status: str | None, source: str
) -> MeasureSpec:
    return MeasureSpec(
        framework=framework,
        code=code,
        theme=theme,
        outcome=outcome,
        name=name,
        unit=CONTRACT_UNIT,
        kind="output",
        source=source,
        verification_status=status,
        proxy_value_pence=None,
        proxy_source=None,
        proxy_year=None,
        proxy_price_base=None,
    )


def model_measures(data: dict[str, Any]) -> list[MeasureSpec]:
    """One measure per model award criterion; a PPN 002 outcome without captured criteria is one measure."""
    sources: dict[str, Any] = data["sources"]
    out: list[MeasureSpec] = []
    for model in data["models"]:
        framework = model["id"]
        if framework == "ppn-06-20":
            for theme in model["themes"]:
                theme_label = f"{theme['code']} {theme['name']}"
                for outcome in theme["policy_outcomes"]:
                    outcome_label = f"{outcome['code']} {outcome['name']}"
                    for mac in outcome["model_award_criteria"]:
                        source = _source_line(model, mac.get("sources", []), sources, mac["code"])
                        out.append(
                            _measure(
                                framework, mac["code"], theme_label, outcome_label, mac["name"], mac["status"], source
                            )
                        )
        elif framework == "ppn-002":
            for mission in model["missions"]:
                theme_label = f"{mission['code']} {mission['name']}"
                for outcome in mission["policy_outcomes"]:
                    if outcome["name"].startswith("["):
                        continue  # a placeholder, not a title: nothing to commit to
                    outcome_label = f"Outcome {outcome['code']} {outcome['name']}"
                    criteria = outcome.get("model_award_criteria", [])
                    if not criteria:
                        where = f"Outcome {outcome['code']}"
                        source = _source_line(model, outcome.get("sources", []), sources, where)
                        out.append(
                            _measure(
                                framework, where, theme_label, outcome_label, outcome["name"], outcome["status"], source
                            )
                        )
                    for mac in criteria:
                        code = f"MAC {mac['code']}"
                        source = _source_line(model, mac.get("sources", []), sources, code)
                        out.append(
                            _measure(framework, code, theme_label, outcome_label, mac["name"], mac["status"], source)
                        )
        else:
            raise ValueError(f"unknown social value model {framework!r}")
    return out


_LOCAL_SOURCE = "Local Value project measure (own wording; not a National TOMs measure)"
_BEIS_CARBON = (
    "BEIS, Valuation of greenhouse gas emissions: for policy appraisal and evaluation (2 Sep 2021), central "
    "value for 2021; gov.uk/government/publications/valuing-greenhouse-gas-emissions-in-policy-appraisal; "
    "Open Government Licence v3.0"
)


def _local(code: str, name: str, unit: str, kind: str, theme: str) -> MeasureSpec:
    return MeasureSpec(
        framework="local",
        code=code,
        theme=theme,
        outcome=None,
        name=name,
        unit=unit,
        kind=kind,
        source=_LOCAL_SOURCE,
        verification_status=None,
        proxy_value_pence=None,
        proxy_source=None,
        proxy_year=None,
        proxy_price_base=None,
    )


def local_measures() -> list[MeasureSpec]:
    """The project's own local measures: plain names, units, and a proxy only from an open source."""
    carbon = _local("LV-CARBON", "Carbon emissions saved", "tCO2e", "output", "Environment")
    carbon["proxy_value_pence"] = 24_500
    carbon["proxy_source"] = _BEIS_CARBON
    carbon["proxy_year"] = 2021
    carbon["proxy_price_base"] = "2020 prices"
    return [
        _local("LV-LOCAL-JOBS", "Local people employed on the contract (FTE)", "FTE", "output", "Jobs"),
        _local("LV-APPRENTICESHIPS", "Apprenticeship starts on the contract", "starts", "output", "Skills"),
        _local("LV-RLW-JOBS", "Jobs on the contract paid at least the real Living Wage (FTE)", "FTE", "output", "Jobs"),
        _local("LV-LOCAL-HIRES-BARRIERS", "Local people facing barriers to work hired (FTE)", "FTE", "output", "Jobs"),
        _local("LV-VOLUNTEERING", "Staff volunteering hours in the local community", "hours", "output", "Community"),
        _local("LV-SPEND-LOCAL-VCSE", "Spend with local VCSEs (cash)", CASH_UNIT, "cash", "Local spend"),
        _local("LV-SPEND-LOCAL-SME", "Spend with local SMEs (cash)", CASH_UNIT, "cash", "Local spend"),
        carbon,
    ]


def shipped_catalogue() -> list[MeasureSpec]:
    """Everything seeded by ``localvalue seed measures``: the model's criteria, then the local measures."""
    measures = [*model_measures(shipped_model()), *local_measures()]
    keys = [(m["framework"], m["code"]) for m in measures]
    if len(set(keys)) != len(keys):
        raise ValueError("the measure catalogue repeats a (framework, code)")
    return measures
