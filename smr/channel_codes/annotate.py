"""A contact.added through a declared code carries the code: ``data.channel_code``.

Playbooks read it as ``event.data.channel_code.name`` / ``.welcome``; the bundled welcome
playbook greets only when ``welcome`` is not false. The event is stored so annotated, so the
run log shows which code (as declared then) brought the contact.
"""

from __future__ import annotations

from collections.abc import Sequence

from smr.channel_codes.loader import Declared
from smr.schemas import EventIn

ADDED = "contact.added"


def annotate(events: Sequence[EventIn], declared: Declared) -> list[EventIn]:
    """``events``, each contact.added whose ``data.state`` is a declared code annotated."""
    if not declared.codes:
        return list(events)
    return [_annotated(event, declared) for event in events]


def _annotated(event: EventIn, declared: Declared) -> EventIn:
    state = event.data.get("state") if event.type == ADDED else None
    code = declared.codes.get(state) if isinstance(state, str) else None
    if code is None or "channel_code" in event.data:
        return event
    spec = code.spec
    about = {"name": spec.name, "kind": spec.kind.value, "welcome": spec.welcome}
    return event.model_copy(update={"data": {**event.data, "channel_code": about}})
