"""GET /v1/playbooks: what is loaded, which files were refused and why, and channel routing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from smr.api.deps import AdminOnly, RuntimeDep
from smr.playbooks import LoadedPlaybook, PlaybookError

router = APIRouter(prefix="/v1/playbooks", tags=["playbooks"], dependencies=[AdminOnly])


def playbook_json(p: LoadedPlaybook) -> dict[str, Any]:
    trigger = p.spec.trigger
    return {
        "id": p.id,
        "name": p.spec.name,
        "file": p.file,
        "version": p.version,
        "enabled": p.spec.enabled,
        "mode": p.spec.mode,
        "delivery": p.spec.delivery,
        "trigger": trigger.model_dump(mode="json", by_alias=True, exclude_none=True),
        "listens_to": sorted(p.listens_to),
    }


def error_json(e: PlaybookError) -> dict[str, Any]:
    return {
        "file": e.file,
        "line": e.line,
        "column": e.column,
        "path": e.path,
        "message": e.message,
        "severity": e.severity,
    }


@router.get("")
async def list_playbooks(runtime: RuntimeDep) -> dict[str, Any]:
    catalog = runtime.catalog
    return {
        "playbooks": [playbook_json(p) for _, p in sorted(catalog.result.playbooks.items())],
        "errors": [error_json(e) for e in catalog.errors],
        "timezone": catalog.policies.timezone,
        "channels": runtime.describe_routes(),
    }
