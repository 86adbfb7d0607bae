"""API keys at the router's HTTP edge: every /v1 route declares the scope it needs, the key is
checked (and its scope) before the body is read, and the route gets the key's `Caller`.

Declaring is one parameter: `caller: CanRead` (or `CanAct`, `CanAdmin`); then take the tenant
(`caller.tenant`) and the queues (`caller.sees(queue)`) from it, never from the settings. A route
under `KeyedRoute` that declares nothing needs admin (closed by default), and the route table
test names it.

Keys are looked up by their token's hash, and a key found is remembered for
`SCS_ROUTER_API_KEY_CACHE_SECONDS` (1 s): a revocation or rotation takes effect at once in the
router that made it and within that time in any other replica. The lookup also marks the key
as used.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router import access_repository
from services.router.core.access import Caller, Scope, looks_like_token, token_hash
from shared.db import Database
from shared.events import utcnow
from shared.http import CheckedRoute, bearer_matches, presented_bearer, unauthorized
from shared.problems import Problem

REALM = "scs-router"
# Remembered keys at most; past it the memory starts over (a flood of keys costs queries only).
CACHE_LIMIT = 10_000
Lookup = Callable[[str], Awaitable[Caller | None]]


class KeyResolver:
    """Who a bearer token stands for: the bootstrap key (SCS_ADMIN_API_KEY, admin of
    SCS_TENANT), an API key found by its hash, or nobody."""

    def __init__(
        self,
        lookup: Lookup,
        bootstrap_key: str,
        tenant: str,
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._bootstrap_key = bootstrap_key
        self._bootstrap = Caller(tenant=tenant, scope=Scope.ADMIN)
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[Caller, float]] = {}

    async def caller(self, authorization: str | None) -> Caller | None:
        presented = presented_bearer(authorization)
        if presented is None:
            return None
        if bearer_matches(authorization, [self._bootstrap_key]):
            return self._bootstrap
        if not looks_like_token(presented):
            return None
        hashed = token_hash(presented)
        now = self._clock()
        cached = self._cache.get(hashed)
        if cached is not None and cached[1] > now:
            return cached[0]
        found = await self._lookup(hashed)
        if found is None or self._cache_seconds <= 0:
            self._cache.pop(hashed, None)
            return found
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[hashed] = (found, now + self._cache_seconds)
        return found

    def forget(self, key_id: uuid.UUID) -> None:
        """A key revoked or rotated here: no remembered token of it opens anything any more."""
        for hashed in [h for h, (c, _) in self._cache.items() if c.key_id == key_id]:
            del self._cache[hashed]


def database_lookup(db: Database) -> Lookup:
    async def lookup(hashed: str) -> Caller | None:
        async with db.begin() as conn:
            return await access_repository.caller_for(conn, hashed, utcnow())

    return lookup


BEARER = HTTPBearer(
    auto_error=False,
    description="An API key (`scs_...`) or the bootstrap key (SCS_ADMIN_API_KEY)",
)


class Needs:
    """The dependency that declares a route's scope and hands it the checked `Caller`."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(
        self,
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Caller:
        caller = getattr(request.state, "caller", None)
        if not isinstance(caller, Caller):
            raise RuntimeError(f"{request.url.path} is not a KeyedRoute: its key was not checked")
        return caller


CanRead = Annotated[Caller, Depends(Needs(Scope.READ))]
CanAct = Annotated[Caller, Depends(Needs(Scope.ACT))]
CanAdmin = Annotated[Caller, Depends(Needs(Scope.ADMIN))]


def declared_scope(dependant: Dependant) -> Scope | None:
    """The highest scope a route's dependencies (at any depth) declare; None if none does."""
    found: list[Scope] = []
    pending = list(dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if isinstance(dependency.call, Needs):
            found.append(dependency.call.scope)
        pending += dependency.dependencies
    return max(found, key=lambda scope: scope.rank) if found else None


class KeyedRoute(CheckedRoute):
    """A /v1 route opened by an API key of the scope it declares (admin if it declares none)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.declared_scope = declared_scope(self.dependant)
        self.openapi_extra = {"x-required-scope": self.required_scope.value} | (
            self.openapi_extra or {}
        )

    @property
    def required_scope(self) -> Scope:
        return self.declared_scope or Scope.ADMIN

    async def check(self, request: Request) -> None:
        resolver = request.app.state.service.keys
        if not isinstance(resolver, KeyResolver):
            raise TypeError(f"service.keys is {type(resolver).__name__}, not KeyResolver")
        caller = await resolver.caller(request.headers.get("authorization"))
        if caller is None:
            raise unauthorized(REALM)
        needed = self.required_scope
        if not caller.scope.allows(needed):
            raise Problem(
                403,
                "Forbidden",
                f"this needs an API key with scope {needed.value} (or higher); "
                f"key {caller.key_name!r} has {caller.scope.value}",
            )
        request.state.caller = caller


async def audited(
    conn: AsyncConnection,
    caller: Caller,
    operation: str,
    target_id: uuid.UUID | None,
    status_code: int,
    *,
    actor: str | None = None,
    tenant: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record an operation in the audit log, in the caller's transaction. `tenant` is the
    target's when it is not the caller's (the bootstrap key managing another tenant's keys)."""
    await access_repository.add_audit(
        conn,
        access_repository.AuditEntry(
            audit_id=uuid.uuid4(),
            tenant=tenant or caller.tenant,
            at=utcnow(),
            key_id=caller.key_id,
            key_name=caller.key_name,
            actor=actor,
            operation=operation,
            target_id=target_id,
            status_code=status_code,
            detail=detail or {},
        ),
    )
