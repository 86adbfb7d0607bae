"""PostgreSQL access: one async engine per process, SQLAlchemy Core, one metadata for all tables.

Each service declares its own tables in its `repository.py` on `metadata`; Alembic migrates them
all (shared/migrations).
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager as AsyncContextManager

from sqlalchemy import MetaData, text
from sqlalchemy.exc import DBAPIError, OperationalError
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

# Errors after which the same statement may succeed later (server down, connection lost).
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (OperationalError, OSError)


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_timeout=10,
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
