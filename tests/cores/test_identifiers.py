"""Identifier and supplier-name normalisation (socialvalue.identifiers)."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from socialvalue.identifiers import (
    clean_org_name,
    company_number_prefix,
    is_stable_identity,
    normalise_company_number,
    normalise_identifier,
    normalise_org_name,
)
from tests.support.paths import FEEDS_DIR

CF_DIR = FEEDS_DIR / "contracts-finder"


def _identifiers(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        ident = obj.get("identifier")
        if isinstance(ident, dict):
            yield ident
        for value in obj.values():
            yield from _identifiers(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _identifiers(value)


def _sample_files() -> list[Path]:
    return sorted(FEEDS_DIR.rglob("*.json"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7689604", "07689604"),  # WCL UK Ltd, releases-2025 sample, leading zero lost
        ("115834", "00115834"),  # Legrand Electric Limited, 2022 sample
        ("04482788", "04482788"),
        (" 0448 2788 ", "04482788"),
        ("GB-COH-04482788", "04482788"),  # CF party id form
        ("OC300001", "OC300001"),  # Ernst & Young LLP
        ("oc300001", "OC300001"),
        ("RC000664", "RC000664"),  # University of Nottingham (Royal Charter)
        ("SC394005", "SC394005"),  # Realise Solutions Limited
        ("sc123", "SC000123"),  # prefix kept, serial padded to 6
        ("RS7", "RS000007"),
        ("CE012345", "CE012345"),
        ("IP28466R", "IP28466R"),  # name-and-number-only register with a letter suffix
        ("NI12345A", "NI12345A"),  # NI company with A suffix (CH-GUIDE regex)
        ("SL01234A", "SL01234A"),
        ("RS003CUS", "RS003CUS"),  # registered society credit union form (CH-GUIDE regex)
        ("R0123", "R0000123"),  # pre-partition NI: R-zero prefix
        ("458577871", None),  # NOMINET UK "GB-COH" in the 2025 sample: 9 digits, not a company number
        ("0", None),
        ("00000000", None),
        ("SC000000", None),
        ("", None),
        ("N/A", None),
        ("AB123456", None),  # AB is not a Companies House prefix
        ("SC1234567", None),  # too long after the prefix
        ("12-34", None),
    ],
)
def test_normalise_company_number(raw: str, expected: str | None) -> None:
    assert normalise_company_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7689604", None),
        ("00115834", None),
        ("SC394005", "SC"),
        ("OC300001", "OC"),
        ("RC000721", "RC"),
        ("rs123", "RS"),
        ("CE000001", "CE"),
        ("CS012345", "CS"),
        ("IP28466R", "IP"),
        ("R0000123", "R0"),
        ("458577871", None),
    ],
)
def test_company_number_prefix(raw: str, expected: str | None) -> None:
    assert company_number_prefix(raw) == expected


@pytest.mark.parametrize(
    ("scheme", "value", "expected"),
    [
        ("GB-COH", "7689604", ("GB-COH", "07689604")),
        ("gb-coh", "sc033518", ("GB-COH", "SC033518")),
        ("GB-COH", "458577871", None),
        ("GB-CHC", " 1090095 ", ("GB-CHC", "1090095")),
        ("GB-CHC", "279417", ("GB-CHC", "279417")),
        ("GB-CHC", "1090095-1", ("GB-CHC", "1090095-1")),  # linked charity
        ("GB-CHC", "GB-CHC-1173575", ("GB-CHC", "1173575")),
        ("GB-CHC", "12345678", None),
        ("GB-SC", "SC042386", ("GB-SC", "SC042386")),
        ("GB-SC", "sc 042386", ("GB-SC", "SC042386")),
        ("GB-SC", "42386", ("GB-SC", "SC042386")),  # the scheme already says OSCR
        ("GB-NIC", "100019", ("GB-NIC", "100019")),
        ("GB-NIC", "NIC100019", ("GB-NIC", "100019")),
        ("GB-MPR", "ip031455", ("GB-MPR", "IP031455")),
        ("GB-MPR", "235C", ("GB-MPR", "235C")),
        ("GB-NHS", "rax", ("GB-NHS", "RAX")),
        ("GB-CQC", "1-2326072185", ("GB-CQC", "1-2326072185")),  # DKM Healthcare Limited, legacy sample
        ("GB-CQC", "2326072185", None),
        ("GB-PPON", "PDTL-7248-GWZW", ("GB-PPON", "PDTL-7248-GWZW")),  # Harrogate Town Council, FTS sample
        ("GB-PPON", "pdtl7248gwzw", ("GB-PPON", "PDTL-7248-GWZW")),
        ("GB-PPON", "PDTL-724-GWZW", None),
        ("GB-CFS", "GB-CFS-225728", ("GB-CFS", "225728")),
        ("GB-SRS", "sid4gov.cabinetoffice.gov.uk/6skA8DF4", ("GB-SRS", "sid4gov.cabinetoffice.gov.uk/6skA8DF4")),
        ("GB-GOR", "ea39", ("GB-GOR", "EA39")),
        ("XI-EORI", " gb12 34 ", ("XI-EORI", "GB1234")),  # unknown scheme: stripped, upper-cased
        (" gb_coh ", "7689604", ("GB-COH", "07689604")),
        ("GB-COH", "", None),
        ("GB-CHC", "N/A", None),
        ("GB-CHC", "0", None),
        ("GB-NIC", "000", None),
        ("XX-FOO", "none", None),
        ("", "1090095", None),
    ],
)
def test_normalise_identifier(scheme: str, value: str, expected: tuple[str, str] | None) -> None:
    assert normalise_identifier(scheme, value) == expected


@pytest.mark.parametrize(
    ("scheme", "stable"),
    [
        ("GB-COH", True),
        ("GB-CHC", True),
        ("GB-SC", True),
        ("GB-NIC", True),
        ("GB-MPR", True),
        ("GB-PPON", True),
        ("GB-NHS", True),
        ("GB-CQC", True),
        ("gb-coh", True),
        ("GB-CFS", False),
        ("gb-cfs", False),
        ("", False),
        ("MADE-UP", False),
    ],
)
def test_is_stable_identity(scheme: str, stable: bool) -> None:
    assert is_stable_identity(scheme) is stable


def test_every_gb_coh_in_the_samples_normalises_or_is_the_known_bad_one() -> None:
    seen = 0
    rejected: set[str] = set()
    for path in _sample_files():
        for ident in _identifiers(json.loads(path.read_text(encoding="utf-8"))):
            if ident.get("scheme") != "GB-COH":
                continue
            seen += 1
            result = normalise_identifier("GB-COH", str(ident.get("id", "")))
            if result is None:
                rejected.add(str(ident.get("id")))
                continue
            assert len(result[1]) == 8
            assert result[1].lstrip("0") == str(ident["id"]).strip().upper().lstrip("0")
    assert seen > 150
    assert rejected == {"458577871"}


def test_short_gb_coh_numbers_occur_in_the_samples() -> None:
    """Guards the padding cases above against the data: short numbers really occur."""
    short = {
        str(ident["id"])
        for path in _sample_files()
        for ident in _identifiers(json.loads(path.read_text(encoding="utf-8")))
        if ident.get("scheme") == "GB-COH" and re.fullmatch(r"\d{1,7}", str(ident.get("id", "")))
    }
    assert {"7689604", "115834", "1431688"} <= short


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Ernst &amp; Young LLP", "ernst and young"),
        ("ERNST AND YOUNG LLP", "ernst and young"),
        ("Ernst & Young LLP", "ernst and young"),
        ("Vinci Construction UK LTD", "vinci construction uk"),
        ("Vinci Construction UK Ltd", "vinci construction uk"),
        ("OAKHEART SERVICES LTD.", "oakheart services"),
        ("Presence Ltd,", "presence"),
        ("T.S.G Building Services PLC", "tsg building services"),
        ("TSG Building Services plc", "tsg building services"),
        ("INSTITUTE FOR FISCAL STUDIES(THE)", "institute for fiscal studies"),
        ("The Institute for Fiscal Studies", "institute for fiscal studies"),
        ("Norty Ltd T/A T-Pro", "norty"),
        ("Whittle Programmed Maintenance Ltd (T/A Hanksinon Whittle)", "whittle programmed maintenance"),
        ("Salutem LD BidCo IV Limited, trading as Ambito Care and Educatio", "salutem ld bidco iv"),
        ("Polish Expats Association CIC", "polish expats association"),
        ("Iridescent Ideas C.I.C.", "iridescent ideas"),
        ("Somewhere Community Interest Company", "somewhere"),
        ("Whitgift Foundation Carers&#039; Information Service", "whitgift foundation carers information service"),
        ("Telford &amp;amp; Wrekin Council", "telford and wrekin council"),
        ("CafÃ© Ltd", "cafe"),  # UTF-8 read as cp1252
        ("Café Ltd", "cafe"),
        ("Community Interest Company", "community interest company"),  # nothing left would be worse
        ("Limited", "limited"),
        ("  ", ""),
    ],
)
def test_normalise_org_name(name: str, key: str) -> None:
    assert normalise_org_name(name) == key


def test_names_that_must_stay_distinct() -> None:
    # Trust / Foundation / Community are part of the name, not legal suffixes.
    assert normalise_org_name("Walsall Healthcare NHS Trust") == "walsall healthcare nhs trust"
    assert normalise_org_name("Trustmarque Solutions Ltd") != normalise_org_name("Trustmarque Solutions Trust")
    assert normalise_org_name("Axis Europe PLC") == normalise_org_name("Axis Europe plc")


def test_clean_org_name_keeps_case_and_punctuation() -> None:
    assert clean_org_name("The Adolescent and Children&#039;s Trust") == "The Adolescent and Children's Trust"
    assert clean_org_name("Bromley &amp; Croydon  Women&#039;s Aid") == "Bromley & Croydon Women's Aid"
    assert clean_org_name("Price â€“ Co") == "Price \u2013 Co"
