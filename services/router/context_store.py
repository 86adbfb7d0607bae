"""Router tables of a case's wider context: conversations joined to another conversation's case
(merges, linked private threads), customer profiles and the identities that lead to them, and
the bounded conversation a case webhook carries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
    and_,
    cast,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router import repository
from services.router.core.context import WINDOW_MENTIONS, StoredEntry
from services.router.core.customers import (
    combine,
    default_customer_id,
    identity_of,
    observe,
    relate,
)
from services.router.core.playbook import Playbook
from shared.db import metadata
from shared.events import (
    Case,
    CustomerProfile,
    Identity,
    Mention,
    MentionClassified,
)

conversation_aliases = Table(
    "router_conversation_aliases",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("conversation_key", String(600), nullable=False),
    # The case the conversation's mentions go to (a merge's survivor, a linked thread's case).
    Column("case_id", Uuid, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("tenant", "conversation_key", name="pk_router_conversation_aliases"),
    Index("ix_router_conversation_aliases_case", "case_id"),
)

customers = Table(
    "router_customers",
    metadata,
    Column("customer_id", Uuid, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("document", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_router_customers_tenant", "tenant"),
)

customer_identities = Table(
    "router_customer_identities",
    metadata,
    Column("tenant", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("handle", String(256), nullable=False),
    Column("customer_id", Uuid, nullable=False),
    PrimaryKeyConstraint("tenant", "channel", "handle", name="pk_router_customer_identities"),
    Index("ix_router_customer_identities_customer", "customer_id"),
)

# pg_advisory_xact_lock name space of customer profiles (see repository.lock_keys).
CUSTOMER_LOCKS = 0x5C5_C3


# -- joined conversations ---------------------------------------------------------------------


async def joined_cases_for_update(
    conn: AsyncConnection, tenant: str, conversation_keys: list[str]
) -> dict[str, Case]:
    """The case each of these conversations was joined to (merge, link), locked like
    `repository.cases_for_update` (in case id order)."""
    if not conversation_keys:
        return {}
    cases = repository.cases
    result = await conn.execute(
        select(conversation_aliases.c.conversation_key, *repository.CASE_COLUMNS, cases.c.document)
        .join(cases, cases.c.case_id == conversation_aliases.c.case_id)
        .where(
            and_(
                conversation_aliases.c.tenant == tenant,
                conversation_aliases.c.conversation_key.in_(conversation_keys),
            )
        )
        .order_by(cases.c.case_id)
        .with_for_update(of=cases)
    )
    return {row[0]: repository.case_of_row(row) for row in result}


async def join_conversations(
    conn: AsyncConnection,
    tenant: str,
    case_id: uuid.UUID,
    conversation_keys: Iterable[str],
    absorbed: uuid.UUID | None,
) -> None:
    """Send these conversations to the case from now on; on a merge, the absorbed case's
    mentions and joined conversations move to it too."""
    if absorbed is not None:
        await conn.execute(
            update(conversation_aliases)
            .where(conversation_aliases.c.case_id == absorbed)
            .values(case_id=case_id)
        )
        mentions = repository.case_mentions
        await conn.execute(
            update(mentions).where(mentions.c.case_id == absorbed).values(case_id=case_id)
        )
    rows = [
        {"tenant": tenant, "conversation_key": k, "case_id": case_id} for k in conversation_keys
    ]
    if rows:
        statement = insert(conversation_aliases)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["tenant", "conversation_key"],
                set_={"case_id": statement.excluded.case_id},
            ),
            rows,
        )


# -- customer profiles ------------------------------------------------------------------------


def identity_key(identity: Identity) -> tuple[str, str]:
    return identity.channel.value, identity.handle


def case_identity(case: Case) -> Identity:
    return Identity.of(case.channel, case.author_handle)


async def customer_ids(
    conn: AsyncConnection, tenant: str, identities: Iterable[Identity]
) -> dict[tuple[str, str], uuid.UUID]:
    """The profile of each identity: the one a merge joined it to, else its own."""
    wanted = {identity_key(i): default_customer_id(tenant, i) for i in identities}
    return wanted | await joined_identities(conn, tenant, list(wanted))


async def joined_identities(
    conn: AsyncConnection, tenant: str, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], uuid.UUID]:
    """The stored profile ids of these identities (channel, handle)."""
    if not keys:
        return {}
    result = await conn.execute(
        select(
            customer_identities.c.channel,
            customer_identities.c.handle,
            customer_identities.c.customer_id,
        ).where(
            and_(
                customer_identities.c.tenant == tenant,
                tuple_(customer_identities.c.channel, customer_identities.c.handle).in_(keys),
            )
        )
    )
    return {(row.channel, row.handle): row.customer_id for row in result}


async def profiles(
    conn: AsyncConnection, tenant: str, ids: Iterable[uuid.UUID], *, lock: bool = False
) -> dict[uuid.UUID, CustomerProfile]:
    """Stored profiles by id; `lock` holds them (and the ids with no row yet) until commit."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    if lock:
        await repository.lock_keys(conn, CUSTOMER_LOCKS, [f"{tenant}|{i}" for i in ids])
    result = await conn.execute(
        select(customers.c.document).where(
            and_(customers.c.tenant == tenant, customers.c.customer_id.in_(ids))
        )
    )
    found = [CustomerProfile.model_validate(row[0]) for row in result]
    return {p.customer_id: p for p in found}


