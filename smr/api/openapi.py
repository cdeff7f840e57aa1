"""The OpenAPI document and its UI.

Many routes read their body themselves (size limit, signatures, the bounded JSON parser of
``smr.edge``), so FastAPI cannot see what they take: they declare it with ``json_body`` (or
``text_body``), whose models are added to ``components.schemas`` here. Every error is
``application/problem+json`` (``problems``); every route but the health, webhook and WeCom
ones takes a bearer token (``components.securitySchemes.bearer``).

``/docs`` is Swagger UI served from the package's own copy of its assets (those of
``fastapi-offline``): a shop's network often cannot reach a CDN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from smr.api.models import Problem

REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"
#: Tags of the routes that take no bearer token (vendor signatures, load balancers).
PUBLIC_TAGS = frozenset({"health", "webhooks", "wecom"})
ASSETS = "/docs/assets"
BEARER = {"type": "http", "scheme": "bearer", "description": "An admin or ingest token."}

#: The models that request bodies (and problems) refer to, by name.
_MODELS: dict[str, type[BaseModel]] = {}


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """A reference to ``model``'s schema, which the document's components will carry."""
    known = _MODELS.setdefault(model.__name__, model)
    assert known is model, f"two models named {model.__name__}"
    return {"$ref": REF.format(model=model.__name__)}


def json_body(*models: type[BaseModel] | dict[str, Any], description: str = "") -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON body of one of ``models`` (a model or a raw schema)."""
    schemas = [m if isinstance(m, dict) else schema_of(m) for m in models]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return _body({"application/json": {"schema": schema}}, description)


def text_body(*media_types: str, description: str) -> dict[str, Any]:
    """``openapi_extra`` declaring a body of text (XML, YAML) read as it comes."""
    return _body({t: {"schema": {"type": "string"}} for t in media_types}, description)


def _body(content: dict[str, Any], description: str) -> dict[str, Any]:
    body: dict[str, Any] = {"content": content, "required": True}
    if description:
        body["description"] = description
    return {"requestBody": body}


#: What each problem status means, for the document.
MEANINGS = {
    308: "The contact was merged into another (the same person): `Location` is the same "
    "request for the contact that survived.",
    400: "The request cannot be read.",
    401: "No or unknown bearer token, or a signature that does not verify.",
    403: "The token may not use this route, or the callback is for another corp.",
    404: "No such resource, or the source is not configured.",
    409: "The resource is not in a state that allows this.",
    413: "The body is over the configured limit.",
    422: "The request does not validate; `errors` gives each field's path.",
    503: "The database cannot be reached now; retry after `Retry-After` seconds.",
}
HEADERS = {
    308: {"Location": {"description": "The survivor's URL.", "schema": {"type": "string"}}},
    401: {"WWW-Authenticate": {"description": 'Bearer realm="smr"', "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses`` entries: each status answered as problem+json."""
    content = {PROBLEM: {"schema": schema_of(Problem)}}
    return {
        status: {"description": MEANINGS[status], "content": content}
        | ({"headers": HEADERS[status]} if status in HEADERS else {})
        for status in statuses
    }


#: The problems of every route behind a token: 401, 422 (parameters), 503 (the database).
TOKEN = problems(401, 422, 503)
ADMIN = problems(401, 403, 422, 503)


def operation_id(route: APIRoute) -> str:
    """The handler's name (``post_events``, ``get_run``): what generated clients call it."""
    return route.name


def build(app: FastAPI) -> dict[str, Any]:
    """The document, built once: FastAPI's, plus the request bodies' schemas and security."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = doc.setdefault("components", {})
        _add_schemas(components.setdefault("schemas", {}))
        components["securitySchemes"] = {"bearer": BEARER}
        for operation in _operations(doc):
            if not PUBLIC_TAGS.intersection(operation.get("tags", [])):
                operation["security"] = [{"bearer": []}]
        app.openapi_schema = doc
    return app.openapi_schema


def _add_schemas(schemas: dict[str, Any]) -> None:
    models = [(model, "validation") for model in _MODELS.values()]
    refs, top = models_json_schema(models, ref_template=REF)  # type: ignore[arg-type]
    for model, mode in models:
        assert refs[(model, mode)] == schema_of(model), f"{model.__name__} was renamed"  # type: ignore[index]
    for name, schema in top.get("$defs", {}).items():
        assert schemas.get(name, schema) == schema, f"two schemas named {name}"
        if "__" in name:  # two models of one name, told apart by their modules: so are titles
            schema["title"] = name
        schemas[name] = schema
    _occurred_at_optional(schemas)
    # FastAPI's own 422 shapes: every route declares problem+json instead.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _occurred_at_optional(schemas: dict[str, Any]) -> None:
    """An event's ``occurred_at`` may be left out (or null): it is then the time received,
    which ``EventIn`` learns from its validation context, out of its JSON schema's sight."""
    event = schemas.get("EventIn")
    if event is None:
        return
    event["required"] = [f for f in event["required"] if f != "occurred_at"]
    field = event["properties"]["occurred_at"]
    event["properties"]["occurred_at"] = {
        "anyOf": [{k: v for k, v in field.items() if k != "title"}, {"type": "null"}],
        "title": field.get("title", "Occurred At"),
        "description": "When it happened (RFC 3339, with an offset); if left out, when received.",
    }


def _operations(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path in doc.get("paths", {}).values():
        yield from path.values()


def assets_dir() -> Path:
    """Swagger UI's JavaScript, CSS and icon, as ``fastapi-offline`` ships them."""
    return Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """Serve the document at /openapi.json and Swagger UI at /docs, offline."""
    openapi: Callable[[], dict[str, Any]] = lambda: build(app)  # noqa: E731
    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            # No badge that asks validator.swagger.io about the document.
            swagger_ui_parameters={"validatorUrl": None},
        )
