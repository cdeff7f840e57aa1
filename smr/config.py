"""The one settings object. Environment variables use the prefix ``SMR_`` and ``__`` for nesting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from smr.inbound.wecom.crypto import aes_key_bytes
from smr.inbound.wecom.errors import InvalidAesKey
from smr.subjects import IDENTITY_KINDS, IdentityKind

DEFAULT_DATA_DIR = Path("data")


class MockSettings(BaseModel):
    latency_ms: int = Field(default=0, ge=0)
    fail_rate: float = Field(default=0.0, ge=0.0, le=1.0)


class WeComSettings(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)

    corp_id: str | None = None
    #: The self-built app's secret; serves every WeCom call unless a narrower secret is set.
    secret: SecretStr | None = None
    agent_id: str | None = None
    token: SecretStr | None = None
    aes_key: SecretStr | None = None
    base_url: str = "https://qyapi.weixin.qq.com"
    #: The 客户联系 secret, for externalcontact/* (welcome, mass-send tasks), if separate.
    contact_secret: SecretStr | None = None
    #: The 微信客服 secret, for kf/* (send_msg, sync_msg), if separate.
    kf_secret: SecretStr | None = None
    #: Signs what the customer's chat-archive gateway pushes to POST /v1/wecom/archive
    #: (HMAC-SHA256); without it that route answers 404.
    archive_secret: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    #: A mass-send task the owner staff has not sent within this long is cancelled.
    task_timeout_hours: float = Field(default=72.0, gt=0)
    #: How far back the Moments engagement poll reads likes and comments (WeCom: ≤ 30 days).
    moment_engagement_days: int = Field(default=7, ge=1, le=30)

    @field_validator("aes_key")
    @classmethod
    def _encoding_aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        """Refused at start, not at WeCom's first callback."""
        if value is not None:
            try:
                aes_key_bytes(value.get_secret_value())
            except InvalidAesKey:
                raise ValueError(
                    "must be the callback's 43-character EncodingAESKey from the WeCom console"
                ) from None
        return value

    def secret_for(self, scope: Literal["app", "contact", "kf"]) -> SecretStr | None:
        narrower = {"app": None, "contact": self.contact_secret, "kf": self.kf_secret}[scope]
        return narrower or self.secret


class SmsSettings(BaseModel):
    provider: Literal["aliyun", "tencent"] | None = None
    #: Aliyun AccessKey ID / secret, or Tencent Cloud SecretId / SecretKey.
    access_key_id: str | None = None
    access_key_secret: SecretStr | None = None
    sign_name: str | None = None
    #: Tencent only: the SmsSdkAppId of the SMS application.
    sdk_app_id: str | None = None
    #: Default: cn-hangzhou (Aliyun), ap-guangzhou (Tencent).
    region: str | None = None
    #: Default: https://dysmsapi.aliyuncs.com (Aliyun), https://sms.tencentcloudapi.com (Tencent).
    base_url: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    #: Replies that unsubscribe the phone from marketing SMS (case and end punctuation aside).
    unsubscribe_replies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["TD", "T", "N", "退订", "R"]
    )

    @field_validator("unsubscribe_replies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [word.strip() for word in value.split(",") if word.strip()]
        return value


def _split_tokens(value: object) -> object:
    if isinstance(value, str):
        return [SecretStr(t.strip()) for t in value.split(",") if t.strip()]
    return value


class IngestSettings(BaseModel):
    """The event log (``SMR_INGEST__…``)."""

    #: Accepting answers 429 with Retry-After while more events than this wait to be processed.
    max_backlog: int = Field(default=200_000, ge=1)
    #: Events, and due runs, a processor takes per transaction.
    batch_size: int = Field(default=500, ge=1, le=5000)
    #: How long a processor owns a partition without renewing (a dead one's partitions, with
    #: their events and due runs, pass to the others).
    lease_seconds: float = Field(default=15.0, ge=1)
    #: How often an idle processor looks for events accepted by other processes.
    poll_seconds: float = Field(default=0.1, gt=0)
    #: Batches a processor works on at once, each over its own part of the partitions (one
    #: on SQLite, which writes one transaction at a time).
    lanes: int = Field(default=2, ge=1, le=8)
    #: Connections of the PostgreSQL pool accepting events (besides the engine's).
    pool_size: int = Field(default=20, ge=1, le=200)


class RetentionSettings(BaseModel):
    """Days each kind of row is kept (``SMR_RETENTION__…``); unset keeps them for ever. Older
    rows are pruned every hour, in batches, each its own short transaction."""

    #: Processed events (their runs keep their other rows; an event a waiting run started is
    #: kept until the run ends). A source that sends an event again after this many days
    #: makes a new one: keep it longer than any source's resend window.
    events_days: int | None = Field(default=None, ge=1)
    #: Run log entries (``GET /v1/runs/{id}``'s ``trace``).
    trace_days: int | None = Field(default=None, ge=1)
    #: Send attempts with the vendors' answers.
    attempts_days: int | None = Field(default=None, ge=1)
    #: What the mock channel sent.
    outbox_days: int | None = Field(default=None, ge=1)
    #: Rows deleted per transaction.
    batch_size: int = Field(default=5000, ge=1, le=100_000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SMR_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    playbooks_dir: Path = Path("playbooks")
    #: How often the service looks for changed playbook files; 0 turns the watch off.
    playbooks_poll_seconds: float = Field(default=2.0, ge=0)
    admin_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    ingest_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    tick_seconds: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=500, ge=1, le=5000)
    #: Claim loops per worker, each with its own transaction: while one waits on the database,
    #: another prepares or sends. Three kept two cores busiest in ``bench/dispatch.py``.
    dispatch_lanes: int = Field(default=3, ge=1, le=16)
    lease_seconds: int = Field(default=60, ge=5)
    #: ``smr worker`` serves /healthz and /metrics on this port (none: no HTTP server).
    worker_health_port: int | None = Field(default=None, ge=1, le=65535)
    #: Loopback, like ``smr api``: /metrics is unauthenticated. docker-compose.yml opens it.
    worker_health_host: str = "127.0.0.1"
    #: The worker's /healthz answers 503 when its ticker has not finished a tick for this long.
    worker_health_stale_seconds: float = Field(default=300.0, gt=0)
    cron_grace_seconds: int = Field(default=3600, ge=0)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_cap_seconds: float = Field(default=600.0, gt=0)
    max_body_bytes: int = 1024 * 1024
    #: ``text`` lines, or ``json``: one object a line with the request, event, run and delivery ids.
    log_format: Literal["text", "json"] = "text"
    channel_routes: dict[str, str] = Field(default_factory=dict)
    #: The identity kinds that make two contacts one person when an event names both (see
    #: ``smr.services.merging``); comma-separated, empty: contacts never merge.
    merge_by: Annotated[list[IdentityKind], NoDecode] = Field(
        default_factory=lambda: list(IDENTITY_KINDS)
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    mock: MockSettings = Field(default_factory=MockSettings)
    wecom: WeComSettings = Field(default_factory=WeComSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    webhook_secrets: dict[str, SecretStr] = Field(default_factory=dict)

    _split = field_validator("admin_tokens", "ingest_tokens", mode="before")(_split_tokens)

    @field_validator("merge_by", mode="before")
    @classmethod
    def _kinds(cls, value: object) -> object:
        if isinstance(value, str):
            return [kind.strip() for kind in value.split(",") if kind.strip()]
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'smr.db'}"
