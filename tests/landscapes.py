"""Landscapes of known truth for benchmarking the search: three performance models that
give every configuration of a space its true capacity, and the capacity ranges a sweep's
capacity search would report for it. None of them is a claim about TF Serving; each gives
a space a different structure, so a search that only fits one of them shows it.

- `additive`: log capacity = log pods + an exponent of a pod's cores + one effect per value
  of each dimension (drawn wide: a value may halve or double capacity) + 2% (sd) that
  nothing explains. The form the search's first model assumed.
- `interactions`: the additive form plus effects that depend on two settings at once:
  batching pays with one pod per node and costs with four; its gain depends on the family;
  the batch timeout and size matter only with batching on; intra-op times inter-op threads
  beyond the pod's cores slows everything; each machine type has its own best pods per
  node.
- `queueing`: each pod is an M/M/c queue (c: its inter-op threads) whose service time
  follows from a request's work, the family's per-core speed, Amdahl's law over the
  intra-op threads (SMT siblings worth a quarter of a core; T2D has none), threads beyond
  the pod's cores slowing every one of them, a memory floor under which the pod thrashes,
  and batching that executes b requests for less than b times the work (how much less
  depends on the family's vector units) but only when the load per pod fills a batch
  within its timeout, which it then adds to the latency. The capacity is the highest rate
  whose p99 (Erlang C, plus the batch wait) meets the objective.

- `gpu`: CPU machine types as in `queueing`, GPU hosts by a model of a GPU server: every
  executed batch costs a launch (kernels, copies) plus a little per row, on an L4 or a T4
  (a fraction of an L4's speed); one GPU runs one batch at a time (an M/M/1 queue of
  batches, filled within their timeout as above), so without batching every request pays
  the launch; each request also costs the host's CPUs a little (decoding, copying), which
  caps a pod at its cores; pods time-sharing a GPU each get their share less the switches
  between them, and each holds the model in the GPU's memory, which it may not fit
  (nothing then passes); a pod with two GPUs uses one (TensorFlow places the model on its
  first). GPUs pay only batched: at batch 1 they serve little more than a few CPU cores.

`table(space, kind, seed)` gives the true capacities; `measured(capacity, rng)` the range
the sweep's capacity search finds against a verdict that is certain away from the true
capacity and a coin toss (or undecided) within 4% of it.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Mapping
from typing import Any

from infra.bench.capacity import Objective, find_capacity
from infra.bench.confidence import FAIL, PASS, UNDECIDED
from infra.sweep.durations import DEFAULT_SEARCH
from infra.sweep.search.space import Candidate, SearchSpace
from tests import queues

KINDS = ("additive", "interactions", "queueing", "gpu")
OBJECTIVE = Objective(300.0, 0.01)
NOISE_BAND = 0.04  # verdicts within 4% of the true capacity are a coin toss or undecided
IDIOSYNCRASY = 0.02  # what a model does not explain: 2% (sd) per configuration


def family(candidate: Candidate) -> str:
    return candidate.machine_type.split("-")[0]


def _threads(candidate: Candidate, key: str) -> int:
    return int(candidate.features.get(key) or 0) or candidate.pod_cores


class _Draws:
    """Effects drawn once per (name, value), so a table seed fixes the whole landscape."""

    def __init__(self, seed: int, sd: float) -> None:
        self.rng = random.Random(seed)
        self.sd = sd
        self.drawn: dict[tuple[str, Any], float] = {}

    def effect(self, name: str, value: Any, sd: float | None = None) -> float:
        key = (name, value)
        if key not in self.drawn:
            self.drawn[key] = self.rng.gauss(0.0, self.sd if sd is None else sd)
        return self.drawn[key]


def additive(space: SearchSpace, seed: int) -> Callable[[Candidate], float]:
    draws = _Draws(seed, 0.25)
    level = math.log(random.Random(seed).uniform(6.0, 14.0))
    exponent = random.Random(seed + 1).uniform(0.7, 1.0)

    def capacity(c: Candidate) -> float:
        log = level + math.log(c.pods) + exponent * math.log(c.pod_cores)
        for key, value in c.features.items():
            if key != "nodeCount" and value is not None:
                log += draws.effect(key, value)
        return math.exp(log)

    return capacity


def interactions(space: SearchSpace, seed: int) -> Callable[[Candidate], float]:
    base = additive(space, seed)
    draws = _Draws(seed + 7, 0.15)

    def capacity(c: Candidate) -> float:
        f = c.features
        log = math.log(base(c))
        per_node = int(f.get("podsPerNode") or 1)
        if f.get("enableBatching"):
            gain = 0.25 + draws.effect("batching gain", family(c), 0.15)
            log += gain * {1: 1.0, 2: 0.4, 4: -1.2}.get(per_node, 0.0)
            log += draws.effect("size with batching", f.get("maxBatchSize"), 0.1)
            log += draws.effect("timeout with batching", f.get("batchTimeoutMicros"), 0.1)
        threads = _threads(c, "tensorflowIntraOpParallelism") * _threads(
            c, "tensorflowInterOpParallelism"
        )
        if threads > c.pod_cores:
            log -= 0.18 * math.log2(threads / c.pod_cores)
        log += draws.effect(f"pods per node on {c.machine_type}", per_node, 0.12)
        return math.exp(log)

    return capacity


# Per-core speed (a request's work runs this much faster than on the reference core),
# vCPUs per physical core, and how much a batch of b costs: b ** exponent times one request.
FAMILY_SPEED = {"e2": 0.8, "n2": 1.0, "n2d": 1.05, "t2d": 1.15, "c3": 1.3, "c3d": 1.3}
NO_SMT = ("t2d",)
BATCH_EXPONENT = {"e2": 0.85, "n2": 0.65, "n2d": 0.75, "t2d": 0.75, "c3": 0.55, "c3d": 0.65}


def queueing(space: SearchSpace, seed: int) -> Callable[[Candidate], float]:
    rng = random.Random(seed)
    work_ms = rng.uniform(15.0, 40.0)  # one request on one reference core
    parallel = rng.uniform(0.55, 0.9)  # Amdahl: the share of it intra-op threads split
    contention = rng.uniform(0.2, 0.5)  # each doubling of threads over cores costs this
    floor_mib = rng.uniform(1500.0, 3500.0)  # the model and its working memory
    objective_s = OBJECTIVE.p99_ms / 1000

    def capacity(c: Candidate) -> float:
        f = c.features
        fam = family(c)
        intra = _threads(c, "tensorflowIntraOpParallelism")
        inter = _threads(c, "tensorflowInterOpParallelism")
        smt = 1 if fam in NO_SMT else 2
        physical = max(1, c.pod_cores // smt)
        usable = min(intra, c.pod_cores)
        cores = min(usable, physical) + 0.25 * max(0, usable - physical)
        service_s = work_ms / 1000 / FAMILY_SPEED.get(fam, 1.0) * (1 - parallel + parallel / cores)
        if intra * inter > c.pod_cores:
            service_s *= 1 + contention * math.log2(intra * inter / c.pod_cores)
        if c.pod_memory_mib < floor_mib:
            service_s *= 3.0  # it thrashes
        servers = max(1, min(inter, c.pod_cores))
        per_pod = _pod_capacity(f, fam, servers, service_s, objective_s)
        per_node = int(f.get("podsPerNode") or 1)
        # Pods sharing a node share its memory bandwidth.
        per_pod *= 1.0 - 0.04 * (per_node - 1)
        return per_pod * c.pods

    return capacity


def _pod_capacity(
    f: Mapping[str, Any], fam: str, servers: int, service_s: float, objective_s: float
) -> float:
    """The highest Poisson rate one pod serves with p99 within the objective."""
    batching = bool(f.get("enableBatching"))
    size = int(f.get("maxBatchSize") or 1) if batching else 1
    timeout_s = int(f.get("batchTimeoutMicros") or 0) / 1e6 if batching else 0.0
    return _solved((batching, size, timeout_s), fam, servers, service_s, objective_s)


@functools.cache
def _solved(
    batch: tuple[bool, int, float], fam: str, servers: int, service_s: float, objective_s: float
) -> float:
    batching, size, timeout_s = batch

    def p99_s(rate: float) -> float:
        if not batching:
            return _p99(rate, servers, service_s)
        # A batch fills to what arrives within its timeout; it then costs b ** exponent
        # requests' work and is one service of the queue, at rate / b batches a second.
        batch = max(1.0, min(size, rate * timeout_s))
        cost = service_s * batch ** BATCH_EXPONENT.get(fam, 0.75)
        wait = timeout_s if batch < size else size / rate
        return wait + _p99(rate / batch, servers, cost)

    low, high = 0.0, servers / service_s * max(1, size) ** 0.5 + 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if p99_s(middle) <= objective_s else (low, middle)
    return low


def _p99(rate: float, servers: int, service_s: float) -> float:
    """M/M/c p99 response time (infinite when the queue is unstable)."""
    if rate <= 0:
        return service_s * math.log(100)
    if rate >= servers / service_s:
        return math.inf
    low, high = 0.0, 1.0
    while queues.share_over(high, rate, service_s, servers) > 0.01:
        high *= 2
        if high > 1e4:
            return math.inf
    for _ in range(50):
        middle = (low + high) / 2
        over = queues.share_over(middle, rate, service_s, servers) > 0.01
        low, high = (middle, high) if over else (low, middle)
    return high


GPU_MEMORY_GIB = {"nvidia-l4": 24.0, "nvidia-tesla-t4": 16.0}
# TF Serving's share of a time-shared GPU's memory (infra/data/gpus.yaml's headroom).
SHARED_MEMORY = 0.95


def gpu(space: SearchSpace, seed: int) -> Callable[[Candidate], float]:
    cpu = queueing(space, seed)
    rng = random.Random(seed + 101)
    launch_s = rng.uniform(1.0, 4.0) / 1000  # per executed batch on an L4
    row_s = rng.uniform(0.1, 0.8) / 1000  # per row of a batch on an L4
    speed = {"nvidia-l4": 1.0, "nvidia-tesla-t4": rng.uniform(0.3, 0.5)}
    host_s = rng.uniform(0.4, 1.5) / 1000  # a request's CPU side on a reference core
    model_gib = rng.uniform(2.0, 9.0)
    switch = rng.uniform(0.05, 0.2)  # time-sharing's cost of switching between pods
    objective_s = OBJECTIVE.p99_ms / 1000

    def capacity(c: Candidate) -> float:
        if not c.gpus_per_pod:
            return cpu(c)
        f = c.features
        sharing = max(1, round(1 / c.gpus_per_pod)) if c.gpus_per_pod < 1 else 1
        if sharing * model_gib > GPU_MEMORY_GIB[c.gpu_type] * (SHARED_MEMORY if sharing > 1 else 1):
            return 0.0  # the model does not fit each pod's share of the GPU's memory
        slow = sharing * (1 + switch) if sharing > 1 else 1.0
        batching = bool(f.get("enableBatching"))
        size = int(f.get("maxBatchSize") or 1) if batching else 1
        timeout_s = int(f.get("batchTimeoutMicros") or 0) / 1e6 if batching else 0.0
        gpu_bound = _gpu_solved(
            (batching, size, timeout_s),
            launch_s * slow / speed[c.gpu_type],
            row_s * slow / speed[c.gpu_type],
            objective_s,
        )
        host_bound = 0.8 * c.pod_cores * FAMILY_SPEED.get(family(c), 1.0) / host_s
        return min(gpu_bound, host_bound) * c.pods

    return capacity


@functools.cache
def _gpu_solved(
    batch: tuple[bool, int, float], launch_s: float, row_s: float, objective_s: float
) -> float:
    """The highest Poisson rate one GPU pod serves with p99 within the objective."""
    batching, size, timeout_s = batch

    def p99_s(rate: float) -> float:
        rows = max(1.0, min(size, rate * timeout_s)) if batching else 1.0
        wait = 0.0 if not batching else timeout_s if rows < size else size / rate
        return wait + _p99(rate / rows, 1, launch_s + rows * row_s)

    low, high = 0.0, size / (launch_s + size * row_s) + 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if p99_s(middle) <= objective_s else (low, middle)
    return low


GENERATORS: dict[str, Callable[[SearchSpace, int], Callable[[Candidate], float]]] = {
    "additive": additive,
    "interactions": interactions,
    "queueing": queueing,
    "gpu": gpu,
}


def table(space: SearchSpace, kind: str, seed: int) -> dict[str, float]:
    """Every configuration's true capacity (requests/s) on landscape `kind`, table `seed`."""
    model = GENERATORS[kind](space, seed)
    unexplained = random.Random(seed * 31 + 5)
    return {
        c.name: model(c) * math.exp(unexplained.gauss(0.0, IDIOSYNCRASY)) for c in space.candidates
    }


