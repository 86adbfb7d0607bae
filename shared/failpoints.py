"""Failpoints: let a crash test kill a process at one exact step, the way a power cut would.

A crash between two durable steps (the router's commit and its outbox publish, ingest's publish
and its mark) cannot be hit reliably by a kill from outside. `failpoint("router.after_commit")`
marks such a step; it does nothing unless the process was started with
`SCS_FAILPOINTS=router.after_commit` (a comma-separated list), in which case the process exits
at once with status 137, without cleanup, flush or commit, like SIGKILL. Production never sets
the variable; the check is one set lookup.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)
CRASH_EXIT_STATUS = 137

_ARMED = frozenset(
    name.strip() for name in os.environ.get("SCS_FAILPOINTS", "").split(",") if name.strip()
)


def failpoint(name: str) -> None:
    """Die here, now, if this failpoint is armed."""
    if name in _ARMED:
        log.critical("failpoint %s: exiting as if killed", name)
        sys.stderr.flush()
        os._exit(CRASH_EXIT_STATUS)
