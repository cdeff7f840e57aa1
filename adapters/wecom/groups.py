"""客户群: groupchat/list and groupchat/get, the source of ``smr.services.group_sync``.

- ``externalcontact/groupchat/list`` pages with a cursor (``limit`` 1000, ``status_filter`` 0:
  every group whatever its owner's status) and answers ``{chat_id, status}`` per group, the
  status being the owner's (0 跟进人正常, 1 跟进人离职, 2 离职继承中, 3 离职继承完成);
- ``externalcontact/groupchat/get`` (``need_name`` 1) answers the group: name, owner,
  create_time, notice, member_list (type 1 企业成员 / 2 外部联系人, join_time, join_scene,
  invitor.userid, group_nickname, name) and member_version.

Both take the 客户联系 secret. The source has its own client (one connection pool); WeCom
answers gettoken with the same token while it is valid, so it shares the channels' token.
Text a database cannot hold (a NUL in a group name) is replaced, not refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from adapters.wecom.client import WeComClient
from smr.channels import PermanentSendError
from smr.config import WeComSettings
from smr.edge import storable
from smr.models import GroupMemberType, GroupOwnerStatus
from smr.repositories.groups import FetchedGroup, FetchedMember
from smr.services.groups import ListedGroup

LIST = "externalcontact/groupchat/list"
GET = "externalcontact/groupchat/get"
PAGE = 1000
OWNER_STATUSES = {
    0: GroupOwnerStatus.EMPLOYED,
    1: GroupOwnerStatus.RESIGNED,
    2: GroupOwnerStatus.TRANSFERRING,
    3: GroupOwnerStatus.TRANSFERRED,
}
MEMBER_TYPES = {1: GroupMemberType.STAFF, 2: GroupMemberType.CUSTOMER}


class WeComGroups:
    """The corp's customer groups, as WeCom lists and describes them."""

    name = "wecom.groups"

    def __init__(self, client: WeComClient, secret: SecretStr) -> None:
        self._client = client
        self._secret = secret

    def __repr__(self) -> str:
        return f"WeComGroups({self._client!r})"

    async def pages(self) -> AsyncIterator[list[ListedGroup]]:
        """Every group, one groupchat/list page at a time. Raises SendError."""
        cursor = ""
        while True:
            body: dict[str, Any] = {"status_filter": 0, "limit": PAGE}
            if cursor:
                body["cursor"] = cursor
            answer = await self._client.call(LIST, self._secret, body)
            yield [g for item in answer.get("group_chat_list") or [] if (g := listed(item))]
            cursor = str(answer.get("next_cursor") or "")
            if not cursor:
                return

    async def fetch(self, chat_id: str) -> FetchedGroup:
        """The group with its members. Raises SendError."""
        answer = await self._client.call(GET, self._secret, {"chat_id": chat_id, "need_name": 1})
        chat = answer.get("group_chat")
        if not isinstance(chat, dict) or chat.get("chat_id") != chat_id:
            raise PermanentSendError(f"{GET}: the answer does not describe group {chat_id}")
        return read_group(chat)

    async def aclose(self) -> None:
        await self._client.aclose()


def build_group_source(settings: WeComSettings) -> WeComGroups | None:
    """The group source when a corp id and the 客户联系 secret are configured, else None."""
    secret = settings.secret_for("contact")
    if not settings.corp_id or secret is None:
        return None
    client = WeComClient(
        corp_id=settings.corp_id, base_url=settings.base_url, timeout=settings.timeout_seconds
    )
    return WeComGroups(client, secret)


def listed(item: object) -> ListedGroup | None:
    """One group_chat_list entry; None for one without a usable chat_id."""
    if not isinstance(item, dict):
        return None
    chat_id = item.get("chat_id")
    if not isinstance(chat_id, str) or not chat_id or len(chat_id) > 64:
        return None
    status = OWNER_STATUSES.get(_int(item.get("status")) or 0, GroupOwnerStatus.EMPLOYED)
    version = item.get("member_version")
    return ListedGroup(storable(chat_id), status, version if isinstance(version, str) else None)


def read_group(chat: Mapping[str, Any]) -> FetchedGroup:
    chat = storable(dict(chat))
    members = [m for item in chat.get("member_list") or [] if (m := _member(item))]
    return FetchedGroup(
        chat_id=str(chat["chat_id"]),
        name=_text(chat.get("name")),
        owner=_text(chat.get("owner"), limit=200),
        notice=_text(chat.get("notice")),
        created_at=_time(chat.get("create_time")),
        member_version=_text(chat.get("member_version"), limit=64),
        members=tuple({m.userid: m for m in members}.values()),
    )


def _member(item: object) -> FetchedMember | None:
    if not isinstance(item, dict):
        return None
    userid = _text(item.get("userid"), limit=200)
    if userid is None:
        return None
    invitor = item.get("invitor")
    return FetchedMember(
        userid=userid,
        type=MEMBER_TYPES.get(_int(item.get("type")) or 0, GroupMemberType.CUSTOMER),
        name=_text(item.get("name")),
        join_time=_time(item.get("join_time")),
        join_scene=_int(item.get("join_scene")),
        invitor=_text(invitor.get("userid"), limit=200) if isinstance(invitor, dict) else None,
        group_nickname=_text(item.get("group_nickname")),
    )


def _text(value: object, *, limit: int | None = None) -> str | None:
    """``value`` as text; None when empty, or longer than ``limit`` (a column's size)."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if text and (limit is None or len(text) <= limit) else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 12:
        return int(value)
    return None


def _time(value: object) -> datetime | None:
    seconds = _int(value)
    if seconds is None or not 0 < seconds < 4_102_444_800:  # before 2100
        return None
    return datetime.fromtimestamp(seconds, UTC)
