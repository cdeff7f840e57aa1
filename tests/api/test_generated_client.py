"""A client generated from /openapi.json by a standard generator (openapi-python-client, offline,
about a second) posts an event and reads the run it started, through its own typed models."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from smr.api.app import create_app
from smr.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.helpers import ADMIN, INGEST, order_event

PACKAGE = "smr_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The client package generated from the app's document, on sys.path while the tests run."""
    root = tmp_path_factory.mktemp("generated")
    settings = make_settings(f"sqlite+aiosqlite:///{root / 'unused.db'}", root, root / "data")
    document = root / "openapi.json"
    document.write_text(json.dumps(create_app(build_runtime(settings)).openapi()))
    config = root / "config.yaml"
    config.write_text(f"project_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\n")
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document)]
    command += ["--config", str(config), "--meta", "none", "--output-path", str(root / PACKAGE)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def client_for(runtime: Runtime, token: str) -> Any:
    """The generated AuthenticatedClient, talking to the app in process."""
    transport = httpx.ASGITransport(app=create_app(runtime))
    authenticated = module("client").AuthenticatedClient
    return authenticated(
        base_url="http://smr.test", token=token, httpx_args={"transport": transport}
    )


@pytest.mark.usefixtures("generated")
async def test_generated_client_posts_an_event_and_reads_its_run(runtime: Runtime) -> None:
    models = module("models")
    post_events = module("api.events.post_events")
    get_event = module("api.events.get_event")
    list_runs, get_run = module("api.runs.list_runs"), module("api.runs.get_run")

    async with client_for(runtime, INGEST) as ingest:
        answer = await post_events.asyncio(
            client=ingest, body=models.EventIn.from_dict(order_event("gen-1"))
        )
    assert isinstance(answer, models.IngestResult)
    assert answer.status == "accepted"
    await runtime.process_pending()

    async with client_for(runtime, ADMIN) as admin:
        event = await get_event.asyncio(client=admin, event_id=answer.event_id)
        assert isinstance(event, models.EventDetail)
        assert event.status == "processed"
        assert isinstance(event.contact_id, str)
        page = await list_runs.asyncio(client=admin, contact=event.contact_id)
        assert isinstance(page, models.PageRunSummary)
        assert page.items, "the fixture playbooks start a run on order.paid"
        run = await get_run.asyncio(client=admin, run_id=page.items[0].id)

    assert isinstance(run, models.RunDetail)
    assert run.trigger_event_id == answer.event_id
    assert run.contact_id == event.contact_id
    assert run.trace, "a started run has a trace"


@pytest.mark.usefixtures("generated")
async def test_generated_client_reads_problems(runtime: Runtime) -> None:
    models, get_run = module("models"), module("api.runs.get_run")

    async with client_for(runtime, ADMIN) as admin:
        missing = await get_run.asyncio(client=admin, run_id="no-such-run")
    async with client_for(runtime, "not-a-token") as stranger:
        refused = await get_run.asyncio_detailed(client=stranger, run_id="no-such-run")

    assert isinstance(missing, models.Problem)
    assert missing.status == 404
    assert isinstance(refused.parsed, models.Problem)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="smr", error="invalid_token"'
