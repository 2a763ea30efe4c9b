"""Capacity under a latency objective: the search on a modelled server, then end to end
against a loopback server of known capacity, and compare ranking by requests per dollar
at capacity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.bench.capacity import Objective, find_capacity, judge
from infra.bench.report import best, row
from tests.conftest import ROOT
from tests.load_servers import Capacity, rest_server

OBJECTIVE = Objective(p99_ms=100, max_error_rate=0.01)


def modelled(capacity: float, limit: float = 1e9) -> Any:
    """run_step for a server serving `capacity` requests/s at 20 ms, whose queue grows
    past it; its load generator cannot offer more than `limit`."""
    offered: list[float] = []

    def run_step(rate: float) -> dict[str, Any]:
        offered.append(rate)
        # A queue that builds fast past capacity: p99 crosses 100 ms 0.8% above it.
        p99 = 20.0 if rate <= capacity else 20.0 + 10_000 * (rate - capacity) / capacity
        summary = {
            "rps": min(rate, capacity),
            "p99_ms": p99,
            "error_rate": 0.0,
            "load_generator_limited": rate >= limit,
            "load_generator_limited_reason": "p99 send lag 40 ms is over 5 ms",
        }
        return {"summary": summary}

    run_step.offered = offered  # type: ignore[attr-defined]
    return run_step


def test_the_search_ramps_then_bisects_to_within_the_tolerance() -> None:
    run_step = modelled(200)
    found = find_capacity(run_step, OBJECTIVE, start_rate=50)
    assert run_step.offered[:4] == [50, 100, 200, 400]  # ramp x2 until a rate fails
    assert 200 * 0.95 <= found["rate_per_s"] <= 200 * 1.05
    assert found["stopped"] == "bracketed within 5%"
    assert found["steps"][found["step"]]["rate_per_s"] == found["rate_per_s"]
    assert [step["verdict"] for step in found["steps"]].count("fail") >= 1
    assert len(found["steps"]) <= 12


def test_a_start_rate_already_too_high_ramps_down() -> None:
    found = find_capacity(modelled(30), OBJECTIVE, start_rate=1000)
    assert 30 * 0.95 <= found["rate_per_s"] <= 30 * 1.05


def test_a_generator_that_cannot_offer_the_rate_ends_the_search() -> None:
    found = find_capacity(modelled(5000, limit=800), OBJECTIVE, start_rate=100)
    assert found["rate_per_s"] == 400  # the last rate the server, not the generator, met
    assert found["steps"][-1]["verdict"] == "limited"
    assert found["stopped"].startswith("the load generator could not offer 800 requests/s")


def test_a_server_that_never_meets_the_objective_has_no_capacity() -> None:
    found = find_capacity(modelled(0.1), OBJECTIVE, start_rate=4)
    assert found["rate_per_s"] is None and found["rps"] is None and found["step"] is None
    assert found["stopped"].startswith("no rate down to 0.5 requests/s meets the objective")


@pytest.mark.parametrize(
    ("summary", "verdict"),
    [
        ({"p99_ms": 90, "error_rate": 0.0}, "pass"),
        ({"p99_ms": 120, "error_rate": 0.0}, "fail"),
        ({"p99_ms": 50, "error_rate": 0.05}, "fail"),
        ({"p99_ms": None, "error_rate": 0.0}, "fail"),
        ({"p99_ms": 50, "error_rate": 0.0, "load_generator_limited": True}, "limited"),
    ],
)
def test_each_step_is_judged_on_p99_errors_and_the_generator(
    summary: dict[str, Any], verdict: str
) -> None:
    assert judge(summary, OBJECTIVE)[0] == verdict


def find(tmp_path: Path, url: str, outputs: dict[str, Any]) -> dict[str, Any]:
    out = tmp_path / f"{outputs['experiment']}.json"
    outputs_file = tmp_path / f"{outputs['experiment']}-outputs.json"
    outputs_file.write_text(json.dumps(outputs))
    run = subprocess.run(
        [sys.executable, "-m", "infra", "bench", url, "--model", "toy", "--find-capacity",
         "--p99-ms", "100", "--rate", "50", "--warmup", "0.5", "--duration", "2",
         "--outputs", str(outputs_file), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Capacity: " in run.stdout
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def test_capacity_of_a_known_server_is_found_within_ten_percent(tmp_path: Path) -> None:
    # 4 workers of 20 ms: 200 requests per second at most.
    with rest_server(Capacity(4, 0.02)) as url:
        result = find(tmp_path, url, {"experiment": "small", "costUsdPerHour": 0.5})
    capacity = result["capacity"]
    assert 180 <= capacity["rate_per_s"] <= 220
    assert 180 <= capacity["rps"] <= 220
    assert capacity["objective"] == {"p99_ms": 100.0, "max_error_rate": 0.01}
    # Every step kept, with its figures; the top level is the capacity step's result.
    assert all("summary" in step["result"] for step in capacity["steps"])
    assert result["summary"] == capacity["steps"][capacity["step"]]["result"]["summary"]
    compared = row(result, "small")
    assert compared.mode == "capacity" and compared.rps == capacity["rps"]
    assert compared.requests_per_usd == round(capacity["rps"] * 3600 / 0.5)
    assert len(compared.curve) == len(capacity["steps"])


def capacity_result(name: str, rps: float | None, usd_hour: float) -> dict[str, Any]:
    step = {"summary": {"rps": rps or 0, "p99_ms": 80.0}}
    return {
        "schema": "tfserving-gke/bench/v1",
        "settings": {"protocol": "rest", "mode": "open"},
        "summary": {
            "rps": 999.0,  # the last step's, not the capacity: must not be used
            "p50_ms": 30.0,
            "p95_ms": 60.0,
            "p99_ms": 80.0,
            "max_ms": 90.0,
            "error_rate": 0.0,
        },
        "experiment": {"experiment": name, "costUsdPerHour": usd_hour},
        "capacity": {
            "rps": rps,
            "rate_per_s": rps,
            "steps": [{"rate_per_s": rps or 1.0, "result": step}],
        },
    }


def test_compare_ranks_experiments_by_requests_per_dollar_at_capacity() -> None:
    rows = [
        row(capacity_result("2vcpu-4gb", 150, 0.60), "a"),
        row(capacity_result("8vcpu-16gb", 190, 0.59), "b"),
        row(capacity_result("8vcpu-64gb", 200, 0.85), "c"),
    ]
    winner = best(rows, p99_ms=300, max_error_rate=0.01)
    assert winner is not None and winner.label == "8vcpu-16gb"
    assert winner.requests_per_usd == round(190 * 3600 / 0.59)
    assert row(capacity_result("none", None, 0.6), "d").rps == 0.0
