"""``smr report [PLAYBOOK] --since 30d``: a playbook's funnel (or every loaded playbook's, a
line each) as a table in the terminal, from the counts ``GET /v1/playbooks/{id}/report``
reads."""

from __future__ import annotations

from typing import Any

from smr.config import Settings
from smr.runtime import build_runtime
from smr.services import report as reports
from smr.simulate.table import aligned

RUN_COLUMNS = ("started", "refused", "converted", "completed", "exited", "failed", "cancelled")
STEP_COLUMNS = ("scheduled", "sent", "skipped", "failed", "awaiting", "cancelled")


async def run(settings: Settings, playbook: str | None, *, since: str, until: str | None) -> str:
    """The table; InvalidInput for a bad range."""
    runtime = build_runtime(settings)
    try:
        catalog = runtime.catalog
        tz = catalog.policies.tz
        span = reports.Range.parse(since, until, now=runtime.clock(), tz=tz)
        wanted = [playbook] if playbook else sorted(catalog.result.playbooks)
        async with runtime.sessions() as session:
            found = [await reports.report(session, p, span) for p in wanted]
    finally:
        await runtime.aclose()
    heading = f"{span.since} … {span.until} ({catalog.policies.timezone})"
    if playbook:
        return "\n".join([f"{playbook}  {heading}", *one(found[0])])
    return "\n".join([heading, *overview(found)])


def overview(found: list[dict[str, Any]]) -> list[str]:
    """A line per playbook: its runs, and its messages over every send step."""
    header = ("PLAYBOOK", *(c.upper() for c in RUN_COLUMNS), "SENT", "SKIPPED", "SEND FAILED")
    rows = [header]
    for r in found:
        sent = sum(s["sent"] for s in r["steps"])
        skipped = sum(s["skipped"] for s in r["steps"])
        failed = sum(s["failed"] for s in r["steps"])
        runs = [str(r["runs"][c]) for c in RUN_COLUMNS]
        rows.append((r["playbook"], *runs, str(sent), str(skipped), str(failed)))
    return aligned(rows)


def one(found: dict[str, Any]) -> list[str]:
    """The runs, each send step, the reasons, and the days."""
    runs = found["runs"]
    lines = aligned(
        [tuple(c.upper() for c in RUN_COLUMNS), tuple(str(runs[c]) for c in RUN_COLUMNS)]
    )
    lines += _reasons("refused", runs["refused_by"]) + _reasons("exited", runs["exited_by"])
    if found["steps"]:
        header = ("STEP", *(c.upper() for c in STEP_COLUMNS))
        steps = [(s["step"], *(str(s[c]) for c in STEP_COLUMNS)) for s in found["steps"]]
        lines += ["", *aligned([header, *steps])]
        for step in found["steps"]:
            lines += _reasons(f"{step['step']} skipped", step["skipped_by"])
    if found["days"]:
        columns = ("started", "converted", "completed", "exited", "sent", "skipped", "failed")
        days = [(d["day"], *(str(d[c]) for c in columns)) for d in found["days"]]
        lines += ["", *aligned([("DAY", *(c.upper() for c in columns)), *days])]
    return lines


def _reasons(what: str, counted: dict[str, int]) -> list[str]:
    if not counted:
        return []
    return [f"{what}: " + ", ".join(f"{k} {n}" for k, n in sorted(counted.items()))]
