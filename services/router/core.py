"""Routing decisions as plain functions: which case a mention belongs to, its priority, team and
first-response deadline. No I/O: the handler loads the case, calls `route`, stores the result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from shared.events import (
    Case,
    CaseStatus,
    Classification,
    EventType,
    Intent,
    MentionClassified,
    MentionKind,
    Priority,
    stable_id,
)

DEFAULT_FIRST_RESPONSE_MINUTES: dict[Priority, int] = {
    Priority.P1: 15,
    Priority.P2: 60,
    Priority.P3: 240,
    Priority.P4: 1440,
}
# Languages with their own care team; others go to the international desk.
TEAM_LANGUAGES = frozenset({"es", "en"})


class RoutingPolicy(BaseModel):
    first_response_minutes: dict[Priority, int] = Field(
        default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE_MINUTES)
    )

    def first_response_due(self, opened_at: datetime, priority: Priority) -> datetime:
        return opened_at + timedelta(minutes=self.first_response_minutes[priority])


@dataclass(frozen=True)
class Decision:
    """The case after this mention, and the event to announce (None: record only)."""

    case: Case | None
    event_type: EventType | None


def team_for(priority: Priority, classification: Classification) -> str:
    """Crises go to community managers (who loop in legal/marketing); the rest by language."""
    if priority is Priority.P1:
        return "community-managers"
    if Intent.SPAM in classification.intents:
        return "moderation"
    language = classification.language if classification.language in TEAM_LANGUAGES else "intl"
    return f"care-{language}"


def route(
    item: MentionClassified, case: Case | None, *, tenant: str, policy: RoutingPolicy
) -> Decision:
    mention, classification = item.mention, item.classification
    if mention.kind is MentionKind.REPLY or classification is None:
        return _brand_reply(item, case)
    if case is None:
        priority = classification.priority
        return Decision(
            case=Case(
                case_id=stable_id("case", tenant, mention.conversation_key),
                tenant=tenant,
                conversation_key=mention.conversation_key,
                channel=mention.channel,
                priority=priority,
                status=CaseStatus.OPEN,
                team=team_for(priority, classification),
                language=classification.language,
                author_handle=mention.author.handle,
                opened_at=mention.created_at,
                first_response_due_at=policy.first_response_due(mention.created_at, priority),
                mention_count=1,
            ),
            event_type=EventType.CASE_CREATED,
        )
    # A follow-up in the same conversation: priority only ever rises, the deadline with it.
    priority = min(case.priority, classification.priority, key=lambda p: p.rank)
    escalated = priority is not case.priority
    updated = case.model_copy(
        update={
            "priority": priority,
            "team": team_for(priority, classification) if escalated else case.team,
            "first_response_due_at": (
                min(case.first_response_due_at, policy.first_response_due(case.opened_at, priority))
                if escalated
                else case.first_response_due_at
            ),
            "status": CaseStatus.OPEN if case.status is CaseStatus.RESPONDED else case.status,
            "mention_count": case.mention_count + 1,
        }
    )
    return Decision(case=updated, event_type=EventType.CASE_UPDATED)


def _brand_reply(item: MentionClassified, case: Case | None) -> Decision:
    """The brand answered: the first answer stops the first-response clock."""
    if case is None:
        return Decision(case=None, event_type=None)
    if case.first_response_at is not None:
        return Decision(
            case=case.model_copy(update={"status": CaseStatus.RESPONDED}), event_type=None
        )
    answered_at = max(item.mention.created_at, case.opened_at)
    return Decision(
        case=case.model_copy(
            update={"first_response_at": answered_at, "status": CaseStatus.RESPONDED}
        ),
        event_type=EventType.CASE_RESPONDED,
    )
