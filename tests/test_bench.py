"""The load generator against loopback servers of known service time and capacity:
throughput and percentiles within stated bounds, open loop exposing queueing, errors by
kind; and the comparison of results."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.bench.report import best, chart, markdown, named_rows, rank, row
from infra.loadgen.stats import Sample, max_send_lag_ms, merge, worker_result
from infra.loadgen.tensors import (
    InputSpec,
    PayloadError,
    generated_payload,
    payload_protocol,
    signature_inputs,
)
from infra.model.apis import PredictRequest
from tests.conftest import ROOT
from tests.load_servers import METADATA, Capacity, grpc_server, metadata, rest_server

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
            # The server shares this machine's cores with the generator: its scheduling
            # jitter is not what these tests measure (the lag verdict has its own tests).
            "--max-send-lag-ms",
            "25",
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


def test_processes_share_one_schedule_and_merge_to_its_figures(tmp_path: Path) -> None:
    capacity = Capacity(WORKERS, SERVICE_S)
    with rest_server(capacity) as url:
        result = bench(
            tmp_path, url, "--mode", "open", "--rate", "150", "--processes", "3",
            "--arrivals", "uniform",
        )  # fmt: skip
    summary = result["summary"]
    assert summary["processes"] == result["settings"]["processes"] == 3
    # Every request of the one schedule sent once: 150/s over the 0.5 s warm-up and 2.5 s.
    assert capacity.served == 450
    assert summary["requests"] == 375  # the measured window's share, from all three
    assert 140 <= summary["rps"] <= 151
    assert 20 <= summary["p50_ms"] <= 35
    assert summary["load_generator_limited"] is False
    assert summary["send_lag_p99_ms"] < 5
    assert [second["requests"] for second in result["timeline"]] == [150, 150, 150]


def test_closed_loop_users_are_split_between_processes(tmp_path: Path) -> None:
    capacity = Capacity(WORKERS, SERVICE_S)
    with rest_server(Capacity(WORKERS, 0)) as url, grpc_server(capacity) as target:
        result = bench(
            tmp_path, url, "--protocol", "grpc", "--grpc-target", target,
            "--mode", "closed", "--users", "4", "--processes", "2",
        )  # fmt: skip
    # 4 users on a 4-worker server of 20 ms: at most 200 requests per second, less each
    # request's own client time (a few ms on this shared 2-core machine).
    assert 130 <= result["summary"]["rps"] <= 201
    assert result["summary"]["processes"] == 2
    assert result["summary"]["send_lag_p99_ms"] is None  # closed loop has no schedule


def test_a_generator_that_cannot_keep_up_says_so(tmp_path: Path) -> None:
    # One process cannot send 6000 requests a second (about 3000 on one core here): its
    # requests leave late, and the result must say the generator, not the server, limited it.
    out = tmp_path / "late.json"
    with rest_server(Capacity(64, 0)) as url:
        run = subprocess.run(
            [sys.executable, "-m", "infra", "bench", url, "--model", "toy", "--mode", "open",
             "--rate", "6000", "--warmup", "0.5", "--duration", "2", "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
    # What was asked (a run that measures the server) did not happen.
    assert run.returncode == 1, run.stderr
    summary = json.loads(out.read_text())["summary"]
    assert summary["load_generator_limited"] is True
    assert summary["send_lag_p99_ms"] > 5
    assert "warning: the load generator was the limit, not the server" in run.stderr
    assert "Traceback" not in run.stderr


def test_errors_are_counted_by_kind(tmp_path: Path) -> None:
    out = tmp_path / "errors.json"
    with rest_server(Capacity(WORKERS, 0.005), fail_every=4) as url:
        run = subprocess.run(
            [sys.executable, "-m", "infra", "bench", url, "--model", "toy", "--rate", "40",
             "--warmup", "0.5", "--duration", "2.5", "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
    result = json.loads(out.read_text())
    assert set(result["errors"]) == {"http 503"}
    assert 0.2 <= result["summary"]["error_rate"] <= 0.3
    # Over --max-error-rate: the run failed, and the summary line names the kind.
    assert run.returncode == 1
    assert "errors" in run.stdout and "(http 503 " in run.stdout
    assert "over --max-error-rate 1.00%" in run.stderr
    # The last line is the verdict, met or not.
    assert run.stdout.strip().splitlines()[-1].startswith("verdict: not met (errors ")


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
    assert run.stderr.startswith(
        "error: cannot read the model's signature from http://127.0.0.1:9/v1/models/toy/metadata"
    )


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
    measured = merge([worker_result(samples, 1.0, 1.0, 0.1, 2.0)], 1.0)["summary"]
    assert measured["requests"] == 100  # the warm-up sample is left out
    # Nearest rank, at the histograms' resolution (3 significant digits).
    assert measured["p50_ms"] == pytest.approx(50.0, rel=1e-3)
    assert measured["p99_ms"] == pytest.approx(99.0, rel=1e-3)
    assert measured["max_ms"] == pytest.approx(100.0, rel=1e-3)
    empty = merge([worker_result([], 1.0, 1.0, 0.0, 2.0)], 1.0)["summary"]
    assert empty["p99_ms"] is None and empty["requests"] == 0


def test_merging_processes_gives_the_figures_of_one_process() -> None:
    # Latencies 1..1000 ms spread over three processes in a skewed way: averaging their
    # percentiles would be wrong; adding their histograms is exact.
    samples = [Sample(1 + i / 1000, float(i + 1), None, 0.5) for i in range(1000)]
    parts = [samples[:100], samples[100:300], samples[300:]]
    one = merge([worker_result(samples, 1.0, 2.0, 0.2, 3.0)], 2.0)
    three = merge([worker_result(part, 1.0, 2.0, 0.2, 3.0) for part in parts], 2.0)
    for key in ("requests", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "send_lag_p99_ms"):
        assert three["summary"][key] == one["summary"][key], key
    assert three["summary"]["p50_ms"] == pytest.approx(500.0, rel=1e-3)
    assert three["timeline"] == one["timeline"]
    averaged = sum(
        merge([worker_result(part, 1.0, 2.0, 0.2, 3.0)], 2.0)["summary"]["p99_ms"] for part in parts
    ) / len(parts)
    assert abs(averaged - one["summary"]["p99_ms"]) > 100  # what averaging would have said


def test_the_generator_is_judged_by_its_lag_beside_the_objective() -> None:
    on_time = [Sample(1 + i / 200, 10.0, None, 0.4) for i in range(200)]
    late = [Sample(1 + i / 200, 10.0, None, 40.0 if i % 10 == 0 else 0.4) for i in range(200)]
    assert not merge([worker_result(on_time, 1.0, 1.0, 0.3, 2.0)], 1.0)["summary"][
        "load_generator_limited"
    ]
    lagging = merge([worker_result(late, 1.0, 1.0, 0.3, 2.0)], 1.0, 5.0)["summary"]
    assert lagging["load_generator_limited"] is True
    assert lagging["send_lag_p99_ms"] == pytest.approx(40.0, rel=1e-3)
    assert "p99 send lag 40.03 ms is over 5 ms" in lagging["load_generator_limited_reason"]
    # 40 ms beside a 1 s objective distorts nothing: a tenth of it is the limit.
    relaxed = merge([worker_result(late, 1.0, 1.0, 0.3, 2.0)], 1.0, max_send_lag_ms(1000))
    assert relaxed["summary"]["load_generator_limited"] is False
    # A busy core alone is not a verdict: only the lag it causes is.
    busy = merge([worker_result(on_time, 1.0, 1.0, 1.9, 2.0)], 1.0)["summary"]
    assert busy["load_generator_limited"] is False
    # Too few samples to judge a p99 of the lag.
    few = [Sample(1 + i / 50, 10.0, None, 40.0) for i in range(50)]
    assert not merge([worker_result(few, 1.0, 1.0, 0.3, 2.0)], 1.0)["summary"][
        "load_generator_limited"
    ]


def test_a_generator_that_waited_for_its_cpu_is_judged_by_each_wait() -> None:
    """What the kernel says of each process (its run-queue delay over the schedule, and how
    many times it ran): each wait delays the answers being read, beside the objective."""
    on_time = [Sample(1 + i / 200, 10.0, None, 0.4) for i in range(200)]

    def summary(wait_s: float | None, slices: int | None) -> dict[str, Any]:
        result = {
            **worker_result(on_time, 1.0, 1.0, 0.3, 2.0),
            "cpu_wait_s": wait_s,
            "cpu_slices": slices,
        }
        quiet = {**worker_result(on_time, 1.0, 1.0, 0.3, 2.0), "cpu_wait_s": 0.0, "cpu_slices": 9}
        return dict(merge([quiet, result], 1.0, 15.0)["summary"])

    # 0.05 ms a wait, 2% of the run: a shared but quiet machine.
    shared = summary(0.04, 800)
    assert shared["load_generator_limited"] is False
    assert shared["generator_cpu_wait_max"] == 0.02
    assert shared["generator_cpu_wait_ms"] == 0.05
    # 20 ms a wait beside a 15 ms limit: the generator's own delay is in every latency.
    starved = summary(0.4, 20)
    assert starved["load_generator_limited"] is True
    assert (
        "waited 20 ms for a CPU each time it needed one (over 15 ms; 20% of the run)"
        in (starved["load_generator_limited_reason"])
    )
    # Where the kernel does not say (not Linux), nothing is judged on it.
    unknown = summary(None, None)
    assert unknown["load_generator_limited"] is False and unknown["generator_cpu_wait_ms"] == 0


def test_the_advice_names_the_cause_of_the_lag() -> None:
    late = [Sample(1 + i / 200, 10.0, None, 40.0) for i in range(200)]

    def reason(cpu_s: float, processes: int, cores: int, body: int) -> str:
        results = [
            {**worker_result(late, 1.0, 1.0, cpu_s, 2.0), "cores": cores, "host": "h",
             "payload_bytes": body}
            for _ in range(processes)
        ]  # fmt: skip
        return str(merge(results, 1.0, 5.0)["summary"]["load_generator_limited_reason"])

    assert "3 processes share 2 cores on one machine: more processes make it worse" in reason(
        0.5, 3, 2, 500
    )
    assert "kept 95% of its core busy" in reason(1.9, 1, 2, 500)
    assert "1,288,534 bytes" in reason(0.5, 1, 2, 1_288_534)


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
    assert "| 8vcpu-16gb | rest | open | 180.0 |" in table and "| **best** |" in table
    assert "Best for p99 ≤ 300 ms and errors ≤ 1.00%: **8vcpu-16gb**" in table
    assert best(rows, p99_ms=100, max_error_rate=0.01) is None


def test_compare_never_ranks_a_run_its_load_generator_limited_or_unbalanced() -> None:
    honest = result_doc("8vcpu-16gb", 180, 250, 0.59)
    limited = result_doc("8vcpu-64gb", 400, 200, 0.85)
    limited["summary"]["load_generator_limited"] = True
    unbalanced = result_doc("4vcpu", 500, 200, 0.5)
    unbalanced["server"] = {"balance": {"unbalanced": True, "why": "pod x served 10"}}
    rows = [row(honest, "a"), row(limited, "b"), row(unbalanced, "c")]
    winner = best(rows, p99_ms=300, max_error_rate=0.01)
    assert winner is not None and winner.label == "8vcpu-16gb"
    table = markdown(rows, winner, 300, 0.01)
    assert "not ranked: load generator limited" in table
    assert "not ranked: unbalanced" in table


def test_repeats_of_one_experiment_are_told_apart_by_file() -> None:
    rows = named_rows(
        [
            ("run-1", result_doc("8vcpu", 180, 250, 0.59)),
            ("run-2", result_doc("8vcpu", 170, 250, 0.59)),
        ]
    )
    assert [r.label for r in rows] == ["8vcpu (run-1)", "8vcpu (run-2)"]


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


def bench_run(tmp_path: Path, target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra", "bench", target, "--model", "toy", "--warmup", "0.2",
         "--duration", "1", "--rate", "20", "--max-send-lag-ms", "25",
         "--out", str(tmp_path / "r.json"), *args],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("dtype", "encoding", "said"),
    [
        ("DT_STRING", "", "input 'image_input' is DT_STRING: bench cannot generate a value"),
        ("DT_FLOAT", "coo_sparse", "input 'image_input' is a sparse tensor"),
        ("DT_INT64", "composite_tensor", "input 'image_input' is a composite tensor"),
        ("DT_COMPLEX64", "", "input 'image_input' is DT_COMPLEX64"),
    ],
)
def test_a_request_bench_cannot_build_is_refused_before_sending(
    tmp_path: Path, dtype: str, encoding: str, said: str
) -> None:
    capacity = Capacity(WORKERS, SERVICE_S)
    with rest_server(capacity, model_metadata=metadata(dtype=dtype, encoding=encoding)) as url:
        run = bench_run(tmp_path, url)
    assert run.returncode == 2, run.stderr
    assert said in run.stderr and "--payload FILE" in run.stderr
    assert "Traceback" not in run.stderr
    assert capacity.served == 0 and capacity.bad_requests == []


@pytest.mark.parametrize("dtype", ["DT_HALF", "DT_BFLOAT16"])
def test_a_dtype_only_grpc_carries_goes_over_grpc(tmp_path: Path, dtype: str) -> None:
    capacity = Capacity(WORKERS, SERVICE_S)
    with (
        rest_server(capacity, model_metadata=metadata(dtype=dtype)) as url,
        grpc_server(capacity) as target,
    ):
        run = bench_run(tmp_path, url, "--grpc-target", target)
        assert run.returncode == 0, run.stderr
        assert f"is {dtype}, which TF Serving's REST API cannot read" in run.stderr
        result = json.loads((tmp_path / "r.json").read_text())
        assert result["settings"]["protocol"] == "grpc"
        assert result["summary"]["error_rate"] == 0 and capacity.served > 0
        refused = bench_run(tmp_path, url, "--grpc-target", target, "--protocol", "rest")
    assert refused.returncode == 2 and "use --protocol grpc" in refused.stderr


def test_half_and_bfloat16_are_encoded_as_tensorflow_stores_them() -> None:
    specs = [InputSpec("h", "DT_HALF", (-1, 2)), InputSpec("b", "DT_BFLOAT16", (2,))]
    payload = generated_payload("toy", "serving_default", specs, seed=3)
    assert payload.rest_body == b""  # REST cannot carry them
    request = PredictRequest.FromString(payload.grpc_request)
    half, brain = request.inputs["h"], request.inputs["b"]
    assert (half.dtype, brain.dtype) == (19, 14)
    assert [d.size for d in half.tensor_shape.dim] == [1, 2]
    values = struct.unpack("<2e", half.tensor_content)
    assert all(0 <= v < 1 for v in values)
    # bfloat16 keeps a float32's upper 16 bits.
    (first,) = struct.unpack("<H", brain.tensor_content[:2])
    assert 0 <= struct.unpack("<f", struct.pack("<I", first << 16))[0] < 1
    with pytest.raises(PayloadError, match="use --protocol grpc"):
        payload_protocol(specs, "rest", chosen_by_user=True)
    assert payload_protocol(specs, "rest", chosen_by_user=False) == "grpc"


def test_a_run_too_short_to_bound_its_p99_meets_no_objective() -> None:
    short = result_doc("8vcpu-16gb", 180, 50, 0.59)
    short["confidence"] = {"p99_ms": 50.0, "p99_ci_ms": [48.0, None], "p99_open_above": True}
    bounded = result_doc("2vcpu", 150, 250, 0.60)
    bounded["confidence"] = {"p99_ms": 250.0, "p99_ci_ms": [240.0, 262.0]}
    winner = best([row(short, "a"), row(bounded, "b")], p99_ms=300, max_error_rate=0.01)
    assert winner is not None and winner.label == "2vcpu"


def test_runs_without_a_cost_are_never_called_best() -> None:
    # A URL target's results carry no cost: meeting the objective is said, "best" is not.
    fast = result_doc("http-a", 180, 50, 0.0)
    fast["experiment"] = None
    slow = result_doc("http-b", 90, 60, 0.0)
    slow["experiment"] = None
    rows = [row(fast, "a"), row(slow, "b")]
    ranking = rank(rows, 300, 0.01)
    assert ranking.winner is None and {r.label for r in ranking.unpriced} == {"a", "b"}
    text = markdown(rows, ranking, 300, 0.01)
    assert "**best**" not in text and "Best for" not in text
    assert "none is called best, since none has a cost" in text


def capacity_doc(steps: list[tuple[float, str, float]], stopped: str) -> dict[str, Any]:
    """A URL target's capacity search (no cost) whose steps were (rate, verdict, p99)."""
    document = result_doc("", 0, steps[-1][2], 0.0)
    document["experiment"] = None
    passed = [rate for rate, verdict, _ in steps if verdict == "pass"]
    failed = [rate for rate, verdict, _ in steps if verdict == "fail"]
    document["capacity"] = {
        "rate_per_s": max(passed) if passed else None,
        "rps": max(passed) if passed else None,
        "converged": bool(passed),
        "stopped": stopped,
        "range": {"low": max(passed, default=None), "high": min(failed, default=None)},
        "steps": [
            {"rate_per_s": rate, "verdict": verdict, "confidence": {"p99_ms": p99}}
            for rate, verdict, p99 in steps
        ],
    }
    return document


