"""A simulation as an aligned text table, times in the policies' timezone."""

from __future__ import annotations

import unicodedata
from typing import Any

from smr.simulate.timeline import Entry, Simulation

HEADER = ("TIME", "PLAYBOOK", "STEP", "KIND", "CHANNEL", "STATUS", "REASON", "TEXT")
GAP = "  "


def render(simulation: Simulation) -> str:
    """The timeline, one row per entry, then the contact as it ends up and any notes."""
    lines = aligned([HEADER, *(_row(e, simulation) for e in simulation.timeline)])
    tz, start, end = simulation.tz, simulation.start, simulation.end
    lines.append("")
    lines.append(
        f"{start.astimezone(tz):%Y-%m-%d %H:%M} → {end.astimezone(tz):%Y-%m-%d %H:%M} ({tz})"
    )
    if simulation.contact is not None:
        lines.append(_contact(simulation.contact))
    lines += [f"note: {note}" for note in simulation.notes]
    return "\n".join(lines)


def _row(entry: Entry, simulation: Simulation) -> tuple[str, ...]:
    reason = entry.reason or ""
    if entry.detail:
        reason = f"{reason} ({entry.detail})" if reason else entry.detail
    return (
        f"{entry.at.astimezone(simulation.tz):%Y-%m-%d %H:%M}",
        entry.playbook,
        entry.step,
        entry.kind,
        entry.channel or "",
        entry.status or "",
        _one_line(reason),
        _one_line(entry.text or ""),
    )


def _one_line(text: str) -> str:
    return " ⏎ ".join(part.strip() for part in text.splitlines()) if "\n" in text else text


def aligned(rows: list[tuple[str, ...]]) -> list[str]:
    """``rows`` as lines of columns, each as wide as its widest cell."""
    widths = [max(width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [_line(row, widths) for row in rows]


def _line(row: tuple[str, ...], widths: list[int]) -> str:
    cells = [cell + " " * (size - width(cell)) for cell, size in zip(row, widths, strict=True)]
    return GAP.join(cells).rstrip()


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _contact(contact: dict[str, Any]) -> str:
    stats = contact["stats"]
    parts = [
        f"contact {contact.get('name') or contact['id']}",
        f"tags: {', '.join(contact['tags']) or '-'}",
        f"attributes: {contact['attributes'] or '-'}",
        f"orders: {stats['orders']}, spent {stats['total_spent']}",
    ]
    if contact["opted_out"]:
        parts.append(f"opted out: {', '.join(contact['opted_out'])}")
    return " · ".join(parts)
