"""Group welcome templates as the API shows them: each playbook's declaration beside what
WeCom has for it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.models import GroupWelcomeStatus
from smr.repositories import group_welcome as repo
from smr.repositories.group_welcome import StoredTemplate
from smr.services.catalog import Catalog


async def list_templates(session: AsyncSession, catalog: Catalog) -> list[dict[str, Any]]:
    """Every playbook declaring a group welcome now, and every one SMR made in WeCom before,
    by playbook id (a declared template not stored yet is ``pending``)."""
    loaded = {
        playbook.id: playbook
        for playbook in catalog.result.playbooks.values()
        if playbook.spec.group_welcome is not None
    }
    rows = {row.playbook_id: row for row in await repo.stored(session)}
    answer = []
    for playbook_id in sorted(loaded.keys() | rows.keys()):
        playbook, row = loaded.get(playbook_id), rows.get(playbook_id)
        spec = playbook.spec.group_welcome if playbook is not None else None
        answer.append(
            {
                "playbook_id": playbook_id,
                "declared": spec is not None,
                "file": playbook.file if playbook is not None else None,
                "notify": spec.notify if spec is not None else None,
                **_stored_json(row),
            }
        )
    return answer


def _stored_json(row: StoredTemplate | None) -> dict[str, Any]:
    if row is None:
        return {
            "status": GroupWelcomeStatus.PENDING,
            "template_id": None,
            "last_error": None,
            "attempts": 0,
            "retry_at": None,
            "synced_at": None,
        }
    return {
        "status": row.status,
        "template_id": row.template_id,
        "last_error": row.last_error,
        "attempts": row.attempts,
        "retry_at": _time(row.retry_at),
        "synced_at": _time(row.synced_at),
    }


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
