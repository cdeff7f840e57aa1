"""GET /v1/contacts/{id} and GET /v1/contacts?phone=… | wecom_userid=… | shop_customer_id=…"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from smr import phones
from smr.api.deps import AdminOnly, SessionDep
from smr.api.models import ContactDetail
from smr.api.openapi import ADMIN, problems
from smr.errors import InvalidInput
from smr.services import groups, runlog

router = APIRouter(
    prefix="/v1/contacts", tags=["contacts"], dependencies=[AdminOnly], responses=ADMIN
)


@router.get("", response_model=ContactDetail, responses=problems(404))
async def find_contact(
    session: SessionDep,
    phone: str | None = None,
    wecom_userid: str | None = None,
    shop_customer_id: str | None = None,
) -> dict[str, Any]:
    candidates = {
        "phone": _stored_phone(phone) if phone else None,
        "wecom_userid": wecom_userid,
        "shop_customer_id": shop_customer_id,
    }
    given = {k: v for k, v in candidates.items() if v}
    if len(given) != 1:
        raise InvalidInput(
            "Give exactly one identity to look up.",
            errors=[{"path": "query", "message": "one of phone, wecom_userid, shop_customer_id"}],
        )
    ((kind, value),) = given.items()
    return await _with_groups(session, await runlog.find_contact(session, kind=kind, value=value))


def _stored_phone(phone: str) -> str:
    """The form contacts store ``phone`` in, so any way of writing a number finds it."""
    try:
        return phones.normalise(phone)
    except phones.NotAPhone as exc:
        errors = [{"path": "query.phone", "message": str(exc)}]
        raise InvalidInput("The phone to look up is not a phone number.", errors=errors) from None


@router.get("/{contact_id}", response_model=ContactDetail, responses=problems(404))
async def get_contact(contact_id: str, session: SessionDep) -> dict[str, Any]:
    return await _with_groups(session, await runlog.contact_detail(session, contact_id))


async def _with_groups(session: AsyncSession, contact: dict[str, Any]) -> dict[str, Any]:
    """The contact with the customer groups it is a member of."""
    return {**contact, "groups": await groups.of_contact(session, contact["identities"])}
