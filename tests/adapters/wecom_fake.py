"""A fake WeCom API on respx: the answers the official docs show, and helpers to read calls."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx
from pydantic import SecretStr

from smr.channels import OutboundMessage
from smr.config import WeComSettings
from tests.unit.inbound import wecom_support as official

BASE = "https://wecom.test"
CORP_ID = "ww-test-corp"
SECRET = "app-secret-value-0123456789"
TOKEN = "ACCESS_TOKEN_0001"
AGENT_ID = "1000002"
#: Channel → adapter, with every WeCom credential configured (and SMS not).
ALL_ROUTES = {
    "mock": "mock",
    "moment": "wecom.moment",
    "sms": "mock",
    "staff": "wecom.app",
    "wecom": "wecom.msg_template",
    "wecom_group": "wecom.group_msg_template",
    "wecom_kf": "wecom.kf",
    "wecom_tag": "wecom.mark_tag",
    "wecom_transfer": "wecom.transfer",
    "wecom_welcome": "wecom.welcome",
}


def settings(**extra: Any) -> WeComSettings:
    fields: dict[str, Any] = {
        "corp_id": CORP_ID,
        "secret": SecretStr(SECRET),
        "agent_id": AGENT_ID,
        "base_url": BASE,
    }
    return WeComSettings(**{**fields, **extra})


def with_callbacks() -> WeComSettings:
    """Every channel configured against the fake WeCom, and callbacks signed with the keys of
    the official 加解密方案说明 example (its corp id is the receive id it checks)."""
    return settings(
        corp_id=official.CORP_ID,
        token=SecretStr(official.TOKEN),
        aes_key=SecretStr(official.AES_KEY),
    )


def ok(**fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", **fields})


def err(errcode: int, errmsg: str = "refused") -> httpx.Response:
    """WeCom's refusal: HTTP 200 with a non-zero errcode."""
    return httpx.Response(200, json={"errcode": errcode, "errmsg": errmsg})


def token_route(mock: respx.MockRouter, *tokens: str) -> respx.Route:
    """gettoken, answering ``tokens`` in turn (the last one from then on)."""
    answers = [ok(access_token=t, expires_in=7200) for t in (tokens or (TOKEN,))]
    route = mock.get(f"{BASE}/cgi-bin/gettoken")
    if len(answers) == 1:
        return route.mock(return_value=answers[0])
    return route.mock(side_effect=answers)


def api(mock: respx.MockRouter, path: str) -> respx.Route:
    return mock.post(f"{BASE}/cgi-bin/{path}")


def body(call: respx.models.Call) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(call.request.content)
    return data


def token_of(call: respx.models.Call) -> str | None:
    token: str | None = call.request.url.params.get("access_token")
    return token


def message(
    delivery_id: str = "dl_0001",
    *,
    channel: str = "wecom",
    text: str | None = "您好",
    contact_id: str = "ct_1",
    **recipient: str,
) -> OutboundMessage:
    return OutboundMessage(
        delivery_id=delivery_id,
        channel=channel,
        category="service",
        contact_id=contact_id,
        recipient=recipient,
        text=text,
    )
