"""``GET /metrics`` in the Prometheus text format (0.0.4).

Gauges, read when scraped: deliveries, runs and cron slots by status (``sent`` only grows, so
``rate(smr_deliveries{status="sent"}[5m])`` is the send rate), how long the oldest due delivery
and run have waited (a stuck scheduler shows here first), and the playbooks loaded and their
problems.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from smr.repositories import metrics as repo
from smr.services.catalog import Catalog

HELP = {
    "smr_deliveries": "Deliveries by status.",
    "smr_runs": "Playbook runs by status.",
    "smr_cron_slots": "Cron slots by status.",
    "smr_due_age_seconds": "How long the oldest due delivery or run has waited (0: none due).",
    "smr_playbooks_loaded": "Playbooks loaded.",
    "smr_playbook_problems": "Problems found loading the playbooks folder, by severity.",
}


async def exposition(session: AsyncSession, catalog: Catalog, *, now: datetime) -> str:
    counts = await repo.by_status(session)
    due = await repo.earliest_due(session, until=now)
    samples: list[tuple[str, dict[str, str], float]] = []
    for table, statuses in counts.items():
        samples += [(f"smr_{table}", {"status": s}, n) for s, n in sorted(statuses.items())]
    for kind, since in due.items():
        age = (now - since).total_seconds() if since is not None else 0.0
        samples.append(("smr_due_age_seconds", {"kind": kind}, max(age, 0.0)))
    samples.append(("smr_playbooks_loaded", {}, len(catalog.result.playbooks)))
    for severity in ("error", "warning"):
        n = sum(e.severity == severity for e in catalog.errors)
        samples.append(("smr_playbook_problems", {"severity": severity}, n))
    return render(samples)


def render(samples: Iterable[tuple[str, dict[str, str], float]]) -> str:
    lines: list[str] = []
    seen: set[str] = set()
    for name, labels, value in samples:
        if name not in seen:
            seen.add(name)
            lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge"]
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
