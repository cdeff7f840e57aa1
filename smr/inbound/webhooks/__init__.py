"""Shop order webhooks: one module per source, listed in ``SOURCES``.

Adding a source is adding a module with a class that satisfies ``WebhookSource`` and one line
here; ``POST /v1/webhooks/{source}`` serves every source listed, each with its own secret
(``SMR_WEBHOOK_SECRETS__<SOURCE>``).
"""

from smr.inbound.webhooks.base import (
    LineItem,
    OrderNotice,
    PayloadError,
    SignatureError,
    Translation,
    WebhookRequest,
    WebhookSource,
)
from smr.inbound.webhooks.generic import GenericSource
from smr.inbound.webhooks.shopify import ShopifySource
from smr.inbound.webhooks.youzan import YouzanSource

SOURCES: dict[str, WebhookSource] = {
    source.name: source for source in (GenericSource(), ShopifySource(), YouzanSource())
}

__all__ = [
    "SOURCES",
    "LineItem",
    "OrderNotice",
    "PayloadError",
    "SignatureError",
    "Translation",
    "WebhookRequest",
    "WebhookSource",
]
