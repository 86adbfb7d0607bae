"""API keys and the audit log over HTTP: create (the token is shown once), list (no secrets),
rotate (with an optional short overlap), revoke; and a tenant's audit entries, page by page.

Admin keys manage their own tenant's keys; the bootstrap key (SCS_ADMIN_API_KEY) those of any
tenant. Every change to a key is audited, under the key's tenant.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.router import access_repository
from services.router.access import CanAdmin, KeyedRoute, KeyResolver, audited
from services.router.api import DB, decode_cursor, encode_cursor
from services.router.core.access import Caller, Scope, new_token, token_hash
from services.router.core.playbook import Name
from shared.events import Identifier, utcnow
from shared.problems import Problem
from shared.service import service_part
from shared.settings import TENANT_PATTERN

router = APIRouter(prefix="/v1", tags=["access"], route_class=KeyedRoute)
Keys = Annotated[KeyResolver, Depends(service_part("keys", KeyResolver))]
# A rotated key's old token may keep working this long at most (time to roll the new one out).
MAX_OVERLAP_SECONDS = 3600

# Names as the playbook and the settings spell them: anything else names nothing, and could
# not be stored (a lone surrogate, a control character).
QueueName = Name
TenantName = Annotated[str, Field(pattern=TENANT_PATTERN)]
KeyName = Annotated[Identifier, Field(max_length=128)]


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: KeyName = Field(description="Who or what uses the key")
    scope: Scope = Field(description="read < act < admin; each implies the ones before it")
    queues: list[QueueName] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Only cases of these queues (read and act keys; default: every queue)",
    )
    tenant: TenantName | None = Field(
        default=None,
        description="Default: the caller's tenant; only the bootstrap key may name another",
    )

    @model_validator(mode="after")
    def _admin_is_tenant_wide(self) -> ApiKeyIn:
        if self.scope is Scope.ADMIN and self.queues is not None:
            raise ValueError("admin keys are tenant-wide: restrict read or act keys to queues")
        return self


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    tenant: str
    scope: Scope
    queues: list[str] | None
    created_at: AwareDatetime
    rotated_at: AwareDatetime | None
    last_used_at: AwareDatetime | None = Field(description="Updated at most once a second")
    revoked_at: AwareDatetime | None
    previous_token_until: AwareDatetime | None = Field(
        description="After a rotation with an overlap: the old token works until then"
    )

    @classmethod
    def from_row(cls, row: access_repository.ApiKey) -> ApiKeyOut:
        return cls(
            id=row.key_id,
            name=row.name,
            tenant=row.tenant,
            scope=Scope(row.scope),
            queues=row.queues,
            created_at=row.created_at,
            rotated_at=row.rotated_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            previous_token_until=row.previous_token_until,
        )


class ApiKeyWithToken(ApiKeyOut):
    token: str = Field(description="The bearer token (scs_...): shown once, keep it safe")


class KeyRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: float = Field(
        default=0,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="How long the old token keeps working beside the new one (default: not)",
    )


def _other_tenant(caller: Caller, tenant: str | None) -> None:
    """Only the bootstrap key reaches another tenant's keys."""
    if tenant is not None and tenant != caller.tenant and not caller.bootstrap:
        raise Problem(403, "Forbidden", "only the bootstrap key manages another tenant's keys")


def _keys_tenant(caller: Caller) -> str | None:
    """Whose keys the caller may see by id: its tenant's, or any (the bootstrap key)."""
    return None if caller.bootstrap else caller.tenant


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyWithToken,
    summary="Create an API key; its token is in this answer only",
)
async def create_api_key(body: ApiKeyIn, caller: CanAdmin, db: DB) -> ApiKeyWithToken:
    _other_tenant(caller, body.tenant)
    token = new_token()
    row = access_repository.ApiKey(
        key_id=uuid.uuid4(),
        tenant=body.tenant or caller.tenant,
        name=body.name,
        scope=body.scope.value,
        queues=sorted(set(body.queues)) if body.queues is not None else None,
        created_at=utcnow(),
        rotated_at=None,
        last_used_at=None,
        revoked_at=None,
        previous_token_until=None,
    )
    async with db.begin() as conn:
        await access_repository.add_key(conn, vars(row) | {"token_hash": token_hash(token)})
        await audited(
            conn,
            caller,
            "api_key.create",
            row.key_id,
            201,
            tenant=row.tenant,
            detail={"name": row.name, "scope": row.scope, "queues": row.queues},
        )
    return ApiKeyWithToken(**ApiKeyOut.from_row(row).model_dump(), token=token)


