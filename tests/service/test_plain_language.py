# ruff: noqa: E501  (the table reads best one case a line)
"""Errors speak the caller's language: the field as they sent it, what to send, an example; never a type name,
a regular expression or the parser's phrasing. And no command prints a traceback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, Database, dispose_database, new_database
from tests.support.api import bearer, make_org, make_supplier, make_token
from tests.support.cli import localvalue

# (case, path, body changes (for /contracts: over a valid contract) or raw bytes, field, exact message)
CASES: list[tuple[str, str, Any, str | None, str]] = [
    ("date as d/m/y", "/contracts", {"award_date": "12/05/2025"}, "award_date", "award_date must be a date like 2025-05-12"),
    ("impossible date", "/contracts", {"start_date": "2025-13-45"}, "start_date", "start_date must be a date like 2025-05-12"),
    ("three decimals", "/contracts", {"value": "80000.005"}, "value", "value must be pounds with at most two decimals, like 80000.00"),
    ("words for money", "/contracts", {"value": "ten pounds"}, "value", "value must be pounds with at most two decimals, like 80000.00"),
    ("negative money", "/contracts", {"value": -5}, "value", "value must not be negative; send pounds with at most two decimals, like 80000.00"),
    ("short cpv", "/contracts", {"cpv_codes": ["15894210", "8531"]}, "cpv_codes[1]", "cpv_codes[1] must be an 8-digit CPV code like 15894210 (a check digit, 15894210-7, may follow); not '8531'"),
    ("cpv as a number", "/contracts", {"cpv_codes": [15894210]}, "cpv_codes[0]", "cpv_codes[0] must be an 8-digit CPV code like 15894210"),
    ("misspelt field", "/contracts", {"valeu": "80000.00"}, "valeu", "unknown field 'valeu' (did you mean 'value'?)"),
    ("stray field", "/contracts", {"colour": "blue"}, "colour", "unknown field 'colour'; leave it out"),
    ("id as words", "/contracts", {"buyer_id": "one"}, "buyer_id", "buyer_id must be a whole number, like 3"),
    ("id zero", "/contracts", {"buyer_id": 0}, "buyer_id", "buyer_id must be a whole number of at least 1"),
    ("empty title", "/contracts", {"title": ""}, "title", "title must not be empty"),
    ("null title", "/contracts", {"title": None}, "title", "title cannot be null"),
    ("missing title", "/contracts", {"title": ...}, "title", "title is required"),
    ("no suppliers", "/contracts", {"suppliers": []}, "suppliers", "suppliers must have at least 1 item"),
    ("supplier id as text", "/contracts", {"suppliers": [{"supplier_id": "x"}]}, "suppliers[0].supplier_id", "suppliers[0].supplier_id must be a whole number, like 3"),
    ("share with three decimals", "/contracts", {"suppliers": [{"supplier_id": "SUP", "share": "1.001"}]}, "suppliers[0].share", "suppliers[0].share must be pounds with at most two decimals, like 80000.00"),
    ("currency typo", "/contracts", {"currency": "GPB"}, "currency", "currency must be a three-letter ISO 4217 currency code like GBP, not 'GPB'"),
    ("number for text", "/contracts", {"description": 5}, "description", "description must be text in double quotes"),
    ("end before start", "/contracts", {"start_date": "2025-06-01", "end_date": "2025-05-31"}, "end_date", "end_date 2025-05-31 is before start_date 2025-06-01"),
    ("bad postcode", "/suppliers", {"name": "X Ltd", "postcode": "QA1 1AA"}, "postcode", "postcode 'QA1 1AA' is not a UK postcode; send one like B15 2GW"),
    ("scheme without hyphen", "/suppliers", {"name": "X Ltd", "identifiers": [{"scheme": "GBCOH", "id": "1"}]}, "identifiers[0].scheme", "identifiers[0].scheme must be an identifier scheme like GB-COH or GB-CHC"),
    ("bad company number", "/suppliers", {"name": "X Ltd", "identifiers": [{"scheme": "GB-COH", "id": "!!"}]}, "identifiers[0].id", "identifiers[0].id '!!' is not a Companies House number; send one like 04482788 or SC123456"),
    ("confirm as text", "/suppliers", {"name": "X Ltd", "confirm_postcode": "yes"}, "confirm_postcode", "confirm_postcode must be true or false"),
    ("array body", "/suppliers", b"[1, 2]", None, 'the body must be a JSON object, like {"name": "Acme Ltd"}'),
    ("broken json", "/suppliers", b'{"name": ', None, 'the body is not valid JSON (check quotes, commas and brackets); send a JSON object like {"name": "Acme Ltd"}'),
]  # fmt: skip
QUERY_CASES: list[tuple[str, str, str, str]] = [
    ("limit too big", "/contracts?limit=201", "limit", "limit must be a whole number from 1 to 200, like 50"),
    ("limit as words", "/contracts?limit=all", "limit", "limit must be a whole number from 1 to 200, like 50"),
    ("negative offset", "/contracts?offset=-1", "offset", "offset must be a whole number of 0 or more, like 0"),
    ("query date by its alias", "/contracts?from=2025-99-01", "from", "from must be a date like 2025-04-01"),
]
# What must never reach a person.
INTERNAL = re.compile(r"Expected `|RFC3339|regex|\^\[|msgspec|award_from|Object contains|`str`|`int`|Traceback")


def _body(case: Any, buyer: int, supplier: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "buyer_id": buyer,
        "title": "Patient meals",
        "value": "125000.00",
        "currency": "GBP",
        "cpv_codes": ["15894210"],
        "suppliers": [{"supplier_id": supplier}],
    }
    for key, value in case.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    for item in body["suppliers"]:
        if item.get("supplier_id") == "SUP":
            item["supplier_id"] = supplier
    return body


@pytest.mark.parametrize(("case", "path", "change", "field", "message"), CASES, ids=[c[0] for c in CASES])
async def test_body_errors_are_in_plain_language(
    db: Database, session: Any, app_client: Any, case: str, path: str, change: Any, field: str | None, message: str
) -> None:
    buyer = await make_org(session, "Birmingham City Council", gss_code="E08000025")
    supplier = await make_supplier(session, "Acme Ltd")
    headers = bearer(await make_token(session, "admin"))
    if isinstance(change, bytes):
        response = await app_client.post(path, content=change, headers=headers | {"content-type": "application/json"})
    else:
        body = _body(change, buyer.id, supplier.id) if path == "/contracts" else change
        response = await app_client.post(path, json=body, headers=headers)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["detail"] == message
    assert problem["errors"] == [{"field": field, "message": message}]
    assert not INTERNAL.search(response.text), response.text


@pytest.mark.parametrize(("case", "path", "field", "message"), QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
async def test_query_errors_name_the_parameter_as_sent(
    db: Database, session: Any, app_client: Any, case: str, path: str, field: str, message: str
) -> None:
    response = await app_client.get(path, headers=bearer(await make_token(session, "admin")))
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["detail"] == message
    assert problem["errors"] == [{"field": field, "message": message, "source": "query"}]
    assert not INTERNAL.search(response.text), response.text


COMMANDS = [
    ("classify",),
    ("classify", "show", "1"),
    ("import", "runs"),
    ("import", "notes", "1"),
    ("seed", "anchors"),
    ("tokens", "create", "--role", "admin", "--name", "ops"),
    ("metrics", "--anchor", "E08000025", "--period", "2025Q1"),
    ("statements", "verify"),
]


def _one_line(result: Any) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_commands_on_an_unmigrated_database_say_what_to_run(backend: str, tmp_path: Path) -> None:
    url, name = await new_database(backend, tmp_path, "unmigrated")
    try:
        shown = f"{url.split('://')[0]}://"
        for command in COMMANDS:
            line = _one_line(localvalue(*command, database_url=url, check=False))
            assert line.startswith(f"Error: the database at {shown}"), (command, line)
            assert line.endswith("is empty or not up to date; run `localvalue database upgrade` first"), (command, line)
        missing = _one_line(localvalue("import", "file", str(tmp_path / "absent.json"), database_url=url, check=False))
        assert missing == f"Error: no such file: {tmp_path / 'absent.json'}"
    finally:
        await dispose_database(backend, name)


async def test_a_database_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/lv_no_such_database"
    line = _one_line(localvalue("import", "runs", database_url=url, check=False))
    assert line == (
        "Error: the database at postgresql+asyncpg://postgres@127.0.0.1:5432/lv_no_such_database does not exist;"
        " create it, then run `localvalue database upgrade`"
    )
