"""Ingest metrics: what came in, per channel, and what happened to it."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from shared.metrics import LATENCY_BUCKETS

MENTIONS_ACCEPTED = Counter(
    "scs_ingest_mentions_accepted_total", "Mentions published to Kafka (acked)", ["channel"]
)
MENTIONS_DUPLICATE = Counter(
    "scs_ingest_mentions_duplicate_total",
    "Mentions already accepted earlier (webhook redelivery, re-import)",
    ["channel"],
)
MENTIONS_REJECTED = Counter(
    "scs_ingest_mentions_rejected_total",
    "Requests or items refused, by reason (invalid, signature, unavailable, ...)",
    ["channel", "reason"],
)
ITEMS_IGNORED = Counter(
    "scs_ingest_items_ignored_total",
    "Platform items that are not interactions (likes, follows, echoes, deletions)",
    ["channel", "reason"],
)
PUBLISH_SECONDS = Histogram(
    "scs_ingest_publish_seconds",
    "From a request's mentions being parsed to the broker's acks=all",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
