"""What every vendor's HTTP answer means before its body is read."""

from __future__ import annotations

import httpx

from smr.channels import RetriableSendError


def unavailable(api: str, response: httpx.Response, detail: str = "") -> RetriableSendError | None:
    """A RetriableSendError for HTTP 429 and 5xx, retried whatever the body says (after the
    vendor's Retry-After seconds when it gives them); None for any other status."""
    status = response.status_code
    if status != 429 and status < 500:
        return None
    value = response.headers.get("retry-after", "")
    retry_after = float(value) if value.isdigit() else None
    return RetriableSendError(f"{api}: HTTP {status} {detail}".rstrip(), retry_after=retry_after)
