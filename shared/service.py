"""The lifecycle every service shares: connect, run background work, report health, stop.

A service starts serving HTTP at once; Kafka and PostgreSQL are connected in the background and
retried until reachable, so a dependency that is down makes `/readyz` false instead of making the
process crash-loop. SIGTERM (handled by uvicorn) stops background work first: consumers finish
and commit their batch, then connections close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.db import Database
from shared.http import BodySizeLimit
from shared.kafka import EventConsumer, EventProducer
from shared.logging import configure_logging
from shared.problems import install_problem_handlers
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)

CONNECT_RETRY_SECONDS = 2.0


class Service(Generic[SettingsT]):
    """Base of the four services. Subclasses add consumers and workers in `on_connected`."""

    name: str = "service"
    uses_database: bool = True

    def __init__(self, settings: SettingsT) -> None:
        self.settings = settings
        self.producer = EventProducer(settings.kafka_bootstrap_servers, f"scs-{self.name}")
        self._database = Database(settings.database_url) if self.uses_database else None
        self.consumers: list[EventConsumer] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._consumer_tasks: list[asyncio.Task[Any]] = []
        self._connected = asyncio.Event()

    @property
    def database(self) -> Database:
        if self._database is None:
            raise RuntimeError(f"the {self.name} service has no database")
        return self._database

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.spawn(self._connect(), "connect")

    async def _connect(self) -> None:
        while True:
            try:
                await self.producer.start()
                break
            except Exception:  # the broker is down or unknown: keep trying, stay unready
                log.warning("kafka not reachable yet; retrying", exc_info=True)
                await self.producer.stop()
                await asyncio.sleep(CONNECT_RETRY_SECONDS)
        while self._database is not None and not await self._database.ping():
            log.warning("postgresql not reachable yet; retrying")
            await asyncio.sleep(CONNECT_RETRY_SECONDS)
        await self.on_connected()
        for consumer in self.consumers:
            await consumer.start()
            self._consumer_tasks.append(
                self.spawn(consumer.run(), f"consume {consumer.topic.name}")
            )
        self._connected.set()
        log.info("connected", extra={"consumers": [c.topic.name for c in self.consumers]})

    async def on_connected(self) -> None:
        """Add consumers (`self.consumers.append`) and background workers (`self.spawn`)."""

    async def on_stopping(self) -> None:
        """Release the service's own resources once its tasks stopped, before connections."""

    async def stop(self) -> None:
        grace = self.settings.shutdown_grace_seconds
        try:
            async with asyncio.timeout(grace):
                for consumer in self.consumers:
                    await consumer.stop()
        except TimeoutError:
            log.error("graceful stop took longer than %.0f s; cancelling", grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.on_stopping()
        await self.producer.stop()
        if self._database is not None:
            await self._database.dispose()
        log.info("stopped")

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine, name=name)
        task.add_done_callback(self._report_crash)
        self._tasks.append(task)
        return task

    def every(
        self, seconds: float, job: Callable[[], Awaitable[object]], name: str
    ) -> asyncio.Task[Any]:
        """Run `job` now and then every `seconds`; a failure is logged and retried next time."""

        async def repeat() -> None:
            while True:
                try:
                    await job()
                except Exception:
                    log.warning(
                        "periodic job %r failed; next try in %.0f s", name, seconds, exc_info=True
                    )
                await asyncio.sleep(seconds)

        return self.spawn(repeat(), name)

    @staticmethod
    def _report_crash(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s died", task.get_name(), exc_info=task.exception())

    # -- health ----------------------------------------------------------------------------
    async def readiness(self) -> dict[str, bool]:
        checks = {"kafka": await self.producer.is_ready()}
        if self._database is not None:
            checks["postgresql"] = await self._database.ping()
        # A consumer task that ended while the service runs (crashed, or its client closed under
        # it) consumes nothing: the service must drop out of rotation and be restarted.
        checks["consumers"] = (
            self._connected.is_set()
            and all(consumer.is_running() for consumer in self.consumers)
            and not any(task.done() for task in self._consumer_tasks)
        )
        return checks


def health_router(service_getter: Callable[[], Service[Any]]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: Kafka and PostgreSQL reachable, consumers running")
    async def readyz() -> JSONResponse:
        checks = await service_getter().readiness()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


ServiceT = TypeVar("ServiceT", bound=Service[Any])


def create_service_app(
    service: ServiceT, routers: list[APIRouter], *, title: str, description: str
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.service = service
    app.add_middleware(BodySizeLimit, max_bytes=service.settings.max_body_bytes)
    install_problem_handlers(app)
    app.include_router(health_router(lambda: service))
    for router in routers:
        app.include_router(router)
    return app


PartT = TypeVar("PartT")


def service_part(attribute: str, kind: type[PartT]) -> Callable[[Request], Awaitable[PartT]]:
    """FastAPI dependency: one part of the running service (its settings, database, ...).

    `async` so FastAPI calls it inline rather than in a worker thread.
    """

    async def dependency(request: Request) -> PartT:
        part = getattr(request.app.state.service, attribute)
        if not isinstance(part, kind):
            raise TypeError(f"service.{attribute} is {type(part).__name__}, not {kind.__name__}")
        return part

    return dependency


def serve(
    app_factory: Callable[[], Awaitable[FastAPI]] | Callable[[], FastAPI],
    settings: ServiceSettings,
    service_name: str,
) -> None:
    """Run under uvicorn; SIGTERM/SIGINT trigger the lifespan shutdown above."""
    configure_logging(service_name, settings.log_level)
    config = uvicorn.Config(
        app_factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        lifespan="on",
    )
    uvicorn.Server(config).run()
