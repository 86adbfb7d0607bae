"""Playbook rules over one mention (precedence, conditions, the trace, segmentation) and the
playbook's validation, with small inline YAML playbooks: pure, no database, no broker."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.router.core import (
    MentionInput,
    RecordMention,
    StartTimer,
    TimerInput,
    TimerKind,
    decide,
)
from services.router.core.effects import Effect
from services.router.core.playbook import Conversation, Playbook, PlaybookError, parse_playbook
from services.router.core.rules import (
    Facts,
    Outcome,
    country_of,
    evaluate,
    queue_for,
    segment_of,
)
from shared.events import (
    Case,
    Channel,
    Intent,
    MentionClassified,
    MentionKind,
    Priority,
    Routing,
    RuleTrace,
)
from tests.unit.router.builders import classified, reply

MADRID = ZoneInfo("Europe/Madrid")
# A Wednesday, 11:00 in Madrid.
AT = datetime(2026, 11, 4, 11, 0, tzinfo=MADRID)

# One always-open calendar, two queues, an SLA target for every priority; no rules. Line numbers
# matter to the validation tests: `rules:` appended by `with_rules` is line 30, its first item 31.
MINIMAL = """\
format: 1
brand: test
version: "1"
calendars:
  always:
    timezone: Europe/Madrid
    always_open: true
queues:
  care-es:
    languages: [es]
    countries: [ES]
    calendar: always
  care-en:
    languages: [en]
    countries: [GB]
    calendar: always
default_queue: care-en
geography:
  MX: [mexico, cdmx]
  ES: [madrid, spain]
escalation_targets: [team-lead, legal]
sla:
  - {priority: [P1], first_response_minutes: 15}
  - {priority: [P2], first_response_minutes: 60}
  - {priority: [P3, P4], first_response_minutes: 240}
customers:
  vip: [bigfan]
  segments: {critic: [grumpy], loyal: [bigfan]}
lifecycle: {resolve_after_inactive_hours: 1, reopen_within_hours: 2}
"""
RULES_LINE = MINIMAL.count("\n") + 1


@pytest.fixture
def minimal() -> str:
    return MINIMAL


def with_rules(base: str, rules: str) -> str:
    """`base` with a `rules:` section; `rules` is YAML list items indented by two spaces."""
    return base + "rules:\n" + rules.lstrip("\n")


def with_queues(base: str, queues: str) -> str:
    """`base` with more queues (entries indented by two spaces) after the two it has."""
    return base.replace("default_queue:", queues.lstrip("\n") + "default_queue:", 1)


def with_calendars(base: str, calendars: str) -> str:
    return base.replace("queues:\n", calendars.lstrip("\n") + "queues:\n", 1)


def load(base: str, rules: str = "") -> Playbook:
    return parse_playbook(with_rules(base, rules) if rules else base)


def problems(text: str) -> list[str]:
    with pytest.raises(PlaybookError) as raised:
        parse_playbook(text)
    return raised.value.problems


def item(
    *,
    at: datetime = AT,
    verified: bool = False,
    brand: str | None = None,
    **fields: Any,
) -> MentionClassified:
    """A classified mention (builders.classified) with the author's verified flag and brand."""
    made = classified(at, **fields)
    author = made.mention.author.model_copy(update={"verified": verified})
    mention = made.mention.model_copy(update={"author": author, "brand": brand})
    return made.model_copy(update={"mention": mention})


def facts(
    playbook: Playbook,
    given: MentionClassified,
    *,
    conversation: Conversation = "new",
    crisis_active: bool = False,
) -> Facts:
    """The facts the decider gathers for a mention (country, segment, vip)."""
    assert given.classification is not None
    segment, vip = segment_of(playbook, given.mention)
    return Facts(
        mention=given.mention,
        classification=given.classification,
        country=country_of(playbook, given.mention, given.classification.language),
        segment=segment,
        vip=vip,
        conversation=conversation,
        crisis_active=crisis_active,
        at=given.mention.created_at,
    )


