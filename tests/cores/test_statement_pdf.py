"""The quarterly statement PDF: content read back from the PDF, metadata, byte-for-byte reproducibility."""

from __future__ import annotations

import copy
import hashlib
import io
import os
import subprocess
import sys
from typing import Any, cast

import pytest
from pypdf import PdfReader

from socialvalue.snapshot import canonical_json, figures_sha256, format_pence, format_share, validate_snapshot
from socialvalue.statement_pdf import render_statement_pdf
from tests.support.paths import REPO_DIR
from tests.support.statements import BLACK_COUNTRY_AND_BIRMINGHAM, example_snapshot, group_snapshot, seal


def _flat(text: str) -> str:
    return " ".join(text.split())


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def published() -> dict[str, Any]:
    return example_snapshot()


@pytest.fixture(scope="module")
def published_pdf(published: dict[str, Any]) -> bytes:
    return render_statement_pdf(published)


@pytest.fixture(scope="module")
def published_text(published_pdf: bytes) -> str:
    return _flat("\n".join(_pages(published_pdf)))


# --- formatting ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pence", "shown"),
    [
        (0, "£0"),
        (49, "£0"),
        (50, "£1"),
        (149, "£1"),
        (150, "£2"),
        (99_999, "£1,000"),
        (123_456_789, "£1,234,568"),
        (1_840_728_224, "£18,407,282"),
        (-150, "-£2"),
        (-49, "£0"),
    ],
)
def test_format_pence_rounds_to_whole_pounds(pence: int, shown: str) -> None:
    assert format_pence(pence) == shown


@pytest.mark.parametrize("bad", [1.5, "100", True])
def test_format_pence_rejects_non_integer_pence(bad: Any) -> None:
    with pytest.raises(ValueError, match="integer pence"):
        format_pence(bad)


@pytest.mark.parametrize(
    ("share", "shown"),
    [
        ("0.4125", "41.3%"),
        ("0.41249", "41.2%"),
        ("0.4035", "40.4%"),
        ("1", "100.0%"),
        ("0", "0.0%"),
        ("0.0004", "0.0%"),
        ("0.0005", "0.1%"),
        (None, "not known"),
    ],
)
def test_format_share(share: str | None, shown: str) -> None:
    assert format_share(share) == shown


@pytest.mark.parametrize("bad", ["forty", "NaN", "Infinity", ""])
def test_format_share_rejects_non_decimals(bad: str) -> None:
    with pytest.raises(ValueError, match="share"):
        format_share(bad)


# --- canonical form and hash -----------------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": "£5", "a": [1, None, {"d": True, "c": "x"}]}) == (
        '{"a":[1,null,{"c":"x","d":true}],"b":"£5"}'.encode()
    )
    assert canonical_json({"x": 1, "y": 2}) == canonical_json({"y": 2, "x": 1})


def test_canonical_json_refuses_floats() -> None:
    with pytest.raises(ValueError, match=r"headline\.local_share is a float"):
        canonical_json({"headline": {"local_share": 0.41}})


def test_figures_sha256_leaves_out_its_own_key() -> None:
    expected = hashlib.sha256('{"a":1,"b":"£"}'.encode()).hexdigest()
    assert figures_sha256({"b": "£", "a": 1}) == expected
    assert figures_sha256({"b": "£", "a": 1, "figures_sha256": "anything"}) == expected


def test_example_snapshot_is_sealed_and_valid(published: dict[str, Any]) -> None:
    validate_snapshot(published)
    assert published["figures_sha256"] == figures_sha256(published)


