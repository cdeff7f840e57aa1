"""Decrypted WeCom callback XML → canonical events.

| callback (Event / ChangeType [/ UpdateDetail])          | event            |
|----------------------------------------------------------|------------------|
| change_external_contact / add_external_contact           | contact.added    |
| change_external_contact / add_half_external_contact      | contact.added (half) |
| change_external_contact / edit_external_contact          | contact.edited   |
| change_external_contact / del_external_contact           | contact.deleted (by staff); |
|                                                          | none for Source DELETE_BY_TRANSFER |
| change_external_contact / del_follow_user                | contact.deleted (by customer) |
| change_external_contact / transfer_fail                  | contact.transfer_failed; the |
|                                                          | awaiting transfer fails too |
| change_external_chat / update / add_member               | group.joined, one per member |
| change_external_chat / update / del_member               | group.left, one per member |
| kf_msg_or_event                                          | none: a kf pull is requested |
| anything else (incl. group create / dismiss)             | none: acknowledged, logged |

Every event's id is a stable digest of the callback's identifying fields (and the member, for
group events), so WeCom's retries of one callback are duplicates.

A transfer_fail callback (客户接替失败: FailReason customer_refused | customer_limit_exceed,
UserID the takeover staff) also comes with a ``TransferFailure`` (``Translation.transfer``):
``smr.services.transfers`` fails the customer's awaiting transfer to that staff member.

Every change_external_chat callback (create, update, dismiss) also comes with a
``GroupChange`` (``Translation.group``): what it says of the stored group, which
``smr.services.groups`` applies (a retry applies the same change again, harmlessly).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element

from pydantic import ValidationError

from smr.channels import ContactProfile
from smr.inbound.wecom import xmltree
from smr.inbound.wecom.errors import MalformedCallback
from smr.schemas import ContactRef, EventIn
from smr.services.groups import ChangeType, GroupChange
from smr.services.transfers import TransferFailure

log = logging.getLogger(__name__)

#: The fields that tell one callback from another; a retry repeats them all.
IDENTIFYING = (
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Event",
    "ChangeType",
    "UserID",
    "ExternalUserID",
    "Source",
    "ChatId",
    "UpdateDetail",
    "CurMemVer",
    "OpenKfId",
    "MsgId",
)


@dataclass(frozen=True)
class KfPull:
    """微信客服 has messages waiting; ``token`` (valid 10 minutes) authorises kf/sync_msg."""

    open_kfid: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class Translation:
    """What one callback means: events to ingest, a kf pull to make, or why it is ignored."""

    kind: str
    events: tuple[EventIn, ...] = ()
    kf_pull: KfPull | None = None
    ignored: str | None = None
    group: GroupChange | None = None
    transfer: TransferFailure | None = None


class Callback:
    """The top-level fields of a decrypted callback."""

    def __init__(self, root: Element) -> None:
        self.root = root

    def get(self, tag: str) -> str | None:
        text = (self.root.findtext(tag) or "").strip()
        return text or None

    def require(self, tag: str) -> str:
        value = self.get(tag)
        if value is None:
            raise MalformedCallback(f"The callback has no <{tag}>.")
        return value

    @property
    def kind(self) -> str:
        parts = (self.get("Event") or self.get("MsgType"), self.get("ChangeType"))
        return "/".join(p for p in parts if p) or self.root.tag

    def occurred_at(self) -> datetime:
        created = self.require("CreateTime")
        if not (created.isascii() and created.isdigit()) or len(created) > 12:
            raise MalformedCallback("<CreateTime> is not a Unix timestamp.")
        try:
            return datetime.fromtimestamp(int(created), UTC)
        except (ValueError, OverflowError, OSError):
            raise MalformedCallback("<CreateTime> is out of range.") from None

    def key(self, *extra: str) -> str:
        """A stable idempotency key: what changed and a digest of the identifying fields."""
        values = [self.get(tag) or "" for tag in IDENTIFYING]
        digest = hashlib.sha256("\x1f".join([*values, *extra]).encode()).hexdigest()[:40]
        label = self.get("UpdateDetail") or self.get("ChangeType") or self.get("Event")
        return f"{label or 'callback'}:{digest}"

    def members(self) -> list[str]:
        """MemChangeList in either encoding seen: ``<Item>`` children or one comma-joined text."""
        found: list[str] = []
        for element in self.root.findall("MemChangeList"):
            items = element.findall("Item")
            texts = [i.text or "" for i in items] if items else (element.text or "").split(",")
            found += [t.strip() for t in texts if t.strip()]
        return list(dict.fromkeys(found))


def translate(inner: str) -> Translation:
    """Translate a decrypted callback. Raises MalformedCallback when a needed field is missing."""
    callback = Callback(xmltree.parse(inner.encode()))
    handler = _HANDLERS.get(callback.get("Event") or "")
    if callback.get("MsgType") != "event" or handler is None:
        return _ignore(callback, "not a callback SMR handles")
    try:
        return handler(callback)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise MalformedCallback(f"The callback does not make a valid event ({problems}).") from None


def kf_pull_requested(open_kfid: str) -> None:
    """微信客服 messages wait behind kf/sync_msg, and no kf channel is configured to pull them
    (``Runtime.pull_kf``): this records the request (not the token, a credential)."""
    log.warning(
        "wecom kf: messages waiting for %s; no kf secret configured to pull them (kf/sync_msg)",
        open_kfid,
    )


def _ignore(callback: Callback, reason: str) -> Translation:
    return Translation(kind=callback.kind, ignored=reason)


def _event(
    callback: Callback, type_: str, contact: dict[str, Any], data: dict[str, Any], *extra: str
) -> EventIn:
    return EventIn.model_validate(
        {
            "id": callback.key(*extra),
            "type": type_,
            "occurred_at": callback.occurred_at(),
            "contact": contact,
            "data": data,
        }
    )


def _one(
    callback: Callback, type_: str, contact: dict[str, Any], data: dict[str, Any]
) -> Translation:
    return Translation(kind=callback.kind, events=(_event(callback, type_, contact, data),))


def _customer(callback: Callback) -> dict[str, Any]:
    return {"wecom_userid": callback.require("ExternalUserID")}


def _added(callback: Callback) -> Translation:
    staff = callback.require("UserID")
    data: dict[str, Any] = {
        "staff": staff,
        "half": callback.get("ChangeType") == "add_half_external_contact",
    }
    for tag, name in (("State", "state"), ("WelcomeCode", "welcome_code")):
        if value := callback.get(tag):
            data[name] = value
    contact = {**_customer(callback), "attributes": {"wecom_owner": staff}}
    return _one(callback, "contact.added", contact, data)


def _edited(callback: Callback) -> Translation:
    data = {"staff": callback.require("UserID")}
    return _one(callback, "contact.edited", _customer(callback), data)


def _deleted_by_staff(callback: Callback) -> Translation:
    if callback.get("Source") == "DELETE_BY_TRANSFER":
        return _ignore(callback, "deleted by a customer transfer (在职继承), not by the staff")
    data = {"by": "staff", "staff": callback.require("UserID")}
    return _one(callback, "contact.deleted", _customer(callback), data)


def _deleted_by_customer(callback: Callback) -> Translation:
    data = {"by": "customer", "staff": callback.require("UserID")}
    if state := callback.get("State"):
        data["state"] = state
    return _one(callback, "contact.deleted", _customer(callback), data)


def _transfer_failed(callback: Callback) -> Translation:
    takeover, reason = callback.require("UserID"), callback.require("FailReason")
    customer = _customer(callback)
    data = {"staff": takeover, "reason": reason}
    failure = TransferFailure(customer["wecom_userid"], takeover, reason)
    return replace(_one(callback, "contact.transfer_failed", customer, data), transfer=failure)


_CONTACT_CHANGES: dict[str, Callable[[Callback], Translation]] = {
    "add_external_contact": _added,
    "add_half_external_contact": _added,
    "edit_external_contact": _edited,
    "del_external_contact": _deleted_by_staff,
    "del_follow_user": _deleted_by_customer,
    "transfer_fail": _transfer_failed,
}

#: The longest chat id, member id and member version the groups tables hold.
MAX_CHAT_ID = 64
MAX_MEMBER_ID = 200
MAX_MEMBER_VERSION = 64
_GROUP_CHANGES: dict[str, ChangeType] = {
    "create": "create",
    "update": "update",
    "dismiss": "dismiss",
}

#: UpdateDetail → (event type, the scene field the callback carries, its name in the event).
_MEMBER_CHANGES = {
    "add_member": ("group.joined", "JoinScene", "join_scene"),
    "del_member": ("group.left", "QuitScene", "quit_scene"),
}


def _external_contact(callback: Callback) -> Translation:
    handler = _CONTACT_CHANGES.get(callback.get("ChangeType") or "")
    return handler(callback) if handler else _ignore(callback, "a contact change SMR ignores")


def _external_chat(callback: Callback) -> Translation:
    translation = _chat_events(callback)
    group = _group_change(callback)
    return translation if group is None else replace(translation, group=group)


def _chat_events(callback: Callback) -> Translation:
    change = callback.get("ChangeType")
    if change in ("create", "dismiss"):
        # Events belong to a contact, and a group is not one: no event, the group is stored.
        return _ignore(callback, f"group {change}: no contact to attach an event to")
    member_change = _MEMBER_CHANGES.get(callback.get("UpdateDetail") or "")
    if change != "update" or member_change is None:
        return _ignore(callback, "a group change SMR ignores")
    members = callback.members()
    if not members:
        return _ignore(callback, "no MemChangeList: the members are known only to groupchat/get")
    type_, scene_tag, scene = member_change
    data: dict[str, Any] = {"chat_id": callback.require("ChatId")}
    if (value := _number(callback.get(scene_tag))) is not None:
        data[scene] = value
    events = tuple(_event(callback, type_, {"wecom_userid": m}, dict(data), m) for m in members)
    return Translation(kind=callback.kind, events=events)


def _group_change(callback: Callback) -> GroupChange | None:
    """What the callback says of the group; None for a change type WeCom does not document
    or a chat id no group could have."""
    change = _GROUP_CHANGES.get(callback.get("ChangeType") or "")
    chat_id = callback.require("ChatId")
    if change is None or len(chat_id) > MAX_CHAT_ID:
        return None
    return GroupChange(
        chat_id=chat_id,
        change=change,
        at=callback.occurred_at(),
        detail=callback.get("UpdateDetail"),
        members=tuple(m for m in callback.members() if len(m) <= MAX_MEMBER_ID),
        last_version=_version(callback.get("LastMemVer")),
        version=_version(callback.get("CurMemVer")),
        join_scene=_number(callback.get("JoinScene")),
    )


def _version(value: str | None) -> str | None:
    return value if value and len(value) <= MAX_MEMBER_VERSION else None


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 10 else None


def _kf(callback: Callback) -> Translation:
    pull = KfPull(open_kfid=callback.require("OpenKfId"), token=callback.require("Token"))
    return Translation(kind=callback.kind, kf_pull=pull)


_HANDLERS: dict[str, Callable[[Callback], Translation]] = {
    "change_external_contact": _external_contact,
    "change_external_chat": _external_chat,
    "kf_msg_or_event": _kf,
}


#: Events whose customer WeCom describes on request (externalcontact/get).
DESCRIBED = frozenset({"contact.added", "contact.edited"})


def with_profile(event: EventIn, profile: ContactProfile) -> EventIn:
    """``event`` with the customer's WeCom name, attributes and remark mobile (a phone that does
    not read as one is left out)."""
    contact = event.contact.model_dump(exclude_none=True)
    contact["attributes"] = {**contact.get("attributes", {}), **profile.attributes}
    if profile.name:
        contact["name"] = profile.name[:200]
    if profile.phone and "phone" not in contact:
        contact["phone"] = profile.phone
    try:
        ref = ContactRef.model_validate(contact)
    except ValidationError:
        contact.pop("phone", None)
        ref = ContactRef.model_validate(contact)
    return event.model_copy(update={"contact": ref})


def with_group(event: EventIn, group: dict[str, Any]) -> EventIn:
    """A group event with the stored group as ``data.group`` (``event.group``)."""
    return event.model_copy(update={"data": {**event.data, "group": group}})
