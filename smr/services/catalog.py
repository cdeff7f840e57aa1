"""The loaded playbooks and policies the service acts on."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smr.playbooks import LoadedPlaybook, LoadResult, PlaybookError, Policies, load_directory

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
