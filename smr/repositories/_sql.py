"""Dialect helpers shared by the repositories."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from smr.errors import InvalidInput


def insert_ignoring_conflicts(session: AsyncSession, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING for the session's dialect."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt: Insert = module.insert(table).on_conflict_do_nothing()
    return stmt


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def encode_cursor(last_id: str) -> str:
    raw = json.dumps({"before": last_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The id to page before, or None for the first page. Raises InvalidInput on a bad cursor."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["before"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(
            "cursor is not one this API gave out",
            errors=[{"path": "cursor", "message": "invalid cursor"}],
        ) from exc
    if not isinstance(value, str):
        raise InvalidInput(errors=[{"path": "cursor", "message": "invalid cursor"}])
    return value


def page(rows: Sequence[Any], limit: int, *, key: str = "id") -> tuple[list[Any], str | None]:
    """Rows fetched with limit + 1, newest first → (the page, the cursor for the next one)."""
    items = list(rows[:limit])
    next_cursor = encode_cursor(getattr(items[-1], key)) if len(rows) > limit else None
    return items, next_cursor