@router.get(
    "/api-keys",
    response_model=list[ApiKeyOut],
    summary="The tenant's API keys, revoked ones included (never their tokens)",
)
async def list_api_keys(
    caller: CanAdmin,
    db: DB,
    tenant: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Bootstrap key: default every tenant"),
    ] = None,
) -> list[ApiKeyOut]:
    _other_tenant(caller, tenant)
    async with db.begin() as conn:
        rows = await access_repository.keys_of(conn, tenant or _keys_tenant(caller))
    return [ApiKeyOut.from_row(row) for row in rows]


@router.post(
    "/api-keys/{key_id}/rotate",
    response_model=ApiKeyWithToken,
    summary="A new token (shown once); the old one stops now or after the overlap",
    responses={404: {"description": "No such key"}, 409: {"description": "The key is revoked"}},
)
async def rotate_api_key(
    key_id: uuid.UUID,
    caller: CanAdmin,
    db: DB,
    keys: Keys,
    body: Annotated[KeyRotation | None, Body()] = None,
) -> ApiKeyWithToken:
    overlap = body.overlap_seconds if body is not None else 0
    token, now = new_token(), utcnow()
    async with db.begin() as conn:
        found = await access_repository.key_by_id(conn, key_id, _keys_tenant(caller))
        outcome = 404 if found is None else 409 if found.revoked_at is not None else 200
        if outcome == 200:
            until = now + timedelta(seconds=overlap) if overlap else None
            await access_repository.rotate_key(conn, key_id, token_hash(token), now, until)
            found = await access_repository.key_by_id(conn, key_id, None)
        await audited(
            conn,
            caller,
            "api_key.rotate",
            key_id,
            outcome,
            tenant=found.tenant if found else None,
            detail={"overlap_seconds": overlap},
        )
    keys.forget(key_id)
    if found is None:
        raise Problem(404, "Not Found", f"no API key {key_id}")
    if outcome == 409:
        raise Problem(409, "Conflict", f"API key {key_id} is revoked: create a new one")
    return ApiKeyWithToken(**ApiKeyOut.from_row(found).model_dump(), token=token)


@router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key: refused from now on (within a second in other replicas)",
    responses={404: {"description": "No such key"}},
)
async def revoke_api_key(key_id: uuid.UUID, caller: CanAdmin, db: DB, keys: Keys) -> None:
    async with db.begin() as conn:
        found = await access_repository.key_by_id(conn, key_id, _keys_tenant(caller))
        if found is not None:
            await access_repository.revoke_key(conn, key_id, utcnow())
        await audited(
            conn,
            caller,
            "api_key.revoke",
            key_id,
            404 if found is None else 204,
            tenant=found.tenant if found else None,
        )
    keys.forget(key_id)
    if found is None:
        raise Problem(404, "Not Found", f"no API key {key_id}")


# -- audit ------------------------------------------------------------------------------------


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    at: AwareDatetime
    key_id: uuid.UUID | None = Field(description="None: the bootstrap key")
    key_name: str
    actor: str | None = Field(description="The agent the request named (case actions)")
    operation: str = Field(description="e.g. case.assign, api_key.rotate, webhook_endpoint.delete")
    target_id: uuid.UUID | None
    status_code: int = Field(description="How it ended (the HTTP status answered)")
    detail: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Who did what, when, and how it ended: the tenant's audit log, newest first",
)
async def list_audit(
    caller: CanAdmin,
    db: DB,
    case_id: Annotated[uuid.UUID | None, Query()] = None,
    key_id: Annotated[uuid.UUID | None, Query()] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuditPage:
    where = access_repository.AuditFilter(case_id=case_id, key_id=key_id, since=since)
    after = decode_cursor(cursor) if cursor else None
    async with db.begin() as conn:
        found = await access_repository.audit_of(
            conn, caller.tenant, where, after=after, limit=limit + 1
        )
    page = found[:limit]
    return AuditPage(
        items=[
            AuditEntryOut(
                id=e.audit_id,
                at=e.at,
                key_id=e.key_id,
                key_name=e.key_name,
                actor=e.actor,
                operation=e.operation,
                target_id=e.target_id,
                status_code=e.status_code,
                detail=e.detail,
            )
            for e in page
        ],
        next_cursor=(encode_cursor(page[-1].at, page[-1].audit_id) if len(found) > limit else None),
    )
