"""Priority mapping from the brand's playbook (P1 crisis, P2 high, P3 normal, P4 low)."""

from __future__ import annotations

import pytest

from services.classifier.core import Classifier
from shared.events import MentionKind, Priority

from .conftest import MakeMention


@pytest.mark.parametrize(
    ("text", "kind", "priority"),
    [
        # high: direct questions and requests
        ("@acme do you ship to Canada?", MentionKind.MENTION, Priority.P2),
        ("Can you change the delivery address of my order?", MentionKind.DM, Priority.P2),
        ("@acme please send me the invoice", MentionKind.MENTION, Priority.P2),
        ("¿Me podéis enviar la factura, por favor?", MentionKind.DM, Priority.P2),
        # high: negative experiences, incidents, complaints and claims
        ("Awful experience at the store today.", MentionKind.MENTION, Priority.P2),
        ("The app is down again.", MentionKind.MENTION, Priority.P2),
        ("I want a refund for the broken blender.", MentionKind.MENTION, Priority.P2),
        ("Quiero poner una reclamación, el pedido llegó roto.", MentionKind.MENTION, Priority.P2),
        # crisis: legal threats, safety, data leaks, boycotts, media
        (
            "I'm calling my lawyer, you will be sued for this scam.",
            MentionKind.MENTION,
            Priority.P1,
        ),
        ("Your charger caught fire and burned my hand!", MentionKind.MENTION, Priority.P1),
        ("You leaked my personal data, this is a data breach!", MentionKind.MENTION, Priority.P1),
        ("Voy a denunciar a la empresa, es una estafa.", MentionKind.MENTION, Priority.P1),
        # low: positive experiences, plain references, non-urgent undirected questions
        ("Loved the new collection, great job!", MentionKind.MENTION, Priority.P4),
        ("Walking past the acme store on my way home.", MentionKind.MENTION, Priority.P4),
        ("Does anyone know if acme opens on Sunday?", MentionKind.MENTION, Priority.P4),
        ("¡Muchas gracias por todo, sois geniales!", MentionKind.MENTION, Priority.P4),
        # normal: addressed to the brand with nothing to act on yet
        ("Hello acme", MentionKind.DM, Priority.P3),
        # the brand's own answer never opens a case; spam is low
        ("Sorry to hear that, we'll fix it", MentionKind.REPLY, Priority.P4),
        ("Free followers! click here https://bit.ly/x", MentionKind.MENTION, Priority.P4),
    ],
)
def test_playbook_priorities(
    classifier: Classifier,
    mention: MakeMention,
    text: str,
    kind: MentionKind,
    priority: Priority,
) -> None:
    result = classifier.classify(mention(text, kind=kind))
    assert result.priority == priority, result.reasons
    assert result.reasons


def test_reach_turns_a_complaint_into_a_crisis(
    classifier: Classifier, mention: MakeMention
) -> None:
    text = "Worst service ever, my order never arrived and nobody answers."
    assert classifier.classify(mention(text)).priority == Priority.P2
    famous = classifier.classify(mention(text, followers=2_000_000, verified=True))
    assert famous.priority == Priority.P1
    assert "author reach 2.0M followers" in famous.reasons


def test_reasons_name_the_evidence(classifier: Classifier, mention: MakeMention) -> None:
    result = classifier.classify(mention("Never again! I want a refund.", followers=250_000))
    assert any("'never again'" in reason and "'refund'" in reason for reason in result.reasons)
    assert "author reach 250k followers" in result.reasons
