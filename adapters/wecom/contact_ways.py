"""Channel codes in WeCom: 「联系我」 and 「加入群聊」 configurations, with the 客户联系 secret.

Person codes (document/path/92228, 配置客户联系「联系我」方式):

- ``externalcontact/add_contact_way``: ``type`` 1 单人 / 2 多人, ``scene`` 2 (QR code),
  ``remark`` (≤30), ``skip_verify``, ``state`` (≤30), ``user`` (userids; type 1: exactly one),
  ``party`` (department ids, type 2 only) → ``config_id`` and ``qr_code`` (a public picture URL);
- ``externalcontact/update_contact_way``: ``config_id`` and the fields to change (``remark``,
  ``skip_verify``, ``state``, ``user``, ``party``). ``type`` and ``scene`` cannot change: a
  code that turns from one person to several (or back) is deleted and made again;
- ``externalcontact/del_contact_way``: ``config_id``.

Group codes (document/path/92229, 客户群「加入群聊」管理):

- ``externalcontact/groupchat/add_join_way``: ``scene`` 2, ``remark``, ``auto_create_room``
  0/1, ``room_base_name`` (≤40), ``room_base_id``, ``chat_id_list`` (1-5), ``state`` →
  ``config_id`` only; ``groupchat/get_join_way`` (``config_id``) answers ``join_way.qr_code``;
- ``groupchat/update_join_way`` overwrites the whole configuration (``config_id``, ``scene``
  and ``chat_id_list`` required); ``groupchat/del_join_way``: ``config_id``.

With ``auto_create_room: 1`` WeCom itself opens a new group when the listed ones are full
(200 members), named ``room_base_name`` + ``room_base_id`` counting up, and the same QR code
leads there: that is what rotates a group code, SMR does not count members.

Fields and answers are as WxJava, PowerWeChat (``RequestAddContactWay``,
``RequestUpdateContactWay``, ``ResponseAddContactWay``, ``RequestAddJoinWay``,
``JoinWay``) and the SDK copies of the two documents give them; API-made codes do not show in
the admin console (doc 92228), so SMR's table is the only record of their config_ids.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from adapters.wecom.client import WeComClient
from smr.channel_codes.ports import ContactWays, MadeCode
from smr.channel_codes.schema import ChannelCodeSpec, CodeKind
from smr.channels import PermanentSendError
from smr.config import WeComSettings

#: scene 2: a QR code (1 would be a mini-program button).
QR_SCENE = 2
PERSON = {
    "add": "externalcontact/add_contact_way",
    "update": "externalcontact/update_contact_way",
    "del": "externalcontact/del_contact_way",
}
GROUP = {
    "add": "externalcontact/groupchat/add_join_way",
    "get": "externalcontact/groupchat/get_join_way",
    "update": "externalcontact/groupchat/update_join_way",
    "del": "externalcontact/groupchat/del_join_way",
}


def person_body(spec: ChannelCodeSpec) -> dict[str, Any]:
    """add_contact_way's body; update_contact_way takes it without type and scene."""
    body: dict[str, Any] = {
        "type": spec.wecom_type,
        "scene": QR_SCENE,
        "remark": spec.wecom_remark,
        "skip_verify": spec.skip_verify,
        "state": spec.state,
    }
    if spec.staff:
        body["user"] = list(spec.staff)
    if spec.departments:
        body["party"] = list(spec.departments)
    return body


def group_body(spec: ChannelCodeSpec) -> dict[str, Any]:
    """add_join_way's body (update_join_way: the same with config_id, as it overwrites)."""
    group = spec.group
    assert group is not None, "a group code"
    body: dict[str, Any] = {
        "scene": QR_SCENE,
        "remark": spec.wecom_remark,
        "auto_create_room": 1 if group.auto_create_room else 0,
        "chat_id_list": list(group.chat_ids),
        "state": spec.state,
    }
    if group.auto_create_room and group.room_base_name is not None:
        body["room_base_name"] = group.room_base_name
    if group.auto_create_room and group.room_base_id is not None:
        body["room_base_id"] = group.room_base_id
    return body


class WeComContactWays(ContactWays):
    """``ContactWays`` over one WeCom client and the 客户联系 secret."""

    def __init__(self, client: WeComClient, secret: SecretStr) -> None:
        self._client = client
        self._secret = secret

    def __repr__(self) -> str:
        return f"WeComContactWays({self._client!r})"

    async def _call(self, api: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._client.call(api, self._secret, body)

    async def create(self, spec: ChannelCodeSpec) -> MadeCode:
        if spec.kind is CodeKind.GROUP:
            answer = await self._call(GROUP["add"], group_body(spec))
            return MadeCode(_text(answer, "config_id", GROUP["add"]), None)
        answer = await self._call(PERSON["add"], person_body(spec))
        config_id = _text(answer, "config_id", PERSON["add"])
        return MadeCode(config_id, _text(answer, "qr_code", PERSON["add"]))

    async def qr_code(self, kind: CodeKind, config_id: str) -> str:
        if kind is CodeKind.PERSON:
            raise PermanentSendError("a person code's qr_code comes with add_contact_way")
        answer = await self._call(GROUP["get"], {"config_id": config_id})
        join_way = answer.get("join_way")
        return _text(join_way if isinstance(join_way, dict) else {}, "qr_code", GROUP["get"])

    async def update(self, spec: ChannelCodeSpec, config_id: str) -> None:
        if spec.kind is CodeKind.GROUP:
            await self._call(GROUP["update"], {"config_id": config_id, **group_body(spec)})
            return
        body = {k: v for k, v in person_body(spec).items() if k not in ("type", "scene")}
        # Overwrite semantics are not documented for 联系我: send both lists, [] when unused,
        # so a userid or department taken out of the YAML leaves the code (UNCONFIRMED that
        # WeCom reads an empty list as "none" rather than "unchanged").
        await self._call(PERSON["update"], {"config_id": config_id, "user": [], "party": []} | body)

    async def delete(self, kind: CodeKind, config_id: str) -> None:
        api = GROUP["del"] if kind is CodeKind.GROUP else PERSON["del"]
        await self._call(api, {"config_id": config_id})

    async def aclose(self) -> None:
        await self._client.aclose()


def _text(answer: dict[str, Any], key: str, api: str) -> str:
    value = answer.get(key)
    if not isinstance(value, str) or not value:
        raise PermanentSendError(f"{api}: the answer has no {key}")
    return value


def build_contact_ways(settings: WeComSettings) -> ContactWays | None:
    """The WeCom channel codes API, or None without a corp id and a 客户联系 secret."""
    secret = settings.secret_for("contact")
    if not settings.corp_id or secret is None:
        return None
    client = WeComClient(
        corp_id=settings.corp_id, base_url=settings.base_url, timeout=settings.timeout_seconds
    )
    return WeComContactWays(client, secret)
