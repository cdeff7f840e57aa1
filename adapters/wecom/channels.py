"""WeCom channels that send one message per call.

- ``wecom_welcome``: externalcontact/send_welcome_msg, to the customer, once, within 20 s of
  the add;
- ``wecom_kf``: kf/send_msg, to the customer, at most 5 messages within 48 h of their last kf
  message;
- ``staff``: message/send (应用消息, text), to the contact's owner staff, listed staff or a
  staff tag (internal only).

The mass-send task channels (``wecom``, ``wecom_group``) are in ``tasks``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.wecom import contacts, kf_sync, rich
from adapters.wecom.client import WeComClient
from adapters.wecom.media import MediaStore
from smr.channels import (
    Address,
    Capabilities,
    ContactProfile,
    OutboundMessage,
    PermanentSendError,
    SendRate,
    SendResult,
    SkippedSend,
)
from smr.db import unit_of_work
from smr.repositories import kf as kf_repo
from smr.statuses import SkipReason

WELCOME_WINDOW = timedelta(seconds=20)
KF_WINDOW = timedelta(hours=48)
KF_MAX_MESSAGES = 5
#: Text limits of the endpoints, in UTF-8 bytes.
WELCOME_TEXT_BYTES = 4000
KF_TEXT_BYTES = 2048
APP_TEXT_BYTES = 2048


class WeComChannel:
    """What every WeCom channel shares: the corp's client and the app secret it calls with."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(
        self,
        client: WeComClient,
        secret: SecretStr,
        *,
        clock: Callable[[], datetime],
        media: MediaStore | None = None,
    ) -> None:
        self._client = client
        self._secret = secret
        self._clock = clock
        self._media = media  # uploads attachments; without it, attachments are refused

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._client!r})"

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._media is not None:
            await self._media.aclose()


def need(message: OutboundMessage, key: str, why: str) -> str:
    """The recipient's ``key``; skips the message (missing_identity) without it."""
    value = message.recipient.get(key)
    if not value:
        raise SkippedSend(SkipReason.MISSING_IDENTITY, response=f"no {key}: {why}")
    return value


def text_of(message: OutboundMessage, limit: int) -> str:
    """The text, at most ``limit`` bytes; empty only beside attachments."""
    text = message.text or ""
    size = len(text.encode())
    if size > limit or not (text or message.attachments):
        raise PermanentSendError(f"text is {size} bytes; WeCom takes 1 to {limit}")
    return text


class WeComWelcome(WeComChannel):
    """send_welcome_msg with the welcome code of the contact.added event that started the run.

    The code is single use and valid 20 s: contact.added events are processed first, and the
    processor sends the welcome right after its batch commits (as every delivery due at once),
    not at the next tick. A resend after a lost worker is pointless past the window, hence not
    idempotent (the row becomes uncertain).
    """

    name: ClassVar[str] = "wecom.welcome"
    capabilities: ClassVar[Capabilities] = Capabilities(needs=frozenset({Address.WELCOME_CODE}))

    async def profile(self, *, external_userid: str, staff: str | None) -> ContactProfile:
        """externalcontact/get, with the same 客户联系 secret (see ``contacts``)."""
        return await contacts.profile(
            self._client, self._secret, external_userid=external_userid, staff=staff
        )

    async def send(self, message: OutboundMessage) -> SendResult:
        code = need(message, "welcome_code", "the trigger event carries no WelcomeCode")
        issued = message.recipient.get("welcome_code_at")
        if issued is not None:
            age = self._clock() - datetime.fromisoformat(issued)
            if age > WELCOME_WINDOW:
                answer = f"welcome code is {age.total_seconds():.0f}s old; WeCom takes it for 20s"
                raise SkippedSend(SkipReason.WINDOW_EXPIRED, response=answer)
        body = {"welcome_code": code, **rich.text_body(text_of(message, WELCOME_TEXT_BYTES))}
        api, items = "externalcontact/send_welcome_msg", message.attachments
        await rich.call(self._client, self._secret, api, body, items=items, media=self._media)
        return SendResult(response="send_welcome_msg: ok")


