"""What every shop webhook source shares: the request it reads, the order notices it makes, and
the two ways it refuses one.

A source is a module with one class that satisfies :class:`WebhookSource`:

- ``verify(request, secret)`` checks the vendor's signature over the raw body and raises
  :class:`SignatureError` (401, nothing stored) when it does not hold;
- ``acknowledgement``: what the vendor wants to read in the 200 answer, if anything;
- ``translate(request)`` reads the body and answers a :class:`Translation`: the orders it
  reports, or why the webhook is acknowledged and ignored; it raises :class:`PayloadError` (422)
  with field paths when the body cannot be read.

Notices carry a ``key`` unique within the source for what happened (an order paid, one refund),
so a vendor's retry, or the same payment reported by two topics, is a duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from smr import edge, phones
from smr.errors import InvalidInput, Unauthorized, field_errors

OrderType = Literal["order.paid", "order.refunded"]
#: For vendors content with any 200 answer: nothing to add to it.
PLAIN_200: Mapping[str, object] = MappingProxyType({})


class SignatureError(Unauthorized):
    """The webhook's signature does not verify."""


class PayloadError(InvalidInput):
    """The webhook body cannot be read."""


#: ``WebhookRequest.parsed`` when the body has not been parsed (None is valid JSON).
UNPARSED: Any = object()


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A webhook as received: headers (names lower-cased), the raw body, and when it arrived."""

    headers: Mapping[str, str]
    body: bytes
    received_at: datetime
    #: The body as JSON, when whoever received it parsed it already (see ``data``).
    parsed: Any = UNPARSED

    def data(self) -> Any:
        """The body as JSON within the edge bounds; PayloadError if it is not. Parsed once: the
        route that received it hands over what it parsed for the edge guard."""
        return read_json(self.body) if self.parsed is UNPARSED else self.parsed

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower())
        return value.strip() if value else None

    def require_header(self, name: str) -> str:
        value = self.header(name)
        if not value:
            raise SignatureError(f"The {name} header is missing.")
        return value


@dataclass(frozen=True, slots=True)
class LineItem:
    sku: str
    name: str | None
    quantity: int
    price: Decimal | None

    def as_json(self) -> dict[str, Any]:
        price = None if self.price is None else float(self.price)
        return {"sku": self.sku, "name": self.name, "quantity": self.quantity, "price": price}


@dataclass(frozen=True, slots=True)
class OrderNotice:
    """One thing that happened to an order, in the vendor's words made canonical.

    ``identities`` may be empty when the vendor does not repeat the customer (a Shopify refund);
    the contact is then the one the order's payment was recorded for.
    """

    key: str
    type: OrderType
    occurred_at: datetime
    order_id: str
    total: Decimal
    currency: str
    items: Sequence[LineItem] = ()
    identities: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        """The event's ``data``: order id, line items, the SKUs bought, total and currency."""
        return {
            **self.extra,
            "order_id": self.order_id,
            "items": [item.as_json() for item in self.items],
            "skus": sorted({item.sku for item in self.items}),
            "total": float(self.total),
            "currency": self.currency,
        }


@dataclass(frozen=True, slots=True)
class Translation:
    notices: tuple[OrderNotice, ...] = ()
    ignored: str | None = None


class WebhookSource(Protocol):
    name: ClassVar[str]
    #: Fields the vendor needs in the answer to count a webhook delivered (else it retries).
    acknowledgement: ClassVar[Mapping[str, object]]

    def verify(self, request: WebhookRequest, secret: str) -> None:
        """Raise SignatureError unless the request is signed with ``secret``."""
        ...

    def translate(self, request: WebhookRequest) -> Translation:
        """The order notices in the body; raise PayloadError if it cannot be read."""
        ...


def payment_key(order_id: str) -> str:
    """The key of an order's payment: one per order, whichever topic or retry reports it."""
    return f"{order_id}:paid"


def hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def same(expected: str | bytes, given: str | bytes) -> bool:
    """Constant-time comparison."""
    left = expected.encode() if isinstance(expected, str) else expected
    right = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(left, right)


def read_json(body: bytes | str, *prefix: str | int) -> Any:
    """``body`` as JSON within the edge bounds (see ``smr.edge``); PayloadError otherwise."""
    try:
        return edge.load_json(body, path=prefix)
    except InvalidInput as exc:
        raise PayloadError(exc.detail, errors=exc.errors) from None


Model = TypeVar("Model", bound=BaseModel)


def read_model(model: type[Model], body: Any, *prefix: str | int) -> Model:
    """``body`` as ``model``; PayloadError with field paths (under ``prefix``) if it is not."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise payload_error(exc, prefix=prefix) from None


def first_phone(*candidates: str | None) -> str | None:
    """The first candidate that is a phone number, normalised; free text reaches no one."""
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return phones.normalise(candidate)
        except phones.NotAPhone:
            continue
    return None


def payload_error(exc: ValidationError, *, prefix: Sequence[str | int] = ()) -> PayloadError:
    errors = [{**e, "loc": (*prefix, *e["loc"])} for e in exc.errors()]
    return PayloadError("The webhook body does not validate.", errors=field_errors(errors))