async def save_profiles(conn: AsyncConnection, changed: Iterable[CustomerProfile]) -> None:
    """Write profiles, and point each one's identities at it (a merged one's at the survivor,
    which is saved with them)."""
    rows = [
        {"customer_id": p.customer_id, "tenant": p.tenant, "document": p.model_dump(mode="json")}
        for p in changed
    ]
    if not rows:
        return
    statement = insert(customers)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={"document": statement.excluded.document, "updated_at": func.now()},
        ),
        rows,
    )
    # An identity without a row leads to its own profile: only joined ones need one.
    identities = [
        {
            "tenant": p.tenant,
            "channel": i.channel.value,
            "handle": i.handle,
            "customer_id": p.customer_id,
        }
        for p in changed
        if p.merged_into is None
        for i in p.identities
        if default_customer_id(p.tenant, i) != p.customer_id
    ]
    if identities:
        statement = insert(customer_identities)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["tenant", "channel", "handle"],
                set_={"customer_id": statement.excluded.customer_id},
            ),
            identities,
        )


async def profile_of_case(conn: AsyncConnection, tenant: str, case: Case) -> CustomerProfile | None:
    identity = case_identity(case)
    customer_id = (await customer_ids(conn, tenant, [identity]))[identity_key(identity)]
    return (await profiles(conn, tenant, [customer_id])).get(customer_id)


@dataclass
class CustomerBook:
    """The profiles of a batch's authors, locked for its transaction, as mentions change them."""

    tenant: str
    playbook: Playbook
    ids: dict[tuple[str, str], uuid.UUID]
    known: dict[uuid.UUID, CustomerProfile]
    changed: set[uuid.UUID] = field(default_factory=set)

    @classmethod
    async def load(
        cls,
        conn: AsyncConnection,
        tenant: str,
        playbook: Playbook,
        mentions: Iterable[Mention],
        joined: Iterable[Case] = (),
    ) -> CustomerBook:
        """The authors' profiles, and those of the cases other conversations joined (a linked
        thread's author may join that case's customer)."""
        identities = [identity_of(m) for m in mentions] + [case_identity(c) for c in joined]
        ids = await customer_ids(conn, tenant, identities)
        return cls(tenant, playbook, ids, await profiles(conn, tenant, ids.values(), lock=True))

    def of(self, mention: Mention) -> CustomerProfile | None:
        return self.known.get(self.ids[identity_key(identity_of(mention))])

    def observe(self, item: MentionClassified, case_id: uuid.UUID | None, *, opened: bool) -> None:
        customer_id = self.ids[identity_key(identity_of(item.mention))]
        self.known[customer_id] = observe(
            self.known.get(customer_id),
            customer_id,
            self.tenant,
            item,
            case_id,
            opened=opened,
            playbook=self.playbook,
        )
        self.changed.add(customer_id)

    def join(self, mention: Mention, case: Case) -> None:
        """A customer mention in a conversation joined to another's case (a linked private
        thread) is that case's customer's, whatever the handle: the author's identity (and
        history, if they had one) joins the case's profile."""
        theirs = self.ids[identity_key(identity_of(mention))]
        ours = self.ids.get(identity_key(case_identity(case)))
        if ours is None or ours == theirs or ours not in self.known:
            return
        gone = self.known.get(theirs)
        if gone is not None:
            self.known[ours] = relate(combine(self.known[ours], gone), self.playbook)
            self.known[theirs] = gone.model_copy(update={"merged_into": ours})
            self.changed.add(theirs)
        self.ids = {key: ours if found == theirs else found for key, found in self.ids.items()}
        self.changed.add(ours)

    async def save(self, conn: AsyncConnection) -> None:
        await save_profiles(conn, [self.known[i] for i in sorted(self.changed)])


# -- the conversation a webhook carries ---------------------------------------------------------


async def latest_conversations(
    conn: AsyncConnection, case_ids: Iterable[uuid.UUID], extra: int
) -> dict[uuid.UUID, tuple[list[StoredEntry], int]]:
    """Per case, its latest WINDOW_MENTIONS + `extra` entries (oldest first, as JSON text
    without the platform payload) and how many mentions it has in all."""
    ids = sorted(set(case_ids))
    if not ids:
        return {}
    mentions = repository.case_mentions
    ranked = (
        select(
            mentions.c.case_id,
            mentions.c.mention_id,
            # The entry as JSON text, without the platform payload (jsonb minus the key).
            cast(
                func.jsonb_build_object(
                    "mention",
                    mentions.c.mention.op("-")("raw"),
                    "classification",
                    mentions.c.classification,
                    "routing",
                    mentions.c.routing,
                ),
                Text,
            ).label("entry"),
            func.row_number()
            .over(
                partition_by=mentions.c.case_id,
                order_by=(mentions.c.created_at.desc(), mentions.c.mention_id.desc()),
            )
            .label("rank"),
            func.count().over(partition_by=mentions.c.case_id).label("total"),
        )
        .where(mentions.c.case_id.in_(ids))
        .subquery()
    )
    result = await conn.execute(
        select(ranked)
        .where(ranked.c.rank <= WINDOW_MENTIONS + extra)
        .order_by(ranked.c.case_id, ranked.c.rank.desc())
    )
    found: dict[uuid.UUID, tuple[list[StoredEntry], int]] = {}
    for row in result:
        entries, _ = found.get(row.case_id, ([], 0))
        entries.append(_entry(row))
        found[row.case_id] = (entries, int(row.total))
    return found


def _entry(row: Any) -> StoredEntry:
    return row.mention_id, row.entry