class WeComKf(WeComChannel):
    """kf/send_msg to the customer's 微信客服 session, with our delivery id as ``msgid``: WeCom
    refuses a second message with the same msgid, so a resend cannot reach the customer twice.

    WeCom allows 5 messages within 48 h of the customer's last message; the window is checked
    before calling (from the stored chat.message events, see ``smr.repositories.kf``), and
    95001 / 95002 from WeCom mean the same.
    """

    name: ClassVar[str] = "wecom.kf"
    capabilities: ClassVar[Capabilities] = Capabilities(
        needs=frozenset({Address.WECOM_USERID}),
        uses=frozenset({Address.OPEN_KFID}),
        idempotent=True,
    )

    def __init__(
        self,
        client: WeComClient,
        secret: SecretStr,
        *,
        clock: Callable[[], datetime],
        sessions: async_sessionmaker[AsyncSession],
        media: MediaStore | None = None,
    ) -> None:
        super().__init__(client, secret, clock=clock, media=media)
        self._sessions = sessions

    async def send(self, message: OutboundMessage) -> SendResult:
        """The text, then each attachment, one kf message each (msgid: the delivery id, then
        ``<delivery id>-<n>``); each counts against the 5 messages of the window."""
        customer = need(message, "wecom_userid", "the contact has no WeCom external_userid")
        text = text_of(message, KF_TEXT_BYTES)
        parts = (1 if text else 0) + len(message.attachments)
        if parts > KF_MAX_MESSAGES:
            raise PermanentSendError(f"{parts} kf messages; WeCom allows {KF_MAX_MESSAGES}")
        open_kfid = await self._open_window(message, parts)
        base: dict[str, Any] = {"touser": customer, "open_kfid": open_kfid}
        msgids = await rich.kf_parts(
            self._client,
            self._secret,
            base,
            delivery_id=message.delivery_id,
            text=text,
            items=message.attachments,
            media=self._media,
        )
        answer = f"kf/send_msg: ok msgid={','.join(msgids)}"
        return SendResult(vendor_message_id=msgids[0], response=answer)

    async def pull(self, *, token: str, open_kfid: str, ingest: kf_sync.Ingest) -> int:
        """Pull the messages a kf_msg_or_event callback announced (see ``kf_sync``)."""
        return await kf_sync.pull(
            self._client,
            self._secret,
            token=token,
            open_kfid=open_kfid,
            sessions=self._sessions,
            clock=self._clock,
            ingest=ingest,
        )

    async def _open_window(self, message: OutboundMessage, parts: int = 1) -> str:
        """The open_kfid to answer on, when the window allows ``parts`` more messages
        (earlier deliveries count one each)."""
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            window = await kf_repo.window(
                session,
                contact_id=message.contact_id,
                open_kfid=message.recipient.get("open_kfid"),
                since=now - KF_WINDOW,
                channel=kf_sync.KF_CHANNEL,
                delivery_id=message.delivery_id,
            )
        if window.last_message_at is None or window.open_kfid is None:
            answer = "no message from the customer via 微信客服 within 48 h"
            raise SkippedSend(SkipReason.WINDOW_EXPIRED, response=answer)
        if window.sent + parts > KF_MAX_MESSAGES:
            answer = (
                f"{window.sent} messages sent since the customer's last message at "
                f"{window.last_message_at.isoformat()}, {parts} more to send; WeCom allows "
                f"{KF_MAX_MESSAGES}"
            )
            raise SkippedSend(SkipReason.WINDOW_EXPIRED, response=answer)
        return window.open_kfid


