"""GET, POST /v1/wecom/callback through the ASGI app, on every test database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from smr.api.app import create_app
from smr.config import WeComSettings
from smr.models import Contact, Delivery, Event, Run
from smr.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.helpers import FakeClock, auth
from tests.unit.inbound import wecom_support as v

URL = "/v1/wecom/callback"
PROBLEM = "application/problem+json"
ADD_IN_THEATRE = v.fixture("add_external_contact.xml").replace("teststate", "theatre-lobby")


@pytest.fixture
async def runtime(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Runtime]:
    """The shared runtime, with WeCom callbacks configured with the official example's keys."""
    wecom = WeComSettings(corp_id=v.CORP_ID, token=SecretStr(v.TOKEN), aes_key=SecretStr(v.AES_KEY))
    settings = make_settings(database_url, playbooks_dir, tmp_path / "data", wecom=wecom)
    rt = build_runtime(settings, clock=clock)
    yield rt
    await rt.aclose()


async def counts(runtime: Runtime) -> list[int]:
    async with runtime.sessions() as session:
        return [
            int(await session.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Event, Run, Delivery, Contact)
        ]


async def wecom_events(runtime: Runtime) -> list[Event]:
    async with runtime.sessions() as session:
        return list(await session.scalars(select(Event).where(Event.source == "wecom")))


async def post(client: httpx.AsyncClient, inner: str, **signing: str) -> httpx.Response:
    params, body = v.signed_post(v.official(), inner, **signing)
    return await client.post(URL, params=params, content=body)


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == status


# URL verification.


