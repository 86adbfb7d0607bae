"""`scs playbook check|explain` through Typer's test runner, over the sample playbook (replay
needs PostgreSQL and is covered by the integration tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from services.router.cli import make_app
from shared.events import Classification, Intent, Mention, Priority, Sentiment
from tests.unit.router.builders import SAMPLE, sample_playbook

runner = CliRunner()

# Saturday 28 November 2026, 22:30 in Madrid: the Spanish queue is closed until Monday 09:00.
CLASSIFIED: dict[str, Any] = {
    "mention": {
        "mention_id": "6d1f3b8e-0000-4000-8000-000000000001",
        "channel": "x",
        "kind": "mention",
        "platform_id": "1001",
        "conversation_id": "c-1001",
        "text": "Llevo tres días sin internet y nadie me responde. Pondré una denuncia en la OCU",
        "author": {"handle": "lucia_88", "followers": 312, "location": "Madrid"},
        "created_at": "2026-11-28T22:30:00+01:00",
        "language": "es",
    },
    "classification": {
        "language": "es",
        "sentiment": {"label": "negative", "score": -0.7},
        "intents": ["complaint", "incident"],
        "is_complaint": True,
        "crisis_risk": 0.35,
        "priority": "P2",
        "reasons": ["complaint: 'nadie me responde'"],
        "model": "test",
    },
}
# A bare mention: the composition root classifies it.
BARE = {"text": "My account was hacked!", "created_at": "2026-11-04T10:00:00+00:00"}


def fixed_classification(mention: Mention) -> Classification:
    return Classification(
        language="en",
        sentiment=Sentiment(label="negative", score=-0.9),
        intents=[Intent.INCIDENT],
        is_complaint=True,
        crisis_risk=0.8,
        priority=Priority.P1,
        reasons=["fake"],
        model="fake",
    )


def explain(*args: str, classify: bool = False, stdin: str | None = None) -> Result:
    app = make_app(fixed_classification) if classify else make_app()
    return runner.invoke(app, ["explain", str(SAMPLE), *args], input=stdin)


def test_check_prints_ok_for_the_sample() -> None:
    result = runner.invoke(make_app(), ["check", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"{SAMPLE}: ok (acme@2026-12-02: 4 queues, 10 rules, 4 SLA targets)\n")


def test_check_names_the_line_of_every_problem(tmp_path: Path) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()

    def first(fragment: str) -> int:
        return next(i for i, line in enumerate(lines) if fragment in line)

    broken = {
        first("languages: [es]"): "    langauges: [es]",
        first("first_response_minutes: 60"): "  - {priority: [P2], first_response_minutes: -1}",
        first("close_after_quiet_minutes"): "  close_after_quiet_minutes: soon",
    }
    for index, text in broken.items():
        lines[index] = text
    path = tmp_path / "broken.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(make_app(), ["check", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    reported = result.stderr.splitlines()
    assert len(reported) == len(broken)
    for index, problem in zip(sorted(broken), reported, strict=True):
        assert problem.startswith(f"{path}: line {index + 1}: "), problem
    assert "langauges: Extra inputs are not permitted" in reported[0]
    assert "first_response_minutes: Input should be greater than 0" in reported[1]
    assert "close_after_quiet_minutes: Input should be a valid number" in reported[2]


def test_check_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(make_app(), ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2


def test_explain_shows_every_rule_and_the_decision() -> None:
    result = explain("--mention", orjson.dumps(CLASSIFIED).decode())
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    decision = next(i for i, line in enumerate(out) if line.startswith("decision:"))
    rules = [line.split()[:2] for line in out[out.index("rules:") + 1 : decision]]
    assert [name.rstrip(":") for _, name in rules] == [r.name for r in sample_playbook().rules]
    fired = {name.rstrip(":") for mark, name in rules if mark == "fired"}
    assert fired == {"legal-threat", "out-of-hours"}
    assert {mark for mark, _ in rules} == {"fired", "skipped"}
    assert "  skipped spam: intents ['complaint', 'incident'] have none of the listed" in out
    assert "decision: queue care-es, priority P2, tags ['legal', 'out-of-hours']" in out
    # 60 business minutes from Monday 09:00 (warning at 80 %), 1440 for the resolution.
    assert (
        "  clock first_response: due 2026-11-30T10:00:00+01:00, "
        "warning 2026-11-30T09:48:00+01:00 (business time)"
    ) in out
    assert any(line.startswith("  clock resolution: due 2026-12-02T13:00:00+01:00") for line in out)
    assert "  out of hours: the queue opens 2026-11-30T09:00:00+01:00" in out
    assert any("te responderemos a partir del 30/11 09:00." in line for line in out)
    assert "  escalated to: legal" in out


def test_explain_json_is_the_routing() -> None:
    result = explain("--mention", orjson.dumps(CLASSIFIED).decode(), "--json")
    assert result.exit_code == 0, result.output
    routing = orjson.loads(result.stdout)
    assert (routing["queue"], routing["priority"]) == ("care-es", "P2")
    assert [t["rule"] for t in routing["trace"]] == [r.name for r in sample_playbook().rules]
    legal = next(t for t in routing["trace"] if t["rule"] == "legal-threat")
    assert legal == {
        "rule": "legal-threat",
        "matched": True,
        "why": "all of text_matches hold",
        "applied": ["priority=P2", "escalate=legal", "tag=legal"],
    }
    assert routing["out_of_hours"] is True
    assert routing["next_open_at"] == "2026-11-30T09:00:00+01:00"


def test_explain_reads_the_mention_from_a_file_or_stdin(tmp_path: Path) -> None:
    path = tmp_path / "mention.json"
    path.write_bytes(orjson.dumps(CLASSIFIED))
    from_file = explain("--mention", f"@{path}", "--json")
    from_stdin = explain("--mention", "-", "--json", stdin=orjson.dumps(CLASSIFIED).decode())
    assert from_file.exit_code == from_stdin.exit_code == 0
    assert from_file.stdout == from_stdin.stdout


def test_explain_classifies_a_bare_mention_with_the_given_classifier() -> None:
    result = explain("--mention", orjson.dumps(BARE).decode(), classify=True)
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[2] == (
        "classifier: P1, language en, negative, intents ['incident'], crisis risk 0.80"
    )
    assert "  fired   crisis-desk: all of priority hold -> queue=community-managers" in out
    assert "decision: queue community-managers, priority P1, tags -" in out
    # P1 is answered within 15 wall-clock minutes, in the crisis desk's zone (Madrid).
    assert (
        "  clock first_response: due 2026-11-04T11:15:00+01:00, "
        "warning 2026-11-04T11:12:00+01:00 (wall time)"
    ) in out


def test_a_bare_mention_without_a_classifier_is_a_usage_error() -> None:
    result = explain("--mention", orjson.dumps(BARE).decode())
    assert result.exit_code == 2
    assert "give a classified mention" in result.stderr


@pytest.mark.parametrize(
    "document",
    [
        "{not json",
        '{"text": "hi", "channel": "myspace"}',  # not a mention
        '{"mention": {"text": "hi"}, "classification": {}}',
    ],
)
def test_a_bad_mention_is_a_usage_error_not_a_traceback(document: str) -> None:
    result = explain("--mention", document, classify=True)
    assert result.exit_code == 2, result.output
    assert "Invalid value for --mention" in result.stderr
    assert "Traceback" not in result.output


# -- found by review, fixed ------------------------------------------------------------------


@pytest.mark.parametrize("document", ["[1, 2]", '"text"', "5"])
def test_json_that_is_not_an_object_is_a_usage_error(document: str) -> None:
    result = explain("--mention", document, classify=True)
    assert result.exit_code == 2, result.output


def test_explain_of_a_brand_reply_says_it_is_not_routed() -> None:
    document = {
        "mention": {**CLASSIFIED["mention"], "kind": "reply"},
        "classification": None,
    }
    result = explain("--mention", orjson.dumps(document).decode())
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_explain_of_a_missing_mention_file_is_a_usage_error(tmp_path: Path) -> None:
    result = explain("--mention", f"@{tmp_path / 'nope.json'}")
    assert result.exit_code == 2, result.output
