"""Classifier HTTP edge: classify one text on demand (agent tools, playbook testing)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from services.classifier.core import ClassificationContext, Classifier
from shared.events import (
    Author,
    Brand,
    Channel,
    Classification,
    LanguageTag,
    Mention,
    MentionKind,
    MentionText,
    utcnow,
)
from shared.service import service_part

router = APIRouter(prefix="/v1", tags=["classifier"])


LoadedClassifier = Annotated[Classifier, Depends(service_part("classifier", Classifier))]


class ClassifyRequest(BaseModel):
    text: MentionText
    language: LanguageTag | None = None
    channel: Channel = Channel.WEB
    kind: MentionKind = MentionKind.MENTION
    author: Author = Field(default_factory=lambda: Author(handle="anonymous"))
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
        author=body.author,
        created_at=utcnow(),
        language=body.language,
        brand=body.brand,
        rating=body.rating,
    )
    return classifier.classify(mention, ClassificationContext())
