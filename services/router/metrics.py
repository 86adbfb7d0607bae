"""Router metrics: cases opened and changed, webhook deliveries and their latency."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from shared.metrics import LATENCY_BUCKETS

CASE_EVENTS = Counter(
    "scs_router_case_events_total", "Case events produced", ["event_type", "priority", "queue"]
)
TIMERS_FIRED = Counter(
    "scs_router_timers_fired_total",
    "Timers acted on (SLA warnings and breaches, escalation steps, inactivity, crisis quiet)",
    ["kind"],
)
TIMERS_FAILED = Counter(
    "scs_router_timers_failed_total",
    "Timers the playbook could not act on (logged with their id and parked)",
)
MENTIONS_ROUTED = Counter(
    "scs_router_mentions_total", "Mentions threaded into cases (duplicates excluded)", ["kind"]
)
MENTIONS_DUPLICATE = Counter(
    "scs_router_mentions_duplicate_total", "Redelivered mentions recognised by id and skipped"
)
WEBHOOK_DELIVERIES = Counter(
    "scs_router_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed)",
    ["outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "scs_router_webhook_request_seconds",
    "Duration of one webhook POST to an endpoint",
    buckets=LATENCY_BUCKETS,
)
WEBHOOK_LAG_SECONDS = Histogram(
    "scs_router_webhook_delivery_lag_seconds",
    "From the case event to its successful delivery (includes retries)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
)
