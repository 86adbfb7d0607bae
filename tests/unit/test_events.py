from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.events import (
    Author,
    Channel,
    EventType,
    InvalidEvent,
    Mention,
    MentionKind,
    TraceContext,
    decode_event,
    new_envelope,
)
from shared.topics import ALL_TOPICS, topic_for


def a_mention(**overrides: object) -> Mention:
    fields: dict[str, object] = {
        "mention_id": Mention.id_for(Channel.X, "1"),
        "channel": Channel.X,
        "kind": MentionKind.MENTION,
        "platform_id": "1",
        "conversation_id": "conv",
        "text": "¿Alguien más sin servicio? 😡",
        "author": Author(handle="ana"),
        "created_at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    }
    fields.update(overrides)
    return Mention.model_validate(fields)


def test_envelope_round_trip_keeps_payload_type_and_trace() -> None:
    mention = a_mention()
    trace = TraceContext.new()
    envelope = new_envelope(
        EventType.MENTION_RECEIVED,
        mention,
        tenant="acme",
        subject=mention.conversation_key,
        trace=trace,
    )
    decoded = decode_event(envelope.to_bytes())
    assert isinstance(decoded.data, Mention)
    assert decoded.data == mention
    assert (decoded.id, decoded.version, decoded.tenant) == (envelope.id, 1, "acme")
    assert decoded.trace.trace_id == trace.trace_id
    assert decoded.subject == "x:conv"


def test_payload_must_match_event_type() -> None:
    with pytest.raises(TypeError):
        new_envelope(
            EventType.CASE_CREATED, a_mention(), tenant="t", subject="s", trace=TraceContext.new()
        )


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"not json",
        b"[1]",
        b'{"type": "nope", "version": 1}',
        b'{"type": "mention.received", "version": 99}',
        b'{"type": "mention.received", "version": 1, "data": {}}',
    ],
)
def test_undecodable_messages_raise_invalid_event(raw: bytes | None) -> None:
    with pytest.raises(InvalidEvent):
        decode_event(raw)


def test_mention_ids_are_deterministic_per_platform_item() -> None:
    assert Mention.id_for(Channel.X, "42") == Mention.id_for(Channel.X, "42")
    assert Mention.id_for(Channel.X, "42") != Mention.id_for(Channel.FACEBOOK, "42")


def test_trace_child_keeps_trace_and_changes_span() -> None:
    parent = TraceContext.from_header("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    child = parent.child()
    assert child.trace_id == parent.trace_id
    assert child.traceparent != parent.traceparent
    assert TraceContext.from_header("garbage").trace_id != parent.trace_id


def test_every_event_type_has_exactly_one_topic_with_a_dead_letter_topic() -> None:
    for event_type in EventType:
        topic = topic_for(event_type)
        assert topic.dead_letter == f"{topic.name}.dlq"
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert all(name.endswith(".v1") for name in names)
    # One partition count everywhere keeps a conversation on the same partition number.
    assert len({t.partitions for t in ALL_TOPICS}) == 1


@pytest.mark.parametrize(
    "created_at",
    ["9999-12-31T23:59:00+00:00", "1970-01-01T00:00:00+00:00", "2300-01-01T00:00:00+00:00"],
)
def test_a_mention_time_that_would_overflow_clocks_downstream_is_refused(created_at: str) -> None:
    """9999-12-31 passed ingest and then overflowed the router's deadline arithmetic."""
    with pytest.raises(ValidationError) as refused:
        a_mention(created_at=created_at)
    assert [error["loc"] for error in refused.value.errors()] == [("created_at",)]
