"""Status columns hold their enum members: a member or its value goes in as the value, the
member comes out, and a value outside the closed set is refused either way."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

import pytest
from sqlalchemy import Column, String, cast, create_engine, literal, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import StatementError

from smr.models import Delivery, DeliveryAttempt, EnumText, Run, table_of
from smr.statuses import AttemptOutcome, DeliveryStatus, RunStatus, SkipReason


@pytest.fixture
def connection() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.mark.parametrize("given", [DeliveryStatus.SENT, "sent"])
def test_a_member_or_its_value_reads_back_as_the_member(connection: Connection, given: str) -> None:
    stored = connection.scalar(select(literal(given, EnumText(DeliveryStatus, 16))))

    assert stored is DeliveryStatus.SENT


def test_the_value_is_what_the_database_holds(connection: Connection) -> None:
    held = connection.scalar(
        select(cast(literal(RunStatus.WAITING, EnumText(RunStatus, 16)), String))
    )

    assert (type(held), held) == (str, "waiting")


def test_a_misspelt_status_is_refused_on_write(connection: Connection) -> None:
    with pytest.raises(StatementError, match="snet"):
        connection.scalar(select(literal("snet", EnumText(DeliveryStatus, 16))))


def test_a_stored_value_outside_the_set_is_refused_on_read(connection: Connection) -> None:
    stored = literal_column("'snoozed'", EnumText(SkipReason, 32))

    with pytest.raises(ValueError, match="snoozed"):
        connection.scalar(select(stored))


@pytest.mark.parametrize(
    ("column", "enum"),
    [
        (table_of(Delivery).c.status, DeliveryStatus),
        (table_of(Delivery).c.skip_reason, SkipReason),
        (table_of(Run).c.status, RunStatus),
        (table_of(DeliveryAttempt).c.outcome, AttemptOutcome),
    ],
)
def test_each_status_column_holds_its_enum(column: Column[object], enum: type[StrEnum]) -> None:
    # Their SQL types (VARCHAR(16), VARCHAR(32)) are the migrations': see test_migrations.
    assert isinstance(column.type, EnumText)
    assert column.type.enum is enum
