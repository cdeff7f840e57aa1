"""Fuzzing over the whole OpenAPI document (schemathesis): every operation, with requests that
fit the document (positive) and requests that break it (negative), bodies included. Bounded
and derandomized, so a run is quick and the same each time. No answer may be a server error,
and every answer must be in a documented status, content type and schema.

Each failure is listed with the curl command that reproduces it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import Case as AnyCase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from smr.api.app import create_app
from smr.config import WeComSettings
from smr.eventlog import EventStatus
from smr.models import Event
from smr.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.helpers import FakeClock, auth, contact_of, keeping_up, order_event
from tests.unit.inbound import wecom_support as v

#: Requests per operation and mode: ~21 operations x 2 modes x 25, ~1,000 requests a database.
EXAMPLES = 25
BASE = "http://smr.test"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
Case = AnyCase[Any]
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
SOURCES = ("generic", "shopify", "youzan", "sms_aliyun", "sms_tencent")


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    """Webhooks and WeCom configured, so that requests reach past "not configured" (404)."""
    secrets = {source: SecretStr("fuzz-secret") for source in SOURCES}
    wecom = WeComSettings(
        corp_id=v.CORP_ID,
        token=SecretStr(v.TOKEN),
        aes_key=SecretStr(v.AES_KEY),
        archive_secret=SecretStr("fuzz-secret"),
    )
    settings_ = make_settings(
        database_url, playbooks_dir, tmp_path / "data", webhook_secrets=secrets, wecom=wecom
    )
    rt = build_runtime(settings_, clock=clock)
    yield rt
    await rt.aclose()


@dataclass
class Tally:
    operations: int = 0
    requests: int = 0
    failures: list[str] = field(default_factory=list)

    def report(self) -> str:
        head = (
            f"{self.operations} operations, {self.requests} requests, {len(self.failures)} failures"
        )
        return "\n\n".join([head, *self.failures])


def cases_of(operation: Operation, mode: GenerationMode, **fixed: Any) -> list[Case]:
    """``EXAMPLES`` cases of ``operation``, the same ones every run."""
    found: list[Case] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def collect(case: Case) -> None:
        found.append(case)

    try:
        collect()
    except Unsatisfiable:  # nothing to break: no parameters, no body
        assert mode is GenerationMode.NEGATIVE
        assert not found
    return found


async def send(client: httpx.AsyncClient, case: Case) -> httpx.Response:
    """``case`` sent through the ASGI client, the way schemathesis' transport would send it."""
    kwargs: dict[str, Any] = case.as_transport_kwargs(base_url=BASE, headers=auth())
    assert not kwargs.get("cookies"), "the document has no cookie parameters"
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        body["content"] = data.encode() if isinstance(data, str) else data
    return await client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs["headers"],
        **body,
    )


def failure(case: Case, response: httpx.Response | None, error: BaseException) -> str:
    status = response.status_code if response is not None else "no answer"
    answer = response.text[:300] if response is not None else ""
    curl = case.as_curl_command(headers=auth(), base_url=BASE)
    return f"{case.operation.label} → {status}: {error}\n  {curl}\n  answered: {answer}"


async def fuzz(
    client: httpx.AsyncClient, schema: schemathesis.BaseSchema, known: dict[str, str], tally: Tally
) -> None:
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()  # an operation the document fails to describe fails the test
        tally.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for case in cases_of(operation, mode):
                await check(client, case, tally)
        # Random ids find nothing (404): the seeded ones reach the 200s, then the 409s.
        names = {p.name for p in operation.path_parameters}
        if names and names <= known.keys():
            fixed = {name: known[name] for name in names}
            for case in cases_of(operation, GenerationMode.POSITIVE, path_parameters=fixed):
                await check(client, case, tally)


async def check(client: httpx.AsyncClient, case: Case, tally: Tally) -> None:
    response = None
    try:
        response = await send(client, case)
        tally.requests += 1
        case.validate_response(response, checks=CHECKS, headers=auth())
    except (AssertionError, BaseExceptionGroup) as exc:
        tally.failures.append(failure(case, response, exc))


async def seed(client: httpx.AsyncClient) -> dict[str, str]:
    """Events that start runs, so lists answer items and not only empty pages; the ids of an
    event, its contact, a run and a delivery, by their path parameters' names."""
    for key in ("fuzz-1", "fuzz-2"):
        response = await client.post("/v1/events", json=order_event(key), headers=auth())
        assert response.status_code == 202, response.text
    answer = response.json()
    runs = (await client.get("/v1/runs", headers=auth())).json()["items"]
    deliveries = (await client.get("/v1/deliveries", headers=auth())).json()["items"]
    assert runs, "the fixture playbooks start runs"
    assert deliveries, "the fixture playbooks send"
    return {
        "event_id": answer["event_id"],
        "contact_id": await contact_of(client, answer),
        "run_id": runs[0]["id"],
        "delivery_id": deliveries[-1]["id"],
    }


async def test_every_operation_answers_within_its_documented_responses(runtime: Runtime) -> None:
    app = create_app(runtime)
    schema = schemathesis.openapi.from_dict(app.openapi())
    tally = Tally()
    transport = httpx.ASGITransport(app=app)
    hooks = keeping_up(runtime)  # what an accepted event does happens after each answer
    async with httpx.AsyncClient(transport=transport, base_url=BASE, event_hooks=hooks) as client:
        known = await seed(client)
        await fuzz(client, schema, known, tally)

    print(tally.report())  # the figures, seen with -s or on failure
    assert tally.operations >= 20
    assert not tally.failures, tally.report()
    assert await failed_events(runtime) == []


async def failed_events(runtime: Runtime) -> list[tuple[str, str, Any]]:
    """Accepted events whose processing raised: before the log, a 500 at ingest."""
    async with runtime.sessions() as session:
        failed = select(Event.source, Event.key, Event.evaluations).where(
            Event.status == EventStatus.FAILED
        )
        return [(source, key, why) for source, key, why in await session.execute(failed)]
