"""Classifier HTTP edge: classify one text on demand (agent tools, playbook testing).

Closed unless a token is configured: the admin key or the classifier's own token opens it, and
the token is checked before the body is read. Scoring runs in a worker thread, so a slow model
(a fine-tuned encoder scores about 50 texts/s) never stalls health checks or the consumer.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from services.classifier.core import ClassificationContext, Classifier
from shared.events import (
    Author,
    Brand,
    Channel,
    Classification,
    Handle,
    LanguageTag,
    Mention,
    MentionKind,
    MentionText,
    utcnow,
)
from shared.http import authenticated_route
from shared.service import service_part

REALM = "classifier"


def accepted_tokens(service: Any) -> list[str]:
    """SCS_ADMIN_API_KEY and SCS_CLASSIFIER_API_TOKEN; with neither set, nobody gets in."""
    settings = service.settings
    return [
        secret.get_secret_value()
        for secret in (settings.admin_api_key, settings.api_token)
        if secret is not None
    ]


router = APIRouter(
    prefix="/v1", tags=["classifier"], route_class=authenticated_route(accepted_tokens, REALM)
)

LoadedClassifier = Annotated[Classifier, Depends(service_part("classifier", Classifier))]


class ClassifyAuthor(BaseModel):
    """What scoring uses of an author (reach); unknown fields are refused, not kept."""

    model_config = ConfigDict(extra="forbid")

    handle: Handle = "anonymous"
    followers: int = Field(default=0, ge=0, le=10_000_000_000)
    verified: bool = False


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: MentionText
    language: LanguageTag | None = None
    channel: Channel = Channel.WEB
    kind: MentionKind = MentionKind.MENTION
    author: ClassifyAuthor = Field(default_factory=ClassifyAuthor)
    brand: Brand | None = None
    rating: float | None = Field(default=None, ge=0, le=10)


@router.post(
    "/classify",
    response_model=Classification,
    summary="Classify one text (no velocity context, nothing published)",
)
async def classify(body: ClassifyRequest, classifier: LoadedClassifier) -> Classification:
    platform_id = "adhoc"
    mention = Mention(
        mention_id=Mention.id_for(body.channel, platform_id),
        channel=body.channel,
        kind=body.kind,
        platform_id=platform_id,
        conversation_id=platform_id,
        text=body.text,
        author=Author(**body.author.model_dump()),
        created_at=utcnow(),
        language=body.language,
        brand=body.brand,
        rating=body.rating,
    )
    return await asyncio.to_thread(classifier.classify, mention, ClassificationContext())
