"""Annotated field types shared by the playbook and policies models.

Templates and expressions are compiled while validating, so a bad one is reported at the exact
field; the compiled objects are cached and reused when the program is built.
"""

from datetime import time, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from smr.playbooks import timespec
from smr.playbooks.expressions import TemplateCompileError, compile_expression, compile_template


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
    try:
        compile_template(source)
    except TemplateCompileError as exc:
        raise _compile_error("bad template", exc) from exc
    return source


def _check_expression(source: str) -> str:
    try:
        compile_expression(source)
    except TemplateCompileError as exc:
        raise _compile_error("bad expression", exc) from exc
    return source


def _compile_error(kind: str, exc: TemplateCompileError) -> PydanticCustomError:
    # The template's own line travels in ctx so the loader can point inside block scalars.
    return PydanticCustomError(
        "template_error", f"{kind}: {{message}}", {"message": exc.message, "lineno": exc.lineno}
    )


def _text(value: Any) -> Any:
    # Ops write `points: 5` as often as `points: "5"`; both mean the same template.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _known_channel(channel: str, info: ValidationInfo) -> str:
    known = (info.context or {}).get("channels")
    if known is not None and channel not in known:
        listed = ", ".join(sorted(known))
        raise PydanticCustomError(
            "unknown_channel",
            "unknown channel '{channel}' (known: {known})",
            {"channel": channel, "known": listed},
        )
    return channel


Duration = Annotated[
    timedelta, PlainValidator(_duration), PlainSerializer(timespec.format_duration, return_type=str)
]
ClockTime = Annotated[
    time, PlainValidator(_clock), PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str)
]
TemplateText = Annotated[str, BeforeValidator(_text), AfterValidator(_check_template)]
ExpressionText = Annotated[str, AfterValidator(_check_expression)]
EventType = Annotated[str, Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")]
PlaybookId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
CronText = Annotated[str, AfterValidator(timespec.validate_cron)]
ChannelName = Annotated[str, AfterValidator(_known_channel)]
NonEmptyText = Annotated[str, Field(min_length=1)]