class WeComApp(WeComChannel):
    """message/send (应用消息) as text, for notify_staff: to the contact's owner staff
    (params ``to: owner``, the default), to listed staff (``touser: a|b``) or to the members
    of a staff tag (``totag``). Only the owner case needs the owner staff, so the channel
    declares it as used, not needed, and skips an owner notice without one
    (``missing_identity``) itself.

    WeCom drops, without an error, what an app sends one member beyond 30 a minute or 1,000 an
    hour ("每应用对同一个成员不可超过30次/分钟，1000次/小时，超过部分会被丢弃不下发"): the
    dispatcher holds such sends back for the window instead (``send_rates``, counted per
    recipient userid; a tag's sends count as the tag's).
    """

    name: ClassVar[str] = "wecom.app"
    capabilities: ClassVar[Capabilities] = Capabilities(uses=frozenset({Address.OWNER_STAFF}))
    send_rates: ClassVar[tuple[SendRate, ...]] = (
        SendRate(max=30, per=timedelta(minutes=1), key="staff"),
        SendRate(max=1000, per=timedelta(hours=1), key="staff"),
    )

    def __init__(
        self,
        client: WeComClient,
        secret: SecretStr,
        *,
        clock: Callable[[], datetime],
        agent_id: str,
    ) -> None:
        super().__init__(client, secret, clock=clock)
        self._agent_id = int(agent_id)

    async def send(self, message: OutboundMessage) -> SendResult:
        field, wanted = _staff_recipients(message)
        body = {
            field: "|".join(wanted),
            "msgtype": "text",
            "agentid": self._agent_id,
            "text": {"content": text_of(message, APP_TEXT_BYTES)},
        }
        answer = await self._client.call("message/send", self._secret, body)
        # Invalid recipients do not fail the call: the rest get it. Nobody valid: not sent.
        invalid = _invalid(answer, field)
        if not set(wanted) - invalid:
            names = "|".join(sorted(invalid))
            raise PermanentSendError(f"message/send: no valid recipient ({field}={names})")
        msgid = answer.get("msgid")
        response = "message/send: ok"
        if invalid:
            response += f" (not reached: {'|'.join(sorted(invalid))})"
        return SendResult(vendor_message_id=str(msgid) if msgid else None, response=response)


def _staff_recipients(message: OutboundMessage) -> tuple[str, list[str]]:
    """The message/send field (touser or totag) and its values, from the delivery's params."""
    if users := message.params.get("touser"):
        return "touser", [u for u in users.split("|") if u]
    if tag := message.params.get("totag"):
        return "totag", [tag]
    return "touser", [need(message, "owner_staff", "the contact has no owner staff (wecom_owner)")]


def _invalid(answer: dict[str, Any], field: str) -> set[str]:
    kinds = ("invalidtag",) if field == "totag" else ("invaliduser", "unlicenseduser")
    return {v for kind in kinds for v in str(answer.get(kind) or "").split("|") if v}


class WeComTags(WeComChannel):
    """externalcontact/mark_tag: mirrors a tag step's mapped tags (``wecom_tags`` in
    policies.yaml) onto the customer, as the owner staff's tags. Marking a tag the customer
    has, or removing one they have not, changes nothing: a resend is harmless (idempotent)."""

    name: ClassVar[str] = "wecom.mark_tag"
    capabilities: ClassVar[Capabilities] = Capabilities(
        needs=frozenset({Address.OWNER_STAFF, Address.WECOM_USERID}), idempotent=True
    )

    async def send(self, message: OutboundMessage) -> SendResult:
        staff = need(message, "owner_staff", "the contact has no owner staff (wecom_owner)")
        customer = need(message, "wecom_userid", "the contact has no WeCom external_userid")
        add, remove = (
            [t for t in message.params.get(key, "").split(",") if t]
            for key in ("add_tag", "remove_tag")
        )
        if not (add or remove):
            raise PermanentSendError("mark_tag needs a corp tag id to add or remove")
        body: dict[str, Any] = {"userid": staff, "external_userid": customer}
        if add:
            body["add_tag"] = add
        if remove:
            body["remove_tag"] = remove
        await self._client.call("externalcontact/mark_tag", self._secret, body)
        return SendResult(response=f"mark_tag: ok add={add} remove={remove}")