def run(playbook: Playbook, given: MentionClassified, **kw: Any) -> Outcome:
    return evaluate(playbook, facts(playbook, given, **kw))


def looked_at(outcome: Outcome) -> list[tuple[str, bool, str]]:
    return [(t.rule, t.matched, t.why) for t in outcome.trace]


def only(outcome: Outcome) -> RuleTrace:
    assert len(outcome.trace) == 1
    return outcome.trace[0]


# -- precedence -----------------------------------------------------------------------------


def test_without_rules_the_segmented_queue_and_the_classifiers_priority_stand(
    minimal: str,
) -> None:
    outcome = run(load(minimal), item(priority=Priority.P3))
    assert (outcome.queue, outcome.priority, outcome.tags, outcome.trace) == (
        "care-es",
        Priority.P3,
        [],
        [],
    )
    assert not outcome.record_only and not outcome.acknowledge and outcome.escalate is None


def test_the_first_matching_rule_wins_queue_priority_and_escalation(minimal: str) -> None:
    playbook = load(
        minimal,
        """
  - {name: spanish-to-english, when: {language: [es]}, then: {queue: care-en, tags: [a]}}
  - {name: facebook-only, when: {channel: [facebook]}, then: {queue: care-es, priority: P4}}
  - name: everything
    then: {queue: care-es, priority: P1, escalate: legal, tags: [a, b]}
  - name: later
    then: {priority: P4, escalate: team-lead, tags: [b, c], record_only: true}
  - {name: ack, then: {acknowledge: true, tags: [c]}}
""",
    )
    outcome = run(playbook, item(priority=Priority.P3))
    assert outcome.queue == "care-en"  # not care-es: later matching rules cannot override
    assert outcome.priority is Priority.P1  # the first rule that sets a priority
    assert outcome.escalate == "legal"
    assert outcome.tags == ["a", "b", "c"]  # accumulated, each once
    assert outcome.record_only and outcome.acknowledge
    assert [(t.rule, t.matched, t.applied) for t in outcome.trace] == [
        ("spanish-to-english", True, ["queue=care-en", "tag=a"]),
        ("facebook-only", False, []),
        ("everything", True, ["priority=P1", "escalate=legal", "tag=b"]),
        ("later", True, ["tag=c", "record_only"]),
        ("ack", True, ["acknowledge"]),
    ]


def test_record_only_and_acknowledge_stay_set_once_a_rule_set_them(minimal: str) -> None:
    playbook = load(
        minimal,
        """
  - {name: record, then: {record_only: true}}
  - {name: acknowledge, then: {acknowledge: true}}
  - {name: neither, then: {record_only: false, acknowledge: false, tags: [x]}}
""",
    )
    outcome = run(playbook, item())
    assert outcome.record_only and outcome.acknowledge
    assert outcome.trace[2].applied == ["tag=x"]


def test_stop_ends_the_search_and_later_rules_are_not_in_the_trace(minimal: str) -> None:
    playbook = load(
        minimal,
        """
  - {name: first, then: {tags: [x]}}
  - {name: unmatched-stop, when: {channel: [email]}, then: {tags: [never]}, stop: true}
  - {name: stopper, when: {language: [es]}, then: {tags: [y]}, stop: true}
  - {name: after, then: {queue: care-en, priority: P1, tags: [z]}}
""",
    )
    outcome = run(playbook, item(priority=Priority.P3))
    assert [t.rule for t in outcome.trace] == ["first", "unmatched-stop", "stopper"]
    assert (outcome.queue, outcome.priority, outcome.tags) == ("care-es", Priority.P3, ["x", "y"])


