"""The customer groups a simulation's group schedules run for.

The scratch database has no groups of its own, so each playbook whose schedule targets groups
(``groups:``) gets one sample group made to match its target: owned by its first ``owner``,
named with what ``name_contains`` asks for, carrying its first ``tags_any``. Its runs and
posts then show in the timeline beside the simulated customer's.
"""

from __future__ import annotations

from collections.abc import Iterable

from smr.playbooks import LoadedPlaybook, ScheduleTrigger
from smr.repositories.simulation import SampleGroup

SAMPLE_OWNER = "owner"


def sample_groups(playbooks: Iterable[LoadedPlaybook]) -> list[SampleGroup]:
    found = []
    for playbook in sorted(playbooks, key=lambda p: p.id):
        trigger = playbook.spec.trigger
        if not isinstance(trigger, ScheduleTrigger) or trigger.groups is None:
            continue
        target = trigger.groups
        found.append(
            SampleGroup(
                chat_id=f"sim-{playbook.id}",
                name=f"{target.name_contains or ''}模拟群",
                owner=target.owner[0] if target.owner else SAMPLE_OWNER,
                tags=tuple(target.tags_any[:1]),
            )
        )
    return found
