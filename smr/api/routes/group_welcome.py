"""GET /v1/group-welcome-templates: each playbook's group welcome template (入群欢迎语素材) and
how it stands in WeCom."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from smr.api.deps import AdminOnly, RuntimeDep, SessionDep
from smr.api.models import GroupWelcomeTemplateList
from smr.api.openapi import ADMIN
from smr.services.group_welcome_reads import list_templates

router = APIRouter(
    prefix="/v1/group-welcome-templates",
    tags=["group-welcome-templates"],
    dependencies=[AdminOnly],
    responses=ADMIN,
)


@router.get("", response_model=GroupWelcomeTemplateList)
async def list_group_welcome_templates(session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Every playbook that declares ``group_welcome`` (and every template SMR made in WeCom
    that is no longer declared): WeCom's template_id, status, last error, last sync."""
    keeper = runtime.group_welcome
    return {
        "wecom": keeper is not None and keeper.wecom_configured,
        "templates": await list_templates(session, runtime.catalog),
    }
