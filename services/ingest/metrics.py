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

# Why platform items are ignored, as metric labels: a closed set. Reasons carry what the payload
# said ("not an interaction: <key>"), and a label value per payload key would let any sender
# create series without limit; the part before ':' is the kind, anything unknown is 'other'.
IGNORED_REASONS = frozenset(
    {
        "deleted",
        "removed",
        "echo",
        "own post",
        "retweet",
        "more",
        "mention without content",
        "not a message",
        "not a post or comment",
        "not an interaction",
        "unsupported event",
        "unsupported field",
        "unsupported object",
    }
)


def ignored_reason_label(reason: str) -> str:
    kind = reason.split(":", 1)[0]
    return kind if kind in IGNORED_REASONS else "other"