# --- validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ("schema",),
        ("statement", "period_label"),
        ("headline", "local_share"),
        ("headline", "excluded", "no_date"),
        ("methodology", "local_definition", "lad_names"),
        ("sources",),
        ("figures_sha256",),
    ],
)
def test_missing_required_key_is_a_clear_error(published: dict[str, Any], path: tuple[str, ...]) -> None:
    broken = copy.deepcopy(published)
    holder = broken
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    with pytest.raises(ValueError, match="missing required key '" + ".".join(path) + "'"):
        render_statement_pdf(seal(broken) if path != ("figures_sha256",) else broken)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("statement", "status"), "final", r"statement\.status must be one of"),
        (("headline", "total_value_pence"), 12.5, r"headline\.total_value_pence must be integer pence"),
        (("headline", "sme_share"), "1.2", r"headline\.sme_share must be a share between 0 and 1"),
        (("headline", "sme_share"), 0.5, r"headline\.sme_share must be a decimal string"),
        (("statement", "generated_at"), "2025-07-08T09:15:00", r"statement\.generated_at must be a date-time with"),
        (("statement", "period"), "2025-Q1", r"statement\.period must be a quarter"),
        (("schema",), "localvalue.statement/9", r"schema must be one of"),
    ],
)
def test_wrong_values_are_clear_errors(
    published: dict[str, Any], path: tuple[str, ...], value: Any, message: str
) -> None:
    broken = copy.deepcopy(published)
    holder = broken
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    broken["figures_sha256"] = "0" * 64  # validation of values comes before the hash check
    with pytest.raises(ValueError, match=message):
        render_statement_pdf(broken)


def test_trend_longer_than_eight_quarters_is_refused(published: dict[str, Any]) -> None:
    broken = copy.deepcopy(published)
    broken["trend"] = [broken["trend"][0]] * 9
    with pytest.raises(ValueError, match=r"trend must be a list of at most 8 items"):
        render_statement_pdf(seal(broken))


def test_figures_changed_after_sealing_are_refused(published: dict[str, Any]) -> None:
    tampered = copy.deepcopy(published)
    tampered["headline"]["local_share"] = "0.9000"
    with pytest.raises(ValueError, match="figures_sha256 does not match"):
        render_statement_pdf(tampered)


# --- content read back from the PDF ----------------------------------------------------------------------------


def test_every_headline_figure_appears_as_formatted(published: dict[str, Any], published_text: str) -> None:
    for basis in ("headline", "spread_headline"):
        h = published[basis]
        expected = [format_pence(h["total_value_pence"]), f"{h['line_count']:,}", f"{h['supplier_count']:,}"]
        expected += [
            format_share(h[key])
            for key in (
                "local_share",
                "local_share_known",
                "regional_share",
                "sme_share",
                "vcse_share",
                "social_enterprise_share",
            )
        ]
        expected += [format_share(c) for c in h["coverage"].values()]
        for shown in expected:
            assert shown in published_text, f"{basis}: {shown} missing"
    # Hand-checked against the example's pence: 741,234,567 / 1,840,728,224 local; 18,407,282.24 pounds.
    assert "40.3%" in published_text
    assert "£18,407,282" in published_text
    assert "Coverage: location known 92.7% 95.1%" in published_text
    assert "Coverage: SME status known 91.8% 96.2%" in published_text


def test_exclusions_tiers_types_and_suppliers_appear(published: dict[str, Any], published_text: str) -> None:
    assert "Not in pounds sterling: not converted, to avoid exchange-rate assumptions 2" in published_text
    assert "No award date: the quarter cannot be known 1" in published_text
    assert "Elsewhere in region £3,124,568 17.0%" in published_text
    assert "Location unknown £1,345,678 7.3%" in published_text
    assert "SME 88 £5,987,654 32.5%" in published_text
    assert "Smith & Byford Mechanical Services Ltd" in published_text
    # The standard fonts cannot show Ł, so the name is folded rather than printed as a black box.
    assert "Lukasz Building Services Ltd" in published_text
    assert "Smethwick Print & Design Ltd SME not known £67,890" in published_text


def test_trend_shows_each_quarter(published: dict[str, Any], published_text: str) -> None:
    assert "Q2 23/24 35.1% 91.0% £16,502,341" in published_text
    assert "Q1 25/26 40.3% 92.7% £18,407,282" in published_text
    assert "Local share over the last 8 quarters" in published_text
    assert len(published["trend"]) == 8


