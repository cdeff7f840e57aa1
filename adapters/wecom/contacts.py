"""externalcontact/get (获取客户详情): what WeCom knows of a customer, for the contact.added and
contact.edited events its callbacks announce without any detail.

From the answer SMR keeps the customer's WeChat name, and from the follow_user entry of the staff
the callback names: the remark (备注), the description, the corp tags (``wecom_tags``, tag names)
and the first remark mobile (备注手机号), which becomes the contact's phone, so a customer who adds
a staff account is the contact their shop orders reach.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from adapters.wecom.client import WeComClient
from smr.channels import ContactProfile
from smr.edge import storable

API = "externalcontact/get"


async def profile(
    client: WeComClient, secret: SecretStr, *, external_userid: str, staff: str | None
) -> ContactProfile:
    """The customer as WeCom describes them to ``staff``. Raises SendError on a refusal."""
    answer = await client.call(API, secret, None, query={"external_userid": external_userid})
    return read_profile(answer, staff=staff)


def read_profile(answer: Mapping[str, Any], *, staff: str | None) -> ContactProfile:
    """The profile, with text a database cannot hold (a NUL in a remark) replaced, not kept."""
    answer = storable(dict(answer))
    customer = answer.get("external_contact") or {}
    follows = [f for f in answer.get("follow_user") or [] if isinstance(f, dict)]
    mine = next((f for f in follows if f.get("userid") == staff), None)
    attributes: dict[str, Any] = {}
    phone = None
    if mine is not None:
        for key in ("remark", "description"):
            if value := mine.get(key):
                attributes[f"wecom_{key}"] = str(value)
        tags = [t.get("tag_name") for t in mine.get("tags") or [] if isinstance(t, dict)]
        attributes["wecom_tags"] = [str(t) for t in tags if t]
        phone = next((str(m) for m in mine.get("remark_mobiles") or [] if m), None)
    name = customer.get("name") if isinstance(customer, dict) else None
    return ContactProfile(name=str(name) if name else None, phone=phone, attributes=attributes)
