"""Structured JSON logs, one object per line on stderr, with the trace id when there is one."""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

trace_id_var: ContextVar[str | None] = ContextVar("trace_id", default=None)

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "color_message"}  # uvicorn's ANSI copy of msg
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        trace_id = trace_id_var.get()
        if trace_id:
            document["trace_id"] = trace_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


class RepeatLimit(logging.Filter):
    """Pass a message of the `prefix` loggers at most once per `seconds` (per logger and
    message template); other records pass untouched.

    With a broker down and a send pending, aiokafka retries its connection in a tight loop and
    logs "Unable connect to node" for each try (about a million lines a minute here,
    aio-libs/aiokafka#496): the first line says what is wrong, the rest only fill the disk.
    """

    def __init__(self, prefix: str, seconds: float) -> None:
        super().__init__()
        self._prefix = prefix
        self._seconds = seconds
        self._last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefix):
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        if now - self._last.get(key, -self._seconds) < self._seconds:
            return False
        if len(self._last) > 1000:  # templates are few; bound it all the same
            self._last.clear()
        self._last[key] = now
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    # A handler filter sees the records of every child logger (aiokafka.conn, ...).
    handler.addFilter(RepeatLimit("aiokafka", seconds=10))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-request access lines are noise at INFO; the metrics count requests.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
