"""Which errors mean "the database cannot be reached", and how long a loop waits them out."""

from __future__ import annotations

import errno
import socket

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from smr.backoff import Backoff
from smr.db import is_unavailable


class DriverError(Exception):
    """A driver error carrying a SQLSTATE, as asyncpg's do."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def wrapped(orig: BaseException, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


def caused_by(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("while ingesting") from cause
    except RuntimeError as exc:
        return exc


def raised_while_handling(error: BaseException, handled: BaseException) -> BaseException:
    try:
        try:
            raise handled
        except type(handled):
            raise error  # noqa: B904 (the point: a new error, not caused by the one handled)
    except type(error) as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "unavailable"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), True),
        (ConnectionResetError(errno.ECONNRESET, "reset by peer"), True),
        (TimeoutError(), True),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), True),
        (OSError(errno.EHOSTUNREACH, "No route to host"), True),
        (PoolTimeout("QueuePool limit of size 20 overflow 0 reached"), True),
        (wrapped(Exception("connection is closed"), invalidated=True), True),
        (wrapped(DriverError("08006")), True),  # connection failure
        (wrapped(DriverError("57P01")), True),  # terminating connection: admin shutdown
        (DriverError("57P03"), True),  # the database system is starting up
        (DriverError("53300"), True),  # too many connections
        (caused_by(ConnectionRefusedError()), True),
        (caused_by(asyncpg.InterfaceError("connection is closed")), True),
        (asyncpg.InterfaceError("another operation is in progress"), False),
        (FileNotFoundError(errno.ENOENT, "playbooks"), False),
        (PermissionError(errno.EACCES, "denied"), False),
        (IntegrityError("INSERT", None, DriverError("23505")), False),
        (OperationalError("BEGIN", None, Exception("database is locked")), False),
        (wrapped(DriverError("22003")), False),  # numeric value out of range
        (ValueError("bad input"), False),
        # a fault in an except block that handled a connection error is the code's, not the DB's
        (raised_while_handling(KeyError("k"), ConnectionResetError()), False),
        (raised_while_handling(ValueError("v"), TimeoutError()), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_unavailable(exc: BaseException, unavailable: bool) -> None:
    assert is_unavailable(exc) is unavailable


def test_backoff_doubles_up_to_the_cap_with_jitter_and_starts_over() -> None:
    low = Backoff(first=1.0, cap=30.0, draw=lambda: 0.0)
    high = Backoff(first=1.0, cap=30.0, draw=lambda: 0.999999)
    assert [round(low.failed(), 3) for _ in range(7)] == [0.5, 1, 2, 4, 8, 15, 15]
    assert [round(high.failed(), 3) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert low.succeeded() == 7
    assert low.failed() == 0.5


def test_backoff_survives_a_long_outage() -> None:
    backoff = Backoff(first=1.0, cap=30.0, draw=lambda: 0.5)
    for _ in range(10_000):
        delay = backoff.failed()
    assert delay == 22.5