async def test_url_verification_answers_the_plaintext_exactly(client: httpx.AsyncClient) -> None:
    # The raw query from the official example: echostr arrives URL-encoded.
    query = (
        f"msg_signature={v.GET_SIGNATURE}&timestamp={v.GET_TIMESTAMP}&nonce={v.GET_NONCE}"
        "&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7"
        "OaBO%2BFZXvnaqQ%3D%3D"
    )

    response = await client.get(f"{URL}?{query}")

    assert response.status_code == 200
    assert response.content == v.ECHO_PLAIN.encode()
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"msg_signature": "0" * 40, "timestamp": v.GET_TIMESTAMP, "nonce": v.GET_NONCE},
        {"timestamp": v.GET_TIMESTAMP, "nonce": v.GET_NONCE},
        {"msg_signature": v.GET_SIGNATURE, "nonce": v.GET_NONCE},
    ],
)
async def test_url_verification_with_a_bad_signature_is_401(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get(URL, params={**params, "echostr": v.ECHOSTR})

    assert_problem(response, 401)
    assert v.ECHO_PLAIN not in response.text


async def test_url_verification_without_echostr_is_422(client: httpx.AsyncClient) -> None:
    params = {"msg_signature": v.GET_SIGNATURE, "timestamp": v.GET_TIMESTAMP, "nonce": "1"}

    response = await client.get(URL, params=params)

    assert_problem(response, 422)
    assert response.json()["errors"][0]["path"] == "echostr"


# Events.


async def test_add_external_contact_starts_the_welcome_playbook(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    response = await post(client, ADD_IN_THEATRE)

    assert response.status_code == 200
    assert response.text == "success"
    (event,) = await wecom_events(runtime)
    detail = (await client.get(f"/v1/events/{event.id}", headers=auth())).json()
    assert detail["type"] == "contact.added"
    assert detail["data"]["state"] == "theatre-lobby"
    assert detail["data"]["welcome_code"] == "WELCOMECODE"
    assert [(e["playbook"], e["outcome"]) for e in detail["evaluations"]] == [
        ("welcome-new-contact", "started")
    ]
    assert len(detail["runs"]) == 1
    contact = (await client.get(f"/v1/contacts/{event.contact_id}", headers=auth())).json()
    assert contact["identities"] == {"wecom_userid": "woAJ2GCAAAXtWyujaWJHDDGi0mAAAA"}
    assert contact["attributes"]["wecom_owner"] == "zhangsan"
    assert "渠道-theatre-lobby" in contact["tags"]


async def test_a_retry_is_a_duplicate_and_creates_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await post(client, ADD_IN_THEATRE)
    before = await counts(runtime)

    # WeCom's retry: the same callback, encrypted and signed afresh.
    again = await post(client, ADD_IN_THEATRE, timestamp="1700000005", nonce="777")

    assert again.status_code == 200
    assert again.text == "success"
    assert await counts(runtime) == before


async def test_group_join_is_one_event_per_member_and_retries_dedupe(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    xml = v.fixture("chat_add_member_flat.xml")

    first = await post(client, xml)
    await post(client, xml, nonce="99")

    assert first.text == "success"
    events = await wecom_events(runtime)
    assert sorted(e.type for e in events) == ["group.joined", "group.joined"]
    assert len({e.contact_id for e in events}) == 2


async def test_customer_deleting_staff_is_contact_deleted(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await post(client, v.fixture("del_follow_user.xml"))

    (event,) = await wecom_events(runtime)
    assert (event.type, event.data["by"]) == ("contact.deleted", "customer")


@pytest.mark.parametrize(
    "name", ["chat_create.xml", "del_external_contact_transfer.xml", "msgaudit_notify.xml"]
)
async def test_callbacks_without_events_are_acknowledged(
    client: httpx.AsyncClient, runtime: Runtime, name: str
) -> None:
    response = await post(client, v.fixture(name))

    assert (response.status_code, response.text) == (200, "success")
    assert await counts(runtime) == [0, 0, 0, 0]


async def test_the_official_example_message_is_acknowledged(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    params = {
        "msg_signature": v.POST_SIGNATURE,
        "timestamp": v.POST_TIMESTAMP,
        "nonce": v.POST_NONCE,
    }

    response = await client.post(URL, params=params, content=v.POST_BODY)

    assert (response.status_code, response.text) == (200, "success")
    assert await counts(runtime) == [0, 0, 0, 0]


async def test_kf_callback_requests_a_pull_without_logging_its_token(
    client: httpx.AsyncClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    response = await post(client, v.fixture("kf_msg_or_event.xml"))

    assert response.text == "success"
    assert await counts(runtime) == [0, 0, 0, 0]
    assert any("kf/sync_msg" in r.getMessage() for r in caplog.records)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR" not in logged
    assert v.TOKEN not in logged
    assert v.AES_KEY not in logged


# Refusals.


async def test_bad_signature_is_401_and_stores_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    params, body = v.signed_post(v.official(token="not-the-token"), ADD_IN_THEATRE)

    response = await client.post(URL, params=params, content=body)

    assert_problem(response, 401)
    assert await counts(runtime) == [0, 0, 0, 0]


async def test_missing_signature_is_401(client: httpx.AsyncClient) -> None:
    _, body = v.signed_post(v.official(), ADD_IN_THEATRE)

    response = await client.post(URL, params={"timestamp": "1", "nonce": "2"}, content=body)

    assert_problem(response, 401)


async def test_another_corp_is_403_and_stores_nothing(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    params, body = v.signed_post(v.official("ww-another-corp"), ADD_IN_THEATRE)

    response = await client.post(URL, params=params, content=body)

    assert_problem(response, 403)
    assert await counts(runtime) == [0, 0, 0, 0]


@pytest.mark.parametrize(
    "body",
    [b"garbage", b"<xml><ToUserName>x</ToUserName></xml>", b"", b"<xml><Encrypt>"],
)
async def test_garbage_envelope_is_422(client: httpx.AsyncClient, body: bytes) -> None:
    params = {"msg_signature": "0" * 40, "timestamp": "1", "nonce": "2"}

    response = await client.post(URL, params=params, content=body)

    assert_problem(response, 422)


@pytest.mark.parametrize(
    "inner",
    ["garbage, not XML", v.fixture("add_external_contact.xml").replace("<UserID>", "<Nope>")],
)
async def test_signed_but_unreadable_callback_is_422_and_stores_nothing(
    client: httpx.AsyncClient, runtime: Runtime, inner: str
) -> None:
    response = await post(client, inner)

    assert_problem(response, 422)
    assert await counts(runtime) == [0, 0, 0, 0]


async def test_signed_but_undecryptable_ciphertext_is_422(client: httpx.AsyncClient) -> None:
    crypt = v.official()
    encrypted = "A" * 86 + "=="  # 64 zero bytes: base64 and length fine, padding not
    signature = crypt.signature(timestamp="1", nonce="2", encrypted=encrypted)
    params = {"msg_signature": signature, "timestamp": "1", "nonce": "2"}

    response = await client.post(URL, params=params, content=v.envelope(encrypted))

    assert_problem(response, 422)
    assert "padding" in response.json()["detail"]


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, runtime: Runtime) -> None:
    params = {"msg_signature": "0" * 40, "timestamp": "1", "nonce": "2"}
    body = b"<xml>" + b" " * runtime.settings.max_body_bytes + b"</xml>"

    response = await client.post(URL, params=params, content=body)

    assert_problem(response, 413)


@pytest.fixture
async def unconfigured(
    database_url: str, playbooks_dir: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, playbooks_dir, tmp_path / "plain")
    rt = build_runtime(settings, clock=clock)
    transport = httpx.ASGITransport(app=create_app(rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://smr.test") as c:
        yield c
    await rt.aclose()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_unconfigured_wecom_is_404(unconfigured: httpx.AsyncClient, method: str) -> None:
    params = {"msg_signature": v.GET_SIGNATURE, "timestamp": "1", "nonce": "2", "echostr": "x"}

    response = await unconfigured.request(method, URL, params=params, content=b"<xml/>")

    assert_problem(response, 404)
    assert "SMR_WECOM__TOKEN" in response.json()["detail"]
