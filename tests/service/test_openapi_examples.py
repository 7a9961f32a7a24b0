"""Every operation and schema in the OpenAPI document has an example, and every example matches its own schema.

Examples live in procurement/openapi_examples.py; these tests are what stops them rotting when a struct changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import msgspec
import pytest
from litestar.exceptions import ValidationException

from procurement.accounts.schemas import TokenCreate
from procurement.accounts.service import _check_role_scope as check_role_scope
from procurement.accounts.service import parse_duration
from procurement.app import create_app
from procurement.errors import DomainError
from procurement.hardening import check_json_value
from procurement.metrics.schemas import LocalMeasureCreate, ProxyUpdate, ReturnCreate
from procurement.models import Role
from procurement.openapi_examples import BINARY_MEDIA_TYPES, EXAMPLES
from procurement.statements.controllers import PublishRequest
from procurement.suppliers.schemas import OverrideIn, SupplierCreate

METHODS = ("get", "put", "post", "patch", "delete")
DRAFT = "https://json-schema.org/draft/2020-12/schema"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    # Through JSON, as a client reads it (and as /schema/openapi.json serves it).
    return dict(json.loads(json.dumps(create_app().openapi_schema.to_schema())))


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", op


def success_media(op: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for status, response in op["responses"].items():
        if int(status) < 400:
            for media_type, media in response.get("content", {}).items():
                yield status, media_type, media


def check(document: dict[str, Any], schema: dict[str, Any], value: Any) -> list[str]:
    """Why ``value`` does not match ``schema`` (whose $refs point into the document's components)."""
    root = {"$schema": DRAFT, **schema, "components": document["components"]}
    validator = jsonschema_rs.validator_for(root, validate_formats=True)
    return [f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(value)]


def test_every_operation_has_a_description_and_examples_of_its_body_and_success_response(
    document: dict[str, Any],
) -> None:
    missing = []
    for name, op in operations(document):
        if not op.get("description", "").strip():
            missing.append(f"{name}: no description")
        for media_type, media in op.get("requestBody", {}).get("content", {}).items():
            if "example" not in media:
                missing.append(f"{name}: no example of the {media_type} request body")
        bodies = [(s, t, m) for s, t, m in success_media(op) if t not in BINARY_MEDIA_TYPES]
        for status, media_type, media in bodies:
            if "example" not in media:
                missing.append(f"{name}: no example of the {status} {media_type} response")
        # A success with a body must show one; 204 and 304 have none, and a PDF or XLSX cannot be shown.
        with_body = [s for s, response in op["responses"].items() if int(s) < 400 and response.get("content")]
        binary_only = all(t in BINARY_MEDIA_TYPES for _, t, _ in success_media(op))
        if with_body and not bodies and not binary_only:
            missing.append(f"{name}: no example of any success response")
    assert not missing, "\n".join(missing)


def test_every_component_schema_has_an_example(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert len(schemas) > 100
    missing = [name for name, schema in schemas.items() if not schema.get("examples")]
    assert not missing, f"component schemas without an example: {missing}"


def test_every_component_example_validates_against_its_schema(document: dict[str, Any]) -> None:
    failures = []
    for name, schema in document["components"]["schemas"].items():
        for i, example in enumerate(schema.get("examples", [])):
            failures += [f"{name} example {i}: {e}" for e in check(document, schema, example)]
    assert not failures, "\n".join(failures)


def test_every_operation_example_validates_against_its_media_schema(document: dict[str, Any]) -> None:
    failures = []
    checked = 0
    for name, op in operations(document):
        media = [("request", t, m) for t, m in op.get("requestBody", {}).get("content", {}).items()]
        media += list(success_media(op))
        for where, media_type, item in media:
            if "example" in item and "schema" in item:
                checked += 1
                errors = check(document, item["schema"], item["example"])
                failures += [f"{name} {where} {media_type}: {e}" for e in errors]
    assert checked > 100
    assert not failures, "\n".join(failures)


def test_property_examples_validate_against_their_property_schemas(document: dict[str, Any]) -> None:
    """Field-level examples (Meta(examples=...)) too, e.g. money "1234.50" against the amount pattern."""
    failures = []
    for name, schema in document["components"]["schemas"].items():
        for field, sub in schema.get("properties", {}).items():
            for example in sub.get("examples", []):
                failures += [f"{name}.{field}: {e}" for e in check(document, sub, example)]
    assert not failures, "\n".join(failures)


def test_the_examples_module_names_only_schemas_the_document_has(document: dict[str, Any]) -> None:
    unknown = set(EXAMPLES) - set(document["components"]["schemas"])
    assert not unknown, f"examples for schemas the document no longer has: {sorted(unknown)}"


def test_a_broken_example_is_caught(document: dict[str, Any]) -> None:
    """The validator really looks: a contract whose pence is text, or without its buyer, fails."""
    schema = document["components"]["schemas"]["Contract"]
    good = schema["examples"][0]
    assert check(document, schema, good) == []
    assert check(document, schema, {**good, "value_pence": "12500000"})
    assert check(document, schema, {k: v for k, v in good.items() if k != "buyer"})


STRUCTS: dict[str, type[msgspec.Struct]] = {
    s.__name__: s
    for s in (PublishRequest, ReturnCreate, LocalMeasureCreate, ProxyUpdate, OverrideIn, TokenCreate, SupplierCreate)
}

# (schema, a body the API refuses for a rule across fields, the same body mended). The struct that reads the body
# must agree with the document on both: the rules in the document are the ones the code enforces.
CROSS_FIELD = [
    ("PublishRequest", {"period": "2025Q1"}, {"period": "2025Q1", "anchor_id": 32}),
    (
        "PublishRequest",
        {"period": "2025Q1", "anchor_id": 32, "group": "black-country"},
        {"period": "2025Q1", "anchor_id": None, "group": "black-country"},
    ),
    (
        "ReturnCreate",
        {"period": "2025Q1", "quantity": "3.5"},
        {"period": "2025Q1", "quantity": "3.5", "evidence_url": "https://x.example/payroll.pdf"},
    ),
    (
        "ReturnCreate",
        {"period": "2025Q1", "quantity": "1", "evidence_note": "   "},
        {"period": "2025Q1", "quantity": "1", "evidence_note": " payroll "},
    ),
    (
        "LocalMeasureCreate",
        {"organisation_id": 32, "code": "BCC-1", "name": "Care leavers employed"},
        {"organisation_id": 32, "code": "BCC-1", "name": "Care leavers employed", "kind": "cash"},
    ),
    ("ProxyUpdate", {"value": "28821.00", "source": None, "year": None, "price_base": None}, {"value": None}),
    ("ProxyUpdate", {"value": None, "year": 2024}, {"value": None, "year": None}),
    (
        "OverrideIn",
        {"flag": "vcse", "value": "true", "reason": "  CIC seen  "},
        {"flag": "vcse", "value": "true", "reason": "CIC checked"},
    ),
    (
        "TokenCreate",
        {"name": "jo@walsall", "role": "admin", "organisations": ["RBK"]},
        {"name": "jo@walsall", "role": "admin"},
    ),
    (
        "TokenCreate",
        {"name": "jo@walsall", "role": "reviewer", "groups": [""]},
        {"name": "jo@walsall", "role": "reviewer", "groups": ["black-country"]},
    ),
    (
        "TokenCreate",
        {"name": "jo@walsall", "role": "editor", "organisations": ["RBK"], "expires_in": "0d"},
        {"name": "jo@walsall", "role": "editor", "organisations": ["RBK"], "expires_in": " 12 H "},
    ),
    ("SupplierCreate", {"name": "Brum Meals\u0000CIC"}, {"name": "Brum Meals CIC"}),
]


def _api_reads(name: str, body: dict[str, Any]) -> None:
    """What the API does with a body before any database work: the request guard, the struct, and for a token the
    service's checks of role, scope and expiry. Raises as the API refuses (400)."""
    check_json_value(body)
    value = msgspec.convert(body, STRUCTS[name], strict=True)
    if isinstance(value, TokenCreate):
        check_role_scope(Role(value.role), value.organisations, value.groups)
        if value.expires_in is not None:
            parse_duration(value.expires_in)


@pytest.mark.parametrize(("name", "refused", "mended"), CROSS_FIELD)
def test_cross_field_rules_in_the_document_are_the_ones_the_api_applies(
    document: dict[str, Any], name: str, refused: dict[str, Any], mended: dict[str, Any]
) -> None:
    schema = document["components"]["schemas"][name]
    assert check(document, schema, refused), f"the document allows {refused}"
    assert check(document, schema, mended) == [], f"the document refuses {mended}"
    with pytest.raises((msgspec.ValidationError, ValueError, DomainError, ValidationException)):
        _api_reads(name, refused)
    _api_reads(name, mended)
