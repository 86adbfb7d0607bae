"""HMAC helpers for webhook signatures and handshakes, compared in constant time.

A plain `==` on a signature leaks, through timing, how many leading characters were right; every
comparison of a secret-derived value goes through `secure_equals`.
"""

from __future__ import annotations

import hashlib
import hmac


def hmac_sha256(key: str | bytes, message: str | bytes) -> bytes:
    """Raw HMAC-SHA256 digest; an empty key is a misconfiguration anyone could sign with."""
    if not key:
        raise ValueError("HMAC key (app or consumer secret) is not configured")
    return hmac.new(_bytes(key), _bytes(message), hashlib.sha256).digest()


def secure_equals(expected: str, received: str | None) -> bool:
    """Constant-time equality; a missing value never matches."""
    if received is None:
        return False
    return hmac.compare_digest(expected.encode(), received.strip().encode())


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value
