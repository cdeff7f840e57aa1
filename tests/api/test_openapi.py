"""The OpenAPI document: typed bodies and answers, problem+json errors, bearer security; 401s
carry WWW-Authenticate; /docs works without the internet."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.helpers import INGEST, auth

PROBLEM = "application/problem+json"
PUBLIC = {"/healthz", "/readyz", "/metrics", "/v1/wecom/callback", "/v1/wecom/archive"}
TEXT_BODIES = {"/v1/playbooks/validate", "/v1/wecom/callback", "/v1/contacts/import"}
#: Answers that are not JSON: Prometheus text, WeCom's echostr and "success".
TEXT_ANSWERS = {"/metrics", "/v1/wecom/callback"}
#: Answers that are a redirect: a channel code's QR picture, at WeCom.
REDIRECTS = {"/v1/channel-codes/{state}/qr"}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def public(path: str) -> bool:
    return path in PUBLIC or path.startswith("/v1/webhooks/")


async def test_every_operation_is_typed(document: dict[str, Any]) -> None:
    ops = operations(document)
    assert len(ops) >= 20
    for path, method, op in ops:
        where = f"{method.upper()} {path}"
        if path in REDIRECTS:
            assert "Location" in op["responses"]["307"]["headers"], where
            continue
        ok = [status for status in op["responses"] if status.startswith("2")]
        assert ok, where
        media = "text/plain" if path in TEXT_ANSWERS else "application/json"
        schema = op["responses"][ok[0]]["content"][media]["schema"]
        assert schema, f"{where}: untyped answer"
        if method == "post" and not path.endswith(("/cancel", "/reload", "/sync")):
            content = op["requestBody"]["content"]
            media = "application/json" if path not in TEXT_BODIES else next(iter(content))
            assert content[media]["schema"], f"{where}: no body schema"


async def test_every_error_is_a_documented_problem(document: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, method, op in operations(document):
        errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
        if path != "/healthz":
            assert errors, f"{method.upper()} {path}"
        for status, response in errors.items():
            assert response["content"] == {PROBLEM: {"schema": problem}}, (path, status)
        if "401" in errors:
            assert "WWW-Authenticate" in errors["401"]["headers"]
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_bearer_security_on_every_route_but_the_public_ones(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, method, op in operations(document):
        expected: list[dict[str, list[str]]] | None = None if public(path) else [{"bearer": []}]
        assert op.get("security") == expected, f"{method.upper()} {path}"


async def test_component_schemas_are_valid_json_schema(document: dict[str, Any]) -> None:
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    event = document["components"]["schemas"]["EventIn"]
    assert "occurred_at" not in event["required"]


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, 'Bearer realm="smr"'),
        ({"Authorization": "Basic eDp5"}, 'Bearer realm="smr"'),
        ({"Authorization": "Bearer nope"}, 'Bearer realm="smr", error="invalid_token"'),
    ],
)
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/events"), ("GET", "/v1/runs")])
async def test_401_carries_www_authenticate(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], challenge: str
) -> None:
    response = await client.request(method, path, json={}, headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == challenge


async def test_403_carries_no_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/runs", headers=auth(INGEST))

    assert response.status_code == 403
    assert "www-authenticate" not in response.headers


async def test_docs_work_offline(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")

    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""", page.text)
    assert urls, page.text
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "http://" not in page.text
    assert "https://" not in page.text
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
