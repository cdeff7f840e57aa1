"""The SMR error tree. Each class's docstring is its default message; each knows its HTTP status.

SmrError
├── Merged              308  the contact was merged into another (Location: the survivor)
├── InvalidInput        422  a body or query that does not validate (carries field errors)
├── Unauthorized        401  no or unknown bearer token
├── Forbidden           403  a valid token without the role the route needs
├── NotFound            404  no such resource
├── Conflict            409  the resource is not in a state that allows this
├── PayloadTooLarge     413  the body is over the configured limit
└── DatabaseUnavailable 503  the database cannot be reached now (answered with Retry-After)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar


class SmrError(Exception):
    """Something went wrong."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    #: Seconds a client should wait before it retries (the ``Retry-After`` header), if any.
    retry_after: int | None = None

    def __init__(self, detail: str | None = None, *, errors: list[dict[str, Any]] | None = None):
        self.detail = detail or (self.__doc__ or self.title).strip()
        self.errors = errors or []
        super().__init__(self.detail)


class Merged(SmrError):
    """This contact was merged into another, the same person: its id now finds that one."""

    status = 308
    title = "Merged"

    def __init__(self, contact_id: str, *, into: str) -> None:
        super().__init__(f"Contact {contact_id} was merged into {into}.")
        self.contact_id = contact_id
        self.into = into


class InvalidInput(SmrError):
    """The request does not validate; see errors for each field."""

    status = 422
    title = "Invalid input"


class Unauthorized(SmrError):
    """A valid bearer token is required."""

    status = 401
    title = "Unauthorized"


class Forbidden(SmrError):
    """This token may not use this route."""

    status = 403
    title = "Forbidden"


class NotFound(SmrError):
    """No such resource."""

    status = 404
    title = "Not found"


class Conflict(SmrError):
    """The resource is not in a state that allows this."""

    status = 409
    title = "Conflict"


class PayloadTooLarge(SmrError):
    """The request body is too large."""

    status = 413
    title = "Payload too large"


class DatabaseUnavailable(SmrError):
    """The database cannot be reached right now. Retry later: a repeated event is recognised
    by its id, so a retry never stores it twice."""

    status = 503
    title = "Service unavailable"
    retry_after = 5


class Backlogged(SmrError):
    """More events wait to be processed than SMR keeps; retry after the time given: nothing
    of this request was stored."""

    status = 429
    title = "Too many requests"

    def __init__(self, *, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


def field_path(loc: Sequence[Any]) -> str:
    """('events', 0, 'contact', 'phone') → 'events[0].contact.phone'."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(body)"


def field_errors(errors: Iterable[Any], *, skip: int = 0) -> list[dict[str, str]]:
    return [{"path": field_path(e["loc"][skip:]), "message": e["msg"]} for e in errors]