def test_a_search_that_certified_nothing_says_so_and_draws_no_throughput(
    tmp_path: Path,
) -> None:
    uncertified = capacity_doc(
        [(50, "undecided", 110), (100, "undecided", 85), (200, "fail", 1036)],
        "reached the limit of 8 runs before a rate was certified",
    )
    fixed = result_doc("", 50, 79, 0.0)
    fixed["experiment"] = None
    fixed["confidence"] = {"p99_ms": 79.0, "p99_ci_ms": [66.6, None], "p99_open_above": True}
    rows = named_rows([("cap", uncertified), ("fixed", fixed)])
    ranking = rank(rows, 150, 0.01)
    text = markdown(rows, ranking, 150, 0.01)
    assert "| none certified (fails at 200.0) |" in text
    assert "not ranked: no rate certified" in text
    assert (
        "- cap: its capacity search certified no rate: reached the limit of 8 runs before a "
        "rate was certified" in text
    )
    assert "cut short" not in text and "measured something else" not in text
    assert "misses: p99 not bounded: too few samples (run longer)" in text
    assert "No run meets p99 ≤ 150 ms and errors ≤ 1.00% with confidence." in text
    drawn = chart(rows, tmp_path / "c.png", 150, ranking)
    # No cost anywhere: no requests-per-dollar panel to leave empty.
    assert list(drawn) == [
        "Throughput (requests/s; capacity range)",
        "p99 latency (ms; 95% interval)",
        "p99 latency (ms) against load",
    ]
    # The log axis reads in plain numbers.
    labels = [label for label in drawn["p99 latency (ms) against load"] if label]
    assert {"100", "200", "500", "1000"} <= set(labels)
    assert not any("10^" in label or "times" in label for label in labels)


def test_a_priced_comparison_keeps_the_requests_per_dollar_panel(tmp_path: Path) -> None:
    rows = [row(result_doc("a", 100, 200, 0.5), "a"), row(result_doc("b", 90, 250, 0.5), "b")]
    drawn = chart(rows, tmp_path / "c.png", 300)
    assert "Requests per USD (range)" in drawn
