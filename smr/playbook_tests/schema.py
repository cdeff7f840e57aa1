"""What a playbook test file holds: cases, each a customer, the events that happen to them at
given moments, and what the playbooks must (or must not) do.

```yaml
contact: {phone: "13800000000", name: 小美, wecom_userid: wmAlice}   # every case's customer
cases:
  - name: 买两瓶，50 天后提醒回购
    events:
      - {type: order.paid, data: {order_id: A1, total: 198, items: [{sku: FACE-WASH, quantity: 2}]}}
    expect:
      - {at: 50d, send: {playbook: repurchase-reminder, text_contains: 回购}}
      - {not_sent: win-back}
```
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, model_validator

from smr.importing import ImportedContact
from smr.playbooks.fields import EVENT_TYPE_PATTERN
from smr.playbooks.strict import StrictModel
from smr.playbooks.timespec import parse_duration
from smr.simulate import DEFAULT_HORIZON, Horizon

#: Cases a file may hold, events and expectations a case may hold.
MAX_CASES = 100
MAX_EVENTS = 100
MAX_EXPECTATIONS = 100
#: When a case starts unless it says (local time, the policies' timezone): a Monday morning.
DEFAULT_START = "2026-11-23 10:00"

_MOMENT = re.compile(r"(?P<offset>\d+[smhd])(?:\s+(?P<clock>\d{1,2}:\d{2}))?")
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


def _moment(value: Any) -> str:
    text = str(value).strip()
    found = _MOMENT.fullmatch(text)
    if found is None:
        raise ValueError(
            f"'{text}' is not a moment: write 3d, 2h, 30m, or a day and a time: 3d 10:00"
        )
    parse_duration(found["offset"])  # within the bound
    if found["clock"]:
        hour, minute = (int(part) for part in found["clock"].split(":"))
        if hour > 23 or minute > 59:
            raise ValueError(f"'{found['clock']}' is not a time of day")
        if not found["offset"].endswith("d"):
            raise ValueError("a time of day goes after a number of days: 3d 10:00")
    return text


def _local_time(value: str) -> str:
    if not _LOCAL.fullmatch(value):
        raise ValueError(f"'{value}' is not a local time: write 2026-11-23 10:00")
    datetime.fromisoformat(value)  # a real date
    return value


#: When, from the case's start: ``3d`` (that day; for an expectation, any time that day),
#: ``3d 10:00`` (that day at 10:00), ``2h`` / ``30m`` / ``45s`` (exactly then).
Moment = Annotated[str, BeforeValidator(lambda v: str(v)), AfterValidator(_moment)]
LocalTime = Annotated[str, AfterValidator(_local_time)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class CaseEvent(StrictModel):
    """Something that happens to the customer: an event as ``POST /v1/events`` takes it,
    without ``id`` (made up), ``occurred_at`` (the case's start plus ``at``) or ``contact``
    (the case's customer, unless given)."""

    at: Moment = "0s"
    type: Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN, max_length=100)]
    data: dict[str, Any] = Field(default_factory=dict)
    contact: dict[str, Any] | None = None


class SentMessage(StrictModel):
    """A message some playbook made (a send or a note to staff)."""

    playbook: str | None = None
    channel: str | None = None
    text_contains: Text | list[Text] | None = None
    #: ``sent`` unless given: ``skipped``, ``failed``, ``cancelled``, ``scheduled``, …
    status: str = "sent"
    #: How its reason starts: ``opted_out``, ``frequency_capped``, ``quiet hours``, …
    reason: str | None = None


class Members(StrictModel):
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


#: What an expectation may say, one each.
KINDS = ("send", "not_sent", "converted", "tags", "segments", "attributes")


class Expectation(StrictModel):
    """One thing the case must show; exactly one of ``send``, ``not_sent``, ``tags``,
    ``segments``, ``attributes``; ``at`` only with ``send``."""

    at: Moment | None = None
    send: SentMessage | None = None
    #: A playbook that must send nothing.
    not_sent: str | None = None
    #: A playbook one of whose runs reached its goal.
    converted: str | None = None
    tags: Members | None = None
    segments: Members | None = None
    attributes: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Expectation:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "say one thing: send, not_sent, converted, tags, segments or attributes"
                + (f" (got {', '.join(kinds)})" if kinds else "")
            )
        if self.at is not None and self.send is None and self.converted is None:
            raise ValueError(
                "at goes with send or converted (tags, segments and attributes are read at the end)"
            )
        return self


class Case(StrictModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    #: The customer (an import line: identities, name, tags, attributes, historical orders);
    #: the file's ``contact`` unless given.
    contact: ImportedContact | None = None
    start: LocalTime = DEFAULT_START
    horizon: Horizon = DEFAULT_HORIZON
    events: Annotated[list[CaseEvent], Field(min_length=1, max_length=MAX_EVENTS)]
    expect: Annotated[list[Expectation], Field(min_length=1, max_length=MAX_EXPECTATIONS)]


class PlaybookTests(StrictModel):
    contact: ImportedContact | None = None
    cases: Annotated[list[Case], Field(min_length=1, max_length=MAX_CASES)]

    @model_validator(mode="after")
    def _each_case_has_a_customer(self) -> PlaybookTests:
        if self.contact is None and any(case.contact is None for case in self.cases):
            raise ValueError("give the customer: contact, for the file or for each case")
        return self


def offset(moment: str) -> tuple[timedelta, tuple[int, int] | None, bool]:
    """A moment's offset from the start, its time of day (if given), and whether it names a
    whole day (``3d``: any time that day)."""
    found = _MOMENT.fullmatch(moment.strip())
    assert found is not None  # validated
    duration = parse_duration(found["offset"])
    if found["clock"]:
        hour, minute = (int(part) for part in found["clock"].split(":"))
        return duration, (hour, minute), False
    return duration, None, found["offset"].endswith("d")
