"""Every operation and schema in the OpenAPI document has an example, and every example matches its own schema.

Examples live in procurement/openapi_examples.py; these tests are what stops them rotting when a struct changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest

from procurement.app import create_app
from procurement.openapi_examples import BINARY_MEDIA_TYPES, EXAMPLES

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
