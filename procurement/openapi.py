"""The OpenAPI contract, finished in one place from what the routes really do.

Litestar documents each handler's parameters, body and success response. ``finish_openapi`` then adds, from the
same route table the server uses:

- ``security``: none on an operation without guards (public), the bearer scheme on one with guards;
- the RFC 9457 problem responses each operation can give (``application/problem+json``), replacing Litestar's
  generic 400 in ``application/json``; a handler lists any further problem statuses in ``opt["problems"]``
  and alternative success media types in ``opt["content"]``;
- ``additionalProperties: false`` on every request schema whose struct refuses unknown fields;
- exact integer bounds (Litestar writes ``maximum`` as a float, which rounds 2**63 - 1 up to 2**63);
- an example on every component schema and on every operation's request body and success response, from
  ``procurement.openapi_examples`` (one realistic value per schema name; pages are built from their items);
- the cross-field rules of request bodies that JSON Schema can state (``BODY_RULES``), so a generated request
  that matches the document is one the API accepts.

It also serves the docs: Swagger UI from /static (vendored, no CDN) with its start-up script in a file, so the
page works offline under the app's Content-Security-Policy (no inline script).
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import BaseSchemaObject, OpenAPIResponse, Operation, Reference, Schema
from litestar.openapi.spec import OpenAPIMediaType as MediaType
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.routes import HTTPRoute

from procurement.openapi_examples import EXAMPLES, MEDIA_EXAMPLES
from procurement.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE
from procurement.schemas import MAX_ID, NOT_BLANK

if TYPE_CHECKING:
    from litestar import Litestar, Request
    from litestar.handlers import HTTPRouteHandler
    from litestar.openapi.spec import OpenAPI

BEARER = "bearer"
PROBLEM = "Problem"
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})

# Why each status can happen; the same text for every operation, so clients learn one vocabulary.
PROBLEM_REASONS = {
    400: "The request does not match this description (a field, parameter or body the API cannot read).",
    401: "No token, or a token that is not valid, was sent where one is needed.",
    403: "The token's role or organisation may not do this.",
    404: "No record has that id.",
    409: "The change conflicts with the current state of the data.",
    410: "The record was withdrawn; the reason is in the detail.",
    413: "The request body is larger than the server accepts.",
    422: "The request is well formed but breaks a rule (the detail says which).",
}

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title=PROBLEM,
    description="An RFC 9457 problem document: every error the API returns has this shape.",
    properties={
        "type": Schema(
            type=OpenAPIType.STRING, format=OpenAPIFormat.URI, description="Identifies the kind of problem."
        ),
        "title": Schema(type=OpenAPIType.STRING, description="A short summary of the kind of problem."),
        "status": Schema(type=OpenAPIType.INTEGER, minimum=400, maximum=599, description="The HTTP status."),
        "detail": Schema(type=OpenAPIType.STRING, description="What went wrong with this request, for people."),
        "instance": Schema(type=OpenAPIType.STRING, description="The path of the request."),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(type=OpenAPIType.OBJECT, description="One invalid field: message, key and source."),
            description="Each invalid field, when the request failed validation.",
        ),
    },
    required=["type", "title", "status", "detail"],
    examples=[
        {
            "type": PROBLEM_TYPE,
            "title": "Bad Request",
            "status": 400,
            "detail": "value has more than two decimal places",
            "instance": "/contracts",
        }
    ],
)


def _problem_response(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=PROBLEM_REASONS[status],
        content={PROBLEM_MEDIA_TYPE: MediaType(schema=Reference(ref=f"#/components/schemas/{PROBLEM}"))},
    )


def _problem_statuses(handler: HTTPRouteHandler, method: str, operation: Operation) -> set[int]:
    params = [p for p in operation.parameters or [] if not isinstance(p, Reference)]
    query = {p.name for p in params if p.param_in == "query"}
    in_path = any(p.param_in == "path" for p in params)
    statuses = {400}
    if not handler.opt.get("exclude_from_auth"):
        statuses.add(401)  # an invalid token is refused even on a public operation
    if handler.resolve_guards():
        statuses.add(403)
    if in_path or method in WRITE_METHODS or any(n.endswith("_id") or n == "group" for n in query):
        statuses.add(404)
    if method in WRITE_METHODS:
        statuses |= {409, 422}
    elif query - {"limit", "offset"}:
        statuses.add(422)  # combinations of parameters (a period with no data, 'to' before 'from')
    if operation.request_body is not None:
        statuses.add(413)
    statuses |= set(handler.opt.get("problems", ()))
    return statuses


def _operations(app: Litestar, openapi: OpenAPI) -> Iterator[tuple[HTTPRouteHandler, str, str, Operation]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or openapi.paths is None:
            continue
        path_item = openapi.paths.get(route.path_format or "/")
        if path_item is None:
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                operation = getattr(path_item, method.lower(), None)
                if isinstance(operation, Operation) and method != "OPTIONS":
                    yield handler, method.lower(), route.path_format or "/", operation


def _request_structs(app: Litestar) -> dict[str, bool]:
    """Every msgspec struct a request body can hold, by name: whether it refuses unknown fields."""
    types = []
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                data = handler.parsed_fn_signature.parameters.get("data")
                if data is not None:
                    types.append(data.annotation)
    out: dict[str, bool] = {}
    seen: set[int] = set()
    stack: list[msgspec.inspect.Type] = list(msgspec.inspect.multi_type_info(types))
    while stack:
        info = stack.pop()
        if id(info) in seen:
            continue
        seen.add(id(info))
        if isinstance(info, msgspec.inspect.StructType):
            out[info.cls.__name__] = info.forbid_unknown_fields
            stack.extend(f.type for f in info.fields)
        elif isinstance(info, msgspec.inspect.Metadata):
            stack.append(info.type)
        elif isinstance(info, msgspec.inspect.UnionType):
            stack.extend(info.types)
        elif isinstance(info, msgspec.inspect.ListType | msgspec.inspect.SetType | msgspec.inspect.VarTupleType):
            stack.append(info.item_type)
    return out


def _schemas(node: Any) -> Iterator[Schema]:
    """Every Schema object nested anywhere under ``node`` (dataclasses, lists and dicts of them)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Schema):
            yield item
        if is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in fields(item))
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())


