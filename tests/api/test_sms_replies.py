"""POST /v1/webhooks/sms/{provider}: the vendors' reply pushes (上行短信), as documented samples,
become events; an unsubscribe word opts the phone out of marketing SMS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from smr.models import Event
from smr.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.helpers import FakeClock, auth

TOKEN = "sms-push-token"
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "sms"
PROBLEM = "application/problem+json"


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    secrets = {"sms_aliyun": SecretStr(TOKEN), "sms_tencent": SecretStr(TOKEN)}
    data = tmp_path / "data"
    settings = make_settings(database_url, playbooks_dir, data, webhook_secrets=secrets)
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


async def push(
    client: httpx.AsyncClient, provider: str, body: bytes, token: str | None = TOKEN
) -> httpx.Response:
    params = {"token": token} if token is not None else {}
    return await client.post(f"/v1/webhooks/sms/{provider}", params=params, content=body)


async def contact_by_phone(client: httpx.AsyncClient, phone: str) -> dict[str, Any]:
    found = await client.get("/v1/contacts", params={"phone": phone}, headers=auth())
    assert found.status_code == 200
    contact: dict[str, Any] = found.json()
    return contact


async def events_of(runtime: Runtime) -> list[tuple[str, str, dict[str, Any]]]:
    async with runtime.sessions() as session:
        rows = await session.scalars(select(Event).order_by(Event.key))
        return [(e.source, e.type, e.data) for e in rows]


async def test_an_aliyun_push_opts_out_the_td_reply_and_records_the_other(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    response = await push(client, "aliyun", sample("aliyun_smsup.json"))

    assert response.status_code == 200
    assert response.json()["code"] == 0
    assert await events_of(runtime) == [
        ("sms_aliyun", "sms.replied", {"text": "内容", "provider": "aliyun"}),
        (
            "sms_aliyun",
            "contact.unsubscribed",
            {"text": "TD", "provider": "aliyun", "channel": "sms"},
        ),
    ]
    # "+8613911113333" in the push is the contact a shop order for 13911113333 reaches.
    assert (await contact_by_phone(client, "139 1111 3333"))["opted_out"] == ["sms"]
    assert (await contact_by_phone(client, "13811112222"))["opted_out"] == []


async def test_a_pushed_again_reply_is_a_duplicate(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await push(client, "aliyun", sample("aliyun_smsup.json"))
    again = await push(client, "aliyun", sample("aliyun_smsup.json"))

    assert again.status_code == 200
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 2


@pytest.mark.parametrize("word", ["退订", "td", " T。", "n", "R"])
async def test_each_unsubscribe_word_counts(
    client: httpx.AsyncClient, runtime: Runtime, word: str
) -> None:
    body = {"extend": "", "mobile": "13800138000", "nationcode": "86", "text": word, "time": 1}

    response = await push(client, "tencent", json.dumps(body).encode())

    assert response.json() == {"result": 0, "errmsg": "OK"}
    assert (await contact_by_phone(client, "13800138000"))["opted_out"] == ["sms"]


async def test_a_tencent_reply_that_is_not_a_word_only_records_it(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    response = await push(client, "tencent", sample("tencent_reply.json"))

    assert response.status_code == 200
    ((source, kind, data),) = await events_of(runtime)
    assert (source, kind, data["text"]) == ("sms_tencent", "sms.replied", "用户回复的内容")
    assert (await contact_by_phone(client, "13800138000"))["opted_out"] == []


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["no-token", "wrong-token"])
async def test_a_push_without_the_token_is_401_and_stores_nothing(
    client: httpx.AsyncClient, runtime: Runtime, token: str | None
) -> None:
    response = await push(client, "aliyun", sample("aliyun_smsup.json"), token=token)

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert await events_of(runtime) == []


async def test_a_malformed_push_is_422_with_the_path(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    body = json.dumps([{"phone_number": "13800138000", "content": "TD"}, {"content": "x"}])

    response = await push(client, "aliyun", body.encode())

    assert response.status_code == 422
    assert [e["path"] for e in response.json()["errors"]] == ["$[1].phone_number"]
    assert await events_of(runtime) == []


async def test_an_unknown_provider_is_404(client: httpx.AsyncClient) -> None:
    response = await push(client, "carrier-pigeon", b"[]")

    assert response.status_code == 404
    assert "aliyun" in response.json()["detail"]
