"""Keeps WeCom's channel codes in step with the declared ones (``playbooks/channel_codes/``).

Each pass compares every declared code with its stored row and does what closes the gap:
make it (add_contact_way / add_join_way), update it when its declaration changed (the stored
hash differs), make it again when it changed between one person and several (WeCom cannot
change a code's type: the QR code then changes), fetch a group code's QR picture, delete it
when it is no longer declared. A code whose hash and QR are stored needs no call, so a second
pass makes none. A failure is recorded on the row (``last_error``) and retried by the next
reload, or by a tick once ``retry_at`` has come (backing off from 1 minute to 1 hour). Passes
run in the background: WeCom being slow or down never holds up loading playbooks or a tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smr.channel_codes import ChannelCodes, ChannelCodeSpec
from smr.channel_codes.ports import ContactWays
from smr.channels import RetriableSendError
from smr.db import unit_of_work
from smr.models import ChannelCodeStatus
from smr.repositories import channel_codes as repo
from smr.repositories.channel_codes import StoredCode
from smr.services.passes import Keeper

log = logging.getLogger(__name__)
#: How long a process may hold a code while it talks to WeCom (a few calls, 10 s timeouts).
LEASE = timedelta(minutes=2)
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)


class Action(StrEnum):
    NONE = "none"
    CREATE = "create"
    REPLACE = "replace"
    UPDATE = "update"
    FETCH_QR = "fetch_qr"
    DELETE = "delete"
    #: No WeCom call: a no-longer-declared code WeCom never had, or a row to bring up to date.
    SETTLE = "settle"


@dataclass(frozen=True)
class Outcome:
    state: str
    action: Action
    error: str | None = None


def action_for(spec: ChannelCodeSpec | None, row: StoredCode | None) -> Action:
    """What brings WeCom and the row in line with the declaration (pure)."""
    if spec is None:
        if row is None or row.status is ChannelCodeStatus.REMOVED:
            return Action.NONE
        return Action.DELETE if row.config_id else Action.SETTLE
    if row is None or row.config_id is None:
        return Action.CREATE
    if row.kind is not spec.kind or row.wecom_type != spec.wecom_type:
        return Action.REPLACE
    if row.spec_hash != spec.spec_hash:
        return Action.UPDATE
    if row.qr_code is None:
        return Action.FETCH_QR
    if row.status is not ChannelCodeStatus.ACTIVE or row.name != spec.name:
        return Action.SETTLE
    return Action.NONE


def retry_delay(attempts: int, exc: BaseException) -> timedelta:
    """1 min, 2, 4, … up to 1 h after the ``attempts``-th failure in a row; longer if WeCom
    asked for it (45009: 60 s)."""
    delay: timedelta = min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LAST_RETRY)
    asked = exc.retry_after if isinstance(exc, RetriableSendError) else None
    return max(delay, timedelta(seconds=asked or 0))


class ChannelCodeKeeper(Keeper):
    """Runs passes (``sync``) on start and reload (``kick``) and when a retry is due (``tick``)."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        declared: ChannelCodes,
        ways: ContactWays | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._declared = declared
        self._ways = ways
        self._clock = clock
        self._told_unconfigured = False
        super().__init__(name="channel codes sync", clock=clock, retry=FIRST_RETRY)

    @property
    def wecom_configured(self) -> bool:
        return self._ways is not None

    async def aclose(self) -> None:
        await self._passes.settle()
        if self._ways is not None:
            await self._ways.aclose()

    async def sync(self, *, force: bool = True) -> list[Outcome]:
        """One pass; with ``force``, failed codes are retried before their ``retry_at``."""
        declared = self._declared.current
        self._passes.clear()
        if not declared.managed or self._unconfigured(len(declared.codes)):
            return []
        now = self._clock()
        specs = {state: code.spec for state, code in declared.codes.items()}
        async with unit_of_work(self._sessions) as session:
            await repo.declare(session, [_pending(spec, now) for spec in specs.values()])
            rows = {row.state: row for row in await repo.stored(session)}
        outcomes = []
        for state in sorted(specs.keys() | rows.keys()):
            spec, row = specs.get(state), rows.get(state)
            waiting = row is not None and row.retry_at is not None and row.retry_at > now
            if action_for(spec, row) is not Action.NONE and (force or not waiting):
                outcomes.append(await self._one(state, spec))
        return outcomes

    def _unconfigured(self, declared: int) -> bool:
        if self._ways is not None:
            return False
        if not self._told_unconfigured:
            self._told_unconfigured = True
            log.info(
                "channel codes: WeCom is not configured (SMR_WECOM__CORP_ID and a 客户联系"
                " secret); %d declared codes are listed but not made in WeCom",
                declared,
            )
        return True

    async def _one(self, state: str, spec: ChannelCodeSpec | None) -> Outcome:
        now = self._clock()
        async with unit_of_work(self._sessions) as session:
            claimed = await repo.claim(session, state, now=now, until=now + LEASE)
            found = await repo.stored(session, [state]) if claimed else []
        if not found:
            return Outcome(state, Action.NONE)  # another process is on it
        row = found[0]
        action = action_for(spec, row)
        progress: dict[str, Any] = {}
        outcome: Outcome | None = None
        try:
            done = await self._carry_out(action, spec, row, progress)
        except Exception as exc:  # WeCom's refusal or absence: recorded, retried later
            values = _failed(row, exc, now=self._clock()) | progress
            outcome = Outcome(state, action, error=values["last_error"])
            log.warning("channel code %s: %s failed: %s", state, action, outcome.error)
        else:
            values = done | progress | _succeeded(spec, now=self._clock())
        async with unit_of_work(self._sessions) as session:
            await repo.finish(session, state, values)
        if outcome is not None:
            retry = values["retry_at"]
            self._passes.due(retry)
            return outcome
        if action is not Action.SETTLE:
            log.info("channel code %s: %s (config_id %s)", state, action, values.get("config_id"))
        return Outcome(state, action)

    async def _carry_out(
        self,
        action: Action,
        spec: ChannelCodeSpec | None,
        row: StoredCode,
        progress: dict[str, Any],
    ) -> dict[str, Any]:
        """WeCom's calls for ``action``; ``progress`` gets what WeCom has done at each step, so
        a failure half-way never loses a config_id WeCom made."""
        ways = self._ways
        assert ways is not None
        if action in (Action.DELETE, Action.REPLACE) and row.config_id:
            await ways.delete(row.kind, row.config_id)
            progress |= {"config_id": None, "qr_code": None, "spec_hash": None}
        if spec is None:
            return {"status": ChannelCodeStatus.REMOVED}
        config_id, qr_code = row.config_id, row.qr_code
        if action in (Action.CREATE, Action.REPLACE):
            made = await ways.create(spec)
            config_id, qr_code = made.config_id, made.qr_code
            progress |= _made(spec, config_id, qr_code)
        elif action is Action.UPDATE and config_id:
            await ways.update(spec, config_id)
            progress |= {"spec_hash": spec.spec_hash}
        if qr_code is None and config_id:
            progress["qr_code"] = await ways.qr_code(spec.kind, config_id)
        return {"status": ChannelCodeStatus.ACTIVE}


def _pending(spec: ChannelCodeSpec, now: datetime) -> dict[str, Any]:
    return {
        "state": spec.state,
        "name": spec.name,
        "kind": spec.kind.value,
        "status": ChannelCodeStatus.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _made(spec: ChannelCodeSpec, config_id: str, qr_code: str | None) -> dict[str, Any]:
    return {
        "config_id": config_id,
        "qr_code": qr_code,
        "kind": spec.kind.value,
        "wecom_type": spec.wecom_type,
        "spec_hash": spec.spec_hash,
    }


def _succeeded(spec: ChannelCodeSpec | None, *, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"attempts": 0, "last_error": None, "retry_at": None}
    values |= {"synced_at": now, "updated_at": now}
    return values | ({"name": spec.name} if spec is not None else {})


def _failed(row: StoredCode, exc: BaseException, *, now: datetime) -> dict[str, Any]:
    attempts = row.attempts + 1
    return {
        "status": ChannelCodeStatus.FAILED,
        "attempts": attempts,
        "last_error": (str(exc) or type(exc).__name__)[:500],
        "retry_at": now + retry_delay(attempts, exc),
        "updated_at": now,
    }
