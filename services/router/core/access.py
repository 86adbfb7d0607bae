"""Who may do what through the router's API: API key scopes, the caller a key stands for, and
the tokens' format and hash.

Scopes are ordered: `admin` implies `act`, which implies `read`. A key belongs to one tenant and
may be restricted to some queues (read and act keys only: admin work is tenant-wide). Tokens are
32 random bytes, so one SHA-256 is enough to store them (no slow hash: there is nothing to
guess), and a token is found by its hash alone.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum

TOKEN_PREFIX = "scs_"
# The prefix and secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
TOKEN_PATTERN = re.compile(r"scs_[A-Za-z0-9_-]{43}")
BOOTSTRAP_KEY_NAME = "bootstrap"


class Scope(StrEnum):
    READ = "read"
    ACT = "act"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Scope).index(self)

    def allows(self, needed: Scope) -> bool:
        """A key of this scope may do what `needed` guards (admin > act > read)."""
        return self.rank >= needed.rank


@dataclass(frozen=True)
class Caller:
    """The key behind a request: its tenant, scope and queues. `key_id` is None for the
    bootstrap key (SCS_ADMIN_API_KEY), which may also manage the keys of any tenant."""

    tenant: str
    scope: Scope
    key_id: uuid.UUID | None = None
    key_name: str = BOOTSTRAP_KEY_NAME
    queues: frozenset[str] | None = None

    @property
    def bootstrap(self) -> bool:
        return self.key_id is None

    def sees(self, queue: str) -> bool:
        """Whether a case of `queue` exists for this key (others are 404, as if absent)."""
        return self.queues is None or queue in self.queues


def new_token() -> str:
    """A fresh API key token, recognisable by its prefix (e.g. by secret scanners)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def looks_like_token(presented: str) -> bool:
    """Only a token of our format is looked up: anything else is refused without a query."""
    return TOKEN_PATTERN.fullmatch(presented) is not None


def token_hash(token: str) -> str:
    """What is stored of a token (hex SHA-256); the token itself is shown once and forgotten."""
    return hashlib.sha256(token.encode()).hexdigest()
