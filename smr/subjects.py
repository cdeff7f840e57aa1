"""Who a contact row — and so a run — is for."""

from enum import StrEnum


class ContactKind(StrEnum):
    """A customer, or the subject of a customer group's or the corp's runs."""

    PERSON = "person"
    #: id ``group:<chat_id>``; its identity the group's chat id, its tags the group's tags.
    GROUP = "group"
    #: the one row ``corp``: runs of ``once`` schedule playbooks (Moments posts).
    CORP = "corp"


CORP_ID = "corp"
GROUP_PREFIX = "group:"


def group_contact_id(chat_id: str) -> str:
    return f"{GROUP_PREFIX}{chat_id}"
