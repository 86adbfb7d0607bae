"""Router throughput: routing decisions/s, with and without 1,000,000 pending timers, and SLA
timer firings/s with them pending, each against a plain baseline measured in the same run.

Needs Kafka and PostgreSQL (`make up`, or SCS_KAFKA_BOOTSTRAP_SERVERS and SCS_DATABASE_URL):
    .venv/bin/python bench/router_throughput.py [--mentions 20000] [--reps 3]
        [--pending-timers 1000000] [--timer-cases 20000] [--timer-reps 1] [--profile] [--json]
About 5 minutes on a 2-core machine with the defaults; each more --timer-reps adds about 1.5.

Nothing it writes reaches a running stack: the tables live in a fresh PostgreSQL schema of the
configured database (migrated by `upgrade`, like `scs db upgrade`; dropped at the end), and the
case and crisis events go to topics of the bench's own (deleted at the end), so the running
router never fires the bench's timers and kpi never counts its cases.

One run, in this order (an unmeasured warm-up first):
1. Routing, no filler timers. Each repetition produces --mentions fresh MentionClassified
   envelopes (new conversations, follow-ups and brand replies; es and en; P1 to P4; a few crisis
   signals; created in the last minute, so every deadline is ahead) to an input topic, untimed.
   Then, timed, both reading the same records in batches of up to --batch (getmany) and
   committing the offsets after each batch:
   - baseline: produce one record per message to another topic through the router's producer
     (acks=all, idempotent): a router that routes nothing;
   - router: decode the batch and `CaseRouter.handle` it (lock, dedupe, decide, apply, commit,
     outbox relay to Kafka).
2. --pending-timers far-future timers (valid `Timer` documents, due in 1 to 31 days, four per
   filler case) by INSERT ... SELECT generate_series, 100,000 a transaction, then VACUUM
   ANALYZE; then the routing repetitions again, with them pending.
3. Firings, with the filler pending. Baseline: --timer-cases x 2 due rows taken by a plain
   SELECT ... FOR UPDATE SKIP LOCKED LIMIT 500 + UPDATE fired_at loop, one transaction a batch,
   no decision and no Kafka. Router: --timer-cases P1 cases opened --timer-age-minutes ago are
   routed (their first-response warning, at 12 min, and breach, at 15 min, are then due: two
   timers a case, nothing else of theirs), then `fire_due_timers` runs until it returns 0.
Every measured repetition starts after VACUUM ANALYZE of the router's tables. Medians of the
repetitions are reported, and the ratios between them; --json prints the result as JSON on
stdout (the table then goes to stderr with the progress lines).

--profile adds one unmeasured routing and one unmeasured firing repetition (--profile-size
mentions, and cases) with the wall time of each component (the router's repository calls,
decide, apply, the Kafka sends) and a CPU profile of the bench process by SIGPROF sampling
(py-spy is no dependency), greenlet-aware so SQLAlchemy's statement compilation is charged to
the repository function that ran it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import statistics
import sys
import time
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from types import CodeType, FrameType
from typing import Any
from urllib.parse import quote

import greenlet
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from sqlalchemy import and_, select, text, update
from sqlalchemy.exc import DBAPIError

from services.router import applier as applier_module
from services.router import handlers as handlers_module
from services.router import repository
from services.router.core.playbook import Playbook, parse_playbook
from services.router.handlers import TIMER_BATCH, CaseRouter
from shared.db import Database
from shared.events import (
    Author,
    Channel,
    Classification,
    Envelope,
    EventType,
    Intent,
    Mention,
    MentionClassified,
    MentionKind,
    Priority,
    Sentiment,
    TraceContext,
    decode_event,
    new_envelope,
    utcnow,
)
from shared.kafka import EventProducer
from shared.migrate import upgrade
from shared.settings import ConnectionSettings, load_settings
from shared.topics import CASES, CRISES, PARTITIONS

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = REPO / "deploy" / "playbooks" / "sample.yaml"
TENANT = "default"
ROUTER_TABLES = (
    "router_timers",
    "router_cases",
    "router_case_mentions",
    "router_outbox",
    "router_crises",
    "webhook_deliveries",
)
FILLER_CHUNK = 100_000


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- workload ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    text: str
    intents: tuple[Intent, ...]
    sentiment: str
    priorities: tuple[Priority, ...]


TEMPLATES: dict[str, list[Template]] = {
    "es": [
        Template(
            "Llevo tres días sin fibra en {city} y nadie me responde",
            (Intent.COMPLAINT, Intent.INCIDENT),
            "negative",
            (Priority.P2, Priority.P3),
        ),
        Template(
            "¿Hay alguna avería de móvil en {city}? No tengo datos desde esta mañana",
            (Intent.QUESTION, Intent.INCIDENT),
            "negative",
            (Priority.P2, Priority.P3),
        ),
        Template(
            "Quiero cambiar de tarifa, ¿cómo lo hago?",
            (Intent.REQUEST,),
            "neutral",
            (Priority.P3, Priority.P4),
        ),
        Template(
            "Me habéis cobrado dos veces la factura, voy a poner una denuncia en la OCU",
            (Intent.COMPLAINT,),
            "negative",
            (Priority.P2,),
        ),
        Template(
            "Gracias por arreglarlo tan rápido, ¡genial!",
            (Intent.PRAISE,),
            "positive",
            (Priority.P4,),
        ),
        Template(
            "He visto el anuncio nuevo de Acme en {city}",
            (Intent.OTHER,),
            "neutral",
            (Priority.P4,),
        ),
    ],
    "en": [
        Template(
            "No internet in {city} since this morning, any news?",
            (Intent.INCIDENT, Intent.QUESTION),
            "negative",
            (Priority.P2, Priority.P3),
        ),
        Template(
            "Been waiting two weeks for an engineer, this is a joke",
            (Intent.COMPLAINT,),
            "negative",
            (Priority.P2, Priority.P3),
        ),
        Template(
            "How do I change my plan?", (Intent.QUESTION,), "neutral", (Priority.P3, Priority.P4)
        ),
        Template(
            "You charged me twice, my solicitor will hear about this",
            (Intent.COMPLAINT,),
            "negative",
            (Priority.P2,),
        ),
        Template("Great service today, thanks!", (Intent.PRAISE,), "positive", (Priority.P4,)),
    ],
}
CITIES = {
    "es": ["Madrid", "Sevilla", "Bilbao", "CDMX", "Monterrey", "Guadalajara", "mi pueblo"],
    "en": ["London", "Manchester", "Glasgow", "Dublin", "my town"],
}
CHANNELS: list[tuple[Channel, MentionKind]] = [
    *[(Channel.X, MentionKind.MENTION)] * 12,
    *[(Channel.FACEBOOK, MentionKind.COMMENT)] * 3,
    *[(Channel.INSTAGRAM, MentionKind.COMMENT)] * 2,
    (Channel.X, MentionKind.DM),
    (Channel.TRUSTPILOT, MentionKind.REVIEW),
    (Channel.EMAIL, MentionKind.DM),
]
CRISIS_TOPIC = "acme|crisis:outage"


@dataclass
class Conversation:
    channel: Channel
    kind: MentionKind
    conversation_id: str
    language: str
    handle: str
    location: str | None


def _customer(
    rng: random.Random,
    conversation: Conversation,
    platform_id: str,
    at: datetime,
    *,
    priority: Priority | None = None,
) -> MentionClassified:
    language = conversation.language
    crisis = priority is None and rng.random() < 0.01
    # A forced priority stays: no legal threat or influencer rule (they set P2) may match.
    template = rng.choice(TEMPLATES[language][: 2 if priority else None])
    city = rng.choice(CITIES[language])
    chosen = priority or (Priority.P1 if crisis or rng.random() < 0.04 else None)
    intents = template.intents if chosen is None else (Intent.COMPLAINT, Intent.INCIDENT)
    sentiment = template.sentiment if chosen is None else "negative"
    mention = Mention(
        mention_id=Mention.id_for(conversation.channel, platform_id),
        channel=conversation.channel,
        kind=conversation.kind,
        platform_id=platform_id,
        conversation_id=conversation.conversation_id,
        text=template.text.format(city=city),
        author=Author(
            handle=conversation.handle,
            location=conversation.location,
            followers=rng.choice([12, 900, 4000, 120_000])
            if not priority and rng.random() < 0.2
            else 80,
        ),
        created_at=at,
        language=language,
        brand="Acme",
    )
    return MentionClassified(
        mention=mention,
        classification=Classification(
            language=language,
            sentiment=Sentiment(
                label=sentiment,
                score={"negative": -0.6, "neutral": 0.0, "positive": 0.7}[sentiment],
            ),
            intents=list(intents),
            is_complaint=Intent.COMPLAINT in intents,
            crisis_risk=0.85 if crisis else 0.1,
            priority=chosen or rng.choice(template.priorities),
            reasons=["bench"],
            model="bench",
            topic_key=CRISIS_TOPIC if crisis else None,
            similar_recent=6 if crisis else 0,
        ),
    )


def _brand_reply(conversation: Conversation, platform_id: str, at: datetime) -> MentionClassified:
    mention = Mention(
        mention_id=Mention.id_for(conversation.channel, platform_id),
        channel=conversation.channel,
        kind=MentionKind.REPLY,
        platform_id=platform_id,
        conversation_id=conversation.conversation_id,
        text="Hola, te escribimos por privado para revisarlo"
        if conversation.language == "es"
        else "Hi, we've sent you a DM to look into it",
        author=Author(handle="acme_care", followers=250_000, verified=True),
        created_at=at,
        language=conversation.language,
        brand="Acme",
    )
    return MentionClassified(mention=mention, classification=None)


def workload(
    count: int,
    tag: str,
    seed: int,
    *,
    start: datetime,
    span: timedelta,
    priority: Priority | None = None,
    follow_ups: float = 0.2,
    replies: float = 0.1,
) -> list[Envelope[MentionClassified]]:
    """`count` classified mentions created over [start, start + span], in order: about 70% open
    a conversation, `follow_ups` write again in one and `replies` are the brand's answers."""
    rng = random.Random(seed)
    conversations: list[Conversation] = []
    envelopes: list[Envelope[MentionClassified]] = []
    step = span / max(count, 1)
    for n in range(count):
        at = start + step * n
        platform_id = f"{tag}-{n}"
        roll = rng.random()
        if priority is None and conversations and roll < replies:
            item = _brand_reply(rng.choice(conversations), platform_id, at)
        elif priority is None and conversations and roll < replies + follow_ups:
            item = _customer(rng, rng.choice(conversations), platform_id, at)
        else:
            channel, kind = rng.choice(CHANNELS)
            language = "es" if rng.random() < 0.6 else "en"
            conversation = Conversation(
                channel=channel,
                kind=kind,
                conversation_id=f"{tag}-c{n}",
                language=language,
                handle=f"user{rng.randrange(20_000)}",
                location=rng.choice([*CITIES[language], None, None]),
            )
            conversations.append(conversation)
            item = _customer(rng, conversation, platform_id, at, priority=priority)
        envelopes.append(
            new_envelope(
                EventType.MENTION_CLASSIFIED,
                item,
                tenant=TENANT,
                subject=item.mention.conversation_key,
                trace=TraceContext.new(),
            )
        )
    return envelopes


