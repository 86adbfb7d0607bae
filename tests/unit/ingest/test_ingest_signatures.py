"""Webhook handshakes and signatures for X and Meta, against vectors computed here."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from services.ingest.core import meta, x
from services.ingest.core.signatures import hmac_sha256, secure_equals

SECRET = "fictional-consumer-secret-ǂ"
BODY = '{"for_user_id":"1","tweet_create_events":[{"text":"héllo 😀"}]}'.encode()


def _b64_signature(key: str, message: bytes) -> str:
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def _hex_signature(key: str, message: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def test_x_crc_response_token_is_base64_hmac_of_the_token() -> None:
    token = "FictionalCrcToken_0123456789"
    assert x.crc_response_token(token, SECRET) == _b64_signature(SECRET, token.encode())


def test_x_signature_accepts_exact_body() -> None:
    assert x.verify_x_signature(BODY, _b64_signature(SECRET, BODY), SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        _b64_signature("another-secret", BODY),
        _b64_signature(SECRET, BODY + b" "),
        _b64_signature(SECRET, BODY).removeprefix("sha256="),
        _hex_signature(SECRET, BODY),
        "sha256=not base64 ✗",
    ],
    ids=["missing", "empty", "wrong-secret", "other-body", "no-prefix", "hex-not-b64", "junk"],
)
def test_x_signature_rejects(header: str | None) -> None:
    assert not x.verify_x_signature(BODY, header, SECRET)


def test_meta_signature_accepts_exact_body() -> None:
    assert meta.verify_meta_signature(BODY, _hex_signature(SECRET, BODY), SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        _hex_signature("another-secret", BODY),
        _hex_signature(SECRET, BODY[:-1]),
        _hex_signature(SECRET, BODY).removeprefix("sha256="),
        "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest(),
        _b64_signature(SECRET, BODY),
    ],
    ids=["missing", "empty", "wrong-secret", "other-body", "no-prefix", "sha1", "b64-not-hex"],
)
def test_meta_signature_rejects(header: str | None) -> None:
    assert not meta.verify_meta_signature(BODY, header, SECRET)


def test_an_unconfigured_secret_is_an_error_not_a_key() -> None:
    with pytest.raises(ValueError, match="not configured"):
        x.verify_x_signature(BODY, _b64_signature("", BODY), "")
    with pytest.raises(ValueError, match="not configured"):
        meta.verify_meta_signature(BODY, "sha256=", "")


def test_meta_handshake_returns_challenge_for_our_token() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "tok-123", "hub.challenge": "1158201444"}
    assert meta.verification_challenge(params, "tok-123") == "1158201444"


@pytest.mark.parametrize(
    ("params", "verify_token"),
    [
        ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, "tok"),
        ({"hub.mode": "unsubscribe", "hub.verify_token": "tok", "hub.challenge": "1"}, "tok"),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, "tok"),
        ({"hub.mode": "subscribe", "hub.verify_token": "tok"}, "tok"),
        ({"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}, ""),
        ({}, "tok"),
    ],
    ids=["wrong-token", "wrong-mode", "no-token", "no-challenge", "unconfigured", "empty"],
)
def test_meta_handshake_refuses(params: dict[str, str], verify_token: str) -> None:
    assert meta.verification_challenge(params, verify_token) is None


def test_helpers() -> None:
    assert hmac_sha256(b"k", "m") == hmac.new(b"k", b"m", hashlib.sha256).digest()
    assert secure_equals("abc", " abc ")
    assert not secure_equals("abc", "abd")
    assert not secure_equals("abc", None)
