"""WeCom (企业微信) callbacks: the message crypto and the translation of events.

``WXBizMsgCrypt`` verifies and opens what WeCom posts (and seals passive replies);
``translate`` turns the decrypted XML into canonical events.
"""

from smr.inbound.wecom.callbacks import (
    DESCRIBED,
    KfPull,
    Translation,
    kf_pull_requested,
    translate,
    with_group,
    with_profile,
)
from smr.inbound.wecom.crypto import WXBizMsgCrypt
from smr.inbound.wecom.errors import (
    CallbackError,
    InvalidAesKey,
    InvalidPadding,
    InvalidSignature,
    MalformedCallback,
    WrongReceiveId,
)

__all__ = [
    "DESCRIBED",
    "CallbackError",
    "InvalidAesKey",
    "InvalidPadding",
    "InvalidSignature",
    "KfPull",
    "MalformedCallback",
    "Translation",
    "WXBizMsgCrypt",
    "WrongReceiveId",
    "kf_pull_requested",
    "translate",
    "with_group",
    "with_profile",
]
