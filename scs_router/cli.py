"""The `scs` command: run services, migrate, create topics, replay dead letters, import, and
demo helpers, plus each service's own commands (mounted below).

The one place that imports every service: `shared` must not (pyproject's import contracts).
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from services.classifier.cli import classifier_app, classify_command
from services.classifier.core import classify
from services.router.cli import make_app as make_playbook_app
from services.router.operator_cli import cases_app, keys_app, webhooks_app
from shared.operator import database_named, unreachable_in_one_line
from shared.settings import ConnectionSettings, load_settings

app = typer.Typer(
    help="SCS Router: route social customer service interactions.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
ingest_app = typer.Typer(help="Bulk import.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: inspect and replay.", no_args_is_help=True)
demo_app = typer.Typer(help="Helpers for the local demo (make run).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")
app.add_typer(ingest_app, name="ingest")
app.add_typer(dlq_app, name="dlq")
app.add_typer(demo_app, name="demo")

# Each service's own commands (its cli.py, importing nothing of the other services): one line
# per sub-app here, plus its import above.
app.add_typer(classifier_app, name="classifier", help="Train and evaluate classifier models.")
app.command("classify", help="Classify NDJSON lines (stdin or --input) to JSON lines.")(
    classify_command
)
# A bare mention given to `scs playbook explain` is classified by the shipped classifier.
app.add_typer(make_playbook_app(classify=classify), name="playbook")
app.add_typer(cases_app, name="cases")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(keys_app, name="keys")


class ServiceName(StrEnum):
    INGEST = "ingest"
    CLASSIFIER = "classifier"
    ROUTER = "router"
    KPI = "kpi"


@app.command()
def serve(service: ServiceName) -> None:
    """Run one service (settings from SCS_* environment variables)."""
    if service is ServiceName.INGEST:
        from services.ingest.main import run
    elif service is ServiceName.CLASSIFIER:
        from services.classifier.main import run
    elif service is ServiceName.ROUTER:
        from services.router.main import run
    else:
        from services.kpi.main import run
    run()


def _connections() -> ConnectionSettings:
    return load_settings(ConnectionSettings)


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Apply migrations up to REVISION (SCS_DATABASE_URL)."""
    from shared.migrate import upgrade

    url = _connections().database_url
    with unreachable_in_one_line(database_named(url)):
        upgrade(url, revision)
    typer.echo(f"database at {revision}")


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic and dead-letter topic with its partitions (idempotent)."""
    from shared.kafka import ensure_topics

    connections = _connections()
    bootstrap = connections.kafka_bootstrap_servers
    with unreachable_in_one_line(f"Kafka at {bootstrap}"):
        created = asyncio.run(
            ensure_topics(
                bootstrap,
                replication_factor=connections.kafka_replication_factor,
                min_insync_replicas=connections.kafka_min_insync_replicas,
            )
        )
    typer.echo(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))


TopicArgument = Annotated[
    str, typer.Argument(help="A topic (e.g. ingest.mention.v1) or its dead-letter topic")
]


@dlq_app.command("list")
def dlq_list(
    topic: TopicArgument,
    payload: Annotated[
        bool, typer.Option(help="Also print each message (customer text, personal data)")
    ] = False,
) -> None:
    """One line per dead letter: offset, source, event type and id, error; replayed ones marked."""
    from shared.dead_letters import list_dead_letters

    bootstrap = _connections().kafka_bootstrap_servers
    with unreachable_in_one_line(f"Kafka at {bootstrap}"):
        letters = asyncio.run(list_dead_letters(bootstrap, topic, with_payload=payload))
    for letter in letters:
        typer.echo(
            f"{letter.partition}/{letter.offset}\t{'replayed' if letter.replayed else 'pending'}"
            f"\t{letter.source}\t{letter.event_type}\t{letter.event_id}\t{letter.error}"
        )
        if letter.payload is not None:
            typer.echo(f"\t{letter.payload.decode(errors='replace')}")
    pending = sum(not letter.replayed for letter in letters)
    typer.echo(f"{len(letters)} dead letters, {pending} not replayed", err=True)


@dlq_app.command("replay")
def dlq_replay(
    topic: TopicArgument,
    dry_run: Annotated[
        bool, typer.Option(help="Count what would be replayed; send nothing")
    ] = False,
) -> None:
    """Republish dead letters not replayed yet to their topic (after the fix is deployed)."""
    from shared.dead_letters import replay_dead_letters

    bootstrap = _connections().kafka_bootstrap_servers
    with unreachable_in_one_line(f"Kafka at {bootstrap}"):
        result = asyncio.run(replay_dead_letters(bootstrap, topic, dry_run=dry_run))
    verb = "would replay" if dry_run else "replayed"
    typer.echo(
        f"{verb} {result.replayed} dead letters to {result.target} "
        f"(offsets before {result.already_replayed} replayed earlier)"
    )


@ingest_app.command("replay")
def ingest_replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="NDJSON or CSV")],
    url: Annotated[str, typer.Option(help="Ingest base URL")] = "http://127.0.0.1:8001",
    token: Annotated[
        str | None,
        typer.Option(envvar="SCS_INGEST_API_TOKEN", help="Ingest bearer token", show_default=False),
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Rows per second at most")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256)] = 8,
    rebase_time: Annotated[
        bool, typer.Option(help="Shift created_at so the newest row is now")
    ] = False,
) -> None:
    """Import an export file through the ingest API; prints accepted/duplicate/rejected."""
    from rich.progress import Progress

    from shared.replay import read_rows, replay

    total = sum(1 for _ in read_rows(file))
    with Progress(transient=True) as progress:
        task = progress.add_task(f"replaying {file.name}", total=total)
        counts = asyncio.run(
            replay(
                file,
                url=url,
                token=token,
                rate_per_second=rate,
                concurrency=concurrency,
                rebase=rebase_time,
                progress=lambda: progress.advance(task),
            )
        )
    typer.echo(
        f"accepted={counts['accepted']} duplicate={counts['duplicate']} "
        f"rejected={counts['rejected']} failed={counts['failed']}"
    )
    if counts["failed"]:
        raise typer.Exit(1)


@demo_app.command("receiver")
def demo_receiver(
    secret_file: Annotated[Path, typer.Option(help="File holding the endpoint's whsec_ secret")],
    port: int = 8010,
) -> None:
    """A webhook receiver that checks Standard Webhooks signatures and logs each case."""
    from shared.demo import run_receiver

    run_receiver(secret_file, port)


@demo_app.command("summary")
def demo_summary(
    watch: Annotated[float, typer.Option(help="Refresh every N seconds; 0 prints once")] = 0,
    router_url: str = "http://127.0.0.1:8003",
    kpi_url: str = "http://127.0.0.1:8004",
) -> None:
    """Cases per priority, webhooks delivered and SLA attainment, live."""
    from shared.demo import print_summary

    asyncio.run(print_summary(router_url, kpi_url, watch))


if __name__ == "__main__":
    app()
