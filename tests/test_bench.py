"""The load generator against loopback servers of known service time and capacity:
throughput and percentiles within stated bounds, open loop exposing queueing, errors by
kind; and the comparison of results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.bench.report import best, markdown, row
from infra.bench.stats import Sample, percentile, summarise
from infra.bench.tensors import PredictRequest, generated_payload, signature_inputs
from tests.conftest import ROOT
from tests.load_servers import METADATA, Capacity, grpc_server, rest_server

SERVICE_S = 0.02  # each request takes 20 ms
WORKERS = 4  # at most 4 at once: capacity 200 requests per second


def bench(tmp_path: Path, target: str, *args: str) -> dict[str, Any]:
    out = tmp_path / "result.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra",
            "bench",
            target,
            "--model",
            "toy",
            "--warmup",
            "0.5",
            "--duration",
            "2.5",
            "--timeout",
            "5",
            "--out",
            str(out),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(out.read_text())
    return document


def test_closed_loop_rest_measures_throughput_and_service_time(tmp_path: Path) -> None:
    capacity = Capacity(WORKERS, SERVICE_S)
    with rest_server(capacity) as url:
        result = bench(tmp_path, url, "--mode", "closed", "--users", "2")
    summary = result["summary"]
    # 2 users, 20 ms each: at most 100 RPS; the client's own overhead costs a little.
    assert 70 <= summary["rps"] <= 101
    assert 20 <= summary["p50_ms"] <= 35
    assert summary["error_rate"] == 0
    assert capacity.bad_requests == []
    assert len(result["timeline"]) == 3


def test_open_loop_below_capacity_keeps_the_rate_and_the_service_time(tmp_path: Path) -> None:
    with rest_server(Capacity(WORKERS, SERVICE_S)) as url:
        result = bench(tmp_path, url, "--mode", "open", "--rate", "60")
    summary = result["summary"]
    assert 54 <= summary["rps"] <= 61
    assert 20 <= summary["p50_ms"] <= 35
    assert summary["p99_ms"] < 80


def test_open_loop_over_capacity_shows_the_queue_closed_loop_hides(tmp_path: Path) -> None:
    # 300 requests/s offered to a 200/s server: the queue grows every second.
    with rest_server(Capacity(WORKERS, SERVICE_S)) as url:
        open_result = bench(tmp_path, url, "--mode", "open", "--rate", "300")
        closed_result = bench(tmp_path, url, "--mode", "closed", "--users", "4")
    opened, closed = open_result["summary"], closed_result["summary"]
    assert opened["rps"] <= 205  # served at capacity, not at the offered rate
    assert opened["p99_ms"] > 10 * SERVICE_S * 1000  # latency counts the wait in the queue
    assert closed["p99_ms"] < 4 * SERVICE_S * 1000  # closed loop just slows down instead
    late = open_result["timeline"][-1]["p50_ms"]
    early = open_result["timeline"][0]["p50_ms"]
    assert late > early  # the backlog grows over the run


def test_grpc_path_measures_like_rest(tmp_path: Path) -> None:
    capacity = Capacity(WORKERS, SERVICE_S)
    with rest_server(Capacity(WORKERS, 0)) as url, grpc_server(capacity) as target:
        result = bench(
            tmp_path,
            url,
            "--protocol",
            "grpc",
            "--grpc-target",
            target,
            "--mode",
            "closed",
            "--users",
            "2",
        )
    summary = result["summary"]
    assert 70 <= summary["rps"] <= 101
    assert 20 <= summary["p50_ms"] <= 35
    assert capacity.bad_requests == []
    assert result["settings"]["payload"] == "image_input DT_FLOAT (1, 4, 4, 3)"


def test_errors_are_counted_by_kind(tmp_path: Path) -> None:
    with rest_server(Capacity(WORKERS, 0.005), fail_every=4) as url:
        result = bench(tmp_path, url, "--mode", "open", "--rate", "40")
    assert set(result["errors"]) == {"http 503"}
    assert 0.2 <= result["summary"]["error_rate"] <= 0.3


def test_unreachable_target_is_a_clear_error(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "infra", "bench", "http://127.0.0.1:9", "--model", "toy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("error: cannot build a payload from http://127.0.0.1:9")


def test_payload_follows_the_signature_and_is_encoded_once() -> None:
    specs = signature_inputs(METADATA, "serving_default")
    payload = generated_payload("toy", "serving_default", specs, batch=2)
    body = json.loads(payload.rest_body)
    assert len(body["inputs"]["image_input"]) == 2
    assert len(body["inputs"]["image_input"][0][0][0]) == 3
    request = PredictRequest.FromString(payload.grpc_request)
    tensor = request.inputs["image_input"]
    assert [d.size for d in tensor.tensor_shape.dim] == [2, 4, 4, 3]
    assert len(tensor.tensor_content) == 2 * 4 * 4 * 3 * 4
    with pytest.raises(ValueError, match="no signature 'predict'"):
        signature_inputs(METADATA, "predict")


def test_percentiles_and_warmup_exclusion() -> None:
    samples = [Sample(0.1, 1000.0)] + [Sample(1 + i / 100, float(i + 1)) for i in range(100)]
    measured = summarise(samples, warmup_s=1.0, duration_s=1.0)["summary"]
    assert measured["requests"] == 100  # the warm-up sample is left out
    assert (measured["p50_ms"], measured["p99_ms"], measured["max_ms"]) == (50.0, 99.0, 100.0)
    assert percentile([], 50) != percentile([], 50)  # NaN when empty


def result_doc(experiment: str, rps: float, p99: float, usd_hour: float) -> dict[str, Any]:
    return {
        "schema": "tfserving-gke/bench/v1",
        "settings": {"protocol": "rest", "mode": "open"},
        "summary": {
            "rps": rps,
            "p50_ms": p99 / 3,
            "p95_ms": p99 / 1.5,
            "p99_ms": p99,
            "max_ms": p99 * 2,
            "error_rate": 0.0,
        },
        "experiment": {
            "experiment": experiment,
            "costUsdPerHour": usd_hour,
            "costUsdPerMonth": usd_hour * 730,
        },
    }


def test_compare_picks_most_requests_per_dollar_within_the_objective(tmp_path: Path) -> None:
    rows = [
        row(result_doc("2vcpu", 150, 450, 0.60), "a"),
        row(result_doc("8vcpu-16gb", 180, 250, 0.59), "b"),
        row(result_doc("8vcpu-64gb", 185, 240, 0.85), "c"),
    ]
    winner = best(rows, p99_ms=300, max_error_rate=0.01)
    assert winner is not None and winner.label == "8vcpu-16gb"
    assert winner.requests_per_usd == round(180 * 3600 / 0.59)
    table = markdown(rows, winner, 300, 0.01)
    assert "| 8vcpu-16gb **best** | rest | open | 180.0 |" in table
    assert "Best for p99 ≤ 300 ms and errors ≤ 1.00%: **8vcpu-16gb**" in table
    assert best(rows, p99_ms=100, max_error_rate=0.01) is None


def test_compare_command_writes_table_and_chart(tmp_path: Path) -> None:
    paths = []
    for name, rps, p99, usd in (("x", 100, 200, 0.5), ("y", 120, 400, 0.5)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(result_doc(name, rps, p99, usd)))
        paths.append(str(path))
    chart = tmp_path / "chart.png"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "infra",
            "compare",
            *paths,
            "--p99-ms",
            "300",
            "--chart",
            str(chart),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "**x**" in run.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
