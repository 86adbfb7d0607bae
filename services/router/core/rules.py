"""Playbook rules over one mention: segmentation, conditions, precedence, and the trace.

Rules are looked at in the order written. The first matching rule that sets a queue, a priority
or an escalation wins it (later rules cannot take it back); tags, record-only and acknowledge
accumulate; a rule with `stop` ends the search. Every rule looked at is in the trace, with why it
matched or the first condition that did not hold, so any routing can be explained later.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.router.core.playbook import Condition, Conversation, Playbook, Segment
from shared.events import Classification, Identity, Mention, Priority, RuleTrace


@dataclass(frozen=True)
class Facts:
    """What the conditions are evaluated over."""

    mention: Mention
    classification: Classification
    country: str | None
    segment: Segment | None
    vip: bool
    conversation: Conversation
    crisis_active: bool
    at: datetime


@dataclass
class Outcome:
    queue: str
    priority: Priority
    tags: list[str] = field(default_factory=list)
    record_only: bool = False
    acknowledge: bool = False
    escalate: str | None = None
    trace: list[RuleTrace] = field(default_factory=list)


def handle_of(mention: Mention) -> str:
    return Identity.of(mention.channel, mention.author.handle).handle


def country_of(playbook: Playbook, mention: Mention, language: str) -> str | None:
    """The region of the language tag (es-MX), else the first geography pattern found in the
    author's location; None when nothing says."""
    tag = mention.language or ""
    if "-" in tag:
        region = tag.split("-")[1].upper()
        if len(region) == 2 and region.isalpha():
            return region
    location = (mention.author.location or "").lower()
    if location:
        for country, patterns in playbook.geography.items():
            if any(re.search(rf"\b{re.escape(p.lower())}\b", location) for p in patterns):
                return country
    return None


def segment_of(playbook: Playbook, mention: Mention) -> tuple[Segment | None, bool]:
    handle = handle_of(mention)
    segment = next(
        (name for name, handles in playbook.customers.segments.items() if handle in handles),
        None,
    )
    return segment, handle in playbook.customers.vip


def queue_for(playbook: Playbook, language: str, country: str | None) -> str:
    """Segmentation by language and geography: a queue of the language serving the country;
    without a known country, the first queue of the language as written; else the default."""
    base = language.split("-")[0].lower()
    speaking = [name for name, q in playbook.queues.items() if base in q.languages]
    if country is not None:
        for name in speaking:
            if country in playbook.queues[name].countries:
                return name
        for name, queue in playbook.queues.items():
            if country in queue.countries and not queue.languages:
                return name
    return speaking[0] if speaking else playbook.default_queue


def _check(condition: Condition, facts: Facts, playbook: Playbook, queue: str) -> str | None:
    """None when the condition holds, else the first reason it does not."""
    m, c = facts.mention, facts.classification

    def among(label: str, value: object, allowed: Sequence[object] | None) -> str | None:
        if allowed is None or value in allowed:
            return None
        return f"{label} {value} not in {[str(a) for a in allowed]}"

    checks: list[str | None] = [
        among("channel", m.channel, condition.channel),
        among("kind", m.kind, condition.kind),
        among("language", c.language, condition.language),
        among("country", facts.country, condition.country),
        among("brand", (m.brand or "").lower(), condition.brand),
        among("priority", c.priority, condition.priority),
        among("sentiment", c.sentiment.label, condition.sentiment),
        among("segment", facts.segment, condition.segment),
        among("conversation", facts.conversation, condition.conversation),
    ]
    if condition.intents_any is not None and not set(c.intents) & set(condition.intents_any):
        checks.append(f"intents {[str(i) for i in c.intents]} have none of the listed")
    if condition.intents_none is not None and set(c.intents) & set(condition.intents_none):
        found = sorted(str(i) for i in set(c.intents) & set(condition.intents_none))
        checks.append(f"intents include {found}")
    if condition.complaint is not None and c.is_complaint != condition.complaint:
        checks.append(f"complaint is {c.is_complaint}")
    if (
        condition.crisis_risk_at_least is not None
        and c.crisis_risk < condition.crisis_risk_at_least
    ):
        checks.append(f"crisis risk {c.crisis_risk:.2f} < {condition.crisis_risk_at_least}")
    if (
        condition.followers_at_least is not None
        and m.author.followers < condition.followers_at_least
    ):
        checks.append(f"followers {m.author.followers} < {condition.followers_at_least}")
    if condition.verified is not None and m.author.verified != condition.verified:
        checks.append(f"verified is {m.author.verified}")
    if condition.vip is not None and facts.vip != condition.vip:
        checks.append(f"vip is {facts.vip}")
    if condition.crisis_active is not None and facts.crisis_active != condition.crisis_active:
        checks.append(f"crisis active is {facts.crisis_active}")
    if condition.in_hours is not None:
        open_now = playbook.calendar(queue).is_open(facts.at)
        if open_now != condition.in_hours:
            checks.append(f"queue {queue} is {'open' if open_now else 'closed'}")
    if condition.text_matches is not None and not re.search(
        condition.text_matches, m.text, re.IGNORECASE
    ):
        checks.append(f"text does not match /{condition.text_matches}/")
    return next((reason for reason in checks if reason is not None), None)


def _held(condition: Condition) -> str:
    given = [name for name, value in condition if value is not None]
    return "always" if not given else "all of " + ", ".join(given) + " hold"


def evaluate(playbook: Playbook, facts: Facts) -> Outcome:
    segmented = queue_for(playbook, facts.classification.language, facts.country)
    queue: str | None = None
    priority: Priority | None = None
    outcome = Outcome(queue=segmented, priority=facts.classification.priority)
    for rule in playbook.rules:
        failed = _check(rule.when, facts, playbook, queue or segmented)
        if failed is not None:
            outcome.trace.append(RuleTrace(rule=rule.name, matched=False, why=failed))
            continue
        then, applied = rule.then, []
        if then.queue is not None and queue is None:
            queue = then.queue
            applied.append(f"queue={queue}")
        if then.priority is not None and priority is None:
            priority = then.priority
            applied.append(f"priority={priority.value}")
        if then.escalate is not None and outcome.escalate is None:
            outcome.escalate = then.escalate
            applied.append(f"escalate={then.escalate}")
        new_tags = [t for t in dict.fromkeys(then.tags) if t not in outcome.tags]
        outcome.tags += new_tags
        applied += [f"tag={t}" for t in new_tags]
        if then.record_only:
            outcome.record_only = True
            applied.append("record_only")
        if then.acknowledge:
            outcome.acknowledge = True
            applied.append("acknowledge")
        outcome.trace.append(
            RuleTrace(rule=rule.name, matched=True, why=_held(rule.when), applied=applied)
        )
        if rule.stop:
            break
    outcome.queue = queue or segmented
    outcome.priority = priority or facts.classification.priority
    return outcome
