"""Classifier service: mentions in, mentions with priority and reasons out."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import FastAPI

from services.classifier import api
from services.classifier.config import ClassifierSettings
from services.classifier.core import Classifier
from services.classifier.handlers import MentionClassifier
from shared.kafka import EventConsumer
from shared.service import Service, create_service_app, serve
from shared.settings import load_settings
from shared.topics import MENTIONS

log = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 3600


class ClassifierService(Service[ClassifierSettings]):
    name = "classifier"

    def __init__(self, settings: ClassifierSettings) -> None:
        super().__init__(settings)
        lexicon_dirs = [settings.lexicon_dir] if settings.lexicon_dir else []
        models = [settings.model_path] if settings.model_path else []
        self.classifier = (
            Classifier.from_path(*models, lexicon_dirs=lexicon_dirs)
            if models or lexicon_dirs
            else Classifier.default()
        )
        self.handler = MentionClassifier(
            self.database,
            self.producer,
            self.classifier,
            timedelta(seconds=settings.velocity_window_seconds),
        )

    async def on_connected(self) -> None:
        self.consumers.append(
            EventConsumer(
                topic=MENTIONS,
                group_id="scs-classifier",
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                handler=self.handler.handle,
                producer=self.producer,
                max_batch_records=self.settings.consumer_batch_max_records,
            )
        )
        self.every(PRUNE_EVERY_SECONDS, self.handler.prune, "prune velocity signals")


def create_app(settings: ClassifierSettings | None = None) -> FastAPI:
    settings = settings or load_settings(ClassifierSettings)
    return create_service_app(
        ClassifierService(settings),
        [api.router],
        title="SCS Router — classifier",
        description="Assigns priority (P1 crisis .. P4 low) with readable reasons.",
    )


def run() -> None:
    settings = load_settings(ClassifierSettings)
    serve(lambda: create_app(settings), settings, "classifier")
