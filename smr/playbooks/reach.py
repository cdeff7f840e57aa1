"""Warnings about steps production could not take as written, from what each channel declares
(``smr.channels.Capabilities``) and whom the playbook runs for (a customer, a customer group of
a ``groups`` schedule, the corp of a ``once`` schedule).

- A channel that needs what only some trigger events carry (WeCom's welcome code, the group of
  a group event, the 微信客服 account), or what a group or the corp does not have (a phone, a
  WeCom customer id), where the playbook's runs lack it: every such send would be skipped with
  ``missing_identity``.
- A Moments post (a channel reaching nobody in particular) in a playbook that runs per
  customer or per group: one post per run.
- A staff-confirmed channel (WeCom 群发) whose text in a scheduled playbook differs per
  customer: WeCom makes one task per distinct text, so the staff would confirm one task per
  customer instead of one for the whole audience.
- ``tag`` and ``set`` in a group's or the corp's run: a group's tags are kept with the group.
- Attachments of a kind the channel cannot send (any on an SMS, a mini-program card on Moments).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from smr.channels import TRIGGER_ADDRESSES, Address, Capabilities, Target
from smr.playbooks.errors import Loc, NodeIndex, PlaybookError, error_at, format_path, loc_of
from smr.playbooks.program import Program
from smr.playbooks.steps.send import Send
from smr.playbooks.steps.set_attrs import SetAttrs
from smr.playbooks.steps.tag import Tag
from smr.subjects import ContactKind

#: Context names whose value differs from one customer to the next.
PER_CUSTOMER = frozenset({"contact", "event", "trigger", "run"})
#: What a group's contact row offers a send (see ``smr.subjects``); the corp's offers nothing.
GROUP_ADDRESSES = frozenset({Address.CHAT_ID, Address.OWNER_STAFF})
_ONE = {ContactKind.PERSON: "customer", ContactKind.GROUP: "group", ContactKind.CORP: "run"}
_SUBJECT = {ContactKind.GROUP: "each group of its groups target", ContactKind.CORP: "the corp"}


def reach_warnings(
    program: Program,
    *,
    trigger_events: frozenset[str],
    subject: ContactKind,
    channels: Mapping[str, Capabilities],
    nodes: NodeIndex,
    file: str,
) -> list[PlaybookError]:
    """``trigger_events`` is empty for a scheduled playbook; ``subject`` whom its runs are for."""
    found: list[tuple[Loc, str]] = []
    for instruction in program.instructions:
        if isinstance(instruction, Send) and instruction.channel in channels:
            declared = channels[instruction.channel]
            found += _problems(instruction, declared, trigger_events, subject)
        elif isinstance(instruction, Tag | SetAttrs) and subject is not ContactKind.PERSON:
            key = "tag" if isinstance(instruction, Tag) else "set"
            message = (
                f"{key} changes a customer; this playbook runs for {_SUBJECT[subject]}. "
                "A group's tags are set with POST /v1/groups/{chat_id}/tags"
            )
            found.append(((*loc_of(instruction.step_path), key), message))
    return [
        error_at(nodes.find(loc), file=file, path=format_path(loc), message=m, severity="warning")
        for loc, m in found
    ]


def _problems(
    send: Send, declared: Capabilities, trigger_events: frozenset[str], subject: ContactKind
) -> Iterator[tuple[Loc, str]]:
    at = (*loc_of(send.step_path), "send")
    if subject is not ContactKind.PERSON:
        yield from _missing_for_subject(send, declared, subject, at)
    else:
        yield from _missing_from_trigger(send, declared, trigger_events, at)
    if declared.target is Target.CORP and subject is not ContactKind.CORP:
        yield (
            (*at, "channel"),
            f"channel '{send.channel}' posts for the corp, and this playbook runs per "
            f"{'group' if subject is ContactKind.GROUP else 'customer'}: one post per run. "
            "Post from a schedule with once: true",
        )
    if refused := sorted({str(a.kind) for a in send.attachments} - declared.attachments):
        takes = ", ".join(sorted(declared.attachments)) or "no attachments"
        yield (
            (*at, "attachments"),
            f"channel '{send.channel}' takes {takes}: {', '.join(refused)} would not go",
        )
    personal = sorted(send.text.names & PER_CUSTOMER) if send.text else []
    if declared.confirmed_by_staff and not trigger_events and personal:
        yield (
            (*at, "text"),
            f"the text reads {', '.join(personal)}, so it differs per {_ONE[subject]}: WeCom "
            "makes one mass-send task per distinct text and the staff must confirm each one. "
            "Write one text for the whole audience (vars and now are the same for everyone)",
        )


def _missing_from_trigger(
    send: Send, declared: Capabilities, trigger_events: frozenset[str], at: Loc
) -> Iterator[tuple[Loc, str]]:
    for address in sorted(declared.needs & TRIGGER_ADDRESSES.keys()):
        carriers = TRIGGER_ADDRESSES[address]
        lacking = sorted(trigger_events - carriers)
        if trigger_events and not lacking:
            continue
        if not trigger_events:
            which = "this playbook runs on a schedule: every send here"
        elif len(lacking) == len(trigger_events):
            named = " / ".join(f"'{e}'" for e in lacking)
            which = f"this playbook starts on {named}: every send here"
        else:
            named = " / ".join(f"'{e}'" for e in lacking)
            which = f"a run started by {named} does not have it: its sends"
        yield (
            (*at, "channel"),
            f"channel '{send.channel}' needs the {address} that only "
            f"{' / '.join(sorted(carriers))} events carry, and {which} would be skipped "
            "(missing_identity)",
        )


def _missing_for_subject(
    send: Send, declared: Capabilities, subject: ContactKind, at: Loc
) -> Iterator[tuple[Loc, str]]:
    offered = GROUP_ADDRESSES if subject is ContactKind.GROUP else frozenset()
    if missing := sorted(declared.needs - offered):
        yield (
            (*at, "channel"),
            f"channel '{send.channel}' needs {', '.join(missing)}, which "
            f"{_SUBJECT[subject]} does not have: every send here would be skipped "
            "(missing_identity)",
        )
