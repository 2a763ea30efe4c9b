"""Time-to-live of experiment stacks: the expiry each deployment records, and the
scheduled cleanup's decision for each stack. Pure: the clock is an argument."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

NEVER = "never"
EXPIRY_OUTPUT = "expiresAt"
_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def expires_at(ttl_hours: int, deployed_at: datetime | None) -> str:
    """The expiresAt output: UTC ISO 8601, "never" when opted out, or a placeholder
    naming the rule when the deploy time is not known (offline plan)."""
    if ttl_hours == 0:
        return NEVER
    if deployed_at is None:
        return f"DEPLOY_TIME+{ttl_hours}h"
    return (deployed_at.astimezone(UTC) + timedelta(hours=ttl_hours)).strftime(_FORMAT)


@dataclass(frozen=True)
class TtlDecision:
    """What the cleanup does with one stack, and why."""

    stack: str
    destroy: bool
    reason: str
    error: bool = False


def parse_expiry(value: str) -> datetime:
    """expiresAt as a UTC datetime; ValueError when malformed."""
    return datetime.strptime(value, _FORMAT).replace(tzinfo=UTC)


def decide(stack: str, outputs: dict[str, object] | None, now: datetime) -> TtlDecision:
    """Destroy a stack only when its recorded expiry has passed; keep it otherwise."""
    value = (outputs or {}).get(EXPIRY_OUTPUT)
    if value is None:
        return TtlDecision(
            stack, False, "no expiresAt output: not deployed, or not by this project"
        )
    if value == NEVER:
        return TtlDecision(stack, False, "opted out (ttlHours 0)")
    try:
        expiry = parse_expiry(str(value))
    except ValueError:
        return TtlDecision(
            stack,
            False,
            f"malformed expiresAt {value!r} (expected e.g. 2026-11-24T18:00:00Z): kept; "
            "redeploy it to record a valid expiry, or destroy it by hand",
            error=True,
        )
    hours = abs(now - expiry).total_seconds() / 3600
    if expiry <= now:
        return TtlDecision(stack, True, f"expired at {value} ({hours:.1f} h ago)")
    return TtlDecision(stack, False, f"expires at {value} (in {hours:.1f} h)")


def summary_markdown(decisions: list[TtlDecision], destroyed: set[str] | None = None) -> str:
    """The cleanup job's summary: what it destroyed and what it kept, and why."""
    lines = ["## Expired stacks cleanup", "", "| stack | action | why |", "|---|---|---|"]
    for decision in decisions:
        if decision.destroy:
            done = destroyed is None or decision.stack in destroyed
            action = "destroyed" if done else "destroy FAILED"
        else:
            action = "kept (error)" if decision.error else "kept"
        lines.append(f"| `{decision.stack}` | {action} | {decision.reason} |")
    if not decisions:
        lines.append("| (no stacks) | | |")
    return "\n".join(lines) + "\n"
