"""Customer profiles: what the router learns about a customer from their mentions, across
channels. Pure: the handler loads the profiles of a batch's authors, calls `observe` for each
mention it routed, and saves them in the same transaction.

Identity is the handle per platform (X's @ana and Instagram's @ana are two customers until a
merge or a linked private thread joins them). The relationship is inferred conservatively:
what the playbook lists or an agent sets is kept; the router itself only ever infers `current`
(they report an incident with the service) and `critic` (negative again and again, over more
than one case); `loyal`, `former` and `potential` need the brand's word.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from statistics import fmean

from services.router.core.playbook import Playbook
from shared.events import (
    CustomerProfile,
    Identity,
    Intent,
    Mention,
    MentionClassified,
    Relationship,
    SentimentPoint,
    SentimentTrend,
    stable_id,
)

LAST_CASES = 10
SENTIMENT_POINTS = 20
# The trend compares the mean of the latest points with the mean of the ones before.
TREND_WINDOW = 5
TREND_STEP = 0.2
NEGATIVE = -0.3
# A critic: this many negative mentions, over at least two cases, and still negative lately.
CRITIC_NEGATIVE_MENTIONS = 3


def identity_of(mention: Mention) -> Identity:
    return Identity.of(mention.channel, mention.author.handle)


def default_customer_id(tenant: str, identity: Identity) -> uuid.UUID:
    """The profile of an identity no merge has joined to another: one per handle and platform."""
    return stable_id("customer", tenant, identity.channel.value, identity.handle)


def observe(
    profile: CustomerProfile | None,
    customer_id: uuid.UUID,
    tenant: str,
    item: MentionClassified,
    case_id: uuid.UUID | None,
    *,
    opened: bool,
    playbook: Playbook,
) -> CustomerProfile:
    """The profile after one more customer mention, recorded in `case_id` (`opened`: it
    opened that case)."""
    mention, classification = item.mention, item.classification
    identity = identity_of(mention)
    at = mention.created_at
    if profile is None:
        profile = CustomerProfile(
            customer_id=customer_id,
            tenant=tenant,
            identities=[identity],
            first_seen_at=at,
            last_seen_at=at,
        )
    latest = at.astimezone(UTC) >= profile.last_seen_at.astimezone(UTC)
    author = mention.author
    update: dict[str, object] = {
        "identities": _identities(profile.identities, [identity]),
        "first_seen_at": min(profile.first_seen_at, at, key=lambda t: t.astimezone(UTC)),
        "last_seen_at": at if latest else profile.last_seen_at,
        "mention_count": profile.mention_count + 1,
    }
    if latest:  # reach and name as last seen
        update |= {
            "display_name": author.display_name or profile.display_name,
            "followers": author.followers,
            "verified": author.verified,
        }
    if opened and case_id is not None and case_id not in profile.last_cases:
        update["case_count"] = profile.case_count + 1
        update["last_cases"] = [case_id, *profile.last_cases][:LAST_CASES]
    points = profile.sentiment
    if classification is not None:
        point = SentimentPoint(at=at, score=classification.sentiment.score, case_id=case_id)
        points = _latest_points([*points, point])
        update["sentiment"] = points
        update["sentiment_trend"] = trend_of(points)
    updated = profile.model_copy(update=update)
    intents = classification.intents if classification is not None else []
    return relate(updated, playbook, incident=Intent.INCIDENT in intents)


def relate(
    profile: CustomerProfile, playbook: Playbook, *, incident: bool = False
) -> CustomerProfile:
    """Relationship and VIP flag from what the brand said (an agent, the playbook), else from
    the evidence; an agent's word is never overwritten."""
    handles = {i.handle for i in profile.identities}
    vip = profile.vip or bool(handles & set(playbook.customers.vip))
    if profile.relationship_source == "agent":
        return profile.model_copy(update={"vip": vip})
    listed = next(
        (s for s, members in playbook.customers.segments.items() if handles & set(members)), None
    )
    relationship: Relationship | None
    if listed is not None:
        relationship, source = listed, "playbook"
    elif _critic(profile.sentiment):
        relationship, source = "critic", "inferred"
    elif incident or profile.relationship == "current":
        relationship, source = "current", "inferred"
    else:
        relationship, source = None, None
    return profile.model_copy(
        update={
            "vip": vip,
            "relationship": relationship,
            "relationship_source": source if relationship is not None else None,
        }
    )


def _critic(points: list[SentimentPoint]) -> bool:
    negative = [p for p in points if p.score <= NEGATIVE]
    cases = {p.case_id for p in negative if p.case_id is not None}
    recent = points[-TREND_WINDOW:]
    return (
        len(negative) >= CRITIC_NEGATIVE_MENTIONS
        and len(cases) >= 2
        and fmean(p.score for p in recent) <= NEGATIVE
    )


def trend_of(points: list[SentimentPoint]) -> SentimentTrend:
    """Improving or worsening when the latest mentions' mean moved by TREND_STEP from the ones
    before; unknown with fewer than four scored mentions."""
    if len(points) < 4:
        return "unknown"
    size = min(TREND_WINDOW, len(points) // 2)
    recent = fmean(p.score for p in points[-size:])
    before = fmean(p.score for p in points[-2 * size : -size])
    if recent - before >= TREND_STEP:
        return "improving"
    if before - recent >= TREND_STEP:
        return "worsening"
    return "stable"


def combine(survivor: CustomerProfile, absorbed: CustomerProfile) -> CustomerProfile:
    """Two profiles found to be one customer (their cases were merged): one history."""
    points = _latest_points([*survivor.sentiment, *absorbed.sentiment])
    cases = [
        *survivor.last_cases,
        *[c for c in absorbed.last_cases if c not in survivor.last_cases],
    ]
    agent_said = next((p for p in (survivor, absorbed) if p.relationship_source == "agent"), None)
    kept = survivor if survivor.relationship is not None else absorbed
    return survivor.model_copy(
        update={
            "identities": _identities(survivor.identities, absorbed.identities),
            "display_name": survivor.display_name or absorbed.display_name,
            "first_seen_at": min(
                survivor.first_seen_at, absorbed.first_seen_at, key=lambda t: t.astimezone(UTC)
            ),
            "last_seen_at": max(
                survivor.last_seen_at, absorbed.last_seen_at, key=lambda t: t.astimezone(UTC)
            ),
            "mention_count": survivor.mention_count + absorbed.mention_count,
            "case_count": survivor.case_count + absorbed.case_count,
            "last_cases": cases[:LAST_CASES],
            "sentiment": points,
            "sentiment_trend": trend_of(points),
            "relationship": (agent_said or kept).relationship,
            "relationship_source": (agent_said or kept).relationship_source,
            "followers": max(survivor.followers, absorbed.followers),
            "verified": survivor.verified or absorbed.verified,
            "vip": survivor.vip or absorbed.vip,
        }
    )


def _identities(known: list[Identity], more: list[Identity]) -> list[Identity]:
    return [*known, *[i for i in more if i not in known]]


def _latest_points(points: list[SentimentPoint]) -> list[SentimentPoint]:
    ordered = sorted(points, key=lambda p: p.at.astimezone(UTC))
    return ordered[-SENTIMENT_POINTS:]
