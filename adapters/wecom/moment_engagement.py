"""客户朋友圈 records: the source of ``smr.services.moments`` (likes and comments as events).

- ``externalcontact/get_moment_list`` (POST): the moments made between ``start_time``
  and ``end_time`` (unix seconds, a span of at most 30 days), ``filter_type`` 0 (made by the
  corp, including through add_moment_task), paged with ``cursor``, ``limit`` at most 20;
- ``externalcontact/get_moment_task`` (POST, ``moment_id``, ``limit`` ≤ 1000): per staff
  member of a corp moment, ``publish_status`` 0 未发表 / 1 已发表;
- ``externalcontact/get_moment_comments`` (POST, ``moment_id``, ``userid``): ``like_list`` and
  ``comment_list`` of that staff member's copy, each entry ``{external_userid | userid,
  create_time}``: a customer's or a staff member's, never both; no comment text.

All take the 客户联系 secret. Entries without a usable id or time are dropped, not refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from adapters.wecom.client import WeComClient
from smr.config import WeComSettings
from smr.models import MomentEngagementKind
from smr.services.moments import Reaction

LIST = "externalcontact/get_moment_list"
TASK = "externalcontact/get_moment_task"
COMMENTS = "externalcontact/get_moment_comments"
LIST_PAGE = 20
TASK_PAGE = 1000
PUBLISHED = 1
MAX_ID = 128
MAX_SPAN_DAYS = 30


class WeComMomentRecords:
    """The corp's Moments, as WeCom lists them (``smr.services.moments.MomentSource``)."""

    name = "wecom.moment_records"

    def __init__(self, client: WeComClient, secret: SecretStr) -> None:
        self._client = client
        self._secret = secret

    def __repr__(self) -> str:
        return f"WeComMomentRecords({self._client!r})"

    async def moments(self, *, start: datetime, end: datetime) -> AsyncIterator[list[str]]:
        cursor = ""
        while True:
            body: dict[str, Any] = {
                "start_time": int(start.timestamp()),
                "end_time": int(end.timestamp()),
                "filter_type": 0,
                "limit": LIST_PAGE,
            }
            if cursor:
                body["cursor"] = cursor
            answer = await self._client.call(LIST, self._secret, body)
            listed = [m.get("moment_id") for m in _dicts(answer.get("moment_list"))]
            yield [str(m) for m in listed if _usable(m)]
            cursor = str(answer.get("next_cursor") or "")
            if not cursor:
                return

    async def publishers(self, moment_id: str) -> list[str]:
        return await publishers(self._client, self._secret, moment_id)

    async def reactions(self, moment_id: str, staff: str) -> list[Reaction]:
        body = {"moment_id": moment_id, "userid": staff}
        answer = await self._client.call(COMMENTS, self._secret, body)
        kinds = {
            "like_list": MomentEngagementKind.LIKE,
            "comment_list": MomentEngagementKind.COMMENT,
        }
        return [
            reaction
            for field, kind in kinds.items()
            for item in _dicts(answer.get(field))
            if (reaction := _reaction(kind, item)) is not None
        ]

    async def aclose(self) -> None:
        await self._client.aclose()


async def publishers(client: WeComClient, secret: SecretStr, moment_id: str) -> list[str]:
    """The staff who have published a corp moment (get_moment_task, publish_status 1)."""
    found: list[str] = []
    cursor = ""
    while True:
        body: dict[str, Any] = {"moment_id": moment_id, "limit": TASK_PAGE}
        if cursor:
            body["cursor"] = cursor
        answer = await client.call(TASK, secret, body)
        for task in _dicts(answer.get("task_list")):
            userid = task.get("userid")
            if task.get("publish_status") == PUBLISHED and _usable(userid):
                found.append(str(userid))
        cursor = str(answer.get("next_cursor") or "")
        if not cursor:
            return found


def build_moment_records(settings: WeComSettings) -> WeComMomentRecords | None:
    """The Moments source when a corp id and the 客户联系 secret are configured, else None."""
    secret = settings.secret_for("contact")
    if not settings.corp_id or secret is None:
        return None
    client = WeComClient(
        corp_id=settings.corp_id, base_url=settings.base_url, timeout=settings.timeout_seconds
    )
    return WeComMomentRecords(client, secret)


def _reaction(kind: MomentEngagementKind, item: dict[str, Any]) -> Reaction | None:
    """A customer's entry; None for a staff member's (``userid``) or an unusable one."""
    customer, created = item.get("external_userid"), item.get("create_time")
    if not _usable(customer) or not isinstance(created, int) or created <= 0:
        return None
    return Reaction(kind=kind, external_userid=str(customer), create_time=created)


def _usable(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID and value.isprintable()


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
