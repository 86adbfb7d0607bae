"""What every `scs` command does when a dependency is down: say which, and why, in one line."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import typer
from aiokafka.errors import KafkaError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError


@contextlib.contextmanager
def unreachable_in_one_line(what: str) -> Iterator[None]:
    """An operator needs "which dependency, and why", not a traceback of the driver."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its retries would repeat it
    try:
        yield
    except (KafkaError, DBAPIError, OSError, TimeoutError) as exc:
        detail = getattr(exc, "orig", None) or exc
        lines = str(detail).strip().splitlines()
        typer.echo(f"error: {what}: {lines[0] if lines else type(exc).__name__}", err=True)
        raise typer.Exit(1) from None


def database_named(url: str) -> str:
    """Host and database only: the URL may carry a password."""
    parsed = make_url(url)
    return f"PostgreSQL at {parsed.host}:{parsed.port or 5432}/{parsed.database}"
