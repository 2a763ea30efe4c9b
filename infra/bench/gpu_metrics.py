"""GPU utilisation and memory over a measured window, from GKE's managed DCGM metrics.

A GPU cluster with `metrics true` has GKE collect DCGM's gauges of every GPU into Managed
Service for Prometheus (infra/components/cluster.py). A run's figures are read back from
its PromQL HTTP API (`query_range` under monitoring.googleapis.com/v1/projects/<project>/
location/global/prometheus), with the gcloud account's token, over the run's measured
window:
- DCGM_FI_DEV_GPU_UTIL: the share of time a kernel ran (%), averaged over the cluster's
  GPUs (the serving pool's are its only ones) and its highest;
- DCGM_FI_DEV_FB_USED: GPU memory in use (MiB), its highest on any GPU.
Managed collection lands samples a minute or two after they are taken, so the capacity
search reads them once it is over (`settle_s` after its last run). What cannot be read (no
token, an API error, no samples yet) leaves the figure out and says why: a run's verdict
never depends on it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import requests

MONITORING_API = "https://monitoring.googleapis.com"
SOURCE = "GKE managed DCGM metrics (Managed Service for Prometheus)"
STEP_S = 10  # query_range resolution; DCGM is sampled every few seconds
TIMEOUT_SECONDS = (10.0, 30.0)
# How long after a run its samples are queryable (collection, then ingestion).
SETTLE_S = 90.0
UTILIZATION = "DCGM_FI_DEV_GPU_UTIL"
MEMORY_USED = "DCGM_FI_DEV_FB_USED"

Query = Callable[[str, float, float], Mapping[str, Any]]


def _series_values(answer: Mapping[str, Any]) -> list[list[float]]:
    """Each series' values from a Prometheus `matrix` answer (NaN dropped)."""
    if answer.get("status") != "success":
        raise ValueError(str(answer.get("error") or "the query failed"))
    data = answer.get("data") or {}
    if data.get("resultType") != "matrix":
        raise ValueError(f"expected a matrix, got {data.get('resultType')!r}")
    series = []
    for item in data.get("result") or []:
        values = [float(v) for _, v in item.get("values") or []]
        series.append([v for v in values if math.isfinite(v)])
    return [s for s in series if s]


def gpu_figures(utilization: Mapping[str, Any], memory: Mapping[str, Any]) -> dict[str, Any]:
    """The window's figures from the two answers: mean and highest utilisation over every
    GPU's samples, the most memory any GPU held, and how many samples they rest on."""
    util = _series_values(utilization)
    used = _series_values(memory)
    samples = [v for s in util for v in s]
    if not samples:
        return {"source": None, "why": "no DCGM samples in the window yet"}
    return {
        "source": SOURCE,
        "gpus": len(util),
        "samples": len(samples),
        "utilization_pct_mean": round(sum(samples) / len(samples), 1),
        "utilization_pct_max": round(max(samples), 1),
        "memory_used_mib_max": round(max(v for s in used for v in s), 1) if used else None,
    }


def prometheus_query(
    project: str,
    token: str,
    *,
    base_url: str = MONITORING_API,
    session: requests.Session | None = None,
) -> Query:
    """A query_range client of the project's Managed Prometheus: (PromQL, start, end) ->
    the JSON answer."""
    http = session or requests.Session()
    url = (
        f"{base_url.rstrip('/')}/v1/projects/{project}/location/global/prometheus/api/v1/"
        "query_range"
    )

    def query(promql: str, start: float, end: float) -> Mapping[str, Any]:
        response = http.get(
            url,
            params={
                "query": promql,
                "start": f"{start:.3f}",
                "end": f"{end:.3f}",
                "step": str(STEP_S),
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_SECONDS,
        )
        if response.status_code != 200:
            raise ValueError(
                f"the Prometheus API answered HTTP {response.status_code}: {response.text[:200]}"
            )
        answer: Mapping[str, Any] = response.json()
        return answer

    return query


def window_figures(query: Query, cluster: str, start: float, end: float) -> dict[str, Any]:
    """The GPU figures of one measured window [start, end] (epoch seconds) of `cluster`."""
    selector = f'{{cluster="{cluster}"}}'
    try:
        return gpu_figures(
            query(f"{UTILIZATION}{selector}", start, end),
            query(f"{MEMORY_USED}{selector}", start, end),
        )
    except (requests.RequestException, ValueError) as error:
        return {"source": None, "why": f"not read: {error}"}


def measured_window(result: Mapping[str, Any]) -> tuple[float, float] | None:
    """A results document's measured window (epoch seconds): after its warmup, for its
    duration; None when the document does not say when it ran."""
    started = result.get("started_at")
    settings = result.get("settings") or {}
    if not started or "duration_s" not in settings:
        return None
    begin = datetime.fromisoformat(str(started)).timestamp() + float(settings.get("warmup_s") or 0)
    return begin, begin + float(settings["duration_s"])


def attach_gpu_figures(
    results: Sequence[dict[str, Any]],
    outputs: Mapping[str, Any],
    make_query: Callable[[], Query],
    *,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = print,
) -> None:
    """On a GPU stack: each run's GPU figures under server.gpu of its results document,
    read once its samples have landed (SETTLE_S after the last run ended), or why there
    are none. `make_query` gives the Prometheus client (it needs a token)."""
    if not outputs.get("gpu") or not results:
        return
    why = ""
    client: Query | None = None
    windows = [measured_window(result) for result in results]
    if not outputs.get("metrics"):
        why = "metrics false: GKE's DCGM metrics are not collected"
    else:
        ends = [window[1] for window in windows if window]
        wait = max(ends) + SETTLE_S - now() if ends else 0.0
        if wait > 0:
            say(f"Waiting {wait:.0f} s for the GPU metrics of the last run to land")
            sleep(wait)
        try:
            client = make_query()
        except Exception as error:
            why = f"not read: {error}"
    cluster = str(outputs.get("clusterName") or "")
    for result, window in zip(results, windows, strict=True):
        if client is None or window is None:
            figures: dict[str, Any] = {
                "source": None,
                "why": why or "the run's window is not known",
            }
        else:
            figures = window_figures(client, cluster, *window)
        result.setdefault("server", {})["gpu"] = figures
