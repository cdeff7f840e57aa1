"""POST /v1/wecom/archive: chat-archive messages (会话内容存档) pushed by the customer's own
archive gateway, signed with ``SMR_WECOM__ARCHIVE_SECRET`` (see ``smr.inbound.archive``).

No bearer token: the signature authenticates. Without the secret the route answers 404, like
a webhook source that is not configured. Logs carry counts only, never text or ids.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request

from smr.api.deps import RawBody, RuntimeDep
from smr.api.models import ArchiveAnswer
from smr.api.openapi import json_body, problems
from smr.errors import NotFound
from smr.inbound.archive import SIGNATURE_HEADER, SOURCE, TIMESTAMP_HEADER, ArchivePush
from smr.runtime import Runtime
from smr.schemas import EventIn
from smr.services import archive
from smr.services.accept import IngestReport

router = APIRouter(prefix="/v1/wecom", tags=["wecom"], responses=problems(401, 404, 413, 422, 503))
log = logging.getLogger(__name__)

NOT_CONFIGURED = "The chat archive is not configured: set SMR_WECOM__ARCHIVE_SECRET."
PUSH = json_body(
    ArchivePush,
    description=(
        f"Decrypted archive messages, as WeCom's SDK gives them. Signed: {TIMESTAMP_HEADER} "
        f'(unix seconds), {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256(secret, "<timestamp>." '
        "+ raw body)>."
    ),
)


def archive_secret(runtime: Runtime) -> str:
    secret = runtime.settings.wecom.archive_secret
    if secret is None or not secret.get_secret_value():
        raise NotFound(NOT_CONFIGURED)
    return secret.get_secret_value()


@router.post(
    "/archive",
    name="receive_wecom_archive",
    status_code=202,
    response_model=ArchiveAnswer,
    openapi_extra=PUSH,
)
async def receive_archive(request: Request, body: RawBody, runtime: RuntimeDep) -> dict[str, Any]:
    """Verify, parse and ingest the push; answer each message's result."""

    async def ingest(events: list[EventIn]) -> IngestReport:
        return await runtime.ingest(events, source=SOURCE)

    report = await archive.receive(
        body,
        secret=archive_secret(runtime),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signature=request.headers.get(SIGNATURE_HEADER),
        now=runtime.clock(),
        ingest=ingest,
    )
    log.info("wecom archive: %s", ", ".join(f"{n} {s}" for s, n in report.counts().items()))
    return report.as_json()