# -- Kafka and PostgreSQL plumbing -------------------------------------------------------------


class BenchProducer(EventProducer):
    """The router's producer, sending the case and crisis events to the bench's own topics."""

    def __init__(self, bootstrap_servers: str, renames: dict[str, str]) -> None:
        super().__init__(bootstrap_servers, "scs-bench-router")
        self._renames = renames

    async def publish_encoded(self, records: Sequence[tuple[str, bytes, bytes]]) -> None:
        await super().publish_encoded([(self._renames.get(t, t), k, v) for t, k, v in records])


def in_schema(database_url: str, schema: str) -> str:
    """The same database with only `schema` on the search path (nothing of a running stack's
    is reachable). SQLAlchemy hands the URL's query to asyncpg.connect, whose `dsn` query
    parameters it does not know become server settings; its explicit host, user and database
    win over the dsn's empty ones."""
    separator = "&" if "?" in database_url else "?"
    return f"{database_url}{separator}dsn=" + quote(f"postgresql://?search_path={schema}", safe="")


async def maintenance(db: Database, statement: str) -> None:
    """A statement that cannot run in a transaction (VACUUM)."""
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))


async def vacuum(db: Database) -> float:
    started = time.perf_counter()
    await maintenance(db, f"VACUUM (ANALYZE) {', '.join(ROUTER_TABLES)}")
    return time.perf_counter() - started


