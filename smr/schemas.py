"""Validated shapes of what reaches SMR from outside (events), shared by the API and webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from smr import phones
from smr.playbooks.fields import EVENT_TYPE_PATTERN
from smr.subjects import IDENTITY_KINDS

MAX_BATCH = 1000
#: The bounds of what an event may carry (the README's "Bounds" table). Times: so that any wait
#: measured from them (at most ``smr.playbooks.timespec.MAX_DURATION``) stays representable.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: An amount (order total, line price): ``contacts.total_spent`` holds 10^10 of the largest.
MAX_AMOUNT = Decimal(100_000_000)
MAX_QUANTITY = 10_000
MAX_ITEMS = 1000
MAX_ATTRIBUTES = 100
#: Where an error lies in a posted body: () for a single event, ("events", 3) in a batch.
Location = tuple[str | int, ...]

Key = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


def aware(value: datetime) -> datetime:
    """``value`` in UTC; ValueError unless it carries an offset and lies in [EARLIEST, LATEST)."""
    if value.tzinfo is None:
        raise ValueError("must carry a timezone offset (RFC 3339), e.g. 2026-11-23T10:00:00+08:00")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("must lie in 1970-01-01T00:00:00Z ≤ time < 2100-01-01T00:00:00Z")
    return utc


AwareTime = Annotated[datetime, AfterValidator(aware)]
Amount = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT)]
Quantity = Annotated[int, Field(ge=0, le=MAX_QUANTITY)]


def _few_attributes(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
    return value


def normalise_phone(phone: str) -> str:
    """One form per number, so every source finds the same contact (see ``smr.phones``): a
    mainland mobile as its 11 digits (``+86 138-0013-8000`` → ``13800138000``), any other
    number E.164 (``021-12345678`` → ``+862112345678``); what is not a valid number is refused
    in plain words."""
    try:
        return phones.normalise(phone)
    except phones.NotAPhone as exc:
        raise PydanticCustomError("phone", str(exc)) from None


Phone = Annotated[str, AfterValidator(normalise_phone)]


class ContactRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Key | None = None
    phone: Phone | None = None
    wecom_userid: Key | None = None
    shop_customer_id: Key | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    attributes: Annotated[dict[str, Any], AfterValidator(_few_attributes)] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _has_identity(self) -> ContactRef:
        if not (self.id or self.identities()):
            raise ValueError("needs at least one of id, phone, wecom_userid, shop_customer_id")
        return self

    def identities(self) -> dict[str, str]:
        return {kind: value for kind in IDENTITY_KINDS if (value := getattr(self, kind))}


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    sku: Key
    name: str | None = None
    quantity: Quantity = 1
    price: Amount | None = None


class OrderData(BaseModel):
    """What order events must carry; other fields pass through untouched."""

    model_config = ConfigDict(extra="allow")

    order_id: Key
    total: Amount
    currency: Annotated[str, StringConstraints(min_length=3, max_length=3)] = "CNY"
    items: Annotated[list[OrderItem], Field(max_length=MAX_ITEMS)] = Field(default_factory=list)


ORDER_TYPES = frozenset({"order.paid", "order.refunded"})
CONSENTED = "contact.consented"


class ConsentData(BaseModel):
    """What a ``contact.consented`` event must carry: the channel the customer agreed to receive
    marketing on, where they agreed, and (to show it later) the words they agreed to."""

    model_config = ConfigDict(extra="allow")

    channel: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    wording: Annotated[str, StringConstraints(max_length=2000)] | None = None
    campaign: Annotated[str, StringConstraints(max_length=200)] | None = None


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Key
    type: Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN, max_length=100)]
    occurred_at: AwareTime
    contact: ContactRef
    data: dict[str, Any] = Field(default_factory=dict)


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_BATCH)]


@dataclass(frozen=True)
class Posted:
    """Events as posted, validated; ``received``: the positions of those posted without
    ``occurred_at`` (or with null), which occurred when they were received (as Segment and
    Customer.io take them)."""

    events: list[EventIn]
    received: frozenset[int] = frozenset()


#: The event types whose ``data`` has fields SMR reads, and their models (each checked in one
#: call per batch).
_TYPED_DATA: tuple[tuple[frozenset[str], TypeAdapter[Any]], ...] = (
    (ORDER_TYPES, TypeAdapter(list[OrderData])),
    (frozenset({CONSENTED}), TypeAdapter(list[ConsentData])),
)


def _data_errors(events: list[EventIn], prefixes: list[Location]) -> list[dict[str, Any]]:
    """The fields SMR reads of the events' data (orders, consents), validated."""
    errors: list[dict[str, Any]] = []
    for types, adapter in _TYPED_DATA:
        where = [i for i, event in enumerate(events) if event.type in types]
        if not where:
            continue
        try:
            adapter.validate_python([events[i].data for i in where])
        except ValidationError as exc:
            errors += [_under(e, prefixes[where[int(e["loc"][0])]]) for e in exc.errors()]
    return errors


def _under(error: ErrorDetails, prefix: Location) -> dict[str, Any]:
    """An error of an event's data (``loc``: its position, then the field) at its place in
    the posted body."""
    return {**error, "loc": (*prefix, "data", *error["loc"][1:])}


def parse_events(payload: Any) -> list[EventIn]:
    """One event or ``{"events": [...]}`` → validated events, each with its ``occurred_at``.

    Raises pydantic's ValidationError whose locations are paths into the posted body.
    """
    return _parse(payload).events


def parse_posted(payload: Any, *, received_at: datetime) -> Posted:
    """``parse_events`` for what callers post themselves: an event without ``occurred_at``
    occurred at ``received_at``."""
    return _parse(payload, received_at)


def _parse(payload: Any, received_at: datetime | None = None) -> Posted:
    batch = isinstance(payload, dict) and "events" in payload
    received: set[int] = set()
    if received_at is not None:
        payload = _dated(payload, received_at, received, batch=batch)
    if batch:
        events = EventBatch.model_validate(payload).events
        prefixes: list[Location] = [("events", i) for i in range(len(events))]
    else:
        events, prefixes = [EventIn.model_validate(payload)], [()]
    if errors := _data_errors(events, prefixes):
        raise ValidationError.from_exception_data("EventIn", errors)  # type: ignore[arg-type]
    return Posted(events, frozenset(received))


def _dated(payload: Any, received_at: datetime, received: set[int], *, batch: bool) -> Any:
    """``payload`` with ``received_at`` as the ``occurred_at`` of each event without one (their
    positions added to ``received``); what is not an event is left for validation to refuse."""

    def dated(position: int, event: Any) -> Any:
        if not isinstance(event, dict) or event.get("occurred_at") is not None:
            return event
        received.add(position)
        return {**event, "occurred_at": received_at}

    if not batch:
        return dated(0, payload)
    events = payload["events"]
    if not isinstance(events, list):
        return payload
    return {**payload, "events": [dated(i, event) for i, event in enumerate(events)]}
