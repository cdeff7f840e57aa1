"""The loaded playbooks and policies the service acts on."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.channel_codes import ChannelCodes, code_files
from smr.channels import capabilities_of, reaching
from smr.playbooks import (
    LoadedPlaybook,
    LoadResult,
    PlaybookError,
    Policies,
    load_directory,
    load_text,
)
from smr.playbooks.loader import POLICIES_FILES
from smr.repositories import playbook_versions as versions_repo
from smr.segments import Segments, segment_files

log = logging.getLogger(__name__)


Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint_of(directory: Path) -> Fingerprint | None:
    """Name, size and modification time of every YAML file: cheap to poll."""
    try:
        files = sorted(directory.iterdir()) + code_files(directory) + segment_files(directory)
    except OSError:
        return None
    stats = []
    for file in files:
        if file.suffix in (".yaml", ".yml"):
            try:
                stat = file.stat()
            except OSError:  # removed while we looked
                continue
            stats.append((file.name, stat.st_size, stat.st_mtime_ns))
    return tuple(stats)


def _policies_files(directory: Path) -> set[str]:
    return {str(directory / name) for name in POLICIES_FILES}


@dataclass(frozen=True)
class ReloadReport:
    """What a reload changed, by playbook id."""

    added: list[str]
    changed: list[str]
    removed: list[str]
    kept: list[str]
    errors: list[PlaybookError]

    @classmethod
    def between(
        cls,
        before: dict[str, LoadedPlaybook],
        after: dict[str, LoadedPlaybook],
        *,
        kept: frozenset[str],
        errors: list[PlaybookError],
    ) -> ReloadReport:
        return cls(
            added=sorted(after.keys() - before.keys()),
            changed=sorted(
                i for i in after.keys() & before.keys() if after[i].version != before[i].version
            ),
            removed=sorted(before.keys() - after.keys()),
            kept=sorted(kept),
            errors=errors,
        )


@dataclass(frozen=True)
class EventRules:
    """What the playbooks do about one event type, worked out once per load."""

    #: Ids of the playbooks it triggers whose re-entry rules look at earlier runs (single and
    #: restart modes, cooldowns).
    watched: frozenset[str]
    #: The longest cooldown of the playbooks it triggers (zero: none).
    cooldown: timedelta
    #: Whether a playbook it triggers restarts (ending the contact's active run).
    restarts: bool
    #: Ids of the playbooks (any known version) with an exit_on rule for it.
    exiting: frozenset[str]
    #: Ids of the playbooks (any known version) whose goal it is, and their longest window.
    converting: frozenset[str] = frozenset()
    goal_window: timedelta = timedelta(0)


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
    #: Ids whose file turned invalid: their last good version keeps running.
    kept: frozenset[str] = frozenset()
    #: The channel codes declared in the folder's channel_codes/ (see smr.channel_codes).
    channel_codes: ChannelCodes = field(default_factory=ChannelCodes)
    #: The segments defined in the folder's segments/ (see smr.segments).
    segments: Segments = field(default_factory=Segments)
    _by_event: dict[str, list[LoadedPlaybook]] = field(default_factory=dict)
    _rules: dict[str, EventRules] = field(default_factory=dict)
    _reaching: dict[frozenset[str], list[str]] = field(default_factory=dict)
    _fingerprint: Fingerprint | None = None

    @classmethod
    def of(cls, result: LoadResult, *, channels: Collection[str]) -> Catalog:
        """A catalog over playbooks loaded elsewhere (no folder behind it: not for ``reload``)."""
        catalog = cls(Path(), channels, result=result)
        catalog._index()
        return catalog

    def reload(self) -> ReloadReport:
        """Read the directory again and act on what is in it now (see ``apply``)."""
        return self.apply(*self.read())

    def read(self) -> tuple[LoadResult, Fingerprint | None]:
        """Load the directory as it is now, with the fingerprint it had just before."""
        fingerprint = fingerprint_of(self.directory)
        fresh = load_directory(self.directory, channels=self.channels)
        fresh.errors.extend(self.channel_codes.reload(self.directory))
        fresh.errors.extend(self.segments.reload(self.directory))
        return fresh, fingerprint

    def changed_on_disk(self) -> bool:
        """Whether a playbook file was added, removed or modified since the last load."""
        return fingerprint_of(self.directory) != self._fingerprint

    def apply(self, fresh: LoadResult, fingerprint: Fingerprint | None = None) -> ReloadReport:
        """Switch to ``fresh``, keeping the last good version of every file that turned invalid.

        A removed file's playbook is gone; a file that fails validation keeps its previous
        version (reported in ``kept``) and its errors; invalid policies keep the previous ones.
        """
        before = self.result.playbooks
        broken = {e.file for e in fresh.errors if e.severity == "error"}
        playbooks = dict(fresh.playbooks)
        kept = {
            p.id
            for p in before.values()
            if p.file in broken and p.id not in playbooks and Path(p.file).exists()
        }
        playbooks.update({i: before[i] for i in sorted(kept)})
        policies = fresh.policies
        if self._fingerprint is not None and broken & _policies_files(self.directory):
            policies = self.result.policies
        self.result = LoadResult(playbooks=playbooks, policies=policies, errors=fresh.errors)
        self.kept = frozenset(kept)
        self._fingerprint = fingerprint
        self._index()
        for error in fresh.errors:
            log.warning("playbook %s: %s", error.severity, error.format())
        return ReloadReport.between(before, playbooks, kept=self.kept, errors=fresh.errors)

    def _index(self) -> None:
        by_event: dict[str, list[LoadedPlaybook]] = defaultdict(list)
        for playbook in self.result.playbooks.values():
            self.versions[playbook.version] = playbook
            if playbook.spec.enabled:
                for event_type in playbook.trigger_events:
                    by_event[event_type].append(playbook)
        self._by_event = dict(by_event)
        self._rules = {}

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

    def reaching(self, addresses: frozenset[str]) -> list[str]:
        """The playbook channels that reach a contact addressed by ``addresses`` (see
        ``smr.channels.reaching``)."""
        found = self._reaching.get(addresses)
        if found is None:
            found = self._reaching[addresses] = reaching(capabilities_of(self.channels), addresses)
        return list(found)

    def version(self, version: str) -> LoadedPlaybook | None:
        return self.versions.get(version)

    def for_run(self, playbook_id: str, version: str) -> LoadedPlaybook | None:
        """The version a run started with, else the playbook's current version."""
        return self.versions.get(version) or self.result.playbooks.get(playbook_id)

    def with_goal_on(self, event_types: Iterable[str]) -> tuple[set[str], timedelta]:
        """Ids of playbooks (any known version) whose goal is one of these event types, and
        the longest of their windows."""
        rules = [self.rules_for(t) for t in set(event_types)]
        window = max((r.goal_window for r in rules), default=timedelta(0))
        return {pid for r in rules for pid in r.converting}, window

    def exiting_on(self, event_types: Iterable[str]) -> set[str]:
        """Ids of playbooks (any known version) with an exit_on rule for one of these types."""
        return {pid for t in set(event_types) for pid in self.rules_for(t).exiting}

    def rules_for(self, event_type: str) -> EventRules:
        """What the playbooks do about ``event_type``, worked out on first use after a load."""
        rules = self._rules.get(event_type)
        if rules is None:
            rules = self._rules[event_type] = self._work_out(event_type)
        return rules

    def _work_out(self, event_type: str) -> EventRules:
        triggered = self.triggered_by(event_type)
        exiting = (p for p in self.versions.values() if any(r.event == event_type for r in p.exits))
        goals = [p for p in self.versions.values() if p.goal and p.goal.event == event_type]
        return EventRules(
            watched=frozenset(
                p.id for p in triggered if p.spec.mode != "parallel" or p.spec.cooldown
            ),
            cooldown=max((p.spec.cooldown for p in triggered), default=timedelta(0)),
            restarts=any(p.spec.mode == "restart" for p in triggered),
            exiting=frozenset(p.id for p in exiting),
            converting=frozenset(p.id for p in goals),
            goal_window=max((p.goal.within for p in goals if p.goal), default=timedelta(0)),
        )

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
                self._rules = {}  # its exit rules and goal count too
            else:
                log.error("stored version %s no longer compiles: %s", row.version, errors)
