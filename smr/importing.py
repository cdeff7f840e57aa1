"""Reading an import file (``smr import``, ``POST /v1/contacts/import``): CSV or JSON Lines,
one customer a line, each checked alone so that a bad line is reported by its number and the
others go in.

JSON Lines, one object a line::

    {"phone": "13800000000", "name": "王小姐", "tags": ["老客"], "attributes": {"城市": "上海"},
     "orders": [{"order_id": "A1", "total": 199, "occurred_at": "2025-06-01T10:00:00+08:00",
                 "items": [{"sku": "FACE-WASH", "quantity": 2}]}]}

CSV, with a header: ``phone``, ``wecom_userid``, ``shop_customer_id``, ``name``, ``tags``
(separated by ``|``) and one ``attr.<name>`` column per attribute (an empty cell sets nothing).
Orders come in JSON Lines only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from smr import edge
from smr.edge import unstorable
from smr.errors import InvalidInput
from smr.schemas import (
    MAX_ATTRIBUTES,
    MAX_ITEMS,
    Amount,
    AwareTime,
    ContactRef,
    Key,
    OrderItem,
    Phone,
)

Format = Literal["csv", "jsonl"]
#: Orders one line may carry, and tags.
MAX_ORDERS = 1000
MAX_TAGS = 100
#: The longest line read (a JSON line with a customer's whole history stays well within).
MAX_LINE = 1_000_000
ATTRIBUTE_PREFIX = "attr."
TAG_SEPARATOR = "|"

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
#: An order's id: stored in its event's key after the status (``paid:…``), within 200.
OrderId = Annotated[str, StringConstraints(min_length=1, max_length=190, strip_whitespace=True)]


class ImportedOrder(BaseModel):
    """An order of the customer's history: counted in stats and purchase history, never a
    trigger."""

    model_config = ConfigDict(extra="forbid")

    order_id: OrderId
    status: Literal["paid", "refunded"] = "paid"
    total: Amount
    currency: Annotated[str, StringConstraints(min_length=3, max_length=3)] = "CNY"
    occurred_at: AwareTime
    items: Annotated[list[OrderItem], Field(max_length=MAX_ITEMS)] = Field(default_factory=list)

    @property
    def event_type(self) -> str:
        return f"order.{self.status}"

    @property
    def key(self) -> str:
        """Its event's key: the same order imported again is the same event."""
        return f"{self.status}:{self.order_id}"

    def data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"status", "occurred_at"})


class ImportedContact(BaseModel):
    """One line: who the customer is (at least one identity), and what is known of them."""

    model_config = ConfigDict(extra="forbid")

    phone: Phone | None = None
    wecom_userid: Key | None = None
    shop_customer_id: Key | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = Field(default_factory=list)
    attributes: Annotated[dict[str, Any], Field(max_length=MAX_ATTRIBUTES)] = Field(
        default_factory=dict
    )
    orders: Annotated[list[ImportedOrder], Field(max_length=MAX_ORDERS)] = Field(
        default_factory=list
    )

    def contact(self) -> ContactRef:
        """Raises ``ValidationError`` when the line names no identity."""
        return ContactRef(
            phone=self.phone,
            wecom_userid=self.wecom_userid,
            shop_customer_id=self.shop_customer_id,
            name=self.name or None,
            attributes=self.attributes,
        )


@dataclass(frozen=True)
class Line:
    """A line that validates: its number in the file, and the customer it describes."""

    number: int
    row: ImportedContact
    contact: ContactRef


@dataclass(frozen=True)
class LineError:
    number: int
    path: str
    message: str

    def format(self, name: str) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{name}:{self.number}: {where}{self.message}"


def format_of(name: str) -> Format:
    return "csv" if name.lower().endswith(".csv") else "jsonl"


#: A record as read, not yet checked: a JSON line's text, a CSV row's cells, or why the line
#: could not be read.
Raw = str | dict[str | None, Any] | LineError


def read(lines: Iterable[str], *, format: Format) -> Iterator[Line | LineError]:
    """Each customer line of the file (``lines``: its text lines, ends kept or not), checked."""
    for number, raw in records(lines, format=format):
        yield checked(number, raw)


def records(lines: Iterable[str], *, format: Format) -> Iterator[tuple[int, Raw]]:
    """Each customer record of the file by its line number, not checked yet (cheap to pass
    over: another process may import it)."""
    return _csv(lines) if format == "csv" else _jsonl(lines)


def checked(number: int, raw: Raw) -> Line | LineError:
    """The record at line ``number``, checked."""
    if isinstance(raw, LineError):
        return raw
    data = _from_json(number, raw) if isinstance(raw, str) else _from_csv(raw, number)
    return data if isinstance(data, LineError) else _checked(number, data)


def _jsonl(lines: Iterable[str]) -> Iterator[tuple[int, Raw]]:
    for number, text in enumerate(lines, start=1):
        if text.strip():
            yield number, text


def _from_json(number: int, text: str) -> dict[str, Any] | LineError:
    if len(text) > MAX_LINE:
        return LineError(number, "", f"the line is over {MAX_LINE} characters")
    try:
        data = edge.load_json(text)  # the bounds of any posted JSON
    except InvalidInput as exc:
        first = exc.errors[0] if exc.errors else {"path": "", "message": exc.detail}
        return LineError(number, str(first["path"]), str(first["message"]))
    if not isinstance(data, dict):
        return LineError(number, "", "expected a JSON object, one customer a line")
    return data


def _csv(lines: Iterable[str]) -> Iterator[tuple[int, Raw]]:
    reader = csv.DictReader(lines)  # a cell over csv's field limit is a csv.Error
    while True:
        try:
            data = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader goes on with the next line
            # Raised before the line it read counts in line_num.
            number = reader.line_num + 1
            yield number, LineError(number, "", f"not CSV: {exc}")
            continue
        yield reader.line_num, data


def _from_csv(data: dict[str | None, Any], number: int) -> dict[str, Any] | LineError:
    if None in data:  # more cells than the header has names
        return LineError(number, "", "more cells than the header names")
    row: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for key, value in data.items():
        if key is None or value is None or value == "":
            continue
        if problem := unstorable(key) or unstorable(value):
            return LineError(number, key, problem)
        if key.startswith(ATTRIBUTE_PREFIX):
            attributes[key.removeprefix(ATTRIBUTE_PREFIX)] = value
        elif key == "tags":
            row["tags"] = [t for t in value.split(TAG_SEPARATOR) if t.strip()]
        else:
            row[key] = value
    if attributes:
        row["attributes"] = attributes
    return row


def _checked(number: int, data: dict[str, Any]) -> Line | LineError:
    try:
        row = ImportedContact.model_validate(data)
        return Line(number, row, row.contact())
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        return LineError(number, path, first["msg"].removeprefix("Value error, "))


def text_lines(text: str) -> list[str]:
    """A posted body's lines (CSV cells may hold line breaks: the csv module reads them)."""
    return io.StringIO(text).readlines()


def shared(
    records: Iterable[tuple[int, Raw]], *, worker: int, workers: int, chunk: int
) -> Iterator[Line | LineError]:
    """The records of one of ``workers`` importing a file together, checked: runs of
    ``chunk`` records taken in turn (the others are passed over, not checked)."""
    for index, (number, raw) in enumerate(records):
        if index // chunk % workers == worker:
            yield checked(number, raw)
