"""会话内容存档 (WeCom chat archive) messages, pushed by the customer's own archive gateway.

WeCom's archive is pulled with Tencent's native Finance SDK, not over HTTPS; the gateway that
holds the SDK, the archive secret and the RSA private key decrypts each message and posts the
JSON the SDK gives, unchanged, to ``POST /v1/wecom/archive`` as ``{"messages": [...]}``, signed:

- ``X-SMR-Timestamp: <unix seconds>``;
- ``X-SMR-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>`` with
  ``SMR_WECOM__ARCHIVE_SECRET``. A timestamp more than 5 minutes from now is refused (replay).

Each ``send`` message of a type in :data:`ACCEPTED_TYPES` becomes one ``chat.message`` event
keyed ``archive:<msgid>`` (a re-push is a duplicate). Who is who: WeCom gives a customer's
id (external_userid) in ``from``/``tolist``, and it starts with ``wo`` or ``wm``
(:func:`is_customer`); any other id is the corp's own (a staff userid, or a group robot). So:

- 1:1 chat (``roomid`` ""): the contact is the customer party; ``staff`` the staff party;
  ``speaker`` says which of them wrote. Without a customer party (staff to staff): ignored.
- group chat: a customer's message is that customer's (``staff`` null, ``chat_id`` the
  roomid); a staff message speaks to no single customer and is ignored.

``recall`` and ``switch`` are acknowledged and ignored (a recalled message already acted on
stays acted on). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from smr.errors import InvalidInput, Unauthorized, field_errors
from smr.inbound.webhooks.base import hmac_sha256, same
from smr.schemas import LATEST, MAX_BATCH, EventIn

TIMESTAMP_HEADER: Final = "X-SMR-Timestamp"
SIGNATURE_HEADER: Final = "X-SMR-Signature"
TOLERANCE: Final = timedelta(minutes=5)
SOURCE: Final = "wecom_archive"
#: Ids of the corp's customers (external_userid): ``wm…`` a WeChat user, ``wo…`` a WeCom one.
CUSTOMER_PREFIXES: Final = ("wm", "wo")
#: What a person sends; consent notices (agree, disagree), call and meeting records, and any
#: type WeCom adds later are acknowledged and ignored. Only ``text`` carries ``data.text``.
ACCEPTED_TYPES: Final = frozenset(
    {"text", "image", "voice", "video", "emotion", "file", "location", "link", "weapp",
     "card", "mixed", "chatrecord", "markdown", "news", "sphfeed"}
)  # fmt: skip
ACTIONS: Final = ("send", "recall", "switch")
Speaker = Literal["customer", "staff"]

UserId = Annotated[str, StringConstraints(max_length=200)]
#: Short enough that ``archive:<msgid>`` is a valid event id (at most 200 characters).
MsgId = Annotated[str, StringConstraints(min_length=1, max_length=190, strip_whitespace=True)]


class SignatureError(Unauthorized):
    """The archive push is not signed with SMR_WECOM__ARCHIVE_SECRET."""


class ArchiveText(BaseModel):
    model_config = ConfigDict(extra="allow")

    content: str


class SentMessage(BaseModel):
    """A message someone sent (``action: send``); its type's own object (``text``,
    ``image``, …) comes beside the common fields."""

    model_config = ConfigDict(extra="allow")

    msgid: MsgId
    action: Literal["send"]
    from_: UserId = Field(alias="from", min_length=1)
    tolist: Annotated[list[UserId], Field(max_length=10_000)]
    roomid: UserId = ""
    msgtime: int = Field(ge=0, lt=int(LATEST.timestamp() * 1000), description="Milliseconds.")
    msgtype: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    text: ArchiveText | None = None


class RecallMessage(BaseModel):
    """A message withdrawn (``msgtype: revoke``); acknowledged and ignored."""

    model_config = ConfigDict(extra="allow")

    msgid: MsgId
    action: Literal["recall"]


class SwitchMessage(BaseModel):
    """A member switched corps (切换企业日志: ``user``, ``time``); acknowledged and ignored."""

    model_config = ConfigDict(extra="allow")

    msgid: MsgId
    action: Literal["switch"]


ArchiveMessage = Annotated[
    SentMessage | RecallMessage | SwitchMessage, Field(discriminator="action")
]


class ArchivePush(BaseModel):
    """What the archive gateway posts: decrypted messages as WeCom's SDK gives them."""

    model_config = ConfigDict(extra="forbid")

    messages: Annotated[list[ArchiveMessage], Field(min_length=1, max_length=MAX_BATCH)]


@dataclass(frozen=True, slots=True)
class Ignored:
    msgid: str
    reason: str


