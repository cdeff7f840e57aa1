"""POST /v1/simulate: an event (and optional later events and playbook YAML) → the timeline of
what would happen over virtual time. Runs on a scratch database: nothing is stored or sent."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smr.api.deps import AdminOnly, JsonBody, RuntimeDep
from smr.api.errors import invalid
from smr.api.models import SimulateAnswer
from smr.api.openapi import ADMIN, json_body, problems
from smr.api.routes.playbooks import error_json
from smr.errors import InvalidInput
from smr.playbooks import LoadResult
from smr.runtime import Runtime
from smr.services.catalog import Catalog
from smr.simulate import (
    DEFAULT_HORIZON,
    MAX_EVENTS,
    Horizon,
    ScenarioInvalid,
    load_yaml,
    scenario_events,
    simulate,
)

router = APIRouter(
    prefix="/v1/simulate", tags=["simulate"], dependencies=[AdminOnly], responses=ADMIN
)


class SimulateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: dict[str, Any]
    events: Annotated[list[dict[str, Any]], Field(max_length=MAX_EVENTS)] = []
    playbooks: Annotated[str, Field(min_length=1)] | None = None
    horizon: Horizon = DEFAULT_HORIZON


@router.post(
    "",
    response_model=SimulateAnswer,
    responses=problems(413),
    openapi_extra=json_body(SimulateIn),
)
async def post_simulate(body: JsonBody, runtime: RuntimeDep) -> dict[str, Any]:
    try:
        request = SimulateIn.model_validate(body)
    except ValidationError as exc:
        raise invalid(exc) from exc
    loaded = _playbooks(request, runtime)
    try:
        events = scenario_events(request.event, request.events, now=runtime.clock())
    except ScenarioInvalid as exc:
        errors = [{"path": p.path, "message": p.message} for p in exc.problems]
        raise InvalidInput("The request body does not validate.", errors=errors) from exc
    catalog = Catalog.of(loaded, channels=runtime.catalog.channels)
    result = await simulate(catalog, events, horizon=request.horizon, settings=runtime.settings)
    answer = result.as_json()
    answer["errors"] = [error_json(e) for e in loaded.errors] + answer["errors"]
    return answer


def _playbooks(request: SimulateIn, runtime: Runtime) -> LoadResult:
    """The posted playbook alone, else the service's loaded playbooks; the service's policies."""
    live = runtime.catalog
    if request.playbooks is None:
        return LoadResult(dict(live.result.playbooks), live.policies, list(live.errors))
    loaded = load_yaml(request.playbooks, policies=live.policies, channels=live.channels)
    if not loaded.playbooks:
        errors = [error_json(e) for e in loaded.errors]
        raise InvalidInput("The playbook does not load.", errors=errors)
    return loaded
