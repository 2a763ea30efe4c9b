"""Whether a stack's lock is stale. Pure.

A self-managed backend (GCS, S3, a local directory) locks a stack with a file per running
operation and deletes it when the operation ends; a killed CLI leaves it, and every later
operation fails with "the stack is currently locked by N lock(s)", one line per lock:
"<url>: created by <user>@<host> (pid <pid>) at <RFC 3339 time>" (pulumi/pulumi
pkg/backend/diy/lock.go). `pulumi cancel` deletes every lock file of the stack
(CancelCurrentUpdate in backend.go). Pulumi Cloud answers "[409] Conflict: Another update
is currently in progress" instead, with no time; its `pulumi cancel` ends the update.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

DIY_LOCKED = "the stack is currently locked by"
CLOUD_LOCKED = "[409] Conflict: Another update is currently in progress"
_LOCK_LINE = re.compile(r"created by (?P<who>\S+) \(pid (?P<pid>\d+)\) at (?P<at>\S+)")


@dataclass(frozen=True)
class Lock:
    who: str
    pid: int
    at: datetime


def is_locked(message: str) -> bool:
    return DIY_LOCKED in message or CLOUD_LOCKED in message


def locks_in(message: str) -> list[Lock]:
    """The locks a self-managed backend's refusal lists (none for Pulumi Cloud's)."""
    found = []
    for match in _LOCK_LINE.finditer(message):
        try:
            at = datetime.fromisoformat(match["at"].replace("Z", "+00:00"))
        except ValueError:
            continue
        found.append(Lock(match["who"], int(match["pid"]), at))
    return found


def stale(message: str, now: datetime, older_than_hours: float) -> bool:
    """Every lock the refusal lists is older than any operation of ours takes, so its
    operation is dead. A refusal without times (Pulumi Cloud's) is never judged stale."""
    locks = locks_in(message)
    return bool(locks) and all(
        (now - lock.at).total_seconds() > older_than_hours * 3600 for lock in locks
    )
