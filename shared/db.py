"""PostgreSQL access: one async engine per process, SQLAlchemy Core, one metadata for all tables.

Each service declares its own tables in its `repository.py` on `metadata`; Alembic migrates them
all (shared/migrations).
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager as AsyncContextManager

import asyncpg
from sqlalchemy import MetaData, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLSTATEs after which the same work succeeds once the server or the deployment is back:
# 08 connection exceptions, 53 insufficient resources (too many connections, disk full),
# 57P operator intervention (admin or crash shutdown, cannot connect now), 40001 serialization
# failure, 40P01 deadlock, 55P03 lock not available. 28 (bad password), 3D000 (no such
# database), 42P01/42703 (table or column missing: code deployed before its migration) and
# 42501 (no privilege) are wrong for every event alike, so they wait for the fix too.
TRANSIENT_SQLSTATE_PREFIXES = (
    "08", "53", "57P", "40001", "40P01", "55P03", "28", "3D000", "42P01", "42703", "42501",
)  # fmt: skip
# SQLSTATE class 22 (data exception: a value too long, out of range, malformed) comes from the
# event's own values: the same event fails the same way every time.
DATA_ERROR_SQLSTATE_PREFIX = "22"


# asyncpg errors that mean the connection is unusable, whatever the statement.
_CONNECTION_LEVEL = (asyncpg.exceptions.InterfaceError, asyncpg.PostgresConnectionError)


def sqlstate_of(error: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE behind a SQLAlchemy or asyncpg error, if the server sent one."""
    orig = getattr(error, "orig", None)
    for candidate in (error, orig, getattr(orig, "__cause__", None), error.__cause__):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def is_transient_db_error(error: BaseException) -> bool:
    """True when retrying later can succeed: the connection, the server or the deployment
    failed, not the statement's data."""
    if isinstance(error, _CONNECTION_LEVEL):
        return True  # asyncpg raised it before SQLAlchemy could wrap it (closed connection)
    if isinstance(error, PoolTimeoutError | DisconnectionError):
        return True  # every pooled connection busy or broken
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated or isinstance(error, InterfaceError):
        return True  # the connection died under the statement
    if isinstance(getattr(error.orig, "__cause__", None), (*_CONNECTION_LEVEL, OSError)):
        return True  # asyncpg's own closed-connection errors, wrapped
    code = sqlstate_of(error)
    return code is not None and code.startswith(TRANSIENT_SQLSTATE_PREFIXES)


def is_data_error(error: BaseException) -> bool:
    """True when the statement failed on the values it was given (SQLSTATE class 22)."""
    code = sqlstate_of(error) if isinstance(error, DBAPIError) else None
    return code is not None and code.startswith(DATA_ERROR_SQLSTATE_PREFIX)


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_timeout=10,
            # Statement parameters are customers' text and personal data: keep them out of
            # exception messages, and so out of logs and dead-letter headers.
            hide_parameters=True,
            connect_args={"timeout": 5, "command_timeout": 30},
        )

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(2):
                async with self.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except (DBAPIError, OSError, TimeoutError):
            return False
        return True

    def begin(self) -> AsyncContextManager[AsyncConnection]:
        """`async with db.begin() as conn:` one transaction, committed on success."""
        return self.engine.begin()

    async def dispose(self) -> None:
        await self.engine.dispose()