def test_every_rule_looked_at_is_traced_in_order_with_why(minimal: str) -> None:
    playbook = load(
        minimal,
        """
  - {name: always, then: {tags: [a]}}
  - {name: english, when: {language: [en]}, then: {tags: [b]}}
  - {name: two-conditions, when: {language: [es], channel: [x]}, then: {tags: [c]}}
  - {name: code-order, when: {language: [en], channel: [facebook]}, then: {tags: [d]}}
""",
    )
    outcome = run(playbook, item())
    assert looked_at(outcome) == [
        ("always", True, "always"),
        ("english", False, "language es not in ['en']"),
        ("two-conditions", True, "all of channel, language hold"),
        # The first failing condition in the code's order (channel before language), not the
        # order the playbook wrote them in.
        ("code-order", False, "channel x not in ['facebook']"),
    ]


# -- conditions -----------------------------------------------------------------------------

# (condition, a mention it holds for, a mention it fails for, the trace's why for the latter)
CONDITIONS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("{channel: [facebook]}", {"channel": Channel.FACEBOOK}, {}, "channel x not in ['facebook']"),
    (
        "{kind: [dm, review]}",
        {"kind": MentionKind.DM},
        {},
        "kind mention not in ['dm', 'review']",
    ),
    ("{language: [es]}", {}, {"language": "en"}, "language en not in ['es']"),
    ("{country: [MX]}", {"language": "es-MX"}, {}, "country None not in ['MX']"),
    (
        "{country: [MX]}",
        {"location": "CDMX, México"},
        {"location": "Madrid"},
        "country ES not in ['MX']",
    ),
    ("{brand: [acme]}", {"brand": "ACME"}, {"brand": "Other"}, "brand other not in ['acme']"),
    ("{priority: [P1]}", {"priority": Priority.P1}, {}, "priority P2 not in ['P1']"),
    ("{followers_at_least: 1000}", {"followers": 1000}, {"followers": 999}, "followers 999 < 1000"),
    ("{verified: true}", {"verified": True}, {}, "verified is False"),
    ("{vip: true}", {"handle": "@BigFan"}, {}, "vip is False"),
    ("{segment: [critic]}", {"handle": "Grumpy"}, {}, "segment None not in ['critic']"),
    (
        "{segment: [critic]}",
        {"handle": "grumpy"},
        {"handle": "bigfan"},
        "segment loyal not in ['critic']",
    ),
    (
        "{intents_any: [question, request]}",
        {"intents": (Intent.COMPLAINT, Intent.QUESTION)},
        {},
        "intents ['complaint'] have none of the listed",
    ),
    (
        "{intents_none: [spam, praise]}",
        {},
        {"intents": (Intent.PRAISE, Intent.SPAM)},
        "intents include ['praise', 'spam']",
    ),
    (
        "{sentiment: [positive, neutral]}",
        {"sentiment": "neutral"},
        {},
        "sentiment negative not in ['positive', 'neutral']",
    ),
    ("{complaint: false}", {"intents": (Intent.QUESTION,)}, {}, "complaint is True"),
    ("{crisis_risk_at_least: 0.5}", {"crisis_risk": 0.5}, {}, "crisis risk 0.10 < 0.5"),
    (
        "{text_matches: 'REFUND|reembolso'}",
        {"text": "I want my Refund now"},
        {},
        "text does not match /REFUND|reembolso/",
    ),
]


@pytest.mark.parametrize(("when", "holds", "fails", "why"), CONDITIONS)
def test_each_condition_holds_or_names_why_not(
    minimal: str, when: str, holds: dict[str, Any], fails: dict[str, Any], why: str
) -> None:
    playbook = load(minimal, f"  - {{name: r, when: {when}, then: {{tags: [hit]}}}}\n")
    matched = only(run(playbook, item(**holds)))
    assert (matched.matched, matched.applied) == (True, ["tag=hit"])
    assert matched.why.startswith("all of ")
    failed = only(run(playbook, item(**fails)))
    assert (failed.matched, failed.why, failed.applied) == (False, why, [])


