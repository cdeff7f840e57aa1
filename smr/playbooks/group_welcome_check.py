"""Warnings about greeting group joiners the costly way, and about a misspelt ``%NICKNAME%``.

A send on a staff-confirmed group channel (WeCom 群发 to a customer group, ``wecom_group``) in
a playbook that starts on ``group.joined`` makes one mass-send task per joiner: each spends
one of the group's monthly mass sends (as many a month as the month has days) and waits for
the owner to confirm it. WeCom's own way is a group welcome template (``group_welcome``),
applied to the groups once, that WeCom sends to every joiner itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from smr.channels import Capabilities, Target
from smr.playbooks.errors import Loc, NodeIndex, PlaybookError, error_at, format_path, loc_of
from smr.playbooks.group_welcome import NICKNAME
from smr.playbooks.program import Program
from smr.playbooks.schema import Playbook
from smr.playbooks.steps.send import Send

JOINED = "group.joined"
_NICKNAME_ANY_CASE = re.compile(re.escape(NICKNAME), re.IGNORECASE)


def group_welcome_warnings(
    spec: Playbook,
    program: Program,
    *,
    trigger_event: str | None,
    channels: Mapping[str, Capabilities],
    nodes: NodeIndex,
    file: str,
) -> list[PlaybookError]:
    found = _per_joiner_sends(program, trigger_event, channels) + _nickname_case(spec)
    return [
        error_at(
            nodes.find(loc), file=file, path=format_path(loc), message=message, severity="warning"
        )
        for loc, message in found
    ]


def _per_joiner_sends(
    program: Program, trigger_event: str | None, channels: Mapping[str, Capabilities]
) -> list[tuple[Loc, str]]:
    if trigger_event != JOINED:
        return []
    return [
        (
            (*loc_of(send.step_path), "send", "channel"),
            f"channel '{send.channel}' on {JOINED} makes one mass-send task per joiner: each "
            "spends one of the group's monthly mass sends (as many a month as the month has "
            "days) and waits for the owner to confirm it. Declare group_welcome instead: a "
            "WeCom group welcome template, applied to the groups once, that WeCom sends to "
            f"every joiner itself ({NICKNAME} for the joiner's name)",
        )
        for send in program.instructions
        if isinstance(send, Send) and _group_mass_send(channels.get(send.channel))
    ]


def _group_mass_send(declared: Capabilities | None) -> bool:
    return declared is not None and declared.confirmed_by_staff and declared.target is Target.GROUP


def _nickname_case(spec: Playbook) -> list[tuple[Loc, str]]:
    text = spec.group_welcome.text if spec.group_welcome is not None else None
    if text is None:
        return []
    wrong = sorted({m for m in _NICKNAME_ANY_CASE.findall(text) if m != NICKNAME})
    if not wrong:
        return []
    message = f"WeCom replaces {NICKNAME} only in capitals; {', '.join(wrong)} stays as written"
    return [(("group_welcome", "text"), message)]
