"""Annotated field types shared by the playbook and policies models.

Templates and expressions are compiled while validating, so a bad one is reported at the exact
field; the compiled objects are cached and reused when the program is built.
"""

from collections.abc import Callable
from datetime import time, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from smr.playbooks import timespec
from smr.playbooks.expressions import TemplateCompileError, compile_expression, compile_template

#: The event types SMR itself produces; any other well-formed type is a custom one.
CANONICAL_EVENT_TYPES = (
    "order.paid",
    "order.refunded",
    "chat.message",
    "contact.added",
    "contact.deleted",
    "group.joined",
    "group.left",
    "contact.unsubscribed",
    "contact.consented",
    "contact.edited",
    "sms.replied",
    "moment.liked",
    "moment.commented",
    "contact.transfer_failed",
    "segment.entered",
    "segment.exited",
)
EVENT_TYPE_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"
PLAYBOOK_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
#: How playbooks name a segment (``audience: {segment: 钻粉}``): any text without spaces,
#: quotes, slashes or backslashes (it goes in a URL and in an expression), up to 64 characters.
SEGMENT_ID_PATTERN = r"^[^\s'\"/\\]{1,64}$"
#: A WeCom staff userid: '|' separates userids in message/send's touser, so none holds one.
STAFF_USERID_PATTERN = r"^[^|\s]+$"
STAFF_TAG_PATTERN = r"^[0-9]{1,64}$"
MINI_APPID_PATTERN = r"^wx[0-9A-Za-z]{16}$"


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return timespec.parse_duration(value)
    raise ValueError(f"bad duration '{value}': use a number followed by s, m, h or d")


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        return timespec.parse_clock(value)
    raise ValueError(f"bad time '{value}': use HH:MM, e.g. 09:30")


def _check_template(source: str) -> str:
    return _compiles(source, kind="bad template", compile=compile_template)


def _check_expression(source: str) -> str:
    return _compiles(source, kind="bad expression", compile=compile_expression)


def _compiles(source: str, *, kind: str, compile: Callable[[str], object]) -> str:
    try:
        compile(source)
    except TemplateCompileError as exc:
        raise _compile_error(kind, exc.message, lineno=exc.lineno) from exc
    except RecursionError as exc:  # Jinja's parser recurses once per bracket or operator
        raise _compile_error(kind, "nested too deeply", lineno=1) from exc
    return source


def _compile_error(kind: str, message: str, *, lineno: int) -> PydanticCustomError:
    # The template's own line travels in ctx so the loader can point inside block scalars.
    return PydanticCustomError(
        "template_error", f"{kind}: {{message}}", {"message": message, "lineno": lineno}
    )


def _text(value: Any) -> Any:
    # Ops write `points: 5` as often as `points: "5"`; both mean the same template.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _known_channel(channel: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("channels")
    if known is not None and channel not in known:
        raise PydanticCustomError(
            "unknown_channel",
            "unknown channel '{channel}'",
            {"channel": channel, "known": tuple(sorted(known))},
        )
    return channel


def _text_schema(description: str, *examples: str, **extra: Any) -> WithJsonSchema:
    # What an editor shows and checks; the validators above remain the authority.
    schema: dict[str, Any] = {"type": "string", "description": description, **extra}
    return WithJsonSchema({**schema, "examples": list(examples)} if examples else schema)


Duration = Annotated[
    timedelta,
    PlainValidator(_duration),
    PlainSerializer(timespec.format_duration, return_type=str),
    _text_schema(
        "A whole number and a unit: s, m, h or d. 时长：数字加单位。",
        "30m",
        "2h",
        "7d",
        pattern=r"^\s*[0-9]+[smhd]\s*$",
    ),
]
ClockTime = Annotated[
    time,
    PlainValidator(_clock),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    _text_schema(
        "A 24-hour clock time, HH:MM. 时间（24 小时制）。",
        "09:30",
        "21:00",
        pattern=r"^\s*([01][0-9]|2[0-3]):[0-5][0-9]\s*$",
    ),
]
TemplateText = Annotated[
    str,
    BeforeValidator(_text),
    AfterValidator(_check_template),
    _text_schema(
        "Text; {{ … }} inserts a value (Jinja2). 模板文本，{{ … }} 插入变量。",
        "{{ contact.name }}，您好",
        type=["string", "number"],
    ),
]
ExpressionText = Annotated[
    str,
    AfterValidator(_check_expression),
    _text_schema(
        "A condition, written without {{ }} (Jinja2). 条件表达式，不写 {{ }}。",
        "contact.stats.orders > 0",
        "'FACE-WASH' in event.skus",
    ),
]
EventType = Annotated[
    str,
    Field(
        pattern=EVENT_TYPE_PATTERN,
        description="An event type: lowercase words joined by dots. Built in: "
        + ", ".join(CANONICAL_EVENT_TYPES)
        + "; other types are custom. 事件类型。",
        examples=list(CANONICAL_EVENT_TYPES),
    ),
]
PlaybookId = Annotated[
    str,
    Field(
        pattern=PLAYBOOK_ID_PATTERN,
        description="1-64 lowercase letters, digits or '-'. 小写字母、数字、连字符。",
        examples=["repurchase-face-wash"],
    ),
]
CronText = Annotated[
    str,
    AfterValidator(timespec.validate_cron),
    _text_schema(
        "Cron: minute hour day-of-month month day-of-week (or @daily, @weekly, …),"
        " in the policies' timezone. 定时（分 时 日 月 周）。",
        "0 10 * * 5",
        "30 9 1 * *",
        "0 10 * * MON-FRI",
        "@daily",
        pattern=r"^\s*(@[A-Za-z]+|\S+(\s+\S+){4})\s*$",
    ),
]
ChannelName = Annotated[
    str,
    AfterValidator(_known_channel),
    _text_schema("One of the channels configured here. 已配置的渠道。", "wecom", "sms"),
]
NonEmptyText = Annotated[str, Field(min_length=1)]


SegmentId = Annotated[str, StringConstraints(pattern=SEGMENT_ID_PATTERN)]
