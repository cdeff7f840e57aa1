"""The ``sms`` channel: template SMS through Aliyun (阿里云短信) or Tencent Cloud (腾讯云短信).

- ``aliyun`` / ``tencent``: the two adapters, one SendSms call per message;
- ``signing``: the vendors' request signatures as pure functions;
- ``errors``: vendor code → retry / skip / fail tables.

The number format each vendor takes is in ``smr.phones``; the replies customers send back
(上行短信) are read by ``smr.inbound.sms``.

A playbook step sends a vendor-approved template with its params::

    send: {channel: sms, template: SMS_123456789, params: {name: "{{ contact.name }}"}}

Aliyun templates name their variables (``${name}``); Tencent's number them (``{1}``), so
Tencent params are keyed "1", "2", … (see ``tencent``).

Configuration (``SMR_SMS__…``): ``PROVIDER`` (aliyun | tencent), ``ACCESS_KEY_ID`` and
``ACCESS_KEY_SECRET`` (Tencent: SecretId and SecretKey), ``SIGN_NAME``, ``SDK_APP_ID``
(Tencent), ``REGION`` (cn-hangzhou | ap-guangzhou), ``BASE_URL`` and ``TIMEOUT_SECONDS`` (10).
Without a provider and all it needs, ``sms`` stays on the mock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime

from adapters.sms.aliyun import AliyunSms
from adapters.sms.base import SmsChannel, system_clock
from adapters.sms.tencent import TencentSms
from smr.channels import ChannelAdapter
from smr.config import SmsSettings

log = logging.getLogger(__name__)

CHANNEL = "sms"
PROVIDERS: dict[str, type[SmsChannel]] = {"aliyun": AliyunSms, "tencent": TencentSms}

__all__ = [
    "PROVIDERS",
    "AliyunSms",
    "SmsChannel",
    "TencentSms",
    "build_sms_routes",
]


def build_sms_routes(
    settings: SmsSettings,
    *,
    clock: Callable[[], datetime] = system_clock,
    skip: Collection[str] = (),
) -> dict[str, ChannelAdapter]:
    """``{"sms": adapter}`` when a provider and everything it needs are configured and ``sms``
    is not in ``skip`` (kept on the mock); else ``{}``."""
    if settings.provider is None or CHANNEL in skip:
        return {}
    adapter = PROVIDERS[settings.provider]
    if missing := adapter.missing(settings):
        log.warning("sms: provider %s lacks %s; sms stays on the mock", settings.provider, missing)
        return {}
    return {CHANNEL: adapter(settings, clock=clock)}