async def end_offsets(consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    offsets: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    return offsets


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float
    cpu_seconds: float  # of this process: the bench's Python, not PostgreSQL's or Kafka's

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    @property
    def cpu_share(self) -> float:
        return self.cpu_seconds / self.seconds


BatchAction = Callable[[list[ConsumerRecord[bytes, bytes]]], Awaitable[None]]


async def consume(
    bootstrap: str,
    group: str,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    batch: int,
    action: BatchAction,
) -> Rate:
    """Consume [starts, ends) in batches of up to `batch` records, `action` each batch, commit
    its offsets; timed from the first fetch to the last commit."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        consumer.assign(list(starts))
        for partition, offset in starts.items():
            consumer.seek(partition, offset)
        remaining = {p for p in starts if ends[p] > starts[p]}
        count = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        while remaining:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=batch)
            records = [r for p in sorted(fetched, key=lambda p: p.partition) for r in fetched[p]]
            if not records:
                continue
            await action(records)
            await consumer.commit({p: rs[-1].offset + 1 for p, rs in fetched.items()})
            count += len(records)
            for partition, partition_records in fetched.items():
                if partition_records[-1].offset + 1 >= ends[partition]:
                    remaining.discard(partition)
        return Rate(count, time.perf_counter() - started, time.process_time() - cpu_started)
    finally:
        await consumer.stop()


FILLER_SQL = """
INSERT INTO router_timers (timer_id, tenant, kind, due_at, case_id, clock, timer)
SELECT id, tenant, kind, due, case_id, clock,
       jsonb_build_object('timer_id', id, 'kind', kind, 'due_at', due, 'tenant', tenant,
                          'subject', subject, 'case_id', case_id, 'clock', clock, 'anchor', due)
FROM (
  SELECT gen_random_uuid() AS id, CAST(:tenant AS text) AS tenant,
         md5(CAST(:tag AS text) || (g / 4))::uuid AS case_id,
         'x:bench-' || CAST(:tag AS text) || '-' || (g / 4) AS subject,
         CASE WHEN g % 2 = 0 THEN 'sla_warning' ELSE 'sla_breach' END AS kind,
         CASE WHEN g % 4 < 2 THEN 'first_response' ELSE 'resolution' END AS clock,
         now() + CAST(:offset AS interval) + random() * CAST(:spread AS interval) AS due
  FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g
) AS filler
"""


async def insert_timers(
    db: Database, count: int, tag: str, *, offset: timedelta, spread: timedelta
) -> float:
    """`count` pending timers due in [now + offset, now + offset + spread], four per case id
    (first-response and resolution warning and breach), as valid `Timer` documents."""
    started = time.perf_counter()
    for first in range(0, count, FILLER_CHUNK):
        last = min(first + FILLER_CHUNK, count) - 1
        async with db.begin() as conn:
            await conn.execute(
                text(FILLER_SQL),
                {
                    "tenant": TENANT,
                    "tag": tag,
                    "offset": offset,
                    "spread": spread,
                    "first": first,
                    "last": last,
                },
            )
    return time.perf_counter() - started


async def pending_timers(db: Database) -> int:
    async with db.begin() as conn:
        result = await conn.execute(
            text("SELECT count(*) FROM router_timers WHERE fired_at IS NULL")
        )
        return int(result.scalar_one())


# -- measurements --------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    bootstrap: str
    db: Database
    producer: BenchProducer
    router: CaseRouter
    offsets: AIOKafkaConsumer
    run: str
    topic_in: str
    topic_out: str
    result: dict[str, Any] = field(default_factory=dict)
    rep_counter: int = 0

    async def produce_input(
        self, tag: str, count: int | None = None
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """A fresh set of mentions on the input topic: (start offsets, end offsets)."""
        now = utcnow()
        envelopes = workload(
            count or self.args.mentions,
            f"{self.run}-{tag}",
            zlib.crc32(f"{self.run}-{tag}".encode()),
            start=now - timedelta(seconds=60),
            span=timedelta(seconds=55),
        )
        starts = await end_offsets(self.offsets, self.topic_in)
        records = [(self.topic_in, e.subject.encode(), e.to_bytes()) for e in envelopes]
        for first in range(0, len(records), 2000):
            await self.producer.publish_encoded(records[first : first + 2000])
        ends = await end_offsets(self.offsets, self.topic_in)
        assert sum(ends.values()) - sum(starts.values()) == len(records)
        return starts, ends

    async def baseline(
        self, starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]
    ) -> Rate:
        async def forward(records: list[ConsumerRecord[bytes, bytes]]) -> None:
            await self.producer.publish_encoded(
                [(self.topic_out, r.key or b"", r.value or b"") for r in records]
            )

        self.rep_counter += 1
        return await consume(
            self.bootstrap,
            f"bench-router-{self.run}-base-{self.rep_counter}",
            starts,
            ends,
            self.args.batch,
            forward,
        )

    async def routing(
        self, starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]
    ) -> Rate:
        async def route(records: list[ConsumerRecord[bytes, bytes]]) -> None:
            await self.router.handle([decode_event(r.value) for r in records])

        self.rep_counter += 1
        return await consume(
            self.bootstrap,
            f"bench-router-{self.run}-route-{self.rep_counter}",
            starts,
            ends,
            self.args.batch,
            route,
        )

    async def routing_reps(self, label: str) -> dict[str, Any]:
        baselines: list[float] = []
        routed: list[float] = []
        cpu_shares: list[float] = []
        for rep in range(self.args.reps):
            starts, ends = await self.produce_input(f"{label}{rep}")
            await vacuum(self.db)
            baselines.append((await self.baseline(starts, ends)).per_second)
            await vacuum(self.db)
            rate = await self.routing(starts, ends)
            routed.append(rate.per_second)
            cpu_shares.append(rate.cpu_share)
            progress(
                f"{label} rep {rep + 1}/{self.args.reps}: baseline {baselines[-1]:,.0f} msg/s,"
                f" routing {routed[-1]:,.0f} decisions/s"
                f" ({await pending_timers(self.db):,} timers pending)"
            )
        return {
            "baseline_per_second": baselines,
            "decisions_per_second": routed,
            "routing_bench_process_cpu_share": cpu_shares,
            "baseline_median": statistics.median(baselines),
            "decisions_median": statistics.median(routed),
            "ratio_to_baseline": statistics.median(routed) / statistics.median(baselines),
        }

    async def plain_timer_loop(self) -> tuple[int, float]:
        """The baseline for firings: take due timers and mark them fired, nothing else."""
        timers = repository.timers
        count = 0
        started = time.perf_counter()
        while True:
            now = utcnow()
            async with self.db.begin() as conn:
                result = await conn.execute(
                    select(timers.c.timer_id)
                    .where(and_(timers.c.fired_at.is_(None), timers.c.due_at <= now))
                    .order_by(timers.c.due_at)
                    .limit(TIMER_BATCH)
                    .with_for_update(skip_locked=True)
                )
                ids = list(result.scalars())
                if not ids:
                    break
                await conn.execute(
                    update(timers).where(timers.c.timer_id.in_(ids)).values(fired_at=now)
                )
            count += len(ids)
        return count, time.perf_counter() - started

    async def route_aged_cases(self, tag: str, count: int | None = None) -> tuple[int, float]:
        """--timer-cases P1 cases opened --timer-age-minutes ago: their first-response warning
        (12 min) and breach (15 min) timers are due now, nothing else of theirs is."""
        envelopes = workload(
            count or self.args.timer_cases,
            f"{self.run}-{tag}",
            zlib.crc32(f"{self.run}-{tag}".encode()),
            start=utcnow() - timedelta(minutes=self.args.timer_age_minutes),
            span=timedelta(seconds=60),
            priority=Priority.P1,
        )
        started = time.perf_counter()
        for first in range(0, len(envelopes), self.args.batch):
            await self.router.handle(envelopes[first : first + self.args.batch])
        return len(envelopes), time.perf_counter() - started

    async def fire_all(self) -> tuple[Rate, list[float]]:
        count = 0
        batches: list[float] = []
        started, cpu_started = time.perf_counter(), time.process_time()
        while True:
            batch_started = time.perf_counter()
            taken = await self.router.fire_due_timers()
            if taken == 0:
                break
            batches.append(time.perf_counter() - batch_started)
            count += taken
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        return Rate(count, elapsed, cpu), batches


# -- profiling -----------------------------------------------------------------------------


class Breakdown:
    """Wall time per component while patched: the router's repository calls, decide, apply,
    the Kafka sends; each call's own time, outer calls listed apart."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._restore: list[tuple[Any, str, Any]] = []

    def _patch(self, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)
        seconds, calls = self.seconds, self.calls
        if asyncio.iscoroutinefunction(original):

            @wraps(original)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    seconds[label] += time.perf_counter() - started
                    calls[label] += 1

            replacement: Any = timed_async
        else:

            @wraps(original)
            def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    seconds[label] += time.perf_counter() - started
                    calls[label] += 1

            replacement = timed
        self._restore.append((owner, name, original))
        setattr(owner, name, replacement)

    @contextmanager
    def patched(self) -> Iterator[None]:
        for name in (
            "cases_for_update",
            "known_mentions",
            "open_crises_for_update",
            "subscriptions",
            "upsert_cases",
            "upsert_crises",
            "add_mentions",
            "cancel_timers",
            "add_timers",
            "add_outbox",
            "enqueue_deliveries",
            "lock_outbox_relay",
            "unpublished_outbox",
            "mark_outbox_published",
            "take_due_timers",
            "cases_by_id_for_update",
            "crises_by_id_for_update",
            "mark_timers_fired",
        ):
            self._patch(repository, name, f"db {name}")
        self._patch(handlers_module, "decide", "cpu decide")
        self._patch(applier_module.Applier, "apply", "cpu Applier.apply")
        self._patch(EventProducer, "_send_all", "kafka send (acks=all)")
        self._patch(CaseRouter, "_route", "outer CaseRouter._route (one transaction)")
        self._patch(CaseRouter, "relay_outbox", "outer CaseRouter.relay_outbox")
        self._patch(CaseRouter, "fire_due_timers", "outer CaseRouter.fire_due_timers")
        try:
            yield
        finally:
            for owner, name, original in reversed(self._restore):
                setattr(owner, name, original)
            self._restore.clear()

    def report(self, total: float) -> list[dict[str, Any]]:
        return [
            {
                "component": label,
                "seconds": round(seconds, 3),
                "share_of_wall": round(seconds / total, 3),
                "calls": self.calls[label],
            }
            for label, seconds in sorted(self.seconds.items(), key=lambda item: -item[1])
        ]


# Library entry points worth a line of their own in the CPU profile: statement compilation,
# parameter processing and execution, pydantic dumps, stdlib json (SQLAlchemy's JSONB encoder),
# the Kafka client's record batching.
LIBRARY_FRAMES = (
    "ClauseElement._compile_w_cache",
    "DefaultExecutionContext._init_compiled",
    "AsyncAdapt_asyncpg_cursor._prepare_and_execute",
    "BaseModel.model_dump",
    "JSONEncoder.encode",
    "AIOKafkaProducer.send",
    "decode_event",
)


class CpuSampler:
    """A CPU profile of this process (py-spy is not installed here): SIGPROF every `interval`
    seconds of CPU time, and the handler reads the Python stack it interrupted. C code (orjson,
    pydantic-core, asyncpg's codecs) counts in the Python frame that called it; time waiting for
    PostgreSQL or Kafka is no CPU time and does not count."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.samples = 0
        self.inclusive: Counter[str] = Counter()
        self.own: Counter[str] = Counter()
        self._names: dict[CodeType, str] = {}

    def _name(self, code: CodeType) -> str:
        name = self._names.get(code)
        if name is None:
            path = code.co_filename
            for prefix in (str(REPO) + "/", *(p + "/" for p in sys.path if p)):
                if path.startswith(prefix):
                    path = path[len(prefix) :]
                    break
            name = self._names[code] = f"{code.co_qualname} ({path}:{code.co_firstlineno})"
        return name

    @staticmethod
    def _stack(frame: FrameType) -> Iterator[FrameType]:
        """The interrupted frame and its callers. SQLAlchemy's asyncio runs the statement's
        compilation in a greenlet whose stack ends at greenlet_spawn: the awaiting coroutine's
        frames are those of the parent greenlet, where it switched."""
        current: FrameType | None = frame
        parent = getattr(greenlet.getcurrent(), "parent", None)
        while True:
            while current is not None:
                yield current
                current = current.f_back
            if parent is None:
                return
            current, parent = getattr(parent, "gr_frame", None), getattr(parent, "parent", None)

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if frame is None:
            return
        self.samples += 1
        self.own[self._name(frame.f_code)] += 1
        self.inclusive.update({self._name(f.f_code) for f in self._stack(frame)})

    @contextmanager
    def running(self) -> Iterator[None]:
        previous = signal.signal(signal.SIGPROF, self._handler)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            signal.signal(signal.SIGPROF, previous)

    def report(self, top: int) -> dict[str, list[tuple[str, float]]]:
        share = max(self.samples, 1)
        project = [
            (name, n)
            for name, n in self.inclusive.most_common()
            if "(services/" in name or "(shared/" in name
        ]
        libraries = [
            (name, n)
            for name, n in self.inclusive.most_common()
            if name.startswith(LIBRARY_FRAMES) and "(services/" not in name
        ]
        return {
            "own": [(name, round(n / share, 3)) for name, n in self.own.most_common(top)],
            "inclusive_project": [(name, round(n / share, 3)) for name, n in project[:top]],
            "inclusive_library": [(name, round(n / share, 3)) for name, n in libraries[:top]],
            "inclusive_all": [
                (name, round(n / share, 3)) for name, n in self.inclusive.most_common(3 * top)
            ],
        }


async def profiled(bench: Bench, work: Callable[[], Awaitable[float]]) -> dict[str, Any]:
    breakdown, sampler = Breakdown(), CpuSampler()
    started, cpu_started = time.perf_counter(), time.process_time()
    with breakdown.patched(), sampler.running():
        rate = await work()
    wall = time.perf_counter() - started
    return {
        "per_second": rate,
        "wall_seconds": wall,
        "bench_process_cpu_share": (time.process_time() - cpu_started) / wall,
        "breakdown": breakdown.report(wall),
        "cpu_samples": sampler.samples,
        "cpu_profile": sampler.report(25),
    }


async def profile_routing(bench: Bench) -> dict[str, Any]:
    starts, ends = await bench.produce_input("profile", bench.args.profile_size)
    await vacuum(bench.db)

    async def route() -> float:
        return (await bench.routing(starts, ends)).per_second

    return await profiled(bench, route)


async def profile_firing(bench: Bench) -> dict[str, Any]:
    await bench.route_aged_cases("profile-timers", bench.args.profile_size)
    await vacuum(bench.db)

    async def fire() -> float:
        return (await bench.fire_all())[0].per_second

    return await profiled(bench, fire)


# -- the run -------------------------------------------------------------------------------


async def measure(bench: Bench) -> None:
    args, result = bench.args, bench.result
    if args.warmup:
        # Connections, SQLAlchemy's statement caches and the broker's JIT warm up here.
        starts, ends = await bench.produce_input("warmup", args.warmup)
        for _ in range(5):
            await bench.baseline(starts, ends)
        await bench.routing(starts, ends)
    progress(f"routing without filler timers: {args.reps} x {args.mentions:,} mentions")
    result["routing_without_filler"] = await bench.routing_reps("plain")

    progress(f"inserting {args.pending_timers:,} pending timers")
    filler_seconds = await insert_timers(
        bench.db,
        args.pending_timers,
        f"{bench.run}-filler",
        offset=timedelta(days=1),
        spread=timedelta(days=30),
    )
    vacuum_seconds = await vacuum(bench.db)
    result["filler"] = {
        "timers": args.pending_timers,
        "insert_seconds": round(filler_seconds, 1),
        "vacuum_analyze_seconds": round(vacuum_seconds, 1),
    }
    progress(f"inserted in {filler_seconds:.1f} s, VACUUM ANALYZE {vacuum_seconds:.1f} s")

    result["routing_with_filler"] = await bench.routing_reps("filler")
    without = result["routing_without_filler"]
    with_ = result["routing_with_filler"]
    result["routing_with_vs_without"] = with_["decisions_median"] / without["decisions_median"]
    result["routing_with_vs_without_normalised"] = (
        with_["ratio_to_baseline"] / without["ratio_to_baseline"]
    )

    plain_rates: list[float] = []
    fire_rates: list[float] = []
    fire_cpu_shares: list[float] = []
    fired_counts: list[int] = []
    batch_trends: list[dict[str, float]] = []
    aged_rates: list[float] = []
    for rep in range(args.timer_reps):
        await insert_timers(
            bench.db,
            args.timer_cases * 2,
            f"{bench.run}-due{rep}",
            offset=timedelta(hours=-2),
            spread=timedelta(hours=1),
        )
        await vacuum(bench.db)
        taken, seconds = await bench.plain_timer_loop()
        plain_rates.append(taken / seconds)

        cases, routing_seconds = await bench.route_aged_cases(f"aged{rep}")
        aged_rates.append(cases / routing_seconds)
        await vacuum(bench.db)
        fired, batches = await bench.fire_all()
        fire_rates.append(fired.per_second)
        fire_cpu_shares.append(fired.cpu_share)
        fired_counts.append(fired.count)
        tenth = max(len(batches) // 10, 1)
        batch_trends.append(
            {
                "batches": len(batches),
                "first_tenth_ms": 1000 * statistics.mean(batches[:tenth]),
                "last_tenth_ms": 1000 * statistics.mean(batches[-tenth:]),
            }
        )
        progress(
            f"timers rep {rep + 1}/{args.timer_reps}: plain take+mark {plain_rates[-1]:,.0f}/s,"
            f" fire_due_timers {fire_rates[-1]:,.0f} firings/s ({fired.count:,} fired;"
            f" batch {batch_trends[-1]['first_tenth_ms']:.0f} ms first tenth,"
            f" {batch_trends[-1]['last_tenth_ms']:.0f} ms last tenth)"
        )
    baseline = with_["baseline_median"]
    result["firing_with_filler"] = {
        "firings_per_second": fire_rates,
        "fired": fired_counts,
        "firing_bench_process_cpu_share": fire_cpu_shares,
        "firings_median": statistics.median(fire_rates),
        "plain_take_and_mark_per_second": plain_rates,
        "plain_take_and_mark_median": statistics.median(plain_rates),
        "consume_produce_baseline_median": baseline,
        "ratio_to_consume_produce": statistics.median(fire_rates) / baseline,
        "ratio_to_plain_take_and_mark": (
            statistics.median(fire_rates) / statistics.median(plain_rates)
        ),
        "batch_trend": batch_trends,
        "aged_cases_routing_per_second": aged_rates,
    }
    result["pending_timers_at_end"] = await pending_timers(bench.db)
    if args.profile:
        progress("profile: one more routing repetition and one more firing repetition")
        result["profile"] = {
            "routing_with_filler": await profile_routing(bench),
            "firing_with_filler": await profile_firing(bench),
        }


def summary(result: dict[str, Any]) -> str:
    args = result["config"]
    without, with_ = result["routing_without_filler"], result["routing_with_filler"]
    firing = result["firing_with_filler"]
    pending = f"{result['filler']['timers'] / 1e6:g}M"

    def reps(values: list[float]) -> str:
        return " ".join(f"{v:,.0f}" for v in values)

    lines = [
        f"router throughput: {args['mentions']:,} mentions/rep in batches of {args['batch']},"
        f" {args['reps']} reps; {args['timer_cases']:,} aged P1 cases/rep, {args['timer_reps']}"
        f" reps; medians (each rep in brackets)",
        f"  {'':<44}{'per second':>12}  {'ratio':>7}",
        f"  {'plain consume/produce, no filler':<44}{without['baseline_median']:>12,.0f}"
        f"  {'':>7}  [{reps(without['baseline_per_second'])}]",
        f"  {'routing decisions, no filler':<44}{without['decisions_median']:>12,.0f}"
        f"  {without['ratio_to_baseline']:>6.2f}x  [{reps(without['decisions_per_second'])}]"
        "  (x: of the baseline above)",
        f"  {f'plain consume/produce, {pending} pending':<44}{with_['baseline_median']:>12,.0f}"
        f"  {'':>7}  [{reps(with_['baseline_per_second'])}]",
        f"  {f'routing decisions, {pending} pending':<44}{with_['decisions_median']:>12,.0f}"
        f"  {with_['ratio_to_baseline']:>6.2f}x  [{reps(with_['decisions_per_second'])}]",
        f"  {f'routing with {pending} pending / without':<44}{'':>12}"
        f"  {result['routing_with_vs_without']:>6.2f}x  (baseline-normalised"
        f" {result['routing_with_vs_without_normalised']:.2f}x)",
        f"  {f'plain take+mark fired (SKIP LOCKED), {pending}':<44}"
        f"{firing['plain_take_and_mark_median']:>12,.0f}"
        f"  {'':>7}  [{reps(firing['plain_take_and_mark_per_second'])}]",
        f"  {f'timer firings (fire_due_timers), {pending}':<44}{firing['firings_median']:>12,.0f}"
        f"  {firing['ratio_to_consume_produce']:>6.2f}x  [{reps(firing['firings_per_second'])}]"
        f"  (x: of consume/produce, {pending})",
        f"  {'':<44}{'':>12}  {firing['ratio_to_plain_take_and_mark']:>6.2f}x"
        "  (x: of plain take+mark)",
        "  bench process on CPU (share of wall): routing, no filler "
        + " ".join(f"{v:.0%}" for v in without["routing_bench_process_cpu_share"])
        + f"; routing, {pending} "
        + " ".join(f"{v:.0%}" for v in with_["routing_bench_process_cpu_share"])
        + "; firing "
        + " ".join(f"{v:.0%}" for v in firing["firing_bench_process_cpu_share"]),
        f"  filler: {result['filler']['timers']:,} timers inserted in"
        f" {result['filler']['insert_seconds']} s, VACUUM ANALYZE"
        f" {result['filler']['vacuum_analyze_seconds']} s; pending at the end:"
        f" {result['pending_timers_at_end']:,}",
        "  fire_due_timers batch time, first tenth -> last tenth of the batches: "
        + ", ".join(
            f"{t['first_tenth_ms']:.0f} -> {t['last_tenth_ms']:.0f} ms"
            for t in firing["batch_trend"]
        ),
        f"  machine: {result['machine']['cpus']} CPUs, load average"
        f" {result['machine']['load_before']} before, {result['machine']['load_after']} after;"
        f" {result['machine']['postgres']}; bench total {result['total_seconds']:.0f} s",
    ]
    for name, profile in result.get("profile", {}).items():
        lines.append(
            f"  profile, {name}: {profile['per_second']:,.0f}/s, {profile['wall_seconds']:.1f} s"
            f" wall, bench process on CPU {profile['bench_process_cpu_share']:.0%} of it;"
            " wall time per component:"
        )
        for row in profile["breakdown"]:
            lines.append(
                f"    {row['component']:<52}{row['seconds']:>8.2f} s {row['share_of_wall']:>6.1%}"
                f" {row['calls']:>7} calls"
            )
        cpu = profile["cpu_profile"]
        lines.append(f"    CPU samples ({profile['cpu_samples']:,}), innermost Python frame:")
        lines += [f"      {share:>6.1%}  {frame}" for frame, share in cpu["own"][:12]]
        lines.append("    CPU samples, project functions on the stack:")
        lines += [f"      {share:>6.1%}  {frame}" for frame, share in cpu["inclusive_project"][:20]]
        lines.append("    CPU samples, library entry points on the stack:")
        lines += [f"      {share:>6.1%}  {frame}" for frame, share in cpu["inclusive_library"]]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=20_000, help="per routing repetition")
    parser.add_argument("--batch", type=int, default=500, help="records per consumer batch")
    parser.add_argument("--reps", type=int, default=3, help="routing repetitions per condition")
    parser.add_argument("--pending-timers", type=int, default=1_000_000)
    parser.add_argument("--timer-cases", type=int, default=20_000, help="per firing repetition")
    parser.add_argument("--timer-reps", type=int, default=1, help="about 90 s each")
    parser.add_argument("--timer-age-minutes", type=float, default=40)
    parser.add_argument(
        "--webhook-endpoints",
        type=int,
        default=1,
        help="endpoints subscribed to case.created/updated/responded",
    )
    parser.add_argument("--warmup", type=int, default=2000, help="unmeasured mentions first")
    parser.add_argument("--profile", action="store_true", help="add profiled repetitions")
    parser.add_argument(
        "--profile-size",
        type=int,
        default=5000,
        help="mentions, and aged cases, of the profiled repetitions",
    )
    parser.add_argument("--keep", action="store_true", help="keep the schema and topics")
    parser.add_argument("--json", action="store_true", help="JSON on stdout (the table on stderr)")
    args = parser.parse_args()
    if not 12 < args.timer_age_minutes < 70:
        parser.error("--timer-age-minutes must be within (12, 70): warning and breach due, no more")

    connections = load_settings(ConnectionSettings)
    bootstrap = connections.kafka_bootstrap_servers
    run = uuid.uuid4().hex[:8]
    schema = f"bench_router_{run}"
    topics = {name: f"bench.router.{run}.{name}" for name in ("in", "out", "case", "crisis")}
    total_started = time.perf_counter()
    result: dict[str, Any] = {
        "config": vars(args) | {"run": run, "schema": schema, "topics": topics},
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
        },
    }

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="scs-bench-router")
    try:
        await admin.start()
    except KafkaError as error:
        raise SystemExit(f"no Kafka at {bootstrap} ({error}): `make up` first") from None
    setup_db = Database(connections.database_url, pool_size=1)
    try:
        async with setup_db.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            result["machine"]["postgres"] = (
                (await conn.execute(text("SELECT version()"))).scalar_one().split(" on ")[0]
            )
    except (DBAPIError, OSError) as error:
        await admin.close()
        await setup_db.dispose()
        reason = type(error).__name__
        raise SystemExit(f"no PostgreSQL schema ({reason}): `make up` first") from None
    url = in_schema(connections.database_url, schema)
    db = Database(url)
    producer = BenchProducer(bootstrap, {CASES.name: topics["case"], CRISES.name: topics["crisis"]})
    offsets = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    try:
        progress(f"schema {schema}: migrating; topics bench.router.{run}.*")
        await asyncio.to_thread(upgrade, url)
        await admin.create_topics(
            [
                NewTopic(name, PARTITIONS, connections.kafka_replication_factor)
                for name in topics.values()
            ]
        )
        await producer.start()
        await offsets.start()
        playbook: Playbook = parse_playbook(PLAYBOOK.read_text(encoding="utf-8"))
        async with db.begin() as conn:
            for n in range(args.webhook_endpoints):
                await repository.add_endpoint(
                    conn,
                    {
                        "endpoint_id": uuid.uuid4(),
                        "tenant": TENANT,
                        "url": f"http://127.0.0.1:9/bench/{n}",
                        "event_types": ["case.created", "case.updated", "case.responded"],
                        "secret_ciphertext": "unused: no dispatcher runs in the bench",
                    },
                )
        router = CaseRouter(db, producer, playbook, asyncio.Event())
        bench = Bench(
            args, bootstrap, db, producer, router, offsets, run, topics["in"], topics["out"], result
        )
        await measure(bench)
    finally:
        await offsets.stop()
        await producer.stop()
        await db.dispose()
        if not args.keep:
            async with setup_db.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.delete_topics(list(topics.values()))
        await setup_db.dispose()
        await admin.close()
    result["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["total_seconds"] = time.perf_counter() - total_started
    if args.json:
        print(summary(result), file=sys.stderr)
        print(json.dumps(result, indent=2, default=str))
    else:
        print(summary(result))


if __name__ == "__main__":
    asyncio.run(main())
