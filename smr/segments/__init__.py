"""Segments (客户分层): named conditions over customers, kept as memberships as they change."""

from smr.segments.loader import (
    FOLDER,
    Segment,
    Segments,
    check_path,
    load_folder,
    load_text,
    segment_files,
)
from smr.segments.schema import SEGMENT_ID_PATTERN, SegmentSpec

__all__ = [
    "FOLDER",
    "SEGMENT_ID_PATTERN",
    "Segment",
    "SegmentSpec",
    "Segments",
    "check_path",
    "load_folder",
    "load_text",
    "segment_files",
]
