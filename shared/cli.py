"""The `scs` command: run services, migrate, create topics, import, and demo helpers."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from services.classifier.cli import classifier_app, classify_command
from shared.settings import ConnectionSettings, load_settings

app = typer.Typer(
    help="SCS Router: route social customer service interactions.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
ingest_app = typer.Typer(help="Bulk import.", no_args_is_help=True)
demo_app = typer.Typer(help="Helpers for the local demo (make run).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")
app.add_typer(ingest_app, name="ingest")
app.add_typer(demo_app, name="demo")
app.add_typer(classifier_app, name="classifier", help="Train and evaluate classifier models.")
app.command("classify", help="Classify NDJSON lines (stdin or --input) to JSON lines.")(
    classify_command
)


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

    upgrade(_connections().database_url, revision)
    typer.echo(f"database at {revision}")


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic and dead-letter topic with its partitions (idempotent)."""
    from shared.kafka import ensure_topics

    created = asyncio.run(ensure_topics(_connections().kafka_bootstrap_servers))
    typer.echo(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))


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
