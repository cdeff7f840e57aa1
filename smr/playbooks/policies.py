"""``policies.yaml``: the timezone, quiet hours, frequency caps, send rate limits, template
``vars`` and the WeCom corp tags that SMR tags are mirrored to."""

from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StringConstraints, TypeAdapter, ValidationError, field_validator

from smr.channels import RateKey, SendRate
from smr.playbooks.fields import ChannelName, ClockTime, Duration, NonEmptyText
from smr.playbooks.strict import StrictModel

#: The channel ``notify_staff`` steps go out on (WeCom ``message/send``); a rate limit may name it.
STAFF_CHANNEL = "staff"


class QuietHours(StrictModel):
    start: ClockTime = Field(alias="from")
    end: ClockTime = Field(alias="to")


class FrequencyCap(StrictModel):
    max: int = Field(ge=1)
    per: Duration

    @field_validator("per")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("a frequency cap needs a period longer than 0s")
        return value


class RateLimit(StrictModel):
    """At most ``max`` sends on ``channel`` within any ``per`` (a sliding window), across every
    worker; with ``key``, for each staff member (``staff``) or contact (``contact``) apart.
    A send over the limit waits, as a scheduled delivery, until the window lets it through."""

    channel: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    max: int = Field(ge=1)
    per: Duration
    key: RateKey | None = None

    @field_validator("per")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("a rate limit needs a period longer than 0s")
        return value

    @property
    def rate(self) -> SendRate:
        return SendRate(max=self.max, per=self.per, key=self.key)


#: The var that says how long a unit of each SKU lasts (``Policies.use_cycle_days``).
CYCLES = "use_cycle_days"
_CYCLE_DAYS = TypeAdapter(
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=200)],
        Annotated[float, Field(gt=0, le=3650)],
    ]
)


class Policies(StrictModel):
    timezone: str = "Asia/Shanghai"
    quiet_hours: QuietHours | None = None
    frequency_caps: list[FrequencyCap] = Field(default_factory=list)
    on_cap: Literal["skip", "defer"] = "skip"
    #: Channels on which marketing needs the customer's recorded consent (``contact.consented``):
    #: China's rules for commercial SMS forbid marketing SMS without it.
    require_consent: list[ChannelName] = Field(default_factory=lambda: ["sms"])
    #: Channels listed here take these limits instead of the ones their adapter declares.
    rate_limits: list[RateLimit] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    #: SMR tag → WeCom corp tag id (``et…``, from get_corp_tag_list). A ``tag`` step that adds or
    #: removes a mapped tag also marks it on the customer in WeCom (externalcontact/mark_tag).
    wecom_tags: dict[str, NonEmptyText] = Field(default_factory=dict)

    @field_validator("vars")
    @classmethod
    def _use_cycles(cls, value: dict[str, Any]) -> dict[str, Any]:
        if CYCLES in value:
            try:
                _CYCLE_DAYS.validate_python(value[CYCLES])
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in (CYCLES, *first["loc"]))
                raise ValueError(
                    f"{where}: {first['msg']} (the days a unit of the SKU lasts)"
                ) from None
        return value

    @property
    def use_cycle_days(self) -> dict[str, float]:
        """SKU → days one unit lasts (``vars.use_cycle_days``): purchase history counts each
        SKU's supply by it (``contact.products[sku].runs_out_at``)."""
        return dict(self.vars.get(CYCLES, {}))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone '{value}' (use an IANA name)") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
