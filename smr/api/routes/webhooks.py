"""Webhooks from vendors, answered as soon as what they carry is committed (they retry on a slow
or non-2xx answer, and a retry is a duplicate):

- ``POST /v1/webhooks/{source}``: shop order webhooks, authenticated by each vendor's signature;
- ``POST /v1/webhooks/sms/{provider}?token=…``: SMS replies pushed by the SMS vendor. Neither
  vendor signs these pushes, so the URL configured in the vendor's console carries a token:
  ``SMR_WEBHOOK_SECRETS__SMS_<PROVIDER>``.
"""

from __future__ import annotations

import functools
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from smr import edge
from smr.api.deps import RawBody, RuntimeDep
from smr.api.models import Acknowledgement, WebhookAnswer
from smr.api.openapi import json_body, problems
from smr.errors import NotFound, Unauthorized
from smr.inbound.sms import PROVIDERS as SMS_PROVIDERS
from smr.inbound.sms import acknowledgement
from smr.inbound.webhooks import SOURCES, WebhookRequest
from smr.inbound.webhooks.base import same
from smr.inbound.webhooks.generic import GenericOrder
from smr.inbound.webhooks.shopify import ShopifyOrder, ShopifyRefund
from smr.inbound.webhooks.youzan import Envelope
from smr.runtime import Runtime
from smr.services import sms_replies, webhooks

router = APIRouter(
    prefix="/v1/webhooks", tags=["webhooks"], responses=problems(401, 404, 413, 422, 503)
)
log = logging.getLogger(__name__)

#: What each SMS vendor pushes (see ``smr.inbound.sms``): numbers may come as strings or not.
_TEXT = {"type": ["string", "integer"]}
SMS_PUSH = (
    {
        "title": "AliyunSmsUp",
        "type": "array",
        "items": {
            "type": "object",
            "properties": dict.fromkeys(
                ("phone_number", "content", "send_time", "sign_name", "dest_code", "sequence_id"),
                _TEXT,
            ),
            "required": ["phone_number", "content"],
        },
    },
    {
        "title": "TencentSmsReply",
        "type": "object",
        "properties": dict.fromkeys(
            ("extend", "mobile", "nationcode", "sign", "text", "time"), _TEXT
        ),
        "required": ["mobile", "nationcode", "text"],
    },
)
# Documented as the known names; any other still reaches the handler, which answers 404.
Provider = Annotated[str, Path(json_schema_extra={"enum": list(SMS_PROVIDERS)})]
Source = Annotated[str, Path(json_schema_extra={"enum": sorted(SOURCES)})]
ORDER_WEBHOOK = json_body(
    GenericOrder,
    ShopifyOrder,
    ShopifyRefund,
    Envelope,
    description="The source's own order (or refund) notice, signed as the source signs it.",
)


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
    """The webhook, its body parsed (and refused, past the edge bounds) before any other work,
    the signature check included: some vendors sign fields of the parsed body."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    return WebhookRequest(headers, body, runtime.clock(), parsed=edge.load_json(body))


@router.post("/sms/{provider}", response_model=Acknowledgement, openapi_extra=json_body(*SMS_PUSH))
async def receive_sms_replies(
    provider: Provider, body: RawBody, runtime: RuntimeDep, token: str | None = None
) -> dict[str, object]:
    if provider not in SMS_PROVIDERS:
        raise NotFound(f"No SMS provider {provider!r}; known: {', '.join(SMS_PROVIDERS)}.")
    secret = secret_for(runtime, f"sms_{provider}")
    if not token or not same(secret, token):
        raise Unauthorized("The token in the URL does not match SMR_WEBHOOK_SECRETS__SMS_….")
    report = await sms_replies.receive(
        provider,
        edge.load_json(body),  # refused before any work: see smr.edge
        words=runtime.settings.sms.unsubscribe_replies,
        ingest=functools.partial(runtime.ingest, source=f"sms_{provider}"),
        now=runtime.clock(),
    )
    if report is not None:
        log.info(
            "sms replies from %s: %s",
            provider,
            ", ".join(f"{r.key} {r.status}" for r in report.results),
        )
    return acknowledgement(provider)


@router.post(
    "/{source}",
    response_model=WebhookAnswer,
    response_model_exclude_unset=True,
    openapi_extra=ORDER_WEBHOOK,
)
async def receive_order_webhook(
    source: Source, request: Request, body: RawBody, runtime: RuntimeDep
) -> dict[str, Any]:
    found = SOURCES.get(source)
    if found is None:
        raise NotFound(f"No webhook source {source!r}; known: {', '.join(sorted(SOURCES))}.")
    outcome = await webhooks.receive(
        runtime.sessions,
        found,
        webhook_request(request, body, runtime),
        secret=secret_for(runtime, source),
        ingest=functools.partial(runtime.ingest, source=found.name),
    )
    log.info("%s webhook: %s %s", source, outcome.status, outcome.detail or "")
    return {**outcome.as_json(), **found.acknowledgement}