def test_country_from_the_language_tag_wins_over_the_location(minimal: str) -> None:
    playbook = load(minimal)
    mention = item(language="es-MX", location="Madrid").mention
    assert country_of(playbook, mention, "es") == "MX"
    assert country_of(playbook, item(location="Madrid, Spain").mention, "es") == "ES"
    # Patterns are whole words: "cdmxx" is not "cdmx"; a region that is not two letters is
    # no country (es-419, Latin American Spanish), so the location decides.
    assert country_of(playbook, item(location="cdmxx").mention, "es") is None
    assert country_of(playbook, item(language="es-419", location="CDMX").mention, "es") == "MX"
    assert country_of(playbook, item(location=None).mention, "es") is None


@pytest.mark.parametrize(
    ("conversation", "matched"), [("new", False), ("follow_up", True), ("reopened", True)]
)
def test_conversation_condition_over_facts(
    minimal: str, conversation: Conversation, matched: bool
) -> None:
    playbook = load(
        minimal, "  - {name: again, when: {conversation: [follow_up, reopened]}, then: {}}\n"
    )
    trace = only(run(playbook, item(), conversation=conversation))
    assert trace.matched is matched
    if not matched:
        assert trace.why == "conversation new not in ['follow_up', 'reopened']"


def test_crisis_active_condition_over_facts(minimal: str) -> None:
    playbook = load(
        minimal, "  - {name: crisis, when: {crisis_active: true}, then: {priority: P1}}\n"
    )
    assert run(playbook, item(), crisis_active=True).priority is Priority.P1
    calm = run(playbook, item(), crisis_active=False)
    assert (calm.priority, only(calm).why) == (Priority.P2, "crisis active is False")


OFFICE = """
  office:
    timezone: Europe/Madrid
    hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"]}
"""


def test_in_hours_looks_at_the_queue_chosen_so_far(minimal: str) -> None:
    base = with_queues(with_calendars(minimal, OFFICE), "  back-office: {calendar: office}\n")
    playbook = load(
        base,
        """
  - {name: open-before, when: {in_hours: true}, then: {tags: [open]}}
  - {name: closed-before, when: {in_hours: false}, then: {tags: [never]}}
  - {name: to-office, then: {queue: back-office}}
  - {name: closed-after, when: {in_hours: false}, then: {acknowledge: true, tags: [closed]}}
  - {name: open-after, when: {in_hours: true}, then: {tags: [open-office]}}
""",
    )
    evening = AT.replace(hour=20)  # care-es is always open; back-office closed at 17:00
    outcome = run(playbook, item(at=evening))
    assert looked_at(outcome) == [
        ("open-before", True, "all of in_hours hold"),
        ("closed-before", False, "queue care-es is open"),
        ("to-office", True, "always"),
        ("closed-after", True, "all of in_hours hold"),
        ("open-after", False, "queue back-office is closed"),
    ]
    assert (outcome.queue, outcome.tags, outcome.acknowledge) == (
        "back-office",
        ["open", "closed"],
        True,
    )
    # In office hours the same mention goes the other way.
    assert run(playbook, item(at=AT)).tags == ["open", "open-office"]


# -- conversation and crisis through the decider --------------------------------------------


def routing_of(effects: list[Effect]) -> Routing:
    found = next(e.routing for e in effects if isinstance(e, RecordMention))
    assert found is not None
    return found


def only_rule(routing: Routing) -> RuleTrace:
    assert len(routing.trace) == 1
    return routing.trace[0]


