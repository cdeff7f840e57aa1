"""Channel codes as the API shows them: the declaration, what WeCom has, and the report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.channel_codes import ChannelCode, Declared
from smr.errors import InvalidInput, NotFound
from smr.models import ChannelCodeStatus
from smr.repositories import channel_codes as repo
from smr.repositories.channel_codes import Figures, StoredCode


def check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        errors = [{"path": "query.until", "message": "must be later than since"}]
        raise InvalidInput("The report's range is empty.", errors=errors)


async def list_codes(
    session: AsyncSession,
    declared: Declared,
    *,
    since: datetime | None,
    until: datetime | None,
) -> list[dict[str, Any]]:
    """Every declared or stored code, by state, each with its report (one query for all)."""
    check_range(since, until)
    rows = {row.state: row for row in await repo.stored(session)}
    states = sorted(declared.codes.keys() | rows.keys())
    return await _described(session, declared, rows, states, since=since, until=until)


async def get_code(
    session: AsyncSession,
    declared: Declared,
    state: str,
    *,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    check_range(since, until)
    rows = {row.state: row for row in await repo.stored(session, [state])}
    if state not in rows and state not in declared.codes:
        raise NotFound(f"No channel code '{state}'.")
    return (await _described(session, declared, rows, [state], since=since, until=until))[0]


async def qr_code(session: AsyncSession, declared: Declared, state: str) -> str:
    """The URL of the code's QR picture (WeCom's, public); NotFound before WeCom made it."""
    rows = await repo.stored(session, [state])
    row = rows[0] if rows else None
    if row is None or row.status is ChannelCodeStatus.REMOVED or not row.qr_code:
        known = row is not None or state in declared.codes
        detail = f"Channel code '{state}' has no QR code (yet)." if known else None
        raise NotFound(detail or f"No channel code '{state}'.")
    return row.qr_code


async def _described(
    session: AsyncSession,
    declared: Declared,
    rows: dict[str, StoredCode],
    states: Sequence[str],
    *,
    since: datetime | None,
    until: datetime | None,
) -> list[dict[str, Any]]:
    figures = await repo.report(session, states, since=since, until=until)
    span = {"since": _time(since), "until": _time(until)}
    return [
        code_json(declared.codes.get(s), rows.get(s))
        | {"report": report_json(figures.get(s, Figures())) | span}
        for s in states
    ]


def code_json(code: ChannelCode | None, row: StoredCode | None) -> dict[str, Any]:
    """A code as ``ChannelCodeOut`` shows it (without its report)."""
    if code is not None:
        state, name, kind = code.spec.state, code.spec.name, code.spec.kind
    else:
        assert row is not None, "a code is declared, stored or both"
        state, name, kind = row.state, row.name, row.kind
    return {"state": state, "name": name, "kind": kind} | _declared(code) | _stored(row)


def _declared(code: ChannelCode | None) -> dict[str, Any]:
    spec = code.spec if code is not None else None
    person = spec if spec is not None and spec.group is None else None
    return {
        "declared": code is not None,
        "file": code.file if code is not None else None,
        "staff": list(spec.staff) if spec else [],
        "departments": list(spec.departments) if spec else [],
        "chat_ids": list(spec.group.chat_ids) if spec and spec.group else [],
        "skip_verify": person.skip_verify if person else None,
        "welcome": person.welcome if person else None,
    }


def _stored(row: StoredCode | None) -> dict[str, Any]:
    if row is None:  # declared, not stored yet: WeCom is not configured, or no pass has run
        unset = dict.fromkeys(("config_id", "qr_code", "last_error", "retry_at", "synced_at"))
        return unset | {"status": ChannelCodeStatus.PENDING, "attempts": 0}
    removed = row.status is ChannelCodeStatus.REMOVED
    return {
        "status": row.status,
        "config_id": row.config_id,
        "qr_code": None if removed else row.qr_code,
        "last_error": row.last_error,
        "attempts": row.attempts,
        "retry_at": _time(row.retry_at),
        "synced_at": _time(row.synced_at),
    }


def report_json(figures: Figures) -> dict[str, Any]:
    return {
        "adds": figures.adds,
        "deletions": figures.deletions,
        "buyers": figures.buyers,
        "orders": figures.orders,
        "refunds": figures.refunds,
        "paid": str(figures.paid),
        "refunded": str(figures.refunded),
        "revenue": str(figures.revenue),
    }


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
