"""WeCom errcodes → what SMR does about them.

WeCom answers HTTP 200 with ``{"errcode": N, "errmsg": "..."}``; only ``errcode`` is meant to be
keyed on (全局错误码, document/path/90455). Codes are global, so one table serves every endpoint.

errcode                 meaning                                      outcome
0                       ok                                           success
40001 / 40014 / 42001   token invalid / not the latest / expired     new token, replay once
-1                      系统繁忙                                      retriable after 1 s
45009                   接口调用超过限制 (a minute's block: 60 s)       retriable after 60 s
45033                   接口并发调用超过限制                            retriable after 2 s
41096                   another app is sending the welcome           retriable after 1 s
41048                   无可发送的客户 (mass-send quota used up)        skipped: quota_exhausted
41050                   welcome code invalid (older than 20 s)       skipped: window_expired
41051                   welcome sent already / chat started          skipped: duplicate
95001                   kf: 5 messages sent in the window            skipped: window_expired
95002                   kf: 48 h since the customer's last message   skipped: window_expired
40007                   invalid media_id (expired, another corp's)   permanent (InvalidMedia): a
                                                                     send that used a cached id
                                                                     uploads again, once
any other               40003, 40096, 48002, 60020, 81013, 84061,    permanent
                        95000, 95018, …
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from smr.channels import (
    PermanentSendError,
    RetriableSendError,
    SendError,
    SkippedSend,
)
from smr.statuses import SkipReason

#: The access token was refused: fetch a new one and replay the call once.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})


@dataclass(frozen=True)
class Rule:
    outcome: Literal["retry", "skip"]
    retry_after: float | None = None
    reason: SkipReason | None = None


RULES: dict[int, Rule] = {
    -1: Rule("retry", retry_after=1),
    45009: Rule("retry", retry_after=60),
    45033: Rule("retry", retry_after=2),
    41096: Rule("retry", retry_after=1),
    41048: Rule("skip", reason=SkipReason.QUOTA_EXHAUSTED),
    41050: Rule("skip", reason=SkipReason.WINDOW_EXPIRED),
    41051: Rule("skip", reason=SkipReason.DUPLICATE),
    95001: Rule("skip", reason=SkipReason.WINDOW_EXPIRED),
    95002: Rule("skip", reason=SkipReason.WINDOW_EXPIRED),
}


#: WeCom does not know a media_id.
INVALID_MEDIA_ID = 40007


class InvalidMedia(PermanentSendError):
    """WeCom refused a media_id (40007): it expired early, or another corp uploaded it."""


def describe(api: str, errcode: int, errmsg: str) -> str:
    """The vendor's answer as it is recorded in the delivery attempt."""
    return f"{api}: errcode={errcode} errmsg={errmsg}"


def error_for(api: str, errcode: int, errmsg: str) -> SendError:
    """The SendError a non-zero errcode (other than a token error) comes to."""
    answer = describe(api, errcode, errmsg)
    if errcode == INVALID_MEDIA_ID:
        return InvalidMedia(answer)
    rule = RULES.get(errcode)
    if rule is None:
        return PermanentSendError(answer)
    if rule.outcome == "retry":
        return RetriableSendError(answer, retry_after=rule.retry_after)
    assert rule.reason is not None
    return SkippedSend(rule.reason, response=answer)
