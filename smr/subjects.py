"""Who a contact row — and so a run — is for."""

from enum import StrEnum
from typing import Literal, get_args


class ContactKind(StrEnum):
    """A customer, or the subject of a customer group's or the corp's runs."""

    PERSON = "person"
    #: id ``group:<chat_id>``; its identity the group's chat id, its tags the group's tags.
    GROUP = "group"
    #: the one row ``corp``: runs of ``once`` schedule playbooks (Moments posts).
    CORP = "corp"
    #: a person erased at their request (PIPL): what remains keeps counts, names nobody.
    ERASED = "erased"
    #: a person merged into another (``merged_into``): its id finds the survivor.
    MERGED = "merged"


#: Whom a run can be for: an erased person has none.
Subject = Literal[ContactKind.PERSON, ContactKind.GROUP, ContactKind.CORP]

CORP_ID = "corp"
GROUP_PREFIX = "group:"


def group_contact_id(chat_id: str) -> str:
    return f"{GROUP_PREFIX}{chat_id}"


#: The kinds of identity a person is known by (``smr.schemas.ContactRef``), in the order an
#: event's identities are tried.
IdentityKind = Literal["phone", "wecom_userid", "shop_customer_id"]
IDENTITY_KINDS: tuple[IdentityKind, ...] = get_args(IdentityKind)
