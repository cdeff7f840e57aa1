"""GET, POST /v1/wecom/callback: WeCom URL verification and encrypted callbacks.

Authenticated by WeCom's own signature (no bearer token). WeCom wants an answer within 5 s and
retries anything but HTTP 200, so events are ingested with stable keys: a retry is a duplicate.

A customer group callback (change_external_chat) first updates the stored group as far as it
can without WeCom (``GroupSync.on_callback``; a fetch runs in the background); the group
events it makes then carry that group as ``data.group`` (``event.group`` in templates).
A transfer_fail callback fails the customer's awaiting transfer (``services.transfers``)
before its ``contact.transfer_failed`` event is ingested.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse, Response

from smr.api.deps import RawBody, RuntimeDep
from smr.api.openapi import problems, text_body
from smr.errors import Forbidden, InvalidInput, NotFound, SmrError, Unauthorized
from smr.inbound.wecom import (
    DESCRIBED,
    CallbackError,
    InvalidSignature,
    Translation,
    WrongReceiveId,
    WXBizMsgCrypt,
    kf_pull_requested,
    translate,
    with_group,
    with_profile,
)
from smr.runtime import Runtime
from smr.schemas import EventIn
from smr.services import transfers

router = APIRouter(prefix="/v1/wecom", tags=["wecom"], responses=problems(401, 403, 404, 422, 503))
log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "WeCom callbacks are not configured: set SMR_WECOM__CORP_ID, SMR_WECOM__TOKEN and "
    "SMR_WECOM__AES_KEY."
)


async def get_crypt(runtime: RuntimeDep) -> WXBizMsgCrypt:  # async: not run in a thread
    wecom = runtime.settings.wecom
    if not (wecom.corp_id and wecom.token and wecom.aes_key):
        raise NotFound(NOT_CONFIGURED)
    # The EncodingAESKey was validated with the settings, at start.
    return WXBizMsgCrypt(
        token=wecom.token.get_secret_value(),
        encoding_aes_key=wecom.aes_key.get_secret_value(),
        receive_id=wecom.corp_id,
    )


CryptDep = Annotated[WXBizMsgCrypt, Depends(get_crypt)]


def _signed(msg_signature: str | None, timestamp: str | None, nonce: str | None) -> dict[str, str]:
    if not (msg_signature and timestamp and nonce):
        raise Unauthorized("msg_signature, timestamp and nonce are required.")
    return {"msg_signature": msg_signature, "timestamp": timestamp, "nonce": nonce}


def _refusal(exc: CallbackError) -> SmrError:
    log.warning("wecom callback refused: %s", exc.detail)
    if isinstance(exc, InvalidSignature):
        return Unauthorized("The WeCom msg_signature does not verify.")
    if isinstance(exc, WrongReceiveId):
        return Forbidden("The callback is addressed to another corp.")
    return InvalidInput(f"The WeCom callback cannot be read: {exc.detail}")


@router.get("/callback", name="verify_wecom_url", response_class=PlainTextResponse)
async def verify_url(
    crypt: CryptDep,
    msg_signature: str | None = None,
    timestamp: str | None = None,
    nonce: str | None = None,
    echostr: str | None = None,
) -> Response:
    """Answer WeCom's URL check with the decrypted echostr, byte for byte."""
    signed = _signed(msg_signature, timestamp, nonce)
    if not echostr:
        raise InvalidInput(errors=[{"path": "echostr", "message": "Field required"}])
    try:
        plain = crypt.verify_url(**signed, echostr=echostr)
    except CallbackError as exc:
        raise _refusal(exc) from None
    return Response(content=plain.encode(), media_type="text/plain")


@router.post(
    "/callback",
    name="receive_wecom_callback",
    response_class=PlainTextResponse,
    responses=problems(413),
    openapi_extra=text_body(
        "application/xml", "text/xml", description="WeCom's encrypted XML envelope."
    ),
)
async def receive(
    body: RawBody,
    runtime: RuntimeDep,
    crypt: CryptDep,
    msg_signature: str | None = None,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> Response:
    """Verify, decrypt, translate and ingest one callback; answer ``success``."""
    signed = _signed(msg_signature, timestamp, nonce)
    try:
        inner = crypt.decrypt_msg(body, **signed)
        translation = translate(inner)
    except CallbackError as exc:
        raise _refusal(exc) from None
    await _act(runtime, translation)
    return PlainTextResponse("success")


async def _act(runtime: Runtime, translation: Translation) -> None:
    if (pull := translation.kf_pull) is not None and not runtime.pull_kf(
        token=pull.token, open_kfid=pull.open_kfid
    ):
        kf_pull_requested(pull.open_kfid)
    group = None
    if translation.group is not None and runtime.groups is not None:
        group = await runtime.groups.on_callback(translation.group)
    if translation.transfer is not None:
        failed = await transfers.record_failure(
            runtime.sessions, translation.transfer, now=runtime.clock()
        )
        log.info("wecom transfer_fail: %d awaiting transfer(s) failed", failed)
    if translation.ignored:
        log.info("wecom callback %s acknowledged: %s", translation.kind, translation.ignored)
    if not translation.events:
        return
    events = [await _described(runtime, event) for event in translation.events]
    if group is not None:
        events = [with_group(event, group) for event in events]
    # Never refused for the backlog: WeCom gives up after a few retries, and a welcome code
    # is valid for 20 seconds.
    report = await runtime.ingest(events, source="wecom", bounded=False)
    log.info(
        "wecom callback %s: %s",
        translation.kind,
        ", ".join(f"{r.key} {r.status}" for r in report.results),
    )


async def _described(runtime: Runtime, event: EventIn) -> EventIn:
    """A contact added or edited, with what WeCom tells of the customer (name, remark, tags,
    remark mobile); as it came when WeCom's contact API is not configured or does not answer."""
    customer = event.contact.wecom_userid
    if event.type not in DESCRIBED or customer is None:
        return event
    staff = event.data.get("staff")
    profile = await runtime.contact_profile(
        external_userid=customer, staff=staff if isinstance(staff, str) else None
    )
    return event if profile is None else with_profile(event, profile)
