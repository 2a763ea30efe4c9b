"""Stack time-to-live: the expiry a deployment records and the cleanup's decisions."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.design.ttl import decide, expires_at, summary_markdown
from tests.conftest import ROOT, PlanFn

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_expiry_is_deploy_time_plus_ttl_in_utc() -> None:
    assert expires_at(24, NOW) == "2026-11-25T12:00:00Z"
    assert expires_at(0, NOW) == "never"
    assert expires_at(24, None) == "DEPLOY_TIME+24h"


@pytest.mark.parametrize(
    ("outputs", "destroy", "error", "reason"),
    [
        (
            {"expiresAt": "2026-11-24T10:00:00Z"},
            True,
            False,
            "expired at 2026-11-24T10:00:00Z (2.0 h ago)",
        ),
        (
            {"expiresAt": "2026-11-24T12:00:00Z"},
            True,
            False,
            "expired at 2026-11-24T12:00:00Z (0.0 h ago)",
        ),
        (
            {"expiresAt": "2026-11-25T00:00:00Z"},
            False,
            False,
            "expires at 2026-11-25T00:00:00Z (in 12.0 h)",
        ),
        ({"expiresAt": "never"}, False, False, "opted out (ttlHours 0)"),
        (None, False, False, "no expiresAt output"),
        ({"restEndpoint": "x"}, False, False, "no expiresAt output"),
        ({"expiresAt": "tomorrow"}, False, True, "malformed expiresAt 'tomorrow'"),
        ({"expiresAt": "DEPLOY_TIME+24h"}, False, True, "malformed expiresAt"),
    ],
)
def test_cleanup_destroys_only_expired_stacks(
    outputs: dict[str, object] | None, destroy: bool, error: bool, reason: str
) -> None:
    decision = decide("exp", outputs, NOW)
    assert (decision.destroy, decision.error) == (destroy, error)
    assert decision.reason.startswith(reason)


def test_summary_lists_destroyed_and_kept_with_reasons() -> None:
    decisions = [
        decide("old", {"expiresAt": "2026-11-24T10:00:00Z"}, NOW),
        decide("dev", {"expiresAt": "never"}, NOW),
        decide("stuck", {"expiresAt": "2026-11-20T00:00:00Z"}, NOW),
    ]
    text = summary_markdown(decisions, destroyed={"old"})
    assert "| `old` | destroyed | expired at 2026-11-24T10:00:00Z (2.0 h ago) |" in text
    assert "| `dev` | kept | opted out (ttlHours 0) |" in text
    assert "| `stuck` | destroy FAILED |" in text


def test_ttl_commands_fail_the_job_on_malformed_expiry(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps({"a": {"expiresAt": "2026-11-24T00:00:00Z"}, "b": {"expiresAt": "bad"}})
    )
    decided = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra",
            "ttl",
            "decide",
            "--outputs",
            str(outputs),
            "--now",
            "2026-11-24T12:00:00Z",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    decisions = json.loads(decided.stdout)
    assert [(d["stack"], d["destroy"], d["error"]) for d in decisions] == [
        ("a", True, False),
        ("b", False, True),
    ]
    (tmp_path / "decisions.json").write_text(decided.stdout)
    (tmp_path / "destroyed.txt").write_text("a\n")
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra",
            "ttl",
            "report",
            "--decisions",
            str(tmp_path / "decisions.json"),
            "--destroyed",
            str(tmp_path / "destroyed.txt"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert report.returncode == 1
    assert "| `a` | destroyed |" in report.stdout
    assert "| `b` | kept (error) | malformed expiresAt 'bad'" in report.stdout


def test_every_stack_records_its_expiry(plan: PlanFn) -> None:
    assert plan("dev").recording.stack_outputs["expiresAt"] == "DEPLOY_TIME+168h"
    assert plan("8vcpu-16gb-interop4").recording.stack_outputs["expiresAt"] == "DEPLOY_TIME+24h"
    assert plan("dev", ttlHours=0).recording.stack_outputs["expiresAt"] == "never"