def test_conversation_new_follow_up_reopened_and_new_again_through_decide(minimal: str) -> None:
    playbook = load(
        minimal,
        """
  - {name: first-message, when: {conversation: [new]}, then: {tags: [new]}}
  - {name: again, when: {conversation: [follow_up]}, then: {tags: [again]}}
  - {name: back, when: {conversation: [reopened]}, then: {tags: [back]}}
""",
    )

    def mention(case: Case | None, at: datetime, platform_id: str) -> tuple[Case, list[str]]:
        given = item(at=at, platform_id=platform_id)
        decision = decide(case, MentionInput(given, "t"), playbook, at)
        assert decision.case is not None
        matched = [t.rule for t in routing_of(decision.effects).trace if t.matched]
        return decision.case, matched

    case, matched = mention(None, AT, "1")
    assert (matched, case.generation) == (["first-message"], 0)
    case, matched = mention(case, AT + timedelta(minutes=5), "2")
    assert matched == ["again"]
    # The brand answers; an hour without news resolves the case (lifecycle: 1 h).
    answered = decide(case, MentionInput(reply(AT + timedelta(minutes=10)), "t"), playbook, AT)
    assert answered.case is not None
    inactivity = next(
        e.timer
        for e in answered.effects
        if isinstance(e, StartTimer) and e.timer.kind is TimerKind.INACTIVITY
    )
    resolved = decide(answered.case, TimerInput(inactivity), playbook, inactivity.due_at)
    assert resolved.case is not None
    # Within the two-hour reopen window: the same case, reopened.
    reopened, matched = mention(resolved.case, inactivity.due_at + timedelta(hours=1), "3")
    assert (matched, reopened.case_id, reopened.reopened_count) == (
        ["back"],
        case.case_id,
        1,
    )
    # After the window: a new case of the conversation (generation 1).
    fresh, matched = mention(resolved.case, inactivity.due_at + timedelta(hours=3), "4")
    assert (matched, fresh.generation) == (["first-message"], 1)
    assert fresh.case_id != case.case_id


@pytest.mark.parametrize(("similar_recent", "opens"), [(1, False), (2, True)])
def test_crisis_active_through_decide_counts_similar_mentions_plus_this_one(
    minimal: str, similar_recent: int, opens: bool
) -> None:
    base = minimal + "crisis: {open_at_similar: 3, min_crisis_risk: 0.6}\n"
    playbook = load(
        base, "  - {name: crisis, when: {crisis_active: true}, then: {tags: [crisis]}}\n"
    )
    given = item(crisis_risk=0.7, topic_key="test|crisis:outage", similar_recent=similar_recent)
    decision = decide(None, MentionInput(given, "t"), playbook, AT)
    assert only_rule(routing_of(decision.effects)).matched is opens
    assert decision.case is not None
    assert (decision.case.crisis_id is not None) is opens
    # The crisis policy's priority (P1) applies to the crisis's cases.
    assert decision.case.priority is (Priority.P1 if opens else Priority.P2)


# -- segmentation ---------------------------------------------------------------------------

MORE_QUEUES = """
  care-mx: {languages: [es], countries: [MX], calendar: always}
  latam: {countries: [MX, AR], calendar: always}
"""


@pytest.mark.parametrize(
    ("language", "country", "queue"),
    [
        ("es", "ES", "care-es"),
        ("es", "MX", "care-mx"),  # a queue of the language serving the country
        ("es-MX", "MX", "care-mx"),  # the base language counts
        ("es", None, "care-es"),  # no country: the first queue of the language as written
        ("es", "AR", "latam"),  # no queue of the language serves AR: a language-less one does
        ("en", "MX", "latam"),
        ("en", "ES", "care-en"),  # nobody serves English from ES: the language's first queue
        ("pt", "AR", "latam"),
        ("fr", None, "care-en"),  # no queue of the language: the default queue
        ("fr", "DE", "care-en"),
    ],
)
def test_queue_for_segments_by_language_then_country(
    minimal: str, language: str, country: str | None, queue: str
) -> None:
    assert queue_for(load(with_queues(minimal, MORE_QUEUES)), language, country) == queue


def test_segmentation_through_evaluate_uses_tag_and_location(minimal: str) -> None:
    playbook = load(with_queues(minimal, MORE_QUEUES))
    assert run(playbook, item(language="es-MX")).queue == "care-mx"
    assert run(playbook, item(location="Ciudad de Mexico")).queue == "care-mx"
    assert run(playbook, item(location="somewhere")).queue == "care-es"
    assert run(playbook, item(language="en", location="Mexico")).queue == "latam"
    assert run(playbook, item(language="de")).queue == "care-en"


