"""The accept benchmark's summary, table, verdicts and consistency notes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.harness.common import fmt_cpu, verdict
from bench.harness.load import Measurement
from bench.harness.workload import MATCHING_PLAYBOOK

BATCH_SIZE = 100
TARGET_SINGLE_RATIO = 0.8
TARGET_BATCH_EVENTS_PER_S = 10_000.0
TARGET_BATCH_RATIO = 0.5


def summarise(measurements: dict[str, Measurement]) -> dict[str, Any]:
    bare, single = measurements["bare_single"], measurements["smr_single"]
    bare_batch, batch = measurements["bare_batch"], measurements["smr_batch"]
    single_ratio = single.requests_per_s / bare.requests_per_s if bare.requests_per_s else 0.0
    batch_ratio = batch.events_per_s / bare_batch.events_per_s if bare_batch.events_per_s else 0.0
    return {
        "bare_single_requests_per_s": round(bare.requests_per_s, 1),
        "smr_single_requests_per_s": round(single.requests_per_s, 1),
        "bare_batch_events_per_s": round(bare_batch.events_per_s, 1),
        "batch_events_per_s": round(batch.events_per_s, 1),
        "single_ratio": round(single_ratio, 4),
        "batch_ratio": round(batch_ratio, 4),
        "single_pass": single_ratio >= TARGET_SINGLE_RATIO
        and not (bare.failures or single.failures),
        "batch_pass": batch.events_per_s >= TARGET_BATCH_EVENTS_PER_S and not batch.failures,
        "batch_ratio_pass": batch_ratio >= TARGET_BATCH_RATIO
        and not (bare_batch.failures or batch.failures),
        "failed_requests": sum(len(m.failures) for m in measurements.values()),
    }


def print_report(
    rows: Sequence[tuple[str, Measurement]], summary: dict[str, Any], setup: dict[str, Any]
) -> None:
    print()
    access = setup["access_log"]
    print(
        f"SMR accept benchmark. SMR: {setup['smr_server']}. Both: uvicorn, 1 worker, "
        f"loop {setup['loop']}, http {setup['http']}, access log bare {access['bare']} / "
        f"SMR {access['smr']}. Client: httpx HTTP/1.1 keep-alive, concurrency "
        f"{setup['concurrency']}. {setup['cpus']} CPUs, PostgreSQL {setup['postgres_version']}."
    )
    header = (
        f"{'measurement':<38}{'requests':>9}{'events':>8}{'seconds':>9}{'req/s':>9}"
        f"{'events/s':>10}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'cpu:server':>12}{'client':>8}{'postgres':>9}{'other':>7}"
    )
    print(header)
    print("-" * len(header))
    for label, m in rows:
        cpu = m.cpu
        print(
            f"{label:<38}{m.requests:>9}{m.events:>8}{m.seconds:>9.2f}{m.requests_per_s:>9.0f}"
            f"{m.events_per_s:>10.0f}{m.percentile_ms(0.5):>8.1f}{m.percentile_ms(0.99):>8.1f}"
            f"{fmt_cpu(cpu.get('server')):>12}{fmt_cpu(cpu.get('client')):>8}"
            f"{fmt_cpu(cpu.get('postgres')):>9}{fmt_cpu(cpu.get('other')):>7}"
            + (f"   FAILED: {len(m.failures)} requests" if m.failures else "")
        )
    print("-" * len(header))
    print("cpu: cores busy during the timed requests (1.00 = one core); other = rest of machine")
    print(
        f"SMR single / bare single: {summary['single_ratio']:.1%}  "
        f"(target >= {TARGET_SINGLE_RATIO:.0%})  {verdict(summary['single_pass'])}"
    )
    print(
        f"SMR batch of {BATCH_SIZE}: {summary['batch_events_per_s']:,.0f} events/s  "
        f"(target >= {TARGET_BATCH_EVENTS_PER_S:,.0f})  {verdict(summary['batch_pass'])}"
    )
    print(
        f"SMR batch / bare batch: {summary['batch_ratio']:.1%}  "
        f"(target >= {TARGET_BATCH_RATIO:.0%})  {verdict(summary['batch_ratio_pass'])}"
    )


def consistency_notes(
    measurements: dict[str, Measurement], stored: dict[str, Any], expected: dict[str, int]
) -> list[str]:
    """Anything that makes the figures less trustworthy, or that the servers did not add up."""
    notes: list[str] = []
    for m in measurements.values():
        notes += measurement_notes(m)
    for table, what in (("bare_events", "the bare endpoint"), ("events", "SMR")):
        if stored.get(table) != expected[table]:
            notes.append(
                f"{what} stored {stored.get(table)} events, {expected[table]} were answered 202"
            )
    statuses = stored.get("events_by_status")
    runs = stored.get("runs_by_playbook")
    if isinstance(statuses, dict) and isinstance(runs, dict):
        if set(runs) - {MATCHING_PLAYBOOK}:
            notes.append(f"runs were started by other playbooks: {runs}")
        processed = statuses.get("processed", 0)
        if runs.get(MATCHING_PLAYBOOK, 0) != processed:
            notes.append(
                f"{MATCHING_PLAYBOOK} started {runs.get(MATCHING_PLAYBOOK, 0)} runs for "
                f"{processed} events processed"
            )
    return notes


def measurement_notes(m: Measurement) -> list[str]:
    notes: list[str] = []
    if m.failures:
        notes.append(
            f"{m.name}: {len(m.failures)} requests failed {m.errors}; first: {m.failures[0]}"
        )
    server_errors = {k: v for k, v in m.errors.items() if k.startswith("HTTP 5")}
    if server_errors:
        notes.append(f"{m.name}: server errors (5xx): {server_errors}")
    unexpected = {k: v for k, v in m.statuses.items() if k != "accepted"}
    if unexpected:
        notes.append(f"{m.name}: answers other than 'accepted': {unexpected}")
    client, other = m.cpu.get("client"), m.cpu.get("other")
    if client is not None and client > 0.85:
        notes.append(
            f"{m.name}: the client used {client:.2f} of a core; "
            "the rate may be bounded by the load generator"
        )
    if other is not None and other > 0.25:
        notes.append(
            f"{m.name}: {other:.2f} cores were busy with other work on the machine; "
            "the figures are less reliable"
        )
    return notes
