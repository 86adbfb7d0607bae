"""Classifier HTTP edge: classify one text on demand (agent tools, playbook testing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from services.classifier.core import ClassificationContext
from shared.events import Author, Channel, Classification, Mention, MentionKind, utcnow

if TYPE_CHECKING:
    from services.classifier.main import ClassifierService

router = APIRouter(prefix="/v1", tags=["classifier"])


def classifier_service(request: Request) -> ClassifierService:
    return request.app.state.service  # type: ignore[no-any-return]


class ClassifyRequest(BaseModel):
    text: str = Field(max_length=20_000)
    language: str | None = Field(default=None, min_length=2, max_length=16)
    channel: Channel = Channel.WEB
    kind: MentionKind = MentionKind.MENTION
    author: Author = Field(default_factory=lambda: Author(handle="anonymous"))
    brand: str | None = None
    rating: float | None = Field(default=None, ge=0, le=10)


@router.post(
    "/classify",
    response_model=Classification,
    summary="Classify one text (no velocity context, nothing published)",
)
async def classify(
    body: ClassifyRequest, service: Annotated[ClassifierService, Depends(classifier_service)]
) -> Classification:
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
    return service.classifier.classify(mention, ClassificationContext())
