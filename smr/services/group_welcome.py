"""Keeps WeCom's group welcome templates (入群欢迎语素材) in step with the playbooks'
``group_welcome`` declarations.

Each pass renders every declared template (with the policies' vars), hashes what WeCom would
get (the text, the attachment and its media files' bytes) and compares it with the stored row:
``group_welcome_template/add`` when WeCom has none, ``…/edit`` when the hash changed, ``…/del``
when the playbook or its declaration is gone. A template whose hash is stored needs no call, so
a second pass makes none. A failure (WeCom's refusal, a var missing from policies.yaml, a media
file gone) is recorded on the row (``last_error``) and retried by the next reload, or by a tick
once ``retry_at`` has come (backing off from 1 minute to 1 hour). Passes run in the background:
WeCom being slow or down never holds up loading playbooks or a tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.db import unit_of_work
from smr.models import GroupWelcomeStatus
from smr.playbooks.group_welcome import GroupWelcome, WelcomeContent
from smr.repositories import group_welcome as repo
from smr.repositories.group_welcome import StoredTemplate
from smr.services.catalog import Catalog
from smr.services.group_welcome_content import Declared, Rendered, render_all
from smr.services.passes import Keeper

log = logging.getLogger(__name__)
#: How long a process may hold a template while it talks to WeCom (uploads, then one call).
LEASE = timedelta(minutes=2)
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)


class WelcomeTemplates(Protocol):
    """WeCom's group welcome template API. Each method raises SendError when WeCom (or a
    media upload) fails."""

    async def add(self, content: WelcomeContent) -> str:
        """Make a template; its template_id."""
        ...

    async def edit(self, template_id: str, content: WelcomeContent) -> None: ...

    async def delete(self, template_id: str) -> None: ...

    async def aclose(self) -> None: ...


class Action(StrEnum):
    NONE = "none"
    ADD = "add"
    EDIT = "edit"
    DELETE = "delete"
    #: No WeCom call: a failure to record (the content cannot be rendered), or a row to settle.
    SETTLE = "settle"


def action_for(rendered: Rendered | None, row: StoredTemplate | None) -> Action:
    """What brings WeCom and the row in line with the declaration (pure); ``rendered`` is
    None when the template is no longer declared."""
    if rendered is None:
        if row is None or row.status is GroupWelcomeStatus.REMOVED:
            return Action.NONE
        return Action.DELETE if row.template_id else Action.SETTLE
    if rendered.error is not None:
        settled = row is not None and row.last_error == rendered.error
        return Action.NONE if settled else Action.SETTLE
    if row is None or row.template_id is None:
        return Action.ADD
    if row.content_hash != rendered.content_hash:
        return Action.EDIT
    return Action.NONE if row.status is GroupWelcomeStatus.ACTIVE else Action.SETTLE


def retry_delay(attempts: int) -> timedelta:
    """1 min, 2, 4, … up to 1 h after the ``attempts``-th failure in a row."""
    delay: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(delay, LAST_RETRY)


class GroupWelcomeKeeper(Keeper):
    """Runs passes (``sync``) on start and reload (``kick``) and when a retry is due (``tick``)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        declared: Declared,
        templates: WelcomeTemplates | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._declared = declared
        self._templates = templates
        self._clock = clock
        self._told_unconfigured = False
        super().__init__(name="group welcome templates sync", clock=clock, retry=FIRST_RETRY)

    @property
    def wecom_configured(self) -> bool:
        return self._templates is not None

    async def aclose(self) -> None:
        await self._passes.settle()
        if self._templates is not None:
            await self._templates.aclose()

    async def sync(self, *, force: bool = True) -> dict[str, Action]:
        """One pass; with ``force``, failed templates are retried before their ``retry_at``.
        The action taken for each playbook that needed one."""
        specs, variables, root = self._declared()
        self._passes.clear()
        if self._unconfigured(len(specs)):
            return {}
        rendered = await render_all(specs, variables, root)
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            await repo.declare(session, sorted(specs), now=now)
            rows = {row.playbook_id: row for row in await repo.stored(session)}
        done: dict[str, Action] = {}
        for playbook_id in sorted(specs.keys() | rows.keys()):
            item, row = rendered.get(playbook_id), rows.get(playbook_id)
            if action_for(item, row) is Action.NONE:
                continue
            retry_at = row.retry_at if row is not None else None
            if force or retry_at is None or retry_at <= now:
                done[playbook_id] = await self._one(playbook_id, item)
            else:
                self._due(retry_at)
        return done

    def _due(self, at: datetime) -> None:
        self._passes.due(at)

    def _unconfigured(self, declared: int) -> bool:
        if self._templates is not None:
            return False
        if not self._told_unconfigured and declared:
            self._told_unconfigured = True
            log.info(
                "group welcome templates: WeCom is not configured (SMR_WECOM__CORP_ID and a "
                "客户联系 secret); %d declared templates are not made in WeCom",
                declared,
            )
        return True

    async def _one(self, playbook_id: str, rendered: Rendered | None) -> Action:
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            claimed = await repo.claim(session, playbook_id, now=now, until=now + LEASE)
            found = await repo.stored(session, [playbook_id]) if claimed else []
        if not found:
            return Action.NONE  # another process is on it
        row = found[0]
        action = action_for(rendered, row)
        if action is Action.NONE:  # another process brought it in line meanwhile
            async with unit_of_work(self._sessions) as session:
                await repo.finish(session, playbook_id, {})
            return action
        try:
            values = await self._carry_out(action, rendered, row)
        except Exception as exc:  # WeCom's refusal or absence, a file gone: retried later
            values = _failed(row, exc, now=self._clock())
            log.warning(
                "group welcome %s: %s failed: %s", playbook_id, action, values["last_error"]
            )
            self._due(values["retry_at"])
        else:
            if action in (Action.ADD, Action.EDIT, Action.DELETE):
                log.info(
                    "group welcome %s: %s (%s)", playbook_id, action, values.get("template_id")
                )
        async with unit_of_work(self._sessions) as session:
            await repo.finish(session, playbook_id, values)
        return action

    async def _carry_out(
        self, action: Action, rendered: Rendered | None, row: StoredTemplate
    ) -> dict[str, Any]:
        templates = self._templates
        assert templates is not None
        now = self._clock()
        if rendered is None:
            if row.template_id:
                await templates.delete(row.template_id)
            return _succeeded(GroupWelcomeStatus.REMOVED, now) | {
                "template_id": None,
                "content_hash": None,
            }
        if rendered.error is not None:
            raise _Unrenderable(rendered.error)
        assert rendered.content is not None
        template_id = row.template_id
        if action is Action.ADD or template_id is None:
            template_id = await templates.add(rendered.content)
        elif action is Action.EDIT:
            await templates.edit(template_id, rendered.content)
        values = {"template_id": template_id, "content_hash": rendered.content_hash}
        return _succeeded(GroupWelcomeStatus.ACTIVE, now) | values


class _Unrenderable(Exception):
    """The declared content cannot be made (its text, a var, a media file)."""


def _succeeded(status: GroupWelcomeStatus, now: datetime) -> dict[str, Any]:
    return {
        "status": status,
        "attempts": 0,
        "last_error": None,
        "retry_at": None,
        "synced_at": now,
        "updated_at": now,
    }


def _failed(row: StoredTemplate, exc: BaseException, *, now: datetime) -> dict[str, Any]:
    attempts = row.attempts + 1
    return {
        "status": GroupWelcomeStatus.FAILED,
        "attempts": attempts,
        "last_error": (str(exc) or type(exc).__name__)[:500],
        "retry_at": now + retry_delay(attempts),
        "updated_at": now,
    }


def declared_in(catalog: Catalog) -> Declared:
    """What ``catalog`` declares now: the ``group_welcome`` of each loaded playbook (a file
    that turned invalid keeps its last good version's), the policies' vars, the folder."""

    def now() -> tuple[dict[str, GroupWelcome], Mapping[str, Any], Path]:
        playbooks = catalog.result.playbooks.values()
        specs = {p.id: p.spec.group_welcome for p in playbooks if p.spec.group_welcome}
        return specs, catalog.vars, catalog.directory

    return now
