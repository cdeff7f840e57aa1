"""Validated shapes of what reaches SMR from outside (events), shared by the API and webhooks."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from smr import phones
from smr.models import OccurredAtSource
from smr.playbooks.fields import EVENT_TYPE_PATTERN

IDENTITY_KINDS = ("phone", "wecom_userid", "shop_customer_id")
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
#: The validation context key of the time an event was received (see ``EventIn``).
RECEIVED_AT = "received_at"

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
        found = {kind: getattr(self, kind) for kind in IDENTITY_KINDS}
        return {kind: value for kind, value in found.items() if value}


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


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Key
    type: Annotated[str, StringConstraints(pattern=EVENT_TYPE_PATTERN, max_length=100)]
    occurred_at: AwareTime
    contact: ContactRef
    data: dict[str, Any] = Field(default_factory=dict)
    _order: OrderData | None = PrivateAttr(default=None)
    _received: bool = PrivateAttr(default=False)

    @model_validator(mode="wrap")
    @classmethod
    def _received_when_not_sent(
        cls, data: Any, handler: ModelWrapValidatorHandler[EventIn], info: ValidationInfo
    ) -> EventIn:
        """Without ``occurred_at`` (or with null), the time received, when the caller gives it
        as ``context={RECEIVED_AT: …}`` (as Segment and Customer.io do)."""
        received = info.context.get(RECEIVED_AT) if info.context else None
        if received is None or not isinstance(data, dict) or data.get("occurred_at") is not None:
            return handler(data)
        event = handler({**data, "occurred_at": received})
        event._received = True
        return event

    @property
    def occurred_at_source(self) -> OccurredAtSource:
        return "received" if self._received else "sent"

    def order(self) -> OrderData | None:
        """The order fields of an order event (validated by :func:`parse_events`), read once."""
        if self.type not in ORDER_TYPES:
            return None
        if self._order is None:
            self._order = OrderData.model_validate(self.data)
        return self._order


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_BATCH)]


def _order_errors(event: EventIn, prefix: tuple[str | int, ...]) -> list[dict[str, Any]]:
    if event.type not in ORDER_TYPES:
        return []
    try:
        event.order()
    except ValidationError as exc:
        return [{**e, "loc": (*prefix, "data", *e["loc"])} for e in exc.errors()]
    return []


def parse_events(payload: Any, *, received_at: datetime | None = None) -> list[EventIn]:
    """One event or ``{"events": [...]}`` → validated events; an event without ``occurred_at``
    occurred at ``received_at`` when given.

    Raises pydantic's ValidationError whose locations are paths into the posted body.
    """
    context = None if received_at is None else {RECEIVED_AT: received_at}
    if isinstance(payload, dict) and "events" in payload:
        events = EventBatch.model_validate(payload, context=context).events
        prefixes: list[tuple[str | int, ...]] = [("events", i) for i in range(len(events))]
    else:
        events = [EventIn.model_validate(payload, context=context)]
        prefixes = [()]
    errors = [e for ev, p in zip(events, prefixes, strict=True) for e in _order_errors(ev, p)]
    if errors:
        raise ValidationError.from_exception_data("EventIn", errors)  # type: ignore[arg-type]
    return events
