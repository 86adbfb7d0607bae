"""`scs playbook check|explain|replay`: a brand's playbook tried before it routes anything.

`check` loads a playbook and names every problem with its line; `explain` shows, for one
mention, every rule looked at, which fired and why, and the clocks it would start; `replay`
re-routes stored mentions with a changed playbook and shows what would have gone differently.
The classifier is passed in by the `scs` composition root (services never import each other).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from services.router import repository
from services.router.core import MentionInput, RecordMention, decide
from services.router.core.playbook import Playbook, PlaybookError, parse_playbook
from shared.db import Database
from shared.events import (
    Classification,
    Mention,
    MentionClassified,
    Routing,
    utcnow,
)
from shared.operator import database_named, unreachable_in_one_line
from shared.settings import asyncpg_url

Classify = Callable[[Mention], Classification]
PlaybookFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


def load(path: Path) -> Playbook:
    try:
        return parse_playbook(path.read_text(encoding="utf-8"))
    except PlaybookError as error:
        for problem in error.problems:
            typer.echo(f"{path}: {problem}", err=True)
        raise typer.Exit(1) from None


def mention_from(document: dict[str, Any], classify: Classify | None) -> MentionClassified:
    """A classified mention as the router receives it, or a bare mention (classified here with
    the shipped classifier); ids, author and time may be left out."""
    if "mention" in document and "classification" in document:
        return MentionClassified.model_validate(document)
    fields = {
        "channel": "x",
        "kind": "mention",
        "platform_id": "explain",
        "conversation_id": "explain",
        "author": {"handle": "customer"},
        "created_at": utcnow().isoformat(),
        **document,
    }
    fields.setdefault(
        "mention_id", str(uuid.uuid5(uuid.NAMESPACE_URL, orjson.dumps(fields).decode()))
    )
    mention = Mention.model_validate(fields)
    if classify is None:
        raise typer.BadParameter("give a classified mention: {mention: ..., classification: ...}")
    return MentionClassified(mention=mention, classification=classify(mention))


def explain_text(playbook: Playbook, item: MentionClassified, tenant: str) -> str:
    decision = decide(None, MentionInput(item, tenant), playbook, item.mention.created_at)
    routing = next(e.routing for e in decision.effects if isinstance(e, RecordMention))
    assert routing is not None and item.classification is not None
    c = item.classification
    lines = [
        f"playbook {playbook.label}",
        f"mention  {item.mention.created_at.isoformat()} {item.mention.channel.value} "
        f"{item.mention.kind.value}: {item.mention.text[:100]!r}",
        f"classifier: {c.priority.value}, language {c.language}, {c.sentiment.label}, "
        f"intents {[i.value for i in c.intents]}, crisis risk {c.crisis_risk:.2f}",
        "rules:",
    ]
    for rule in routing.trace:
        mark = "fired  " if rule.matched else "skipped"
        applied = f" -> {', '.join(rule.applied)}" if rule.applied else ""
        lines.append(f"  {mark} {rule.rule}: {rule.why}{applied}")
    if routing.record_only:
        lines.append("decision: record only (no case, no clock)")
        return "\n".join(lines)
    case = decision.case
    assert case is not None
    lines.append(
        f"decision: queue {case.queue}, priority {case.priority.value}, tags {case.tags or '-'}"
    )
    for clock in case.clocks:
        lines.append(
            f"  clock {clock.kind.value}: due {clock.due_at.isoformat()}, warning "
            f"{clock.warning_at.isoformat()} ({'business' if clock.business_time else 'wall'} time)"
        )
    if routing.next_open_at is not None:
        lines.append(f"  out of hours: the queue opens {routing.next_open_at.isoformat()}")
    if routing.acknowledgement:
        lines.append(f"  acknowledgement: {routing.acknowledgement}")
    if case.escalated_to:
        lines.append(f"  escalated to: {', '.join(case.escalated_to)}")
    return "\n".join(lines)


def routed(playbook: Playbook, item: MentionClassified, tenant: str) -> Routing | None:
    decision = decide(None, MentionInput(item, tenant), playbook, item.mention.created_at)
    return next((e.routing for e in decision.effects if isinstance(e, RecordMention)), None)


def outcome_label(routing: Routing | None) -> str:
    if routing is None:
        return "(not recorded)"
    return "record only" if routing.record_only else f"{routing.queue} {routing.priority.value}"


def make_app(classify: Classify | None = None) -> typer.Typer:
    app = typer.Typer(
        help="Check, explain and replay a brand's SCS playbook.", no_args_is_help=True
    )

    @app.command()
    def check(file: PlaybookFile) -> None:
        """Load FILE; every problem is printed with its line (exit status 1)."""
        playbook = load(file)
        typer.echo(
            f"{file}: ok ({playbook.label}: {len(playbook.queues)} queues, "
            f"{len(playbook.rules)} rules, {len(playbook.sla)} SLA targets)"
        )

    @app.command()
    def explain(
        file: PlaybookFile,
        mention: Annotated[
            str, typer.Option(help="JSON of a mention (or classified mention); @path or - reads it")
        ],
        tenant: Annotated[str, typer.Option(envvar="SCS_TENANT")] = "default",
        as_json: Annotated[bool, typer.Option("--json", help="The routing as JSON")] = False,
    ) -> None:
        """Every rule looked at for MENTION, which fired and why, and the clocks it starts."""
        playbook = load(file)
        try:
            if mention == "-":
                raw = sys.stdin.read()
            elif mention.startswith("@"):
                raw = Path(mention[1:]).read_text(encoding="utf-8")
            else:
                raw = mention
            document = orjson.loads(raw)
            if not isinstance(document, dict):
                raise ValueError("expected a JSON object (a mention or a classified mention)")
            item = mention_from(document, classify)
        except (OSError, ValueError) as error:  # JSON and validation errors are ValueErrors
            raise typer.BadParameter(str(error), param_hint="--mention") from None
        if item.classification is None:
            typer.echo("a brand reply: it stops its case's response clocks and is not routed")
            return
        if as_json:
            routing = routed(playbook, item, tenant)
            typer.echo(orjson.dumps(routing.model_dump(mode="json") if routing else None).decode())
        else:
            typer.echo(explain_text(playbook, item, tenant))

    @app.command()
    def replay(
        file: PlaybookFile,
        since: Annotated[datetime, typer.Option("--from", help="Mentions written from (ISO 8601)")],
        until: Annotated[datetime, typer.Option("--to", help="... up to (ISO 8601)")],
        database_url: Annotated[str, typer.Option(envvar="SCS_DATABASE_URL")],
        tenant: Annotated[str, typer.Option(envvar="SCS_TENANT")] = "default",
        limit: Annotated[int, typer.Option(min=1)] = 100_000,
        examples: Annotated[int, typer.Option(min=0)] = 5,
    ) -> None:
        """Route the stored mentions of [--from, --to) with FILE and show what would change.

        Each mention is routed as the first of its conversation; the stored routing it is
        compared with is what the playbook of the day decided.
        """
        playbook = load(file)
        try:
            url = asyncpg_url(database_url)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--database-url") from None
        with unreachable_in_one_line(database_named(url)):
            stored = asyncio.run(_stored_mentions(url, since, until, limit))
        changes: Counter[tuple[str, str]] = Counter()
        shown: dict[tuple[str, str], list[str]] = {}
        for item, before in stored:
            after = routed(playbook, item, tenant)
            old, new = outcome_label(before), outcome_label(after)
            if old != new:
                changes[(old, new)] += 1
                shown.setdefault((old, new), []).append(str(item.mention.mention_id))
        typer.echo(f"{len(stored)} mentions from {since.isoformat()} to {until.isoformat()}")
        typer.echo(f"{sum(changes.values())} would be routed differently with {playbook.label}")
        for (old, new), count in changes.most_common():
            ids = ", ".join(shown[(old, new)][:examples])
            typer.echo(f"  {count:6d}  {old} -> {new}  e.g. {ids}")

    return app


async def _stored_mentions(
    url: str, since: datetime, until: datetime, limit: int
) -> list[tuple[MentionClassified, Routing | None]]:
    database = Database(url, pool_size=1)
    try:
        async with database.engine.connect() as conn:
            return await repository.customer_mentions_between(conn, since, until, limit)
    finally:
        await database.dispose()