def measured(capacity: float, rng: random.Random) -> dict[str, Any]:
    """The sweep's capacity search (its defaults) against a verdict certain away from
    `capacity` and noisy near it: the range and steps it reports."""

    capacity = max(capacity, 1e-6)  # a configuration nothing passes on

    def run_step(rate: float) -> dict[str, Any]:
        return {"rate": rate, "batches": [], "summary": {"rps": rate}}

    def judge(documents: list[dict[str, Any]]) -> tuple[str, str]:
        margin = documents[-1]["rate"] / capacity - 1
        if margin < -NOISE_BAND:
            return PASS, "well under"
        if margin > NOISE_BAND:
            return FAIL, "well over"
        draw = rng.random()
        if draw < 0.4:
            return UNDECIDED, "near"
        passes = draw < 0.4 + 0.6 * (0.5 - margin / (2 * NOISE_BAND))
        return (PASS, "near") if passes else (FAIL, "near")

    search = DEFAULT_SEARCH
    block = find_capacity(
        run_step,
        OBJECTIVE,
        search.start_rate,
        max_steps=search.max_steps,
        max_repeats=search.max_repeats,
        judge_runs=judge,
    )
    return {
        "low": block["range"]["low"],
        "high": block["range"]["high"],
        "steps": [
            {"rate_per_s": s["rate_per_s"], "verdict": s["verdict"], "runs": s["runs"]}
            for s in block["steps"]
        ],
    }
