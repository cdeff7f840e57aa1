"""A segment file (客户分层) as a strict pydantic model: one segment per file, like a playbook."""

from __future__ import annotations

from pydantic import Field

from smr.playbooks.fields import SEGMENT_ID_PATTERN, ExpressionText, NonEmptyText, SegmentId
from smr.playbooks.strict import StrictModel

__all__ = ["SEGMENT_ID_PATTERN", "SegmentSpec"]


class SegmentSpec(StrictModel):
    """Customers (contacts of kind person) who carry one of ``tags_any`` (when given), none of
    ``tags_none``, and for whom ``if`` holds (an expression over ``contact``, ``now`` and
    ``vars``)."""

    id: SegmentId
    description: NonEmptyText | None = None
    tags_any: list[NonEmptyText] = Field(default_factory=list)
    tags_none: list[NonEmptyText] = Field(default_factory=list)
    condition: ExpressionText | None = Field(default=None, alias="if")
