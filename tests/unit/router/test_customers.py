"""Customer profiles: history, sentiment trend, a conservative relationship, reach and VIP, and
two profiles joined into one when their cases are merged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.router.context_store import CustomerBook
from services.router.core import MentionInput, decide
from services.router.core.customers import (
    combine,
    default_customer_id,
    identity_of,
    observe,
    relate,
    trend_of,
)
from services.router.core.playbook import Customers
from shared.events import (
    Channel,
    CustomerProfile,
    Identity,
    Intent,
    MentionClassified,
    MentionKind,
    Priority,
    SentimentPoint,
)
from tests.unit.router.builders import classified, sample_playbook

PLAYBOOK = sample_playbook()
AT = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)


def mention(
    n: int,
    sentiment: str = "negative",
    *,
    handle: str = "ana",
    channel: Channel = Channel.X,
    intents: tuple[Intent, ...] = (Intent.COMPLAINT,),
) -> MentionClassified:
    return classified(
        AT + timedelta(hours=n),
        platform_id=f"m{n}",
        sentiment=sentiment,
        handle=handle,
        channel=channel,
        intents=intents,
        followers=100 + n,
    )


def profile_after(items: list[tuple[MentionClassified, uuid.UUID | None, bool]]) -> CustomerProfile:
    profile: CustomerProfile | None = None
    for item, case_id, opened in items:
        customer_id = default_customer_id("t", identity_of(item.mention))
        profile = observe(
            profile, customer_id, "t", item, case_id, opened=opened, playbook=PLAYBOOK
        )
    assert profile is not None
    return profile


def test_a_profile_counts_cases_and_mentions_and_keeps_the_latest_reach() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    profile = profile_after(
        [(mention(0), one, True), (mention(1), one, False), (mention(2), two, True)]
    )
    assert profile.case_count == 2 and profile.last_cases == [two, one]
    assert profile.mention_count == 3 and profile.followers == 102
    assert profile.identities[0].handle == "ana" and profile.identities[0].channel is Channel.X
    assert [p.case_id for p in profile.sentiment] == [one, one, two]


def test_the_trend_compares_the_latest_mood_with_the_one_before() -> None:
    def points(*scores: float) -> list[SentimentPoint]:
        return [SentimentPoint(at=AT + timedelta(hours=n), score=s) for n, s in enumerate(scores)]

    assert trend_of(points(-0.6, -0.5)) == "unknown"
    assert trend_of(points(-0.6, -0.6, 0.2, 0.4)) == "improving"
    assert trend_of(points(0.5, 0.4, -0.3, -0.6)) == "worsening"
    assert trend_of(points(0.1, 0.0, 0.1, 0.0)) == "stable"


def test_critic_is_inferred_only_after_repeated_negative_cases() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    twice = profile_after([(mention(0), one, True), (mention(1), one, False)])
    assert twice.relationship is None  # negative, but one case: a bad day, not a critic
    critic = profile_after(
        [(mention(0), one, True), (mention(1), one, False), (mention(2), two, True)]
    )
    assert critic.relationship == "critic" and critic.relationship_source == "inferred"
    incident = profile_after([(mention(0, "neutral", intents=(Intent.INCIDENT,)), one, True)])
    assert incident.relationship == "current"


def test_an_agents_relationship_and_the_playbooks_lists_win_over_inference() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    critic = profile_after(
        [(mention(0), one, True), (mention(1), one, False), (mention(2), two, True)]
    )
    loyal = critic.model_copy(update={"relationship": "loyal", "relationship_source": "agent"})
    assert relate(loyal, PLAYBOOK).relationship == "loyal"
    listed = PLAYBOOK.model_copy(
        update={"customers": Customers(vip=["ana"], segments={"loyal": ["ana"]})}
    )
    related = relate(critic, listed)
    assert related.relationship == "loyal" and related.relationship_source == "playbook"
    assert related.vip


def test_merged_cases_join_two_identities_into_one_history() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    on_x = profile_after([(mention(0), one, True)])
    on_instagram = profile_after(
        [(mention(1, handle="ana.perez", channel=Channel.INSTAGRAM), two, True)]
    )
    on_instagram = on_instagram.model_copy(
        update={"vip": True, "relationship": "loyal", "relationship_source": "agent"}
    )
    joined = combine(on_x, on_instagram)
    assert joined.customer_id == on_x.customer_id
    assert {(i.channel, i.handle) for i in joined.identities} == {
        (Channel.X, "ana"),
        (Channel.INSTAGRAM, "ana.perez"),
    }
    assert joined.case_count == 2 and set(joined.last_cases) == {one, two}
    assert joined.mention_count == 2 and len(joined.sentiment) == 2
    assert joined.vip and joined.relationship == "loyal" and joined.relationship_source == "agent"


def test_a_vip_or_a_relationship_an_agent_set_counts_in_the_routing() -> None:
    item = classified(AT, Priority.P3)
    customer_id = default_customer_id("t", identity_of(item.mention))
    profile = observe(None, customer_id, "t", item, None, opened=False, playbook=PLAYBOOK)
    plain = decide(None, MentionInput(item, "t", customer=profile), PLAYBOOK, AT).case
    vip = profile.model_copy(update={"vip": True})
    routed = decide(None, MentionInput(item, "t", customer=vip), PLAYBOOK, AT).case
    assert plain is not None and routed is not None
    assert plain.priority is Priority.P3 and "vip" not in plain.tags
    assert routed.priority is Priority.P2 and "vip" in routed.tags
    inferred = profile.model_copy(
        update={"relationship": "critic", "relationship_source": "inferred"}
    )
    guessed = decide(None, MentionInput(item, "t", customer=inferred), PLAYBOOK, AT).case
    assert guessed is not None and "critic" not in guessed.tags  # a guess does not route
    said = inferred.model_copy(update={"relationship_source": "agent"})
    tagged = decide(None, MentionInput(item, "t", customer=said), PLAYBOOK, AT).case
    assert tagged is not None and "critic" in tagged.tags


def test_the_author_of_a_linked_thread_joins_the_cases_customer() -> None:
    public = classified(AT, platform_id="p1", conversation="public", handle="ana")
    dm = classified(
        AT + timedelta(hours=1),
        platform_id="d1",
        conversation="dm",
        handle="ana_private",
        kind=MentionKind.DM,
    )
    case = decide(None, MentionInput(public, "t"), PLAYBOOK, AT).case
    assert case is not None
    ours = default_customer_id("t", identity_of(public.mention))
    theirs = default_customer_id("t", identity_of(dm.mention))
    book = CustomerBook(
        "t",
        PLAYBOOK,
        {("x", "ana"): ours, ("x", "ana_private"): theirs},
        {ours: observe(None, ours, "t", public, case.case_id, opened=True, playbook=PLAYBOOK)},
    )
    book.join(dm.mention, case)
    book.observe(dm, case.case_id, opened=False)
    joined = book.known[ours]
    assert {i.handle for i in joined.identities} == {"ana", "ana_private"}
    assert joined.mention_count == 2 and joined.case_count == 1
    assert theirs not in book.known and book.changed == {ours}


@pytest.mark.parametrize(
    ("handle", "expected"),
    [("@Ana_R", "ana_r"), ("@", "@"), ("@@", "@@"), ("İ" * 256, ("i̇" * 256)[:256])],
)
def test_every_valid_handle_is_an_identity(handle: str, expected: str) -> None:
    """A handle that normalises to nothing, or that lower-casing lengthens, must not make the
    customer's profile (and so the mention's routing) fail."""
    assert Identity.of(Channel.X, handle).handle == expected
