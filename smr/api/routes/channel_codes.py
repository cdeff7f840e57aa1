"""Channel codes (渠道活码): GET /v1/channel-codes, /v1/channel-codes/{state} (with the report
per code) and /v1/channel-codes/{state}/qr (a redirect to WeCom's QR picture)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import RedirectResponse

from smr.api.deps import AdminOnly, RuntimeDep, SessionDep
from smr.api.models import ChannelCodeList, ChannelCodeOut
from smr.api.openapi import ADMIN, problems
from smr.channel_codes.schema import STATE_PATTERN
from smr.schemas import AwareTime
from smr.services import channel_codes

router = APIRouter(
    prefix="/v1/channel-codes", tags=["channel-codes"], dependencies=[AdminOnly], responses=ADMIN
)
State = Annotated[str, Path(pattern=STATE_PATTERN, description="The code's state.")]
REDIRECT: dict[int | str, dict[str, Any]] = {
    307: {
        "description": "To WeCom's QR picture of the code (a public image URL).",
        "headers": {"Location": {"description": "Its URL.", "schema": {"type": "string"}}},
    }
}


@router.get("", response_model=ChannelCodeList)
async def list_channel_codes(
    session: SessionDep,
    runtime: RuntimeDep,
    since: AwareTime | None = None,
    until: AwareTime | None = None,
) -> dict[str, Any]:
    """Every declared code (and every code SMR made that is no longer declared), each with its
    report: adds within [since, until), and what those contacts did after their add."""
    declared = runtime.catalog.channel_codes.current
    codes = await channel_codes.list_codes(session, declared, since=since, until=until)
    keeper = runtime.channel_codes
    return {
        "managed": declared.managed,
        "wecom": keeper is not None and keeper.wecom_configured,
        "codes": codes,
    }


@router.get("/{state}", response_model=ChannelCodeOut, responses=problems(404))
async def get_channel_code(
    state: State,
    session: SessionDep,
    runtime: RuntimeDep,
    since: AwareTime | None = None,
    until: AwareTime | None = None,
) -> dict[str, Any]:
    declared = runtime.catalog.channel_codes.current
    return await channel_codes.get_code(session, declared, state, since=since, until=until)


@router.get(
    "/{state}/qr",
    response_class=RedirectResponse,
    status_code=307,
    responses=REDIRECT | problems(404),
)
async def get_channel_code_qr(state: State, session: SessionDep, runtime: RuntimeDep) -> Any:
    """The code's QR picture: a redirect to WeCom's URL; 404 until WeCom has made the code."""
    url = await channel_codes.qr_code(session, runtime.catalog.channel_codes.current, state)
    return RedirectResponse(url, status_code=307)
