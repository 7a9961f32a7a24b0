"""The OpenAPI document says what the routes do: descriptions, security, problem responses, strict bodies."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar.routes import HTTPRoute

from procurement.app import create_app
from procurement.problems import PROBLEM_MEDIA_TYPE

METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def app() -> Any:
    return create_app()


@pytest.fixture(scope="module")
def document(app: Any) -> dict[str, Any]:
    return dict(app.openapi_schema.to_schema())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, item in document["paths"].items() for m, op in item.items() if m in METHODS]


def guarded(app: Any) -> dict[tuple[str, str], bool]:
    """(METHOD, path) -> whether the route handler has any guard, straight from the route table."""
    out = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                for method in handler.http_methods:
                    out[(method, route.path_format)] = bool(handler.resolve_guards())
    return out


def test_every_operation_has_a_description_and_a_summary(document: dict[str, Any]) -> None:
    ops = operations(document)
    assert len(ops) >= 59
    missing = [f"{m} {p}" for m, p, op in ops if not op.get("description", "").strip() or not op.get("summary")]
    assert not missing, missing


def test_security_is_declared_per_operation_from_the_guards(app: Any, document: dict[str, Any]) -> None:
    guards = guarded(app)
    assert "bearer" in document["components"]["securitySchemes"]
    assert "security" not in document, "no global security: each operation says for itself"
    public = []
    for method, path, op in operations(document):
        assert "security" in op, f"{method} {path}"
        if guards[(method, path)]:
            assert op["security"] == [{"bearer": []}], f"{method} {path}"
        else:
            assert op["security"] == [], f"{method} {path}"
            public.append(f"{method} {path}")
    assert "GET /health" in public
    assert "GET /public/statements" in public
    assert "GET /organisations/{org_id}" in public
    assert "POST /contracts" not in public


def test_every_error_response_is_a_problem_document(app: Any, document: dict[str, Any]) -> None:
    guards = guarded(app)
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "detail"]
    for method, path, op in operations(document):
        statuses = {int(s) for s in op["responses"]}
        assert 400 in statuses, f"{method} {path}"
        if guards[(method, path)]:
            assert {401, 403} <= statuses, f"{method} {path}"
        if "{" in path:
            assert 404 in statuses, f"{method} {path}"
        if op.get("requestBody"):
            assert {413, 422} <= statuses, f"{method} {path}"
        for status, response in op["responses"].items():
            if int(status) >= 400:
                assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], f"{method} {path} {status}"
                assert response["content"][PROBLEM_MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_file_downloads_declare_their_real_media_types(document: dict[str, Any]) -> None:
    def media(path: str, status: str = "200") -> set[str]:
        return set(document["paths"][path]["get"]["responses"][status]["content"])

    assert media("/metrics.xlsx") == {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
    assert media("/metrics.csv") == {"text/csv"}
    assert media("/suppliers.csv") == {"text/csv"}
    assert media("/imports/{run_id}/notes.csv") == {"text/csv"}
    assert media("/statements/preview") == {"application/pdf"}
    assert media("/public/statements/{name}") == {"application/json", "application/pdf", "text/csv", "text/html"}
    assert "304" in document["paths"]["/public/statements/{name}"]["get"]["responses"]
    assert "410" in document["paths"]["/public/statements/{name}"]["get"]["responses"]


def _request_structs(app: Any) -> dict[str, type[msgspec.Struct]]:
    found: dict[str, type[msgspec.Struct]] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                data = handler.parsed_fn_signature.parameters.get("data")
                if data is None:
                    continue
                for info in msgspec.inspect.multi_type_info([data.annotation]):
                    stack = [info]
                    while stack:
                        item = stack.pop()
                        if isinstance(item, msgspec.inspect.StructType) and item.cls.__name__ not in found:
                            found[item.cls.__name__] = item.cls
                            stack.extend(f.type for f in item.fields)
                        elif isinstance(item, msgspec.inspect.Metadata):
                            stack.append(item.type)
                        elif isinstance(item, msgspec.inspect.UnionType):
                            stack.extend(item.types)
                        elif isinstance(item, msgspec.inspect.ListType):
                            stack.append(item.item_type)
    return found


def test_request_schemas_that_refuse_unknown_fields_say_so(app: Any, document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    structs = _request_structs(app)
    assert len(structs) > 20
    for name, cls in structs.items():
        if cls.__struct_config__.forbid_unknown_fields:
            assert schemas[name].get("additionalProperties") is False, name


def test_id_bounds_are_exact_integers(document: dict[str, Any]) -> None:
    param = next(p for p in document["paths"]["/organisations/{org_id}"]["get"]["parameters"] if p["name"] == "org_id")
    assert param["schema"]["maximum"] == 2**63 - 1
    assert isinstance(param["schema"]["maximum"], int)
    assert param["schema"]["minimum"] == 1
