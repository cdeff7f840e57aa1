"""GET /v1/playbooks: what is loaded, which files were refused and why, and channel routing;
POST /v1/playbooks/validate: every problem of one file's text before it is saved."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from smr.api.deps import AdminOnly, RawBody, RuntimeDep, SessionDep
from smr.api.models import PlaybookList, PlaybookReport, ReloadAnswer, ValidateAnswer
from smr.api.openapi import ADMIN, problems, text_body
from smr.playbooks import FileKind, LoadedPlaybook, PlaybookError, check_source, kind_of
from smr.services import report as reports

router = APIRouter(
    prefix="/v1/playbooks", tags=["playbooks"], dependencies=[AdminOnly], responses=ADMIN
)
YAML = ("application/yaml", "text/yaml", "text/plain")


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


@router.get("", response_model=PlaybookList)
async def list_playbooks(runtime: RuntimeDep) -> dict[str, Any]:
    catalog = runtime.catalog
    return {
        "playbooks": [
            playbook_json(p) | {"last_good": p.id in catalog.kept}
            for _, p in sorted(catalog.result.playbooks.items())
        ],
        "errors": [error_json(e) for e in catalog.errors],
        "timezone": catalog.policies.timezone,
        "channels": runtime.describe_routes(),
    }


@router.post("/reload", response_model=ReloadAnswer)
async def reload_playbooks(runtime: RuntimeDep) -> dict[str, Any]:
    """Read the playbooks folder now; a file that turned invalid keeps its last good version."""
    report = await runtime.reload_playbooks()
    return {
        "added": report.added,
        "changed": report.changed,
        "removed": report.removed,
        "kept_last_good": report.kept,
        "errors": [error_json(e) for e in report.errors],
        "playbooks": {p.id: p.version for _, p in sorted(runtime.catalog.result.playbooks.items())},
    }


@router.post(
    "/validate",
    response_model=ValidateAnswer,
    responses=problems(413),
    openapi_extra=text_body(
        *YAML, description="The text of a playbook, a policies.yaml or a segment file."
    ),
)
async def validate_playbook(
    body: RawBody,
    runtime: RuntimeDep,
    kind: FileKind | None = None,
    filename: Annotated[str, Query(min_length=1, max_length=255)] = "playbook.yaml",
) -> dict[str, Any]:
    """Check a playbook (or, with ``kind=policies``, a policies.yaml; with ``kind=segment`` or a
    ``filename`` in ``segments/``, a segment) sent as the raw body, the way the loader will;
    nothing is saved. ``valid`` is false only when there is an error."""
    catalog = runtime.catalog
    errors = await asyncio.to_thread(
        check_source,
        body,
        filename=filename,
        kind=kind or kind_of(filename),
        channels=catalog.channels,
        loaded=catalog.result.playbooks,
    )
    return {
        "valid": all(e.severity != "error" for e in errors),
        "errors": [error_json(e) for e in errors],
    }


@router.get("/{playbook_id}/report", response_model=PlaybookReport, responses=problems(422))
async def playbook_report(
    playbook_id: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    runtime: RuntimeDep,
    since: Annotated[str | None, Query(max_length=40, description="2026-11-01, or 30d")] = None,
    until: Annotated[str | None, Query(max_length=40, description="2026-11-30; today")] = None,
) -> dict[str, Any]:
    """The playbook's funnel over local days: runs started, refused, completed, exited,
    failed; each send step's messages scheduled, sent, skipped, failed, awaiting; in total,
    per version and per day. Counted as they happen: a read of a few rows a day."""
    catalog = runtime.catalog
    span = reports.Range.parse(since, until, now=runtime.clock(), tz=catalog.policies.tz)
    found = await reports.report(session, playbook_id, span)
    loaded = playbook_id in catalog.result.playbooks
    return {**found, "timezone": catalog.policies.timezone, "loaded": loaded}