def test_cover_names_anchor_period_and_version(published_pdf: bytes) -> None:
    first = _flat(_pages(published_pdf)[0])
    assert "Sandwell and West Birmingham Hospitals NHS Trust" in first
    assert "Q1 2025/26 (1 April to 30 June 2025)" in first
    assert "Version 1" in first
    assert "Published 15 July 2025" in first
    assert "Status Published" in first
    assert "DRAFT" not in first


def test_footer_on_every_page_carries_hash_version_and_page_number(
    published: dict[str, Any], published_pdf: bytes
) -> None:
    pages = _pages(published_pdf)
    for number, text in enumerate(pages, start=1):
        flat = _flat(text)
        assert f"Figures SHA-256: {published['figures_sha256']}" in flat
        assert f"Page {number} of {len(pages)}" in flat
        assert "Version 1 · Published 15 July 2025" in flat


def test_methodology_names_lads_bases_rules_and_limitation(published_text: str) -> None:
    assert "Birmingham; Dudley; Sandwell; Walsall; Wolverhampton" in published_text
    for lad in BLACK_COUNTRY_AND_BIRMINGHAM:
        assert lad in published_text
    assert "Awarded basis: the whole value of each contract counts in the quarter in which it was awarded" in (
        published_text
    )
    assert "Spread basis:" in published_text
    assert "usually its registered office" in published_text
    assert "locality-2025.1" in published_text
    assert "enterprise-2025.1" in published_text
    assert "Framework agreements with no call-off value are left out" in published_text
    assert "rounded to the nearest pound" in published_text


def test_sources_and_attributions(published: dict[str, Any], published_text: str) -> None:
    for source in published["sources"]:
        assert source["name"] in published_text
        assert _flat(source["attribution"]) in published_text
    assert "Open Government Licence v3.0 (Cabinet Office, Contracts Finder)" in published_text
    assert "Open Government Licence v3.0 (Cabinet Office, Find a Tender)" in published_text
    assert "Source: Office for National Statistics licensed under the Open Government Licence v3.0" in published_text


def test_commitments_table(published_text: str) -> None:
    assert "Volunteering hours for local community groups (hours) 1,200 640 0" in published_text
    assert "Local people employed on the contract (FTE) 24 19.5 17" in published_text


def test_no_commitments_says_so() -> None:
    snapshot = example_snapshot()
    snapshot["commitments"] = []
    text = _flat("\n".join(_pages(render_statement_pdf(seal(snapshot)))))
    assert "No commitments recorded" in text


def test_charts_are_vector_drawings_with_text_labels(published_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(published_pdf))
    assert all(len(page.images) == 0 for page in reader.pages)
    chart_page = _flat(" ".join(page.extract_text() for page in reader.pages[1:]))
    assert "Local share of value, by quarter (awarded basis)" in chart_page
    assert "Share of contract value (awarded basis)" in chart_page


def test_metadata_title_author_language(published_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(published_pdf))
    meta = reader.metadata
    assert meta is not None
    assert meta.title == (
        "Sandwell and West Birmingham Hospitals NHS Trust: local spend and social value statement, "
        "Q1 2025/26 (1 April to 30 June 2025)"
    )
    assert meta.author == "Sandwell and West Birmingham Hospitals NHS Trust"
    assert meta.subject is not None
    assert "Q1 2025/26" in meta.subject
    assert str(reader.root_object["/Lang"]) == "en-GB"
    # 10:00 BST on 15 July 2025 is 09:00 UTC.
    assert str(meta["/CreationDate"]) == "D:20250715090000+00'00'"
    assert str(meta["/ModDate"]) == "D:20250715090000+00'00'"
    assert reader.outline, "section headings should be bookmarked"


def test_page_count_is_sane(published_pdf: bytes) -> None:
    assert 4 <= len(PdfReader(io.BytesIO(published_pdf)).pages) <= 7
    many = example_snapshot()
    many["commitments"] = many["commitments"] * 40
    pages = len(PdfReader(io.BytesIO(render_statement_pdf(seal(many)))).pages)
    assert 7 <= pages <= 14


# --- status notices --------------------------------------------------------------------------------------------


