"""How load is offered: Poisson or uniform arrivals from one seeded schedule shared by the
processes, and requests spread over every serving pod in turn, re-resolved as pods come
and go, with TF Serving's own count per pod telling whether each got its share."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from contextlib import ExitStack
from itertools import pairwise
from typing import Any

from infra.bench.fanout import run_local
from infra.bench.results import balance, result_document
from infra.loadgen.spec import WorkerSpec
from tests.conftest import ROOT
from tests.load_servers import Capacity, rest_server

# The load generator's modules run under gevent's monkey-patching, which must not reach
# pytest's own process: they are exercised in a child, as the image runs them.
SCHEDULES = """
import json, sys
import infra.loadgen.worker  # patches first, as in the image
from infra.loadgen.load import Share
from infra.loadgen.spec import WorkerSpec
spec = WorkerSpec.from_json(sys.argv[1])
print(json.dumps([list(Share(spec, i).schedule()) for i in range(spec.processes)]))
"""


def spec(**changes: Any) -> WorkerSpec:
    base = WorkerSpec(
        "rest", "http://127.0.0.1:1", "127.0.0.1:2", "toy", "serving_default", 1, "open",
        200.0, 1, 60.0, 0.0, 5.0, 1000,
    )  # fmt: skip
    return WorkerSpec.from_json(json.dumps({**json.loads(base.to_json()), **changes}))


def schedules(**changes: Any) -> list[list[float]]:
    run = subprocess.run(
        [sys.executable, "-c", SCHEDULES, spec(**changes).to_json()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    shares: list[list[float]] = json.loads(run.stdout)
    return shares


def test_poisson_arrivals_are_the_default_and_look_like_independent_users() -> None:
    (times,) = schedules()
    gaps = [b - a for a, b in pairwise(times)]
    # 200/s for 60 s: 12,000 expected, a Poisson count's sd about 110.
    assert abs(len(times) - 12_000) < 450
    assert abs(statistics.mean(gaps) - 1 / 200) < 0.0002
    # Exponential gaps: their spread equals their mean (uniform gaps have none).
    assert 0.95 < statistics.stdev(gaps) / statistics.mean(gaps) < 1.05
    assert all(0 <= t < 60 for t in times)


def test_a_uniform_schedule_on_request() -> None:
    (times,) = schedules(arrivals="uniform")
    assert len(times) == 12_000
    assert max(b - a for a, b in pairwise(times)) < 1 / 200 + 1e-9


def test_one_seeded_schedule_is_dealt_out_to_the_processes() -> None:
    (alone,) = schedules(seed=7)
    shares = schedules(seed=7, processes=3)
    assert sorted(t for share in shares for t in share) == alone
    assert [len(s) for s in shares] == [len(alone[i::3]) for i in range(3)]
    (other,) = schedules(seed=8)
    assert other != alone


TARGETS = """
import json, sys
import infra.loadgen.worker
from infra.loadgen.load import Targets

answers = iter(json.loads(sys.argv[1]))

def resolve(host):
    answer = next(answers)
    if answer == "fail":
        raise OSError("name lookup failed")
    return answer

targets = Targets(
    [("pod-a", "http://10.0.0.1:8501", "10.0.0.1:8500"),
     ("pod-b", "http://10.0.0.2:8501", "10.0.0.2:8500")],
    "tfserving-pods.tfserving.svc.cluster.local",
    resolve,
)
seen = []
for _ in range(4):
    for _ in range(6):
        targets.next()
    targets.refresh()
    seen.append([list(e) for e in targets.endpoints])
print(json.dumps({"sent": targets.sent, "seen": seen}))
"""


def test_requests_go_to_every_pod_in_turn_and_follow_the_pods_dns_names() -> None:
    answers = [["10.0.0.1", "10.0.0.2", "10.0.0.3"], "fail", [], ["10.0.0.3"]]
    run = subprocess.run(
        [sys.executable, "-c", TARGETS, json.dumps(answers)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    found = json.loads(run.stdout)
    a = ["pod-a", "http://10.0.0.1:8501", "10.0.0.1:8500"]
    b = ["pod-b", "http://10.0.0.2:8501", "10.0.0.2:8500"]
    new = ["10.0.0.3", "http://10.0.0.3:8501", "10.0.0.3:8500"]
    # A new pod joins under its address; the known keep their names.
    assert found["seen"][0] == [a, b, new]
    # A failed or empty lookup keeps what there is.
    assert found["seen"][1] == found["seen"][2] == [a, b, new]
    # A pod gone is dropped.
    assert found["seen"][3] == [new]
    # Round-robin, 6 requests a round: 3 each to two pods, then 2 each to three, three
    # times (the last refresh comes after the last round).
    assert found["sent"] == {"pod-a": 3 + 2 * 3, "pod-b": 3 + 2 * 3, "10.0.0.3": 2 * 3}


def test_every_pod_on_loopback_gets_its_share_and_counts_it_itself() -> None:
    capacities = [Capacity(4, 0.005) for _ in range(3)]
    with ExitStack() as servers:
        urls = [servers.enter_context(rest_server(c)) for c in capacities]
        endpoints = tuple(
            (f"pod-{i}", url, f"{url.removeprefix('http://')}") for i, url in enumerate(urls)
        )
        run_spec = spec(
            rest_url=urls[0],
            rate=150.0,
            duration_s=3.0,
            warmup_s=0.5,
            endpoints=[list(e) for e in endpoints],
            metrics_targets=[[name, url] for name, url, _ in endpoints],
            max_send_lag_ms=50.0,
        )
        results = run_local(run_spec, 2)
    document = result_document(run_spec, results, {}, "now", "local")
    sent = document["sent_by_endpoint"]
    assert set(sent) == {"pod-0", "pod-1", "pod-2"}
    assert max(sent.values()) - min(sent.values()) <= 2  # two processes, in turn each
    served = [c.served for c in capacities]
    assert min(served) >= 0.9 * max(served)
    server = document["server"]
    assert set(server["servers"]) == {"pod-0", "pod-1", "pod-2"}
    assert server["balance"]["unbalanced"] is False
    assert server["balance"]["max_deviation"] <= 0.2
    # TF Serving's counts are of the measured window: about 3 s of 150/s, a third each.
    for figures in server["servers"].values():
        assert 100 <= figures["requests"] <= 200
        assert 2.5 <= figures["window_s"] <= 4.0


def test_a_pod_outside_twenty_percent_of_the_mean_is_unbalanced() -> None:
    even = balance({"a": {"requests": 100}, "b": {"requests": 118}, "c": {"requests": 95}})
    assert even is not None and even["unbalanced"] is False
    skewed = balance({"a": {"requests": 100}, "b": {"requests": 150}, "c": {"requests": 90}})
    assert skewed is not None and skewed["unbalanced"] is True
    assert skewed["why"] == (
        "pod b served 150 requests against a mean of 113 (32% off, more than 20%)"
    )
    assert balance({"a": {"requests": 100}}) is None
