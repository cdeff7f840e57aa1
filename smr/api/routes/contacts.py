"""GET /v1/contacts/{id} and GET /v1/contacts?phone=… | wecom_userid=… | shop_customer_id=…;
POST /v1/contacts/{id}/transfer (客户继承, see ``smr.services.transfers``); a person's copy of
their data, GET /v1/contacts/{id}/export, and its erasure, DELETE /v1/contacts/{id} (PIPL, see
``smr.services.privacy``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from smr import phones
from smr.api.deps import AdminOnly, JsonBody, RawBody, RuntimeDep, SessionDep
from smr.api.errors import invalid
from smr.api.models import (
    IMPORT_COUNTS,
    ContactDetail,
    ContactErased,
    ContactExport,
    ImportAnswer,
    TransferAccepted,
)
from smr.api.openapi import ADMIN, json_body, problems, text_body
from smr.errors import InvalidInput, Merged
from smr.importing import Format, read, text_lines
from smr.playbooks.steps.notify import StaffUserId
from smr.playbooks.steps.transfer import TransferMessage
from smr.services import groups, imports, merging, privacy, runlog, transfers
from smr.statuses import DeliveryStatus

router = APIRouter(
    prefix="/v1/contacts", tags=["contacts"], dependencies=[AdminOnly], responses=ADMIN
)


async def _not_merged(contact_id: str, session: SessionDep) -> None:
    """A merged contact's id answers 308 to the same path of its survivor."""
    survivor = await merging.survivor_of(session, contact_id)
    if survivor is not None:
        raise Merged(contact_id, into=survivor)


#: The routes of one contact: a merged contact's redirect to its survivor.
ONE_CONTACT = [Depends(_not_merged)]


@router.post(
    "/import",
    response_model=ImportAnswer,
    responses=problems(413, 422),
    openapi_extra=text_body(
        "application/x-ndjson", "text/csv", description="Customers, one a line (JSON or CSV)."
    ),
)
async def import_contacts(body: RawBody, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    """Import customers and their order history: JSON Lines (one customer a line), or CSV
    with a header (``Content-Type: text/csv``). Starts no playbook and messages nobody; run
    again, it changes nothing. A bad line is reported with its number; the others go in.
    Larger files: ``smr import FILE``."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        errors = [{"path": "body", "message": f"not UTF-8 at byte {exc.start}"}]
        raise InvalidInput("The body is not UTF-8 text.", errors=errors) from None
    kind: Format = "csv" if "csv" in request.headers.get("content-type", "") else "jsonl"
    done = await imports.import_lines(
        runtime.sessions,
        read(text_lines(text), format=kind),
        catalog=runtime.catalog,
        now=runtime.clock,
        merge_by=runtime.settings.merge_by,
    )
    return {
        **{name: getattr(done, name) for name in IMPORT_COUNTS},
        "errors": [{"line": e.number, "path": e.path, "message": e.message} for e in done.errors],
        "triggered": 0,
    }


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


@router.get(
    "/{contact_id}",
    response_model=ContactDetail,
    responses=problems(308, 404),
    dependencies=ONE_CONTACT,
)
async def get_contact(contact_id: str, session: SessionDep) -> dict[str, Any]:
    return await _with_groups(session, await runlog.contact_detail(session, contact_id))


@router.get(
    "/{contact_id}/export",
    response_model=ContactExport,
    responses=problems(308, 404, 409),
    dependencies=ONE_CONTACT,
)
async def export_contact(
    contact_id: str, session: SessionDep, runtime: RuntimeDep, response: Response
) -> dict[str, Any]:
    """All SMR holds about the person (PIPL Art. 45): profile, identities, events with what
    they said, runs with their trace, deliveries with their text and vendor answers, outbox
    rows, group memberships and Moments engagements. Served as a file to keep."""
    found = await privacy.export(session, contact_id, now=runtime.clock())
    # Not the id in the name: a shop's own contact id may hold any character.
    response.headers["Content-Disposition"] = 'attachment; filename="contact-export.json"'
    return found


@router.delete(
    "/{contact_id}",
    response_model=ContactErased,
    responses=problems(308, 404, 409),
    dependencies=ONE_CONTACT,
)
async def erase_contact(
    contact_id: str, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Erase the person (PIPL Art. 47): identities, profile, group memberships and Moments
    engagements removed; events, trace, deliveries, vendor answers and outbox rows emptied,
    kept for counts; waiting runs and scheduled deliveries cancelled; events still waiting to
    be processed dropped. Asked again, it answers ``already_erased``."""
    return await privacy.erase(session, contact_id, now=runtime.clock())


class TransferIn(BaseModel):
    """Move the customer to another staff member: ``to`` takes over from the owner staff;
    ``message`` is what WeCom shows the customer (在职 only); ``resigned``: the owner staff has
    left (离职继承)."""

    model_config = ConfigDict(extra="forbid")

    to: StaffUserId
    message: TransferMessage | None = None
    resigned: bool = False


@router.post(
    "/{contact_id}/transfer",
    status_code=202,
    response_model=TransferAccepted,
    responses=problems(308, 404, 409, 413),
    dependencies=ONE_CONTACT,
    openapi_extra=json_body(TransferIn),
)
async def transfer_contact(
    contact_id: str, body: JsonBody, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Plan a WeCom customer transfer; the delivery is awaiting until WeCom reports it done."""
    try:
        request = TransferIn.model_validate(body)
    except ValidationError as exc:
        raise invalid(exc) from exc
    planned = await transfers.request(
        session,
        contact_id,
        to=request.to,
        message=request.message,
        resigned=request.resigned,
        now=runtime.clock(),
    )
    return {
        "delivery_id": planned.delivery_id,
        "run_id": planned.run_id,
        "contact_id": contact_id,
        "from_staff": planned.owner_staff,
        "to": request.to,
        "resigned": request.resigned,
        "status": DeliveryStatus.SCHEDULED,
    }


async def _with_groups(session: AsyncSession, contact: dict[str, Any]) -> dict[str, Any]:
    """The contact with the customer groups it is a member of, and its owner staff."""
    return {
        **contact,
        "groups": await groups.of_contact(session, contact["identities"]),
        "owner_staff": transfers.owner_of(contact["attributes"]),
    }