# -- validation -----------------------------------------------------------------------------


def test_the_minimal_playbook_loads(minimal: str) -> None:
    playbook = load(minimal)
    assert playbook.label == "test@1"
    assert list(playbook.queues) == ["care-es", "care-en"]
    assert playbook.crisis.open_at_similar == 5  # defaults for the sections left out
    assert playbook.lifecycle.reopen_within_hours == 2


def test_an_unknown_key_is_refused_at_its_line(minimal: str) -> None:
    text = with_rules(
        minimal,
        """
  - name: typo
    when: {langauge: [es]}
    then: {queue: care-es}
""",
    )
    line = RULES_LINE + 2
    assert "langauge" in text.splitlines()[line - 1]
    assert problems(text) == [f"line {line}: rules.0.when.langauge: Extra inputs are not permitted"]


def test_an_unknown_top_level_section_and_a_missing_field_name_their_lines(minimal: str) -> None:
    text = with_rules(minimal.replace("customers:", "customer:"), "  - {name: no-then}\n")
    assert problems(text) == [
        f"line {RULES_LINE + 1}: rules.0.then: Field required",
        "line 27: customer: Extra inputs are not permitted",
    ]


@pytest.mark.parametrize(
    ("change", "reference"),
    [
        (("default_queue: care-en", "default_queue: nope"), "default_queue: unknown queue 'nope'"),
        (
            ("    calendar: always\ndefault", "    calendar: nope\ndefault"),
            "queues.care-en.calendar: unknown calendar 'nope'",
        ),
        (
            ("    calendar: always\ndefault", "    calendar: always\n    ladder: nope\ndefault"),
            "queues.care-en.ladder: unknown ladder 'nope'",
        ),
        (("\nsla:", "\ncrisis: {ladder: nope}\nsla:"), "crisis.ladder: unknown ladder 'nope'"),
        (("\nsla:", "\ncrisis: {queue: nope}\nsla:"), "crisis.queue: unknown queue 'nope'"),
        (
            ("\nsla:", "\nladders: {up: [{trigger: breach, to: nope}]}\nsla:"),
            "ladders.up.0.to: unknown escalation target 'nope'",
        ),
        (
            ("\nsla:", "\nladders: {up: [{trigger: breach, to: legal, queue: nope}]}\nsla:"),
            "ladders.up.0.queue: unknown queue 'nope'",
        ),
    ],
)
def test_unknown_references_are_refused_by_name(
    minimal: str, change: tuple[str, str], reference: str
) -> None:
    old, new = change
    assert old in minimal
    found = problems(minimal.replace(old, new, 1))
    assert len(found) == 1 and reference in found[0], found


def test_unknown_rule_references_are_all_named(minimal: str) -> None:
    found = problems(
        with_rules(
            minimal,
            """
  - {name: a, then: {queue: nope}}
  - {name: b, then: {escalate: lawyers}}
""",
        )
    )
    assert len(found) == 2  # each at its own line
    assert "rules.0.then.queue: unknown queue 'nope'" in found[0]
    assert "rules.1.then.escalate: unknown escalation target 'lawyers'" in found[1]


def test_a_bad_regular_expression_is_refused_at_its_line(minimal: str) -> None:
    text = with_rules(minimal, "  - {name: r, when: {text_matches: '(refund'}, then: {}}\n")
    [problem] = problems(text)
    assert problem.startswith(f"line {RULES_LINE + 1}: rules.0.when.text_matches: ")
    assert "not a regular expression: missing )" in problem


def test_duplicate_rule_names_are_refused(minimal: str) -> None:
    text = with_rules(
        minimal,
        """
  - {name: same, then: {tags: [a]}}
  - {name: other, then: {tags: [b]}}
  - {name: same, then: {tags: [c]}}
""",
    )
    [problem] = problems(text)
    assert "rules.2.name: duplicate rule name 'same'" in problem


