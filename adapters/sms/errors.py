"""Vendor error codes → what SMR does about them.

A code is looked up exactly, then as its family (``isp.*``, ``LimitExceeded.*``); anything
else is permanent. Retries back off exponentially up to ``SMR_RETRY_CAP_SECONDS`` (600 s) for
``SMR_MAX_ATTEMPTS`` (5) attempts, so a limit that lasts a day cannot clear by retrying: those
become skips instead (``frequency_capped`` for one number's limit, ``quota_exhausted`` for the
account's), and the attempt row keeps the vendor's words.

Aliyun (Dysmsapi, API错误码 help.aliyun.com/document_detail/101346; OpenAPI common codes). The
HTTP status of a refusal varies (Throttling.User and SignatureDoesNotMatch come with 400), so
the ``Code`` decides, and only a 429 / 5xx without one falls back to the status.

code                                  outcome
OK                                    sent (BizId)
isp.* (SYSTEM_ERROR, GATEWAY_ERROR)   retry after 1 s: the platform's fault
Throttling / Throttling.*             retry after 1 s: API rate limit (HTTP 400)
isv.BUSINESS_LIMIT_CONTROL            one number's limit; the Message says which:
                                      分钟级 → retry after 60 s, 小时级 → after 600 s,
                                      天级 → skipped (frequency_capped)
isv.DAY_LIMIT_CONTROL / MONTH_...     skipped (quota_exhausted): the account's daily / monthly
                                      cap set in the console; raising it is an operator's call
isp.RAM_PERMISSION_DENY               permanent: the key lacks AliyunDysmsFullAccess
isv.* and the rest                    permanent (number, template, sign, key, balance, …)

Tencent Cloud (SMS 2021-01-11 errorcodes; common error codes). The top-level
``Response.Error.Code`` and each number's ``SendStatusSet[].Code`` use the same codes.

code                                  outcome
Ok                                    sent (SerialNo)
InternalError.*                       retry after 1 s, except the ones that are the
                                      caller's fault (RequestTimeException: clock skew, …)
RequestLimitExceeded(.*)              retry after 1 s: API rate limit
LimitExceeded.PhoneNumberThirtySecondLimit   retry after 30 s
LimitExceeded.DeliveryFrequencyLimit  retry after 60 s (so is any other LimitExceeded.*)
LimitExceeded.PhoneNumberOneHourLimit retry after 600 s (may outlast the attempts)
LimitExceeded.PhoneNumberDailyLimit / PhoneNumberSameContentDailyLimit   skipped
                                      (frequency_capped)
LimitExceeded.AppDailyLimit / DailyLimit   skipped (quota_exhausted)
LimitExceeded.PhoneNumberCountLimit   permanent (more than 200 numbers in one call)
everything else                       permanent (AuthFailure.*, UnauthorizedOperation.*,
                                      InvalidParameterValue.*, FailedOperation.*, …)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from smr.channels import (
    PermanentSendError,
    RetriableSendError,
    SendError,
    SkippedSend,
)
from smr.statuses import SkipReason


@dataclass(frozen=True)
class Rule:
    outcome: Literal["retry", "skip", "fail"]
    retry_after: float | None = None
    reason: SkipReason | None = None

    def error(self, answer: str) -> SendError:
        if self.outcome == "retry":
            return RetriableSendError(answer, retry_after=self.retry_after, response=answer)
        if self.outcome == "skip":
            assert self.reason is not None
            return SkippedSend(self.reason, response=answer)
        return PermanentSendError(answer, response=answer)


RETRY = Rule("retry", retry_after=1)
FAIL = Rule("fail")
PER_NUMBER_DAY = Rule("skip", reason=SkipReason.FREQUENCY_CAPPED)
ACCOUNT_QUOTA = Rule("skip", reason=SkipReason.QUOTA_EXHAUSTED)

ALIYUN: dict[str, Rule] = {
    "isp.*": RETRY,
    "isp.RAM_PERMISSION_DENY": FAIL,
    "Throttling": RETRY,
    "Throttling.*": RETRY,
    "ServiceUnavailable": RETRY,
    "InternalError": RETRY,
    # Each call signs with a fresh nonce, so this comes from a replayed request; a retry is new.
    "SignatureNonceUsed": RETRY,
    "isv.BUSINESS_LIMIT_CONTROL": Rule("retry", retry_after=60),
    "isv.DAY_LIMIT_CONTROL": ACCOUNT_QUOTA,
    "isv.MONTH_LIMIT_CONTROL": ACCOUNT_QUOTA,
    "isv.MOBILE_NUMBER_ILLEGAL": FAIL,
    "isv.SMS_TEMPLATE_ILLEGAL": FAIL,
    "isv.TEMPLATE_MISSING_PARAMETERS": FAIL,
    "isv.SMS_SIGNATURE_ILLEGAL": FAIL,
    "isv.BLACK_KEY_CONTROL_LIMIT": FAIL,
    "isv.AMOUNT_NOT_ENOUGH": FAIL,
    "isv.OUT_OF_SERVICE": FAIL,
    "InvalidAccessKeyId.NotFound": FAIL,
    "SignatureDoesNotMatch": FAIL,
    "InvalidTimeStamp.Expired": FAIL,
}

#: isv.BUSINESS_LIMIT_CONTROL's Message names the window: "触发天级流控Permits:10".
ALIYUN_BUSINESS_LIMITS: dict[str, Rule] = {
    "小时级": Rule("retry", retry_after=600),
    "天级": PER_NUMBER_DAY,
}

TENCENT: dict[str, Rule] = {
    "InternalError": RETRY,
    "InternalError.*": RETRY,
    "InternalError.RequestTimeException": FAIL,
    "InternalError.SigVerificationFail": FAIL,
    "InternalError.SigFieldMissing": FAIL,
    "InternalError.JsonParseFail": FAIL,
    "InternalError.RestApiInterfaceNotExist": FAIL,
    "RequestLimitExceeded": RETRY,
    "RequestLimitExceeded.*": RETRY,
    "LimitExceeded": Rule("retry", retry_after=60),
    "LimitExceeded.*": Rule("retry", retry_after=60),
    "LimitExceeded.PhoneNumberThirtySecondLimit": Rule("retry", retry_after=30),
    "LimitExceeded.DeliveryFrequencyLimit": Rule("retry", retry_after=60),
    "LimitExceeded.PhoneNumberOneHourLimit": Rule("retry", retry_after=600),
    "LimitExceeded.PhoneNumberDailyLimit": PER_NUMBER_DAY,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": PER_NUMBER_DAY,
    "LimitExceeded.AppDailyLimit": ACCOUNT_QUOTA,
    "LimitExceeded.DailyLimit": ACCOUNT_QUOTA,
    "LimitExceeded.PhoneNumberCountLimit": FAIL,
    "InvalidParameterValue.IncorrectPhoneNumber": FAIL,
    "FailedOperation.TemplateIncorrectOrUnapproved": FAIL,
    "FailedOperation.SignatureIncorrectOrUnapproved": FAIL,
    "FailedOperation.PhoneNumberInBlacklist": FAIL,
    "FailedOperation.InsufficientBalanceInSmsPackage": FAIL,
    # Marketing SMS only between 08:00 and 22:00: the playbook's quiet hours should cover it.
    "FailedOperation.MarketingSendTimeConstraint": FAIL,
    "AuthFailure.*": FAIL,
    "UnauthorizedOperation.*": FAIL,
}


def rule_for(table: Mapping[str, Rule], code: str) -> Rule:
    family = code.split(".", 1)[0] + ".*"
    return table.get(code) or table.get(family) or FAIL


def aliyun_error(code: str, message: str, answer: str) -> SendError:
    rule = rule_for(ALIYUN, code)
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        window = next((w for w in ALIYUN_BUSINESS_LIMITS if w in message), None)
        rule = ALIYUN_BUSINESS_LIMITS[window] if window else rule
    return rule.error(answer)


def tencent_error(code: str, answer: str) -> SendError:
    return rule_for(TENCENT, code).error(answer)
