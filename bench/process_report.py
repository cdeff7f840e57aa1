"""Tables, verdicts and JSON of ``bench/process.py``'s two phases."""

from __future__ import annotations

from typing import Any

from bench.harness.common import busy_notes, fmt_cpu, verdict
from bench.harness.procfs import DB_BACKENDS
from bench.harness.workload import MATCHING_PLAYBOOK
from bench.process_db import Activity
from bench.process_lag import RSS_MARGIN_MIB, LagResult
from bench.process_throughput import ThroughputResult, bound_by

TARGET_EVENTS_PER_S = 5_000.0
TARGET_LAG_P99_MS = 1_000.0
TARGET_SEND_P99_MS = 2_000.0
#: Requests that wait longer than this for a free connection mean the API fell behind.
KEPT_UP_SECONDS = 1.0
MARKS = (
    ("first_processed", "first event processed"),
    ("log_empty", "event log empty"),
    ("written", "every delivery written"),
    ("sent", "every delivery sent (mock)"),
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# --------------------------------------------------------------------------------------------
# Throughput


def throughput_failures(result: ThroughputResult) -> list[str]:
    failures = []
    if result.timed_out:
        failures.append(f"throughput: not done in time; reached {result.marks.seconds}")
    statuses = result.outcome["events_by_status"]
    if statuses.get("processed", 0) != result.events:
        failures.append(f"throughput: {result.events} events accepted, by status {statuses}")
    runs = result.outcome["runs_by_playbook"]
    if runs != {MATCHING_PLAYBOOK: result.events}:
        failures.append(f"throughput: runs by playbook {runs}, expected {result.events} of one")
    return failures


def print_throughput(result: ThroughputResult, *, cpus: int) -> None:
    accept = result.accept
    print()
    print(
        f"Processing throughput: {result.events:,} events accepted by `smr api` with no "
        f"processor ({accept.events_per_s:,.0f} events/s), then ONE `smr worker` started."
    )
    header = (
        f"{'from the worker start to':<30}{'seconds':>9}{'events/s':>10}"
        f"{'cpu:worker':>12}{'postgres':>9}{'(this db)':>10}{'bench':>7}{'other':>7}"
    )
    print(header)
    print("-" * len(header))
    for mark, label in MARKS:
        seconds = result.marks.seconds.get(mark)
        rate = result.rate(mark) if mark != "first_processed" else None
        cpu = result.marks.cpu.get(mark, {})
        print(
            f"{label:<30}{'-' if seconds is None else f'{seconds:.2f}':>9}"
            f"{'' if rate is None else f'{rate:,.0f}':>10}"
            f"{fmt_cpu(cpu.get('worker')) if cpu else '':>12}"
            f"{fmt_cpu(cpu.get('postgres')) if cpu else '':>9}"
            f"{fmt_cpu(cpu.get(DB_BACKENDS)) if cpu else '':>10}"
            f"{fmt_cpu(cpu.get('bench')) if cpu else '':>7}"
            f"{fmt_cpu(cpu.get('other')) if cpu else '':>7}"
        )
    print("-" * len(header))
    print(
        "cpu: cores busy from the worker's start (1.00 = one core); postgres: the whole server, "
        "(this db): the bench database's backends; bench: this process (polling)"
    )
    written = result.marks.cpu.get("written")
    if written:
        print(f"bound by: {bound_by(written, cpus)}")
    per_event = result.cpu_ms_per_event("written")
    if per_event:
        shown = ", ".join(f"{name} {ms:.3f}" for name, ms in per_event.items())
        print(f"cpu ms per event, to every delivery written: {shown}")
    steady = result.rate("written", since="first_processed")
    if steady is not None:
        print(f"from the first event processed to every delivery written: {steady:,.0f} events/s")
    rate = result.rate("written")
    print(
        f"accepted -> delivery written: {0 if rate is None else rate:,.0f} events/s  "
        f"(target >= {TARGET_EVENTS_PER_S:,.0f})  {verdict(_throughput_pass(result))}"
    )
    print_activity(result.marks.activity, "the worker's")
    for note in throughput_failures(result) + busy_notes([("throughput", written)]):
        print(f"note: {note}")
    for problem in result.worker_problems[:10]:
        print(f"note: logged: {problem}")


def print_activity(activity: Activity, whose: str) -> None:
    top = activity.top(8)
    if not top:
        return
    print(
        f"pg_stat_activity, {activity.samples} samples of {whose} sessions "
        "(share of samples in which each was seen):"
    )
    for share, what in top:
        print(f"  {share:6.1%}  {what}")


def activity_json(activity: Activity) -> list[dict[str, Any]]:
    return [{"share": round(share, 4), "what": what} for share, what in activity.top(20)]


def _throughput_pass(result: ThroughputResult) -> bool:
    rate = result.rate("written")
    return rate is not None and rate >= TARGET_EVENTS_PER_S and not result.timed_out


def throughput_json(result: ThroughputResult, *, cpus: int) -> dict[str, Any]:
    written = result.marks.cpu.get("written")
    return {
        "summary": {
            "events": result.events,
            "events_per_s_to_written": result.rate("written"),
            "events_per_s_to_sent": result.rate("sent"),
            "events_per_s_first_to_written": result.rate("written", since="first_processed"),
            "pass": _throughput_pass(result),
        },
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "seconds_from_worker_start": result.marks.seconds,
        "cpu_cores_used": result.marks.cpu,
        "cpu_ms_per_event": result.cpu_ms_per_event("written"),
        "pg_activity": activity_json(result.marks.activity),
        "bound_by": None if written is None else bound_by(written, cpus),
        "accept": result.accept.as_json(),
        "stored": result.outcome,
        "logged": result.worker_problems[:10],
        "notes": busy_notes([("throughput", written)]),
        "failures": throughput_failures(result),
    }


# --------------------------------------------------------------------------------------------
# Lag


def lag_failures(result: LagResult) -> list[str]:
    failures = []
    if result.driven.errors:
        failures.append(
            f"lag: failed requests {result.driven.errors}: {result.driven.failures[:3]}"
        )
    if result.drained_after is None:
        failures.append(f"lag: events not all processed and sent in time: {result.outcome}")
    statuses = result.outcome["events_by_status"]
    if set(statuses) - {"processed"}:
        failures.append(f"lag: events by status {statuses}")
    waited = _percentile(result.driven.waits, 0.99)
    if waited > KEPT_UP_SECONDS:
        failures.append(
            f"lag: the API did not keep up with the rate: requests waited {waited:.1f} s (p99) "
            "for a free connection, time the lags (from events.received_at) do not show"
        )
    return failures


def _ms(stats: dict[str, Any], key: str) -> str:
    value = stats.get(key)
    return "-" if value is None else f"{value:,.0f}"


def print_lag(result: LagResult) -> None:
    plan, driven = result.plan, result.driven
    print()
    requests_per_s = plan.events_per_s / plan.per_request
    print(
        f"Lag: {plan.events_per_s:,.0f} events/s open-loop ({requests_per_s:,.0f}"
        f" requests/s of {plan.per_request}) for {plan.seconds:.0f} s to `smr api`, one "
        f"`smr worker`; the first {plan.warmup_seconds:.0f} s are left out of the figures."
    )
    late = _percentile(driven.lateness, 0.99) * 1000
    p50, p99 = (_percentile(driven.latencies, q) * 1000 for q in (0.5, 0.99))
    wait = _percentile(driven.waits, 0.99) * 1000
    print(
        f"requests: {driven.sent:,} sent, {driven.answered:,} answered 202, errors "
        f"{driven.errors or 'none'}; answer p50 {p50:.1f} ms, p99 {p99:.1f} ms; waited for a "
        f"free connection p99 {wait:.1f} ms; made due p99 {late:.1f} ms late; "
        f"{driven.max_outstanding} unanswered at most"
    )
    header = f"{'per event (after warm-up)':<42}{'count':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    print(header)
    print("-" * len(header))
    for key, label in (
        ("processing", "processing lag (processed - received)"),
        ("to_mock_send", "accepted -> mock outbox sent_at"),
        ("to_delivery_sent", "accepted -> deliveries.sent_at"),
    ):
        stats = result.lags[key]
        print(
            f"{label:<42}{stats['count']:>9,}{_ms(stats, 'p50_ms'):>9}"
            f"{_ms(stats, 'p99_ms'):>9}{_ms(stats, 'max_ms'):>9}"
        )
    print("-" * len(header))
    memory = result.memory()
    flat = f"flat (end <= warm + {RSS_MARGIN_MIB:.0f})"
    print(f"{'RSS MiB':<10}{'start':>8}{'warm':>8}{'end':>8}{'max':>8}  {flat}")
    for name, m in memory.items():
        print(
            f"{name:<10}{m['start'] or 0:>8.1f}{m['after_warmup'] or 0:>8.1f}{m['end'] or 0:>8.1f}"
            f"{m['max'] or 0:>8.1f}  {'yes' if m['flat'] else 'NO'}"
        )
    cpu = result.cpu
    print(
        "cpu (cores, during the load): "
        + ", ".join(f"{name} {fmt_cpu(value)}" for name, value in cpu.items())
    )
    backlog = _gauge_max(result, "smr_event_backlog")
    lag_gauge = _gauge_max(result, "smr_event_lag_seconds")
    print(
        f"API /metrics: smr_event_backlog max {backlog if backlog is not None else 'n/a'}, "
        f"smr_event_lag_seconds max {lag_gauge if lag_gauge is not None else 'n/a'}; "
        f"drained {result.drained_after} s after the load; worker's "
        f"smr_events_processed_total {_series(result.processed_metric)}"
    )
    summary = lag_summary(result)
    print(
        f"processing lag p99: {_ms(result.lags['processing'], 'p99_ms')} ms  "
        f"(target < {TARGET_LAG_P99_MS:,.0f})  {verdict(summary['lag_pass'])}"
    )
    print(
        f"accepted -> mock send p99: {_ms(result.lags['to_mock_send'], 'p99_ms')} ms  "
        f"(target < {TARGET_SEND_P99_MS:,.0f})  {verdict(summary['send_pass'])}"
    )
    print(f"memory flat (api and worker): {verdict(summary['memory_flat'])}")
    print_activity(result.activity, "the API's and the worker's")
    for note in lag_failures(result) + busy_notes([("lag", result.cpu)]):
        print(f"note: {note}")
    for problem in result.problems[:10]:
        print(f"note: logged: {problem}")


def _series(values: dict[str, float]) -> str:
    """``{outcome="processed"}: 12000, ...`` without the metric's name; n/a when empty."""
    shown = [f"{k.partition('{')[2].rstrip('}') or k}: {v:,.0f}" for k, v in values.items()]
    return ", ".join(shown) or "n/a"


def _gauge_max(result: LagResult, name: str) -> float | None:
    values = [v[name] for _, v in result.gauges if name in v]
    return max(values) if values else None


def lag_summary(result: LagResult) -> dict[str, Any]:
    processing, send = result.lags["processing"], result.lags["to_mock_send"]
    complete = result.drained_after is not None and processing["count"] == result.lags["events"]
    memory = result.memory()
    return {
        "processing_p99_ms": processing["p99_ms"],
        "send_p99_ms": send["p99_ms"],
        "lag_pass": complete
        and processing["p99_ms"] is not None
        and processing["p99_ms"] < TARGET_LAG_P99_MS,
        "send_pass": complete
        and send["count"] == result.lags["deliveries"]
        and send["p99_ms"] is not None
        and send["p99_ms"] < TARGET_SEND_P99_MS,
        "memory_flat": all(m["flat"] for m in memory.values()),
    }


def lag_json(result: LagResult) -> dict[str, Any]:
    plan, driven = result.plan, result.driven
    return {
        "summary": lag_summary(result),
        "targets": {
            "processing_p99_ms": TARGET_LAG_P99_MS,
            "send_p99_ms": TARGET_SEND_P99_MS,
            "rss_margin_mib": RSS_MARGIN_MIB,
        },
        "plan": {
            "events_per_s": plan.events_per_s,
            "per_request": plan.per_request,
            "seconds": plan.seconds,
            "warmup_seconds": plan.warmup_seconds,
        },
        "requests": {
            "sent": driven.sent,
            "answered": driven.answered,
            "errors": driven.errors,
            "seconds": round(driven.seconds, 2),
            "answer_p50_ms": round(_percentile(driven.latencies, 0.5) * 1000, 2),
            "answer_p99_ms": round(_percentile(driven.latencies, 0.99) * 1000, 2),
            "wait_p99_ms": round(_percentile(driven.waits, 0.99) * 1000, 2),
            "late_p99_ms": round(_percentile(driven.lateness, 0.99) * 1000, 2),
            "max_outstanding": driven.max_outstanding,
        },
        "lags": result.lags,
        "memory_mib": result.memory(),
        "rss_samples": result.rss,
        "cpu_cores_used": result.cpu,
        "gauges": result.gauges,
        "pg_activity": activity_json(result.activity),
        "drained_after_s": result.drained_after,
        "smr_events_processed_total": result.processed_metric,
        "stored": result.outcome,
        "logged": result.problems[:10],
        "notes": busy_notes([("lag", result.cpu)]),
        "failures": lag_failures(result),
    }
