"""Realistic statement snapshots for the PDF renderer's tests and benchmark.

Figures are built from amounts in pence and the shares are worked out from them, so every snapshot is
internally consistent (tier values add up to the total, shares match values) like one the metrics engine builds.
"""

from __future__ import annotations

import copy
import random
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from socialvalue.snapshot import SCHEMA, STANDARD_SOURCES, figures_sha256

BLACK_COUNTRY_AND_BIRMINGHAM = ["Birmingham", "Dudley", "Sandwell", "Walsall", "Wolverhampton"]


def share(part: int, total: int) -> str | None:
    if total == 0:
        return None
    return str((Decimal(part) / Decimal(total)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def headline(basis: str, tiers: dict[str, int], types: dict[str, int], lines: int, suppliers: int) -> dict[str, Any]:
    total = sum(tiers.values())
    assert sum(types.values()) == total, "supplier types must add up to the same total as the tiers"
    known = total - tiers["unknown"]
    status_known = share(total - types["Status unknown"], total)
    return {
        "basis": basis,
        "total_value_pence": total,
        "line_count": lines,
        "contract_count": max(lines - 12, 1),
        "supplier_count": suppliers,
        "supplier_names": [],
        "coverage": {
            "locality": share(known, total),
            "status": status_known,
            "sme": status_known,
            "vcse": status_known,
            "social_enterprise": status_known,
        },
        "coverage_threshold": "0.50",
        "local_share": share(tiers["local"], total),
        "local_share_known": share(tiers["local"], known),
        "regional_share": share(tiers["local"] + tiers["regional"], total),
        "sme_share": share(types["SME"], total),
        "vcse_share": share(types["VCSE (charity or community group)"] + types["Social enterprise"], total),
        "social_enterprise_share": share(types["Social enterprise"], total),
        "unknown_locality_share": share(tiers["unknown"], total),
        "unknown_status_share": share(types["Status unknown"], total),
        "excluded": {"non_gbp": 2, "withdrawn": 3, "no_value": 5, "no_date": 1},
    }


AWARDED_TIERS = {
    "local": 741_234_567,
    "regional": 312_456_789,
    "rest_of_uk": 640_123_456,
    "outside_uk": 12_345_600,
    "unknown": 134_567_812,
}
AWARDED_TYPES = {
    "SME": 598_765_432,
    "Large company": 903_456_789,
    "VCSE (charity or community group)": 82_345_678,
    "Social enterprise": 45_678_901,
    "Public sector body": 60_000_000,
    "Status unknown": 150_481_424,
}
AWARDED_SUPPLIER_COUNTS = {
    "SME": 88,
    "Large company": 41,
    "VCSE (charity or community group)": 12,
    "Social enterprise": 6,
    "Public sector body": 4,
    "Status unknown": 12,
}
SPREAD_TIERS = {
    "local": 903_112_004,
    "regional": 288_004_310,
    "rest_of_uk": 801_998_120,
    "outside_uk": 9_870_000,
    "unknown": 102_447_764,
}
SPREAD_TYPES = {
    "SME": 702_334_100,
    "Large company": 1_101_200_450,
    "VCSE (charity or community group)": 99_870_210,
    "Social enterprise": 51_004_300,
    "Public sector body": 71_200_000,
    "Status unknown": 79_823_138,
}

TOP_LOCAL_SUPPLIERS = [
    ("Black Country Facilities Management Ltd", 118_456_000, "SME", "Sandwell"),
    ("Smith & Byford Mechanical Services Ltd", 96_120_050, "SME", "Dudley"),
    ("Midland Clinical Supplies Ltd", 71_985_499, "Large company", "Birmingham"),
    ("Walsall Community Transport CIC", 38_400_000, "Social enterprise", "Walsall"),
    ("Łukasz Building Services Ltd", 29_750_025, "SME", "Wolverhampton"),
    ("Birmingham Mind", 21_000_000, "VCSE (charity or community group)", "Birmingham"),
    ("Tipton Laundry Co-operative Ltd", 17_345_678, "Social enterprise", "Sandwell"),
    ("Dudley Catering Partnership LLP", 12_004_449, "SME", "Dudley"),
    ("Smethwick Print & Design Ltd", 6_789_012, "SME", None),
    ("Oldbury Grounds Maintenance Ltd", 4_321_098, "SME", "Sandwell"),
]

TREND = [
    ("2023Q2", "0.3512", 1_650_234_112),
    ("2023Q3", "0.3307", 1_702_998_004),
    ("2023Q4", "0.3689", 2_210_450_060),
    ("2024Q1", "0.3841", 1_498_765_432),
    ("2024Q2", "0.3795", 1_803_112_990),
    ("2024Q3", "0.4018", 1_950_000_000),
    ("2024Q4", "0.3956", 2_044_871_200),
]


def seal(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Return the snapshot with its figures_sha256 set, as the metrics engine freezes it."""
    sealed = {key: value for key, value in snapshot.items() if key != "figures_sha256"}
    sealed["figures_sha256"] = figures_sha256(sealed)
    return sealed


def example_snapshot(status: str = "published", **statement: Any) -> dict[str, Any]:
    """Q1 2025/26 statement for Sandwell and West Birmingham Hospitals NHS Trust, sealed with its hash."""
    main = headline("awarded", AWARDED_TIERS, AWARDED_TYPES, lines=214, suppliers=163)
    spread = headline("spread", SPREAD_TIERS, SPREAD_TYPES, lines=388, suppliers=251)
    total = main["total_value_pence"]
    info: dict[str, Any] = {
        "id": "stmt-rxk-2025q1",
        "anchor_name": "Sandwell and West Birmingham Hospitals NHS Trust",
        "anchor_code": "RXK",
        "scope_kind": "anchor",
        "members": [],
        "period": "2025Q1",
        "period_label": "Q1 2025/26 (1 April to 30 June 2025)",
        "version": 1,
        "status": status,
        "published_at": None if status == "draft" else "2025-07-15T10:00:00+01:00",
        "generated_at": "2025-07-08T09:15:00+00:00",
        "supersedes": None,
    }
    info.update(statement)
    snapshot: dict[str, Any] = {
        "schema": SCHEMA,
        "statement": info,
        "headline": main,
        "spread_headline": spread,
        "trend": [
            {"period": p, "local_share": s, "total_value_pence": v, "coverage": "0.9100"} for p, s, v in TREND
        ]  # the statement's own quarter closes the trend
        + [
            {
                "period": "2025Q1",
                "local_share": main["local_share"],
                "total_value_pence": total,
                "coverage": main["coverage"]["locality"],
            }
        ],
        "by_tier": [{"tier": t, "value_pence": v, "share": share(v, total)} for t, v in AWARDED_TIERS.items()],
        "by_supplier_type": [
            {"category": c, "value_pence": v, "share": share(v, total), "suppliers": AWARDED_SUPPLIER_COUNTS[c]}
            for c, v in AWARDED_TYPES.items()
        ],
        "top_local_suppliers": [
            {"name": n, "value_pence": v, "category": c, "lad_name": lad} for n, v, c, lad in TOP_LOCAL_SUPPLIERS
        ],
        "top_suppliers": [
            {"name": n, "value_pence": v, "category": c, "tier": "local"} for n, v, c, _lad in TOP_LOCAL_SUPPLIERS[:3]
        ]
        + [
            {
                "name": "National Outsourcing plc",
                "value_pence": 90_000_000,
                "category": "Large company",
                "tier": "rest_of_uk",
            }
        ],
        "commitments": [
            {
                "contract": "SWB/2024/118 Soft facilities management",
                "supplier": "Black Country Facilities Management Ltd",
                "measure": "Local people employed on the contract",
                "unit": "FTE",
                "committed": "24",
                "delivered": "19.5",
                "verified": "17",
            },
            {
                "contract": "SWB/2024/131 Patient transport",
                "supplier": "Walsall Community Transport CIC",
                "measure": "Volunteering hours for local community groups",
                "unit": "hours",
                "committed": "1200",
                "delivered": "640",
                "verified": "0",
            },
            {
                "contract": "SWB/2025/007 Estates maintenance",
                "supplier": "Smith & Byford Mechanical Services Ltd",
                "measure": "Apprenticeships started",
                "unit": "people",
                "committed": "4",
                "delivered": "2",
                "verified": "2",
            },
        ],
        "methodology": {
            "local_definition": {
                "preset": "black-country-and-birmingham",
                "label": "the Black Country and Birmingham",
                "lad_names": list(BLACK_COUNTRY_AND_BIRMINGHAM),
            },
            "bases": ["awarded", "spread"],
            "rule_versions": {"locality": "locality-2025.1", "enterprise": "enterprise-2025.1", "metrics": "metrics-1"},
            "exclusions": ["Framework agreements with no call-off value are left out until a call-off is published."],
            "notes": ["Contracts awarded jointly with other trusts are counted in full for each buyer named."],
        },
        "sources": [dict(s) for s in STANDARD_SOURCES],
    }
    return seal(snapshot)


def group_snapshot() -> dict[str, Any]:
    return example_snapshot(
        id="stmt-bc-group-2025q1",
        anchor_name="Black Country Provider Collaborative",
        anchor_code=None,
        scope_kind="group",
        members=[
            "Sandwell and West Birmingham Hospitals NHS Trust",
            "The Dudley Group NHS Foundation Trust",
            "Walsall Healthcare NHS Trust",
            "The Royal Wolverhampton NHS Trust",
        ],
    )


def varied_snapshot(seed: int) -> dict[str, Any]:
    """A different but consistent snapshot per seed, for the benchmark and for size checks."""
    rng = random.Random(seed)
    snapshot = copy.deepcopy(example_snapshot(status=rng.choice(["draft", "published", "superseded"])))
    tiers = {tier: rng.randrange(0, 900_000_000) for tier in AWARDED_TIERS}
    total = sum(tiers.values())
    types = dict.fromkeys(AWARDED_TYPES, 0)
    remaining = total
    for category in list(AWARDED_TYPES)[:-1]:
        types[category] = rng.randrange(0, remaining // 2 + 1)
        remaining -= types[category]
    types["Status unknown"] = remaining
    snapshot["headline"] = headline("awarded", tiers, types, rng.randrange(1, 900), rng.randrange(1, 400))
    if rng.random() < 0.3:
        snapshot["spread_headline"] = None
    snapshot["by_tier"] = [{"tier": t, "value_pence": v, "share": share(v, total)} for t, v in tiers.items()]
    snapshot["by_supplier_type"] = [
        {"category": c, "value_pence": v, "share": share(v, total), "suppliers": rng.randrange(0, 90)}
        for c, v in types.items()
    ]
    snapshot["trend"] = snapshot["trend"][rng.randrange(0, 8) :]
    snapshot["top_local_suppliers"] = snapshot["top_local_suppliers"][: rng.randrange(0, 11)]
    snapshot["commitments"] = snapshot["commitments"][: rng.randrange(0, 4)] * rng.randrange(1, 6)
    snapshot["statement"]["version"] = rng.randrange(1, 4)
    return seal(snapshot)