def test_an_sla_that_leaves_a_priority_out_is_refused(minimal: str) -> None:
    text = minimal.replace("[P3, P4]", "[P3]")
    [problem] = problems(text)
    assert "sla: no target for P4 on [" in problem
    assert "'x'" in problem and "'web'" in problem and "'dm'" in problem
    assert "P3" not in problem


def test_an_sla_with_no_target_at_all_is_refused(minimal: str) -> None:
    text = minimal.split("sla:\n")[0] + "sla: []\n"
    [problem] = problems(text)
    assert "sla: no target at all" in problem


def test_a_yaml_syntax_error_names_its_line(minimal: str) -> None:
    text = with_rules(
        minimal,
        """
  - name: unclosed
    when: {language: [es]
    then: {tags: [x]}
""",
    )
    # The parser notices the unclosed flow mapping on the line after it.
    assert problems(text) == [
        f"line {RULES_LINE + 3}: not valid YAML: expected ',' or '}}', but got '<scalar>'"
    ]
    assert problems("format: 1\n  brand: x\n")[0].startswith("line 2: not valid YAML: ")


@pytest.mark.parametrize("text", ["- format: 1\n", "just text\n", "", "# nothing\n"])
def test_a_document_that_is_not_a_mapping_is_refused(text: str) -> None:
    assert problems(text) == ["line 1: a playbook is a mapping (format, brand, version, ...)"]


def test_yaml_1_1_reads_no_and_unquoted_dates_as_other_types(minimal: str) -> None:
    # NO (Norway) is the boolean false in YAML 1.1; an unquoted date is a date, not a string.
    assert problems(minimal.replace("countries: [GB]", "countries: [NO]")) == [
        "line 15: queues.care-en.countries.0: Input should be a valid string"
    ]
    assert problems(minimal.replace('version: "1"', "version: 2026-12-02")) == [
        "line 3: version: Input should be a valid string"
    ]


def test_a_ladder_step_written_with_on_is_refused(minimal: str) -> None:
    # `on` is the boolean true in YAML 1.1: why a ladder step's key is `trigger`.
    text = minimal.replace("\nsla:", "\nladders:\n  up:\n    - {on: breach, to: legal}\nsla:")
    assert problems(text) == [
        "line 24: ladders.up.0.trigger: Field required",
        "line 24: ladders.up.0.1: Keys should be strings",
    ]


def test_calendar_problems_are_refused(minimal: str) -> None:
    def calendar(spec: str) -> str:
        return with_calendars(minimal, f"  other: {spec}\n")

    assert (
        "shift '9-17' is not HH:MM-HH:MM"
        in problems(calendar("{timezone: UTC, hours: {mon: ['9-17']}}"))[0]
    )
    assert (
        "a shift past midnight is two shifts"
        in problems(calendar("{timezone: UTC, hours: {mon: ['22:00-06:00']}}"))[0]
    )
    assert (
        "unknown time zone 'Mars/Olympus'"
        in problems(calendar("{timezone: Mars/Olympus, always_open: true}"))[0]
    )
    assert "the calendar is never open" in problems(calendar("{timezone: UTC}"))[0]
    assert (
        "no public holidays known for XX"
        in problems(calendar("{timezone: UTC, always_open: true, holidays: {country: XX}}"))[0]
    )
    # "24:00" ends a shift at midnight; split shifts are a list.
    playbook = load(calendar("{timezone: UTC, hours: {mon: ['09:00-14:00', '16:00-24:00']}}"))
    other = playbook.calendars["other"].build()
    monday = datetime(2026, 11, 2, 23, 59, tzinfo=ZoneInfo("UTC"))
    assert other.is_open(monday) and not other.is_open(monday.replace(hour=15))


# -- found by review, fixed ------------------------------------------------------------------


