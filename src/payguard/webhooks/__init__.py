"""Signed webhooks for decisions that need someone and for outcome changes (docs/webhooks.md).

engine records a review/hold decision, or a hold is resolved
  → WebhookNotifier queues one delivery per endpoint (payload.py: ids and tokens only)
  → written to the outbox (outbox.py, SQLite) right after the event log's commit
  → Dispatcher POSTs it, signed (signing.py), retried with backoff, every attempt kept
"""

from payguard.webhooks.dispatcher import (
    ATTEMPT_HEADER,
    DELIVERY_HEADER,
    TYPE_HEADER,
    Dispatcher,
    HttpTransport,
    RetryPolicy,
    Transport,
)
from payguard.webhooks.notifier import ATTENTION, WebhookNotifier, delivery_id
from payguard.webhooks.outbox import (
    DELIVERY_STATES,
    Attempt,
    Delivery,
    DeliveryState,
    NewDelivery,
    Outbox,
    OutboxError,
)
from payguard.webhooks.payload import WEBHOOK_TYPES, WebhookBody, WebhookType
from payguard.webhooks.service import OUTBOX_FILE, Webhooks, retry_policy
from payguard.webhooks.signing import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    SignatureError,
    sign,
    verify,
)

__all__ = [
    "ATTEMPT_HEADER",
    "ATTENTION",
    "DEFAULT_TOLERANCE_S",
    "DELIVERY_HEADER",
    "DELIVERY_STATES",
    "OUTBOX_FILE",
    "SIGNATURE_HEADER",
    "TYPE_HEADER",
    "WEBHOOK_TYPES",
    "Attempt",
    "Delivery",
    "DeliveryState",
    "Dispatcher",
    "HttpTransport",
    "NewDelivery",
    "Outbox",
    "OutboxError",
    "RetryPolicy",
    "SignatureError",
    "Transport",
    "WebhookBody",
    "WebhookNotifier",
    "WebhookType",
    "Webhooks",
    "delivery_id",
    "retry_policy",
    "sign",
    "verify",
]
