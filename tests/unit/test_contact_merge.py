"""Merging two contacts of one person in memory (``ContactState.take_in``) and finding which
contacts a batch's events link (``smr.services.contacts``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from smr.schemas import ContactRef
from smr.services import contacts
from smr.services.contact_state import ContactState

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def person(contact_id: str, **columns: Any) -> ContactState:
    state = ContactState.blank(contact_id, T0, partition=0)
    for name, value in columns.items():
        setattr(state, name, value)
    return state


def consent(at: datetime, source: str) -> dict[str, Any]:
    return {"at": at.isoformat(), "source": source, "event_id": f"ev-{source}"}


def test_the_survivor_takes_in_what_the_other_knew() -> None:
    survivor = person(
        "a",
        name=None,
        tags=["买家"],
        attributes={"level": "新客", "source": "商城"},
        orders=1,
        total_spent=Decimal("100.00"),
        first_order_at=T0 + timedelta(days=3),
        last_order_at=T0 + timedelta(days=3),
        monthly_spend={"2026-11": "100.00"},
        consents={"sms": consent(T0, "商城")},
        identities={"phone": "13800000000"},
    )
    other = person(
        "b",
        name="王小姐",
        tags=["企微好友", "买家"],
        attributes={"source": "企微", "staff": "zhang"},
        orders=2,
        total_spent=Decimal("30.50"),
        first_order_at=T0,
        last_order_at=T0 + timedelta(days=1),
        monthly_spend={"2026-10": "10.50", "2026-11": "20.00"},
        consents={"sms": consent(T0 + timedelta(days=1), "企微"), "wecom": consent(T0, "企微")},
        identities={"phone": "13900000000", "wecom_userid": "wm-1"},
    )

    survivor.take_in(other)

    assert (survivor.name, survivor.tags) == ("王小姐", ["买家", "企微好友"])
    assert survivor.attributes == {"level": "新客", "source": "商城", "staff": "zhang"}
    assert (survivor.orders, survivor.total_spent) == (3, Decimal("130.50"))
    assert (survivor.first_order_at, survivor.last_order_at) == (T0, T0 + timedelta(days=3))
    assert survivor.monthly_spend == {"2026-10": "10.50", "2026-11": "120.00"}
    assert {c: v["source"] for c, v in survivor.consents.items()} == {
        "sms": "企微",
        "wecom": "企微",
    }
    assert survivor.identities == {"phone": "13800000000", "wecom_userid": "wm-1"}
    assert survivor.new_identities == {}  # the database moves them; nothing to attach
    assert survivor.changed


def test_an_opt_out_on_either_side_withdraws_the_consents_it_covers() -> None:
    survivor = person("a", consents={"sms": consent(T0, "商城"), "wecom": consent(T0, "商城")})
    survivor.take_in(person("b", opted_out=["sms"]))
    assert (survivor.opted_out, sorted(survivor.consents)) == (["sms"], ["wecom"])

    everything = person("c", opted_out=["*"])
    everything.take_in(person("d", consents={"wecom": consent(T0, "企微")}))
    assert (everything.opted_out, everything.consents) == (["*"], {})


@dataclass(frozen=True)
class Event:
    id: str
    contact: ContactRef
    partition: int = 0


class LinksBy:
    def __init__(self, *kinds: str) -> None:
        self.kinds = kinds

    def links(self, kind: str) -> bool:
        return kind in self.kinds

    async def merge(
        self, session: AsyncSession, merges: Sequence[contacts.Merge], *, now: datetime
    ) -> None:
        raise AssertionError("not called here")


def groups(events: list[Event], owners: dict[tuple[str, str], str], merger: LinksBy) -> Any:
    refs = [contacts._Ref.of(e, merger) for e in events]
    states = {cid: person(cid) for cid in {*owners.values(), "x"}}
    return [
        (sorted(g), by, event_id)
        for g, by, event_id in contacts._linked_groups(refs, owners, states, merger)
    ]


OWNERS = {("phone", "13800000000"): "a", ("wecom_userid", "w"): "b", ("shop_customer_id", "s"): "c"}


def test_events_that_chain_contacts_link_them_all_with_every_kind_that_did() -> None:
    events = [
        Event("e1", ContactRef(phone="13800000000", wecom_userid="w")),
        Event("e2", ContactRef(shop_customer_id="s")),
        Event("e3", ContactRef(wecom_userid="w", shop_customer_id="s")),
    ]

    found = groups(events, OWNERS, LinksBy("phone", "wecom_userid", "shop_customer_id"))

    assert found == [(["a", "b", "c"], ["phone", "shop_customer_id", "wecom_userid"], "e1")]


def test_kinds_that_do_not_link_are_tried_last_and_link_nobody() -> None:
    merger = LinksBy("wecom_userid")
    events = [Event("e1", ContactRef(phone="13800000000", wecom_userid="w"))]

    assert groups(events, OWNERS, merger) == []
    assert list(contacts._Ref.of(events[0], merger).identities) == ["wecom_userid", "phone"]


def test_an_explicit_id_links_the_contact_it_names() -> None:
    events = [Event("e1", ContactRef(id="x", phone="13800000000"))]

    found = groups(events, OWNERS, LinksBy("phone"))

    assert found == [(["a", "x"], ["id", "phone"], "e1")]


def test_groups_apart_stay_apart_until_an_event_joins_them_under_the_first_event() -> None:
    owners = {**OWNERS, ("phone", "13900000000"): "d", ("wecom_userid", "v"): "e"}
    apart = [
        Event("e1", ContactRef(phone="13900000000", wecom_userid="v")),
        Event("e2", ContactRef(phone="13800000000", wecom_userid="w")),
    ]
    merger = LinksBy("phone", "wecom_userid", "shop_customer_id")

    assert groups(apart, owners, merger) == [
        (["d", "e"], ["phone", "wecom_userid"], "e1"),
        (["a", "b"], ["phone", "wecom_userid"], "e2"),
    ]
    joining = Event("e3", ContactRef(wecom_userid="w", shop_customer_id="s", phone="13900000000"))
    assert groups([*apart, joining], owners, merger) == [
        (["a", "b", "c", "d", "e"], ["phone", "shop_customer_id", "wecom_userid"], "e1")
    ]
