"""Classified mentions and the sample playbook for the router's pure tests."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

from services.router.core.playbook import Playbook, parse_playbook
from shared.events import (
    Author,
    Channel,
    Classification,
    Intent,
    Mention,
    MentionClassified,
    MentionKind,
    Priority,
    Sentiment,
)

SAMPLE = Path(__file__).resolve().parents[3] / "deploy" / "playbooks" / "sample.yaml"


@cache
def sample_playbook() -> Playbook:
    return parse_playbook(SAMPLE.read_text(encoding="utf-8"))


def classified(
    at: datetime,
    priority: Priority = Priority.P2,
    *,
    platform_id: str = "1",
    conversation: str = "conv",
    language: str = "es",
    text: str = "Llevo tres días sin servicio y nadie me responde",
    intents: tuple[Intent, ...] = (Intent.COMPLAINT,),
    sentiment: str = "negative",
    kind: MentionKind = MentionKind.MENTION,
    channel: Channel = Channel.X,
    handle: str = "ana",
    location: str | None = None,
    followers: int = 10,
    crisis_risk: float = 0.1,
    topic_key: str | None = None,
    similar_recent: int = 0,
) -> MentionClassified:
    mention = Mention(
        mention_id=Mention.id_for(channel, platform_id),
        channel=channel,
        kind=kind,
        platform_id=platform_id,
        conversation_id=conversation,
        text=text,
        author=Author(handle=handle, location=location, followers=followers),
        created_at=at,
        language=language,
    )
    if kind is MentionKind.REPLY:
        return MentionClassified(mention=mention, classification=None)
    score = {"negative": -0.6, "neutral": 0.0, "positive": 0.7}[sentiment]
    return MentionClassified(
        mention=mention,
        classification=Classification(
            language=language,
            sentiment=Sentiment(label=sentiment, score=score),
            intents=list(intents),
            is_complaint=Intent.COMPLAINT in intents,
            crisis_risk=crisis_risk,
            priority=priority,
            reasons=["test"],
            model="test",
            topic_key=topic_key,
            similar_recent=similar_recent,
        ),
    )


def reply(
    at: datetime, *, platform_id: str = "r1", conversation: str = "conv"
) -> MentionClassified:
    return classified(
        at, platform_id=platform_id, conversation=conversation, kind=MentionKind.REPLY
    )