def test_draft_is_marked_on_every_page() -> None:
    snapshot = example_snapshot(status="draft")
    pages = [_flat(text) for text in _pages(render_statement_pdf(snapshot))]
    assert "DRAFT: not published" in pages[0]
    assert all("DRAFT: NOT FOR PUBLICATION" in text for text in pages)
    assert all("Not published" in text for text in pages)


def test_superseded_statement_says_so_with_reason() -> None:
    snapshot = example_snapshot(
        status="superseded",
        version=2,
        supersedes={"id": "stmt-rxk-2025q1", "version": 1, "reason": "Two awards were recorded in the wrong quarter."},
    )
    first = _flat(_pages(render_statement_pdf(snapshot))[0])
    assert "SUPERSEDED: a later version of this statement replaces this one" in first
    assert "This version 2 replaces version 1 (statement stmt-rxk-2025q1)." in first
    assert "Reason: Two awards were recorded in the wrong quarter." in first


def test_group_statement_lists_members() -> None:
    text = _flat("\n".join(_pages(render_statement_pdf(group_snapshot()))))
    assert "Black Country Provider Collaborative" in text
    assert "Group statement covering 4 organisations:" in text
    assert "The Royal Wolverhampton NHS Trust" in text


def test_missing_shares_show_not_known() -> None:
    snapshot = example_snapshot()
    snapshot["trend"][0]["local_share"] = None
    snapshot["headline"]["vcse_share"] = None
    text = _flat("\n".join(_pages(render_statement_pdf(seal(snapshot)))))
    assert "VCSE share not known" in text
    assert "Q2 23/24 not known" in text
    assert "not available" not in text


# --- reproducibility -------------------------------------------------------------------------------------------


def test_same_snapshot_gives_identical_bytes(published: dict[str, Any], published_pdf: bytes) -> None:
    again = render_statement_pdf(copy.deepcopy(published))
    assert again == published_pdf
    file_id = published["figures_sha256"][:32]
    ids = cast("list[Any]", PdfReader(io.BytesIO(published_pdf)).trailer["/ID"])
    first = getattr(ids[0], "original_bytes", ids[0])  # pypdf reads some byte strings as text
    assert first.hex() == file_id, "document ID comes from the hash"


def test_different_figures_give_different_bytes(published_pdf: bytes) -> None:
    other = example_snapshot()
    other["headline"]["line_count"] += 1
    assert render_statement_pdf(seal(other)) != published_pdf


def test_bytes_identical_in_a_separate_process(published_pdf: bytes) -> None:
    code = (
        "import sys\n"
        "from socialvalue.statement_pdf import render_statement_pdf\n"
        "from tests.support.statements import example_snapshot\n"
        "sys.stdout.buffer.write(render_statement_pdf(example_snapshot()))\n"
    )
    # Clock, time zone and SOURCE_DATE_EPOCH must not leak into the file.
    env = {**os.environ, "TZ": "America/New_York", "SOURCE_DATE_EPOCH": "1700000000", "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_DIR, env=env, capture_output=True, check=True, timeout=60
    )
    assert result.stdout == published_pdf


def test_quarter_with_no_value_renders_without_charts_failing() -> None:
    snapshot = example_snapshot()
    empty = {key: None for key in snapshot["headline"] if key.endswith("share") or key.endswith("_known")}
    snapshot["headline"].update(empty, total_value_pence=0, line_count=0, supplier_count=0)
    snapshot["spread_headline"] = None
    snapshot["trend"] = []
    snapshot["by_tier"] = [{"tier": "local", "value_pence": 0, "share": None}]
    snapshot["by_supplier_type"] = []
    snapshot["top_local_suppliers"] = []
    snapshot["commitments"] = []
    text = _flat("\n".join(_pages(render_statement_pdf(seal(snapshot)))))
    assert "Local share of value not known" in text
    assert "No contract value was counted in this quarter, so there is no local share to give." in text
    assert "Total contract value £0" in text
    assert "No earlier quarters are recorded" in text
    assert "No local suppliers were awarded contracts in this quarter." in text
    assert "No commitments recorded" in text
    assert "Spread basis" not in text.split("Methodology")[0]
