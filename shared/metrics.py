"""Metrics every service emits through the shared plumbing, declared once with their meaning.

Service-specific metrics live in each service's `metrics.py`; all names start with `scs_`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

PRODUCER_SEND_SECONDS = Histogram(
    "scs_kafka_produce_seconds",
    "Time from send to acks=all for one produced batch",
    ["topic"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_RECORDS = Counter(
    "scs_kafka_consumed_records_total",
    "Records consumed and committed (counted after the commit)",
    ["topic"],
)
CONSUMER_BATCH_SECONDS = Histogram(
    "scs_kafka_consumer_batch_seconds",
    "Time to decode, handle and commit one partition batch",
    ["topic"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_RETRIES = Counter(
    "scs_kafka_consumer_retries_total",
    "Batch handler retries after a failure (a rising rate means a dependency is down)",
    ["topic"],
)
CONSUMER_REBALANCES = Counter(
    "scs_kafka_consumer_rebalances_total",
    "Partition assignments received (one at start; more mean members came, went or stalled)",
    ["topic"],
)
PAUSED_PARTITIONS = Gauge(
    "scs_kafka_consumer_paused_partitions",
    "Partitions paused while their batch waits for a dependency to come back",
    ["topic"],
)
CONSUMER_DEAD_LETTERS = Counter(
    "scs_kafka_dead_letters_total", "Messages sent to the topic's dead-letter topic", ["topic"]
)
CONSUMER_LAG = Gauge(
    "scs_kafka_consumer_lag_records",
    "High watermark minus committed offset, per partition, after the last batch",
    ["topic", "partition"],
)
HTTP_PROBLEMS = Counter(
    "scs_http_problems_total", "HTTP requests answered with a problem document", ["status"]
)
