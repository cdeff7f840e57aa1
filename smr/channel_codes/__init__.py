"""Channel codes (渠道活码): declared in YAML, kept in WeCom by SMR, reported per code."""

from smr.channel_codes.loader import (
    FOLDER,
    ChannelCode,
    ChannelCodes,
    CheckResult,
    Declared,
    check_path,
    code_files,
    load_folder,
    load_text,
)
from smr.channel_codes.schema import ChannelCodeSpec, CodeKind, GroupSpec

__all__ = [
    "FOLDER",
    "ChannelCode",
    "ChannelCodeSpec",
    "ChannelCodes",
    "CheckResult",
    "CodeKind",
    "Declared",
    "GroupSpec",
    "check_path",
    "code_files",
    "load_folder",
    "load_text",
]