def test_a_tag_listed_twice_in_one_rule_is_added_once(minimal: str) -> None:
    playbook = load(minimal, "  - {name: r, then: {tags: [x, x]}}\n")
    assert run(playbook, item()).tags == ["x"]


def test_a_playbook_that_loads_routes_every_kind(minimal: str) -> None:
    text = minimal.split("sla:\n")[0] + "sla:\n  - {kind: [mention], first_response_minutes: 60}\n"
    try:
        playbook = parse_playbook(text)
    except PlaybookError:
        return  # refusing the gap at load is a fix too
    for kind in (MentionKind.DM, MentionKind.COMMENT, MentionKind.REVIEW):
        decision = decide(None, MentionInput(item(kind=kind), "t"), playbook, AT)
        assert decision.case is not None


LADDERS = """
ladders:
  first:
    - {trigger: breach, to: team-lead, queue: second}
    - {trigger: breach, after_minutes: 60, to: legal}
  second:
    - {trigger: warning, to: team-lead}
    - {trigger: breach, to: marketing}
"""


def test_a_waiting_ladder_step_is_the_one_that_was_armed(minimal: str) -> None:
    text = (
        minimal.replace("[team-lead, legal]", "[team-lead, legal, marketing]")
        .replace(
            "    calendar: always\ndefault", "    calendar: always\n    ladder: first\ndefault"
        )
        .replace("default_queue:", "  second: {calendar: always, ladder: second}\ndefault_queue:")
        .replace("\nsla:", LADDERS + "sla:")
    )
    playbook = parse_playbook(text)
    opened = decide(None, MentionInput(item(language="en"), "t"), playbook, AT)
    assert opened.case is not None and opened.case.queue == "care-en"
    breach = next(
        e.timer
        for e in opened.effects
        if isinstance(e, StartTimer) and e.timer.kind is TimerKind.SLA_BREACH
    )
    breached = decide(opened.case, TimerInput(breach), playbook, breach.due_at)
    assert breached.case is not None
    assert (breached.case.queue, breached.case.escalated_to) == ("second", ["team-lead"])
    waiting = next(
        e.timer
        for e in breached.effects
        if isinstance(e, StartTimer) and e.timer.kind is TimerKind.ESCALATION
    )
    later = decide(breached.case, TimerInput(waiting), playbook, waiting.due_at)
    assert later.case is not None
    assert later.case.escalated_to == ["team-lead", "legal"]


def test_an_unknown_reference_is_reported_at_its_line(minimal: str) -> None:
    text = with_rules(minimal, "  - {name: a, then: {queue: nope}}\n")
    assert any(
        p.startswith(f"line {RULES_LINE + 1}:") and "unknown queue 'nope'" in p
        for p in problems(text)
    )


def test_a_calendar_problem_names_the_calendar_and_its_line(minimal: str) -> None:
    text = with_calendars(minimal, "  other: {timezone: Mars/Olympus, always_open: true}\n")
    [problem] = problems(text)
    assert problem.startswith("line 8:") and "other" in problem


def test_a_key_written_twice_is_refused_at_its_line(minimal: str) -> None:
    text = with_rules(
        minimal,
        """
  - name: twice
    when: {language: [es]}
    when: {language: [en]}
    then: {tags: [x]}
""",
    )
    [problem] = problems(text)
    assert problem.startswith(f"line {RULES_LINE + 3}:") and "duplicate key 'when'" in problem


def test_an_in_hours_acknowledgement_uses_the_in_hours_template(minimal: str) -> None:
    text = (
        with_rules(minimal, "  - {name: ack, then: {acknowledge: true}}\n")
        + 'acknowledgements: {es: "Gracias, lo miramos ya."}\n'
    )
    decision = decide(None, MentionInput(item(), "t"), parse_playbook(text), AT)
    routing = next(e.routing for e in decision.effects if isinstance(e, RecordMention))
    assert routing is not None and routing.acknowledgement == "Gracias, lo miramos ya."
