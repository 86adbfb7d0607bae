"""Which handler failures the consumer retries for ever, dead-letters, or isolates; and that what
it logs and writes in dead-letter headers names no customer text."""

from __future__ import annotations

import asyncpg
import orjson
import pytest
from aiokafka.errors import KafkaConnectionError, NotLeaderForPartitionError, RequestTimedOutError
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from shared.events import EventType, InvalidEvent, TraceContext, decode_event, new_envelope
from shared.kafka import Failure, PoisonEvent, classify_failure, describe_error
from tests.unit.test_events import a_mention

SECRET = "Lucía García, DNI 12345678Z, my card 4111 1111 1111 1111"


def wrapped(server_error: Exception, parameters: tuple[str, ...] | None = None) -> DBAPIError:
    """A PostgreSQL error exactly as SQLAlchemy's asyncpg dialect raises it to a handler."""
    adapted = AsyncAdapt_asyncpg_dbapi.Error(str(server_error), server_error)  # type: ignore[no-untyped-call]
    adapted.__cause__ = server_error
    error = DBAPIError.instance(
        "INSERT INTO t VALUES ($1)",
        parameters,
        adapted,
        AsyncAdapt_asyncpg_dbapi.Error,
        hide_parameters=True,
    )
    assert isinstance(error, DBAPIError)
    return error


@pytest.mark.parametrize(
    "error",
    [
        wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection")),  # 57P01
        wrapped(asyncpg.exceptions.CrashShutdownError("crash")),  # 57P02
        wrapped(asyncpg.exceptions.CannotConnectNowError("starting up")),  # 57P03
        wrapped(asyncpg.exceptions.TooManyConnectionsError("too many clients")),  # 53300
        wrapped(asyncpg.exceptions.SerializationError("could not serialize")),  # 40001
        wrapped(asyncpg.exceptions.DeadlockDetectedError("deadlock detected")),  # 40P01
        wrapped(asyncpg.exceptions.LockNotAvailableError("lock timeout")),  # 55P03
        wrapped(asyncpg.exceptions.ConnectionFailureError("connection reset")),  # 08006
        wrapped(asyncpg.exceptions.UndefinedTableError("relation does not exist")),  # 42P01
        wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")),
        wrapped(asyncpg.exceptions.InterfaceError("connection is closed")),  # no SQLSTATE
        asyncpg.exceptions.InterfaceError("cannot perform operation: connection is closed"),
        ConnectionResetError(104, "Connection reset by peer"),
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        PoolTimeoutError("QueuePool limit of size 10 overflow 10 reached"),
        KafkaConnectionError("broker down"),
        RequestTimedOutError(),
        NotLeaderForPartitionError(),
    ],
    ids=lambda error: f"{type(error).__name__}-{getattr(error.__cause__, 'sqlstate', '')}",
)
def test_outages_of_the_database_or_the_broker_are_transient(error: BaseException) -> None:
    assert classify_failure(error) is Failure.TRANSIENT


def _validation_error() -> ValidationError:
    class Strict(BaseModel):
        count: int

    try:
        Strict.model_validate({"count": SECRET})
    except ValidationError as exc:
        return exc
    raise AssertionError("validation passed")


@pytest.mark.parametrize(
    "error",
    [
        InvalidEvent("not JSON"),
        _validation_error(),
        wrapped(asyncpg.exceptions.StringDataRightTruncationError("value too long")),  # 22001
        wrapped(asyncpg.exceptions.InvalidTextRepresentationError("invalid input")),  # 22P02
    ],
    ids=["invalid-event", "validation", "22001", "22P02"],
)
def test_an_event_that_can_never_succeed_is_poison(error: BaseException) -> None:
    assert classify_failure(error) is Failure.POISON


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bug"),
        KeyError("missing"),
        RuntimeError("bug"),
        wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key")),  # 23505
        wrapped(asyncpg.exceptions.PostgresSyntaxError("syntax error")),  # 42601
    ],
    ids=["ValueError", "KeyError", "RuntimeError", "23505", "42601"],
)
def test_anything_else_is_an_unexpected_bug(error: BaseException) -> None:
    assert classify_failure(error) is Failure.UNEXPECTED


def test_a_poison_event_raised_by_a_handler_is_poison() -> None:
    mention = a_mention()
    envelope = new_envelope(
        EventType.MENTION_RECEIVED,
        mention,
        tenant="t",
        subject=mention.conversation_key,
        trace=TraceContext.new(),
    )
    poison = PoisonEvent(envelope, "reply to an unknown case")
    assert classify_failure(poison) is Failure.POISON
    assert describe_error(poison) == "reply to an unknown case"


def test_an_invalid_payload_is_described_without_its_values() -> None:
    document = orjson.loads(
        new_envelope(
            EventType.MENTION_RECEIVED,
            a_mention(),
            tenant="t",
            subject="x:conv",
            trace=TraceContext.new(),
        ).to_bytes()
    )
    document["data"]["text"] = [SECRET]  # wrong type: pydantic quotes the input by default
    document["data"]["author"] = {"handle": SECRET, "followers": SECRET}
    with pytest.raises(InvalidEvent) as raised:
        decode_event(orjson.dumps(document))
    assert SECRET in str(raised.value), "the attack needs an error that carries the payload"
    description = describe_error(raised.value)
    assert "data.text" in description and "data.author.followers" in description
    assert "Lucía" not in description and "4111" not in description


def test_database_and_handler_errors_are_described_by_type_and_sqlstate_only() -> None:
    server = asyncpg.exceptions.StringDataRightTruncationError(
        f'value too long for type character varying(64): "{SECRET}"'
    )
    assert describe_error(wrapped(server, (SECRET,))) == "DBAPIError (SQLSTATE 22001)"
    assert describe_error(ValueError(f"cannot route {SECRET}")) == "ValueError"


def test_an_outage_is_described_with_where_it_is() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 5432)")
    assert describe_error(refused) == (
        "ConnectionRefusedError: [Errno 111] Connect call failed ('10.0.0.5', 5432)"
    )
    assert describe_error(TimeoutError()) == "TimeoutError"
    assert describe_error(KafkaConnectionError("no broker")) == "KafkaConnectionError: no broker"
