"""POST /v1/webhooks/{source}: shop order webhooks, authenticated by each vendor's signature.

Vendors retry on a slow or non-2xx answer, so the answer comes as soon as the events are
committed, and a retry answers 200 ``duplicate``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request

from smr.api.deps import RawBody, RuntimeDep
from smr.errors import NotFound
from smr.inbound.webhooks import SOURCES, WebhookRequest
from smr.runtime import Runtime
from smr.services import webhooks

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
log = logging.getLogger(__name__)


def secret_for(runtime: Runtime, source: str) -> str:
    """The source's secret (``SMR_WEBHOOK_SECRETS__<SOURCE>``); 404 while none is set."""
    secrets = {name.lower(): value for name, value in runtime.settings.webhook_secrets.items()}
    secret = secrets.get(source)
    if secret is None or not secret.get_secret_value():
        raise NotFound(
            f"The {source} webhook is not configured: set SMR_WEBHOOK_SECRETS__{source.upper()}."
        )
    return secret.get_secret_value()


def webhook_request(request: Request, body: bytes, runtime: Runtime) -> WebhookRequest:
    headers = {name.lower(): value for name, value in request.headers.items()}
    return WebhookRequest(headers=headers, body=body, received_at=runtime.clock())


@router.post("/{source}")
async def receive_order_webhook(
    source: str, request: Request, body: RawBody, runtime: RuntimeDep
) -> dict[str, Any]:
    found = SOURCES.get(source)
    if found is None:
        raise NotFound(f"No webhook source {source!r}; known: {', '.join(sorted(SOURCES))}.")
    outcome = await webhooks.receive(
        runtime.sessions,
        found,
        webhook_request(request, body, runtime),
        secret=secret_for(runtime, source),
        catalog=runtime.catalog,
        clock=runtime.clock,
    )
    if outcome.deliveries_due:
        runtime.wake()
    log.info("%s webhook: %s %s", source, outcome.status, outcome.detail or "")
    return outcome.as_json()
