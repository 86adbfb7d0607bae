"""Crisis risk rises with reach and velocity; the velocity tracker is bounded and persistent."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.classifier.core import (
    ClassificationContext,
    Classifier,
    VelocityTracker,
    classify_tracked,
)

from .conftest import MakeMention

NEGATIVE = "The app is down again, this outage is unacceptable."


@settings(max_examples=60, deadline=None)
@given(
    low=st.integers(min_value=0, max_value=10_000_000),
    extra=st.integers(min_value=0, max_value=10_000_000),
    velocity=st.integers(min_value=0, max_value=1_000),
)
def test_risk_rises_with_reach(
    classifier: Classifier, mention: MakeMention, low: int, extra: int, velocity: int
) -> None:
    context = ClassificationContext(similar_negative_recent=velocity)
    small = classifier.classify(mention(NEGATIVE, followers=low), context).crisis_risk
    big = classifier.classify(mention(NEGATIVE, followers=low + extra), context).crisis_risk
    assert 0.0 <= small <= big <= 1.0


@settings(max_examples=60, deadline=None)
@given(
    followers=st.integers(min_value=0, max_value=10_000_000),
    low=st.integers(min_value=0, max_value=10_000),
    extra=st.integers(min_value=0, max_value=10_000),
)
def test_risk_rises_with_velocity(
    classifier: Classifier, mention: MakeMention, followers: int, low: int, extra: int
) -> None:
    item = mention(NEGATIVE, followers=followers)
    slow = classifier.classify(item, ClassificationContext(similar_negative_recent=low))
    fast = classifier.classify(item, ClassificationContext(similar_negative_recent=low + extra))
    assert 0.0 <= slow.crisis_risk <= fast.crisis_risk <= 1.0


def test_velocity_makes_a_storm_p1(classifier: Classifier, mention: MakeMention) -> None:
    calm = classifier.classify(mention(NEGATIVE))
    storm = classifier.classify(
        mention(NEGATIVE), ClassificationContext(similar_negative_recent=40, window_seconds=600)
    )
    assert calm.priority.value == "P2"
    assert storm.priority.value == "P1"
    assert "40 similar negative mentions in 10 min" in storm.reasons


def test_reach_of_a_happy_customer_is_no_crisis(
    classifier: Classifier, mention: MakeMention
) -> None:
    result = classifier.classify(mention("Love this brand!", followers=5_000_000, verified=True))
    assert result.crisis_risk < 0.2
    assert result.priority.value == "P4"


def test_tracker_counts_negative_mentions_in_a_sliding_window(
    classifier: Classifier, mention: MakeMention
) -> None:
    tracker = VelocityTracker(window_seconds=600)
    for second in range(0, 300, 60):  # five outage complaints in five minutes
        classify_tracked(classifier, tracker, mention(NEGATIVE, seconds=second))
    classify_tracked(classifier, tracker, mention("Thanks, great service!", seconds=310))
    now = mention("Still down, outage for hours", seconds=320)
    assert tracker.context_for(now).similar_negative_recent == 5
    later = mention("Still down, outage for hours", seconds=1_000)
    assert tracker.context_for(later).similar_negative_recent == 0  # window moved on
    other_topic = mention("I was charged twice!", seconds=320)
    assert tracker.context_for(other_topic).similar_negative_recent == 0


def test_tracker_is_idempotent_and_persists(classifier: Classifier, mention: MakeMention) -> None:
    tracker = VelocityTracker()
    first = mention(NEGATIVE, seconds=0, platform_id="1")
    result = classifier.classify(first)
    assert tracker.observe(first, result)
    assert not tracker.observe(first, result)  # a redelivered message does not count twice
    second = mention(NEGATIVE, seconds=30, platform_id="2")
    tracker.observe(second, classifier.classify(second))
    snapshot = tracker.snapshot()
    restored = VelocityTracker.from_snapshot(snapshot)
    probe = mention(NEGATIVE, seconds=60, platform_id="3")
    assert restored.context_for(probe).similar_negative_recent == 2
    restored.restore(snapshot)  # merging the same state again changes nothing
    assert restored.context_for(probe).similar_negative_recent == 2
    assert restored.snapshot() == snapshot


def test_tracker_stays_bounded(mention: MakeMention, classifier: Classifier) -> None:
    tracker = VelocityTracker(max_events_per_topic=10, max_topics=3, window_seconds=600)
    for index in range(50):
        item = mention(NEGATIVE, brand=f"brand{index % 5}", seconds=index, platform_id=str(index))
        tracker.observe(item, classifier.classify(item))
    topics = tracker.snapshot()["topics"]
    assert len(topics) <= 3
    assert all(len(events) <= 10 for events in topics.values())
