"""The loaded playbooks and policies the service acts on."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.playbooks import (
    LoadedPlaybook,
    LoadResult,
    PlaybookError,
    Policies,
    load_directory,
    load_text,
)
from smr.repositories import playbook_versions as versions_repo

log = logging.getLogger(__name__)


@dataclass
class Catalog:
    """Playbooks by id and by the event types they listen to, plus the policies.

    Every version ever loaded stays reachable by its content hash, so a run keeps acting on the
    version it started with.
    """

    directory: Path
    channels: Collection[str]
    result: LoadResult = field(default_factory=LoadResult)
    versions: dict[str, LoadedPlaybook] = field(default_factory=dict)
    _by_event: dict[str, list[LoadedPlaybook]] = field(default_factory=dict)

    def reload(self) -> LoadResult:
        self.result = load_directory(self.directory, channels=self.channels)
        by_event: dict[str, list[LoadedPlaybook]] = defaultdict(list)
        for playbook in self.result.playbooks.values():
            self.versions[playbook.version] = playbook
            if playbook.spec.enabled and playbook.trigger_event:
                by_event[playbook.trigger_event].append(playbook)
        self._by_event = dict(by_event)
        for error in self.result.errors:
            log.warning("playbook skipped: %s", error.format())
        return self.result

    @property
    def policies(self) -> Policies:
        return self.result.policies

    @property
    def vars(self) -> dict[str, Any]:
        return self.result.policies.vars

    @property
    def errors(self) -> list[PlaybookError]:
        return self.result.errors

    def triggered_by(self, event_type: str) -> list[LoadedPlaybook]:
        return self._by_event.get(event_type, [])

    def version(self, version: str) -> LoadedPlaybook | None:
        return self.versions.get(version)

    def for_run(self, playbook_id: str, version: str) -> LoadedPlaybook | None:
        """The version a run started with, else the playbook's current version."""
        return self.versions.get(version) or self.result.playbooks.get(playbook_id)

    def exiting_on(self, event_types: Iterable[str]) -> set[str]:
        """Ids of playbooks (any known version) with an exit_on rule for one of these types."""
        types = set(event_types)
        return {
            p.id for p in self.versions.values() if any(rule.event in types for rule in p.exits)
        }

    async def remember_versions(self, session: AsyncSession, *, now: datetime) -> None:
        """Store the loaded versions' sources, so runs keep their version across restarts."""
        rows = [
            {
                "version": p.version,
                "playbook_id": p.id,
                "file": p.file,
                "source": p.source,
                "loaded_at": now,
            }
            for p in self.result.playbooks.values()
        ]
        await versions_repo.remember(session, rows)

    async def recall_versions(self, session: AsyncSession, versions: Iterable[str]) -> None:
        """Compile stored versions this process has not loaded (runs older than the files)."""
        missing = set(versions) - set(self.versions)
        for row in await versions_repo.fetch(session, missing):
            playbook, errors = load_text(row.source, filename=row.file, channels=self.channels)
            if playbook is not None:
                self.versions[playbook.version] = playbook
            else:
                log.error("stored version %s no longer compiles: %s", row.version, errors)
