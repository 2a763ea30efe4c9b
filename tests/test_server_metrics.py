"""TF Serving's own figures: its Prometheus page parsed, a window's difference, percentiles
from its buckets, and a run that reports them beside the client's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.loadgen.metrics import Snapshot, add, bucket_quantile_ms, difference, figures, parse
from tests.conftest import ROOT
from tests.load_servers import Capacity, rest_server

PAGE = (ROOT / "tests" / "data" / "tfserving_prometheus.txt").read_text(encoding="utf-8")
# util.cc: Buckets::Exponential(10, 1.8, 33): bucket i holds (10 x 1.8^(i-1), 10 x 1.8^i] us.
B12, B13, B14 = (10 * 1.8**i for i in (12, 13, 14))


def test_the_model_s_counters_and_histogram_are_read_across_entry_points() -> None:
    snapshot = parse(PAGE, "resnet50")
    assert snapshot.requests_by_status == {"OK": 1200, "RESOURCE_EXHAUSTED": 8}
    assert snapshot.latency_count == 1200  # REST 1000 + gRPC 200; the other model left out
    assert snapshot.latency_sum_us == 1000 * 25000 + 200 * 27000
    assert snapshot.latency_buckets_us[float("inf")] == 1200
    assert parse(PAGE, "missing") == Snapshot()


def test_percentiles_are_interpolated_within_tf_serving_buckets() -> None:
    buckets = parse(PAGE, "resnet50").latency_buckets_us
    # 1050 requests in (B12, B13], 150 in (B13, B14].
    assert bucket_quantile_ms(buckets, 0.5) == pytest.approx(
        (B12 + (B13 - B12) * 600 / 1050) / 1000, abs=0.01
    )
    assert bucket_quantile_ms(buckets, 0.99) == pytest.approx(
        (B13 + (B14 - B13) * (1188 - 1050) / 150) / 1000, abs=0.01
    )
    assert bucket_quantile_ms({}, 0.5) is None


def test_a_window_is_the_difference_of_two_scrapes() -> None:
    before = parse(PAGE, "resnet50")
    after = parse(PAGE.replace("} 1200\n", "} 1500\n"), "resnet50")
    window = difference(before, after)
    assert window.requests_by_status == {"OK": 300, "RESOURCE_EXHAUSTED": 0}
    assert figures(window, 10.0)["rps"] == 30.0
    restarted = difference(after, before)  # counters went down: a restart, not negatives
    assert restarted.requests_by_status["OK"] == 0
    both = add(before, before)
    assert both.latency_count == 2400
    assert figures(both, 1.0)["errors"] == 16


def test_a_run_reports_the_server_s_figures_beside_the_client_s(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    capacity = Capacity(4, 0.02)
    with rest_server(capacity) as url:
        # The server shares this machine's cores with the generator and with whatever else
        # runs: its scheduling jitter is not what this test measures (the lag verdict has
        # its own tests), so the lag allowed is wide and a stalled run is run once more,
        # as bench's own searches do.
        for _ in range(2):
            run = subprocess.run(
                [sys.executable, "-m", "infra", "bench", url, "--model", "toy", "--rate", "100",
                 "--warmup", "0.5", "--duration", "2", "--processes", "2",
                 "--max-send-lag-ms", "25", "--server-metrics", url, "--out", str(out)],
                cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
            if "the load generator was the limit" not in run.stderr:
                break
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    server = result["server"]["servers"][url]
    assert result["server"]["source"].startswith("TF Serving /monitoring/prometheus/metrics")
    # The server served what the client sent in the window (give or take the edges).
    assert abs(server["requests"] - result["summary"]["requests"]) <= 5
    assert 95 <= server["rps"] <= 105
    assert 19 <= server["mean_ms"] <= 25  # its own service time, without the network
    assert result["server"]["all"]["requests"] == server["requests"]