def _exact_bound(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return MAX_ID if value == float(MAX_ID) else int(value)
    return value


@dataclass
class JsonExample(BaseSchemaObject):
    """An example value written into the document as it is: Litestar drops ``None`` from dicts it serialises,
    which would take the nulls out of an example (and make it invalid where a field is required but nullable)."""

    value: Any

    def to_schema(self) -> Any:
        return self.value


STRING, NULL, INTEGER = OpenAPIType.STRING, OpenAPIType.NULL, OpenAPIType.INTEGER


def _given(*names: str, **types: OpenAPIType) -> Schema:
    """Each of ``names`` present and of the given type (so not null)."""
    return Schema(required=list(names), properties={n: Schema(type=types[n]) for n in names})


def _role_is(*roles: str) -> Schema:
    return Schema(required=["role"], properties={"role": Schema(enum=list(roles))})


# Rules across the fields of a request body (each checked by the struct's __post_init__ or its service), stated in
# JSON Schema so that every request the document allows is one the API accepts. What JSON Schema cannot state is
# listed, operation by operation, in tests/fixtures/schemathesis/schemathesis.toml.
BODY_RULES: dict[str, dict[str, list[Schema]]] = {
    # "give exactly one of anchor_id or group"
    "PublishRequest": {
        "one_of": [_given("anchor_id", anchor_id=INTEGER), _given("group", group=STRING)],
    },
    # "a return needs an evidence note or a document link"
    "ReturnCreate": {
        "any_of": [
            Schema(required=["evidence_note"], properties={"evidence_note": Schema(type=STRING, pattern=NOT_BLANK)}),
            _given("evidence_url", evidence_url=STRING),
        ],
    },
    # "an output measure needs a unit"
    "LocalMeasureCreate": {
        "any_of": [
            Schema(required=["kind"], properties={"kind": Schema(const="cash")}),
            _given("unit", unit=STRING),
        ],
    },
    # "a proxy value needs its source, year and price base"; all null clears it
    "ProxyUpdate": {
        "one_of": [
            Schema(properties={f: Schema(type=NULL) for f in ("value", "source", "year", "price_base")}),
            Schema(
                required=["value", "source", "year", "price_base"],
                properties={
                    "value": Schema(schema_not=Schema(type=NULL)),
                    "source": Schema(type=STRING),
                    "year": Schema(type=INTEGER),
                    "price_base": Schema(type=STRING),
                },
            ),
        ],
    },
    # "confirm needs supplier_id"; "new makes a new supplier; leave supplier_id out"
    "PayeeDecision": {
        "all_of": [
            Schema(
                schema_if=Schema(properties={"decision": Schema(const="confirm")}),
                then=_given("supplier_id", supplier_id=INTEGER),
            ),
            Schema(
                schema_if=Schema(properties={"decision": Schema(const="new")}),
                then=Schema(properties={"supplier_id": Schema(type=NULL)}),
            ),
        ],
    },
    # Role and scope: an editor acts for exactly one organisation; a reviewer reviews organisations or groups; an
    # admin or cross-organisation reviewer acts for every organisation, so names none.
    "TokenCreate": {
        "all_of": [
            Schema(
                schema_if=_role_is("editor"),
                then=Schema(
                    required=["organisations"],
                    properties={"organisations": Schema(min_items=1, max_items=1), "groups": Schema(max_items=0)},
                ),
            ),
            Schema(
                schema_if=_role_is("reviewer"),
                then=Schema(
                    any_of=[
                        Schema(required=["organisations"], properties={"organisations": Schema(min_items=1)}),
                        Schema(required=["groups"], properties={"groups": Schema(min_items=1)}),
                    ]
                ),
            ),
            Schema(
                schema_if=_role_is("admin", "cross_reviewer"),
                then=Schema(properties={"organisations": Schema(max_items=0), "groups": Schema(max_items=0)}),
            ),
        ],
    },
}

# Text the API refuses wherever it appears: a NUL character (PostgreSQL cannot store one).
NO_NUL = r"^[^\u0000]*$"
NOT_BLANK_NO_NUL = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
# Field rules the struct checks in code: an override's reason, at least 10 characters once stripped.
FIELD_PATTERNS = {("OverrideIn", "reason"): r"^[^\u0000]*[^\s\u0000][^\u0000]{8,}[^\s\u0000][^\u0000]*$"}


def _is_text(schema: Schema) -> bool:
    types = [schema.type, *(c.type for c in schema.one_of or [] if isinstance(c, Schema))]
    return OpenAPIType.STRING in types and schema.enum is None and schema.const is None and schema.format is None


def _refuse_nul(schema: Schema) -> None:
    """The pattern of a text field also says that NUL is refused (the request guard refuses it in every body)."""
    if not _is_text(schema):
        return
    if schema.pattern is None:
        schema.pattern = NO_NUL
    elif schema.pattern == NOT_BLANK:
        schema.pattern = NOT_BLANK_NO_NUL
    elif schema.pattern.startswith("^") and schema.pattern.endswith("$"):
        # Anchored patterns are built of character classes; only \S among them lets NUL through.
        schema.pattern = schema.pattern.replace(r"\S", r"[^\s\u0000]")


def _state_body_rules(name: str, schema: Schema) -> None:
    for keyword, rules in BODY_RULES.get(name, {}).items():
        setattr(schema, keyword, rules)
    for field_name, field in (schema.properties or {}).items():
        if isinstance(field, Schema):
            _refuse_nul(field)
            if isinstance(field.items, Schema):
                _refuse_nul(field.items)
            field.pattern = FIELD_PATTERNS.get((name, field_name), field.pattern)


PAGE_PREFIX = "Page_"
SCHEMA_REF = "#/components/schemas/"


def _schema_example(name: str) -> Any:
    """The example of a component schema; a generic page (``Page_procurement.x.schemas.Item_``) holds one item."""
    if name.startswith(PAGE_PREFIX):
        item = name.removeprefix(PAGE_PREFIX).rstrip("_").rsplit(".", 1)[-1]
        return {"items": [EXAMPLES[item]], "total": 1, "limit": 50, "offset": 0}
    return EXAMPLES.get(name)


def _example_of(schema: Any) -> Any:
    """The example for a media type whose schema is a component reference, a list of one, or a choice of them
    (the first choice with an example: a 200 that may instead be a change request shows the direct answer)."""
    if isinstance(schema, Schema) and (choices := schema.one_of or schema.any_of):
        return next((e for e in map(_example_of, choices) if e is not None), None)
    if isinstance(schema, Reference):
        return _schema_example(schema.ref.removeprefix(SCHEMA_REF))
    if isinstance(schema, Schema) and schema.type == OpenAPIType.ARRAY and isinstance(schema.items, Reference):
        item = _example_of(schema.items)
        return None if item is None else [item]
    return None


def _media_example(value: Any) -> JsonExample | None:
    return None if value is None else JsonExample(value)


def _add_examples(method: str, path: str, operation: Operation) -> None:
    media_examples = MEDIA_EXAMPLES.get(f"{method.upper()} {path}", {})
    body = operation.request_body
    if body is not None and not isinstance(body, Reference):
        for media in (body.content or {}).values():
            media.example = _media_example(_example_of(media.schema))
    for status, response in (operation.responses or {}).items():
        if status.startswith(("4", "5")) or not isinstance(response, OpenAPIResponse):
            continue
        for media_type, media in (response.content or {}).items():
            example = media_examples.get(media_type, _example_of(media.schema))
            if example is not None:
                media.example = JsonExample(example)


def finish_openapi(app: Litestar) -> None:
    openapi = app.openapi_schema
    components = openapi.components
    components.schemas = {**(components.schemas or {}), PROBLEM: PROBLEM_SCHEMA}
    for handler, method, path, operation in _operations(app, openapi):
        operation.security = [{BEARER: []}] if handler.resolve_guards() else []
        responses = {k: v for k, v in (operation.responses or {}).items() if not k.startswith(("4", "5"))}
        for status in sorted(_problem_statuses(handler, method, operation)):
            responses[str(status)] = _problem_response(status)
        if extra := handler.opt.get("content"):
            success = next(iter(responses.values()))
            assert isinstance(success, OpenAPIResponse)
            success.content = {media: MediaType(schema=schema) for media, schema in extra.items()}
        operation.responses = responses
        _add_examples(method, path, operation)
        for param in operation.parameters or []:
            if not isinstance(param, Reference) and param.param_in == "query" and isinstance(param.schema, Schema):
                _refuse_nul(param.schema)
    for name, schema in components.schemas.items():
        if schema.examples is None and (example := _schema_example(name)) is not None:
            schema.examples = [JsonExample(example)]
    strict = {name for name, forbids in _request_structs(app).items() if forbids}
    for name, schema in components.schemas.items():
        if (schema.title or name) in strict:
            schema.additional_properties = False
            _state_body_rules(name, schema)
    for schema in _schemas(openapi):
        if schema.type == OpenAPIType.INTEGER or schema.one_of:
            schema.maximum = _exact_bound(schema.maximum)
            schema.minimum = _exact_bound(schema.minimum)


SWAGGER_UI_VERSION = "5.36.0"

_DOCS_PAGE = """<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}: API documentation</title>
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui-{version}.css">
</head>
<body>
<main id="swagger-ui" data-openapi-url="{url}"></main>
<script src="/static/swagger-ui/swagger-ui-bundle-{version}.js"></script>
<script src="/static/localvalue/swagger-init.js"></script>
</body>
</html>
"""


class LocalSwaggerPlugin(OpenAPIRenderPlugin):
    """Swagger UI served from /static: no CDN, no inline script (the page's CSP forbids both)."""

    def __init__(self, path: str | list[str] = "/swagger") -> None:
        super().__init__(path=path)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema.get("info", {}).get("title", "API")))
        url = html.escape(self.get_openapi_json_route(request))
        return _DOCS_PAGE.format(title=title, url=url, version=SWAGGER_UI_VERSION).encode("utf-8")
