"""Settings read from the environment: lists as vendors' consoles give them, and secrets that
fail validation at start without appearing in the error."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from smr.config import Settings
from tests.unit.inbound import wecom_support as v


def test_an_invalid_encoding_aes_key_fails_at_start_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMR_WECOM__AES_KEY", "not-a-key-but-a-secret-all-the-same")

    with pytest.raises(ValidationError) as raised:
        Settings()

    message = str(raised.value)
    assert "wecom.aes_key" in message
    assert "43-character EncodingAESKey" in message
    assert "not-a-key-but-a-secret" not in message


def test_the_official_encoding_aes_key_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMR_WECOM__AES_KEY", v.AES_KEY)

    settings = Settings()

    assert settings.wecom.aes_key is not None
    assert settings.wecom.aes_key.get_secret_value() == v.AES_KEY


@pytest.mark.parametrize(
    ("value", "words"),
    [("TD, 退订,STOP", ["TD", "退订", "STOP"]), ('["TD", "退订"]', ["TD", "退订"])],
    ids=["comma-separated", "json"],
)
def test_unsubscribe_replies_read_as_a_list(
    monkeypatch: pytest.MonkeyPatch, value: str, words: list[str]
) -> None:
    monkeypatch.setenv("SMR_SMS__UNSUBSCRIBE_REPLIES", value)

    assert Settings().sms.unsubscribe_replies == words


def test_webhook_secrets_are_keyed_by_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMR_WEBHOOK_SECRETS__SHOPIFY", "shpss_1")
    monkeypatch.setenv("SMR_WEBHOOK_SECRETS__SMS_ALIYUN", "token-2")

    secrets = Settings().webhook_secrets

    assert {k: s.get_secret_value() for k, s in secrets.items()} == {
        "shopify": "shpss_1",
        "sms_aliyun": "token-2",
    }
    assert "shpss_1" not in repr(secrets)
