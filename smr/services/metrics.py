"""``GET /metrics``: counts read from the database when scraped, so that every process's work
shows (API, workers), beside what this process measured itself (``smr.telemetry``).

Gauges, read when scraped: deliveries, runs and cron slots by status (``sent`` only grows, so
``rate(smr_deliveries{status="sent"}[5m])`` is the send rate), how long the oldest due delivery
and run have waited (a stuck scheduler shows here first), and the playbooks loaded and their
problems, and the event log's backlog and lag (the age of the oldest event waiting).
prometheus_client renders them, with every digit (1234567 is not ``1.23457e+06``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy.ext.asyncio import AsyncSession

from smr.eventlog import Backlog
from smr.repositories import event_log
from smr.repositories import metrics as repo
from smr.services.catalog import Catalog

HELP = {
    "smr_deliveries": "Deliveries by status.",
    "smr_runs": "Playbook runs by status.",
    "smr_cron_slots": "Cron slots by status.",
    "smr_due_age_seconds": "How long the oldest due delivery or run has waited (0: none due).",
    "smr_playbooks_loaded": "Playbooks loaded.",
    "smr_playbook_problems": "Problems found loading the playbooks folder, by severity.",
    "smr_event_backlog": "Events accepted and waiting to be processed (counted up to 10,000,000).",
    "smr_event_lag_seconds": "How long the oldest event waiting to be processed has waited.",
}
#: The backlog is counted up to here (a count costs as much as the rows it counts).
BACKLOG_COUNTED_UP_TO = 10_000_000
SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Snapshot:
    """What one scrape read: rows by table and status, seconds the oldest due row of each
    kind has waited, playbooks loaded, and playbook problems by severity."""

    by_status: Mapping[str, Mapping[str, int]]
    due_age_seconds: Mapping[str, float]
    playbooks_loaded: int
    problems: Mapping[str, int]
    backlog: Backlog


async def read_snapshot(session: AsyncSession, catalog: Catalog, *, now: datetime) -> Snapshot:
    due = await repo.earliest_due(session, until=now)
    ages = {
        kind: max((now - since).total_seconds(), 0.0) if since is not None else 0.0
        for kind, since in due.items()
    }
    return Snapshot(
        by_status=await repo.by_status(session),
        due_age_seconds=ages,
        playbooks_loaded=len(catalog.result.playbooks),
        problems={s: sum(e.severity == s for e in catalog.errors) for s in SEVERITIES},
        backlog=await event_log.backlog(session, bound=BACKLOG_COUNTED_UP_TO, now=now),
    )


class SnapshotCollector:
    """A prometheus_client collector of one ``Snapshot``: gauges, as the values were read."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self._snapshot
        for table, statuses in s.by_status.items():
            yield _gauge(f"smr_{table}", "status", sorted(statuses.items()))
        yield _gauge("smr_due_age_seconds", "kind", s.due_age_seconds.items())
        loaded = GaugeMetricFamily("smr_playbooks_loaded", HELP["smr_playbooks_loaded"])
        loaded.add_metric([], s.playbooks_loaded)
        yield loaded
        yield _gauge("smr_playbook_problems", "severity", s.problems.items())
        yield GaugeMetricFamily(
            "smr_event_backlog", HELP["smr_event_backlog"], value=s.backlog.size
        )
        yield GaugeMetricFamily(
            "smr_event_lag_seconds", HELP["smr_event_lag_seconds"], value=s.backlog.lag_seconds
        )


def _gauge(name: str, label: str, values: Iterable[tuple[str, float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, HELP[name], labels=[label])
    for value, n in values:
        family.add_metric([value], n)
    return family
