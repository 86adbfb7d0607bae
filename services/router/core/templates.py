"""Response templates offered with a case, filled with its facts.

Filling is `string.Template` over a whitelist of plain strings (playbook.TEMPLATE_FACTS): a
template can name a fact, never reach into an object. A fact the case does not have yet (no
agent assigned, the queue is open so there is no next opening) stays as `${name}` and is listed
in `missing`, for the agent to fill: nothing is ever sent with a hole in it.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.router.core.context import PERSONAL_DATA_TAG, PRIVATE_THREAD_TAG
from services.router.core.playbook import Playbook, ResponseTemplate
from shared.events import Case, Intent, MentionKind

# The private-message suggestion when the playbook has no `private_message` template.
DEFAULT_PRIVATE_MESSAGE = (
    "Hi ${customer_name}, so we can look into your account without sharing anything here, "
    "could you send us a private message? Please mention ${case_ref}."
)


class Suggestion(BaseModel):
    """Something an agent may send (after reading and adapting it): a template filled with the
    case's facts, or the advice to continue in a private message."""

    kind: Literal["template", "move_to_private"]
    template: str | None = Field(default=None, description="The playbook template's name")
    purpose: Literal["acknowledgement", "answer", "private_message"]
    text: str
    missing: list[str] = Field(
        default_factory=list, description="Facts still to fill in the text (`${name}`)"
    )
    auto: bool = Field(default=False, description="Sent by the router when the case opened")
    reason: str | None = Field(default=None, description="Why move to private (personal data)")


def case_ref(case: Case) -> str:
    return "C-" + case.case_id.hex[:8].upper()


def facts_of(
    case: Case, playbook: Playbook, now: datetime, display_name: str | None = None
) -> dict[str, str]:
    """The case's facts a template may name (TEMPLATE_FACTS), those it has."""
    handle = "@" + case.author_handle.lstrip("@")
    facts = {
        "customer": handle,
        "customer_name": display_name or handle,
        "case_ref": case_ref(case),
        "brand": playbook.brand,
        "queue": case.queue,
        "channel": case.channel.value,
    }
    if case.assignee:
        facts["agent"] = case.assignee
    calendar = playbook.calendar(case.queue)
    if not calendar.is_open(now):
        facts["next_open"] = calendar.next_open(now).strftime("%d/%m %H:%M")
    return facts


def fill(text: str, facts: dict[str, str]) -> tuple[str, list[str]]:
    template = string.Template(text)
    missing = [name for name in template.get_identifiers() if name not in facts]
    return template.safe_substitute(facts), missing


def matching(
    playbook: Playbook,
    case: Case,
    intents: Sequence[Intent],
    *,
    kind: MentionKind | None = None,
) -> list[ResponseTemplate]:
    """The templates for the case's type, channel and language (else English), as written."""
    base = case.language.split("-")[0].lower()
    for language in dict.fromkeys((base, "en")):
        found = [
            t
            for t in playbook.templates
            if t.language == language and t.matches(intents, kind or case.kind, case.channel)
        ]
        if found:
            return found
    return []


def auto_acknowledgement(
    playbook: Playbook, case: Case, intents: Sequence[Intent], now: datetime
) -> str | None:
    """The text of the first `auto` acknowledgement for a new case, filled; None when there is
    none (or it would go out with a fact missing)."""
    facts = facts_of(case, playbook, now)
    for template in matching(playbook, case, intents):
        if template.auto:
            text, missing = fill(template.text, facts)
            return None if missing else text
    return None


def suggestions(
    playbook: Playbook,
    case: Case,
    intents: Sequence[Intent],
    now: datetime,
    *,
    private_reason: str | None = None,
    display_name: str | None = None,
) -> list[Suggestion]:
    """What to offer with the case: first the move to a private message when personal data is
    needed (and no private thread is linked yet), then the templates for the case."""
    facts = facts_of(case, playbook, now, display_name)
    offered: list[Suggestion] = []
    templates = matching(playbook, case, intents)
    private = PERSONAL_DATA_TAG in case.tags and PRIVATE_THREAD_TAG not in case.tags
    if private and case.kind is not MentionKind.DM:
        chosen = next((t for t in templates if t.purpose == "private_message"), None)
        text, missing = fill(chosen.text if chosen else DEFAULT_PRIVATE_MESSAGE, facts)
        offered.append(
            Suggestion(
                kind="move_to_private",
                template=chosen.name if chosen else None,
                purpose="private_message",
                text=text,
                missing=missing,
                reason=private_reason or "personal data or account details are needed",
            )
        )
    for template in templates:
        if template.purpose == "private_message" and not private:
            continue
        if offered and template.name == offered[0].template:
            continue
        text, missing = fill(template.text, facts)
        offered.append(
            Suggestion(
                kind="template",
                template=template.name,
                purpose=template.purpose,
                text=text,
                missing=missing,
                auto=template.auto,
            )
        )
    return offered