Outcome = EventIn | Ignored


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-SMR-Signature`` of ``body`` sent at ``timestamp`` (what the gateway computes)."""
    return "sha256=" + hmac_sha256(secret, f"{timestamp}.".encode() + body).hex()


def verify(
    secret: str, body: bytes, *, timestamp: str | None, signature: str | None, now: datetime
) -> None:
    """Raise SignatureError unless ``signature`` signs ``body`` at ``timestamp``, within
    :data:`TOLERANCE` of ``now``."""
    if not timestamp or not signature:
        raise SignatureError(f"The {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers are required.")
    stamp = timestamp.strip()
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise SignatureError(f"{TIMESTAMP_HEADER} must be unix seconds.")
    # Compared as numbers: a stamp past datetime's range is stale, not a crash.
    if abs(now.timestamp() - int(stamp)) > TOLERANCE.total_seconds():
        raise SignatureError(f"{TIMESTAMP_HEADER} is more than 5 minutes from now; a replay.")
    if not same(sign(secret, body, int(stamp)), signature.strip().lower()):
        raise SignatureError(f"{SIGNATURE_HEADER} does not verify.")


def parse(payload: Any) -> ArchivePush:
    """``payload`` (the body, parsed by the edge guard) as a push; InvalidInput (422) with
    the path of each field at fault otherwise."""
    try:
        push = ArchivePush.model_validate(payload)
    except ValidationError as exc:
        errors = field_errors([{**e, "loc": _loc(e)} for e in exc.errors()])
        raise InvalidInput("The archive push does not validate.", errors=errors) from None
    missing = [
        {"path": f"messages[{i}].text", "message": "a text message carries text.content"}
        for i, m in enumerate(push.messages)
        if isinstance(m, SentMessage) and m.msgtype == "text" and m.text is None
    ]
    if missing:
        raise InvalidInput("The archive push does not validate.", errors=missing)
    return push


def _loc(error: Any) -> tuple[str | int, ...]:
    """The path into the body: without the union's tag (``messages.0.send.from``), and at
    ``action`` when that is what is wrong."""
    loc = tuple(error["loc"])
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return (*loc, "action")
    if len(loc) > 2 and loc[0] == "messages" and loc[2] in ACTIONS:
        return (*loc[:2], *loc[3:])
    return loc


def is_customer(userid: str) -> bool:
    return userid.startswith(CUSTOMER_PREFIXES)


def translate(push: ArchivePush) -> list[Outcome]:
    """One outcome per message, in order: the event it makes, or why it is ignored."""
    return [_outcome(message) for message in push.messages]


def _outcome(message: SentMessage | RecallMessage | SwitchMessage) -> Outcome:
    if not isinstance(message, SentMessage):
        return Ignored(message.msgid, f"action {message.action}: acknowledged, not acted on")
    if message.msgtype not in ACCEPTED_TYPES:
        return Ignored(message.msgid, f"msgtype {message.msgtype}: not a message SMR acts on")
    if message.roomid:
        return _group(message)
    return _single(message)


def _single(message: SentMessage) -> Outcome:
    parties = [message.from_, *message.tolist]
    customer = next((p for p in parties if is_customer(p)), None)
    if customer is None:
        return Ignored(message.msgid, "an internal chat: no customer takes part")
    staff = next((p for p in parties if p and not is_customer(p)), None)
    speaker: Speaker = "customer" if message.from_ == customer else "staff"
    return _event(message, customer, chat="single", speaker=speaker, staff=staff)


def _group(message: SentMessage) -> Outcome:
    if not is_customer(message.from_):
        return Ignored(message.msgid, "a staff message in a group speaks to no single customer")
    return _event(message, message.from_, chat="group", speaker="customer", staff=None)


def _event(
    message: SentMessage,
    customer: str,
    *,
    chat: Literal["single", "group"],
    speaker: Speaker,
    staff: str | None,
) -> EventIn:
    data = {
        "text": message.text.content if message.msgtype == "text" and message.text else "",
        "msgtype": message.msgtype,
        "chat": chat,
        "speaker": speaker,
        "staff": staff,
        "chat_id": message.roomid or None,
        "msgid": message.msgid,
        "source": "archive",
    }
    return EventIn.model_validate(
        {
            "id": f"archive:{message.msgid}",
            "type": "chat.message",
            "occurred_at": _at(message.msgtime),
            "contact": {"wecom_userid": customer},
            "data": data,
        }
    )


def _at(milliseconds: int) -> datetime:
    seconds, millis = divmod(milliseconds, 1000)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(milliseconds=millis)


def events_of(outcomes: Sequence[Outcome]) -> list[EventIn]:
    return [o for o in outcomes if isinstance(o, EventIn)]
