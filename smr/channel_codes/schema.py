"""The channel codes file (渠道活码) as strict pydantic models.

A code is either a person code (WeCom 「联系我」, externalcontact/add_contact_way): ``staff``
userids and/or ``departments`` take the customers who scan it, or a group code (「加入群聊」,
externalcontact/groupchat/add_join_way): ``group.chat_ids`` are the customer groups it fills.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

#: WeCom's ``state``: at most 30 characters (the reference, §2.7); SMR keeps it to letters,
#: digits, ``_`` and ``-`` so it reads the same in a URL, a tag and a report.
STATE_PATTERN = r"^[A-Za-z0-9_-]{1,30}$"
_STATE = re.compile(STATE_PATTERN)


def _state(value: str) -> str:
    if not _STATE.match(value):
        raise ValueError("use 1-30 letters, digits, '_' or '-' (WeCom's state), e.g. theatre-desk")
    return value


State = Annotated[str, AfterValidator(_state)]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]
ChatId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
#: add_contact_way ``remark``: at most 30 characters.
Remark = Annotated[str, StringConstraints(min_length=1, max_length=30)]
#: add_join_way ``room_base_name``: at most 40 UTF-8 characters (SDK copies of doc 92229).
RoomBaseName = Annotated[str, StringConstraints(min_length=1, max_length=40)]
#: How many userids / departments one code may list. UNCONFIRMED: no stored copy of doc 92228
#: states a maximum; 100 is a bound of SMR's own, far above any real round-robin.
MAX_MEMBERS = 100
#: add_join_way ``chat_id_list``: 1 to 5 groups (SDK copies of doc 92229).
MAX_CHATS = 5


class CodeKind(StrEnum):
    PERSON = "person"
    GROUP = "group"


class Strict(BaseModel):
    """Unknown keys are errors, and nothing is coerced: ``skip_verify: "yes"`` is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class GroupSpec(Strict):
    chat_ids: list[ChatId] = Field(min_length=1, max_length=MAX_CHATS)
    #: When a group is full, WeCom creates the next one (named room_base_name + room_base_id,
    #: counting up) and the same QR code leads there: the code never fills up.
    auto_create_room: bool = True
    room_base_name: RoomBaseName | None = None
    room_base_id: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _naming_needs_auto_create(self) -> GroupSpec:
        named = {"room_base_name", "room_base_id"} & self.model_fields_set
        if named and not self.auto_create_room:
            verb = "need" if len(named) > 1 else "needs"
            raise ValueError(f"{' and '.join(sorted(named))} {verb} auto_create_room: true")
        return self


class ChannelCodeSpec(Strict):
    state: State
    name: Name
    staff: list[UserId] = Field(default_factory=list, max_length=MAX_MEMBERS)
    departments: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, max_length=MAX_MEMBERS
    )
    group: GroupSpec | None = None
    skip_verify: bool = True
    remark: Remark | None = None
    welcome: bool = True

    @model_validator(mode="after")
    def _person_or_group(self) -> ChannelCodeSpec:
        person = bool(self.staff or self.departments)
        if self.group is None and not person:
            raise ValueError("give staff (userids) or departments for a person code, or group")
        if self.group is not None:
            extra = {"staff", "departments", "skip_verify", "welcome"} & self.model_fields_set
            if extra:
                raise ValueError(f"a group code takes no {', '.join(sorted(extra))}")
        if len(set(self.staff)) != len(self.staff):
            raise ValueError("staff lists a userid twice")
        return self

    @property
    def kind(self) -> CodeKind:
        return CodeKind.GROUP if self.group is not None else CodeKind.PERSON

    @property
    def wecom_type(self) -> int | None:
        """add_contact_way ``type``: 1 单人 (one userid, no department), 2 多人; None: group."""
        if self.group is not None:
            return None
        return 1 if len(self.staff) == 1 and not self.departments else 2

    @property
    def wecom_remark(self) -> str:
        return self.remark or self.name[:30]

    def wecom_fields(self) -> dict[str, Any]:
        """What WeCom is told about this code: a change to any of these is an update."""
        fields: dict[str, Any] = {"kind": self.kind.value, "remark": self.wecom_remark}
        if self.group is not None:
            return fields | self.group.model_dump()
        return fields | {
            "type": self.wecom_type,
            "staff": self.staff,
            "departments": self.departments,
            "skip_verify": self.skip_verify,
        }

    @property
    def spec_hash(self) -> str:
        text = json.dumps(self.wecom_fields(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class ChannelCodesFile(Strict):
    codes: list[ChannelCodeSpec] = Field(default_factory=list)
