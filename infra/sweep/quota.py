"""The region's CPU quota against the sweep's largest phase.

`largest_phase` is pure: serving vCPUs at each step's peak (a node pool recreated in place
adds a surge node; a replaced pool is deleted first) plus the load-generator pool at its
most nodes, and GKE's default pool while the cluster is created. `check` compares it with
the quotas the Compute Engine API's `regions.get` answers (`quotas: [{metric, limit,
usage}]`): CPUS, and E2_CPUS where the project has that quota. `fetch_region` reads that
answer with the gcloud account's access token (infra/gcloud.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from infra.gcloud import GcloudError, access_token
from infra.sweep.changes import Step
from infra.sweep.durations import Durations

COMPUTE_API = "https://compute.googleapis.com"
CPU_METRICS = ("CPUS", "E2_CPUS")
TIMEOUT_SECONDS = (10.0, 30.0)


class QuotaError(RuntimeError):
    """The quota could not be read, or is short; the message says what to do."""


@dataclass(frozen=True)
class Need:
    vcpus: int
    where: str

    def to_json(self) -> dict[str, Any]:
        return {"vcpus": self.vcpus, "largest_phase": self.where}


def largest_phase(steps: Sequence[Step], durations: Durations) -> Need:
    """The most vCPUs the sweep runs at once in its region."""
    best = Need(0, "")
    for step in steps:
        experiment = step.experiment
        generator = experiment.load_generator_max_vcpus
        candidates = [
            Need(
                experiment.serving_vcpus + generator,
                f"{experiment.name}'s capacity search: {experiment.serving_vcpus} serving "
                f"vCPUs ({experiment.describe_shape()}) + {generator} load-generator vCPUs at "
                "most",
            ),
            Need(
                step.pool.peak_vcpus + generator,
                f"the change to {experiment.name} ({step.pool.kind}): {step.pool.peak_vcpus} "
                f"serving vCPUs at its peak + {generator} load-generator vCPUs still up",
            ),
        ]
        if step.previous is None:
            candidates.append(
                Need(durations.default_pool_vcpus, "the cluster's creation (GKE's default pool)")
            )
        for need in candidates:
            if need.vcpus > best.vcpus:
                best = need
    return best


def check(region: dict[str, Any], need: Need, project: str) -> list[str]:
    """What is short, one message per quota; empty when the phase fits."""
    problems = []
    name = region.get("name", "?")
    quotas = {q.get("metric"): q for q in region.get("quotas") or []}
    for metric in CPU_METRICS:
        quota = quotas.get(metric)
        if quota is None:
            continue
        limit, usage = float(quota.get("limit", 0)), float(quota.get("usage", 0))
        free = limit - usage
        if need.vcpus > free:
            problems.append(
                f"{metric} quota in {name}: {free:g} of {limit:g} free ({usage:g} in use), "
                f"but the sweep needs {need.vcpus} at once ({need.where}). Request at least "
                f"{usage + need.vcpus:g}: https://console.cloud.google.com/iam-admin/quotas"
                f"?project={project}&location={name}&metric=compute.googleapis.com%2F"
                f"{metric.lower()} . Or sweep fewer or smaller shapes, or lower "
                "loadGeneratorMaxNodes (--set loadGeneratorMaxNodes=N)."
            )
    if "CPUS" not in quotas:
        problems.append(f"the Compute Engine API listed no CPUS quota for {name}")
    return problems


def fetch_region(
    project: str,
    region: str,
    token: str,
    *,
    base_url: str = COMPUTE_API,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Compute Engine's `regions.get` for the project."""
    http = session or requests.Session()
    url = f"{base_url.rstrip('/')}/compute/v1/projects/{project}/regions/{region}"
    try:
        response = http.get(
            url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_SECONDS
        )
    except (requests.ConnectionError, requests.Timeout) as error:
        raise QuotaError(
            f"could not reach the Compute Engine API: {type(error).__name__}"
        ) from None
    if response.status_code == 200:
        document: dict[str, Any] = response.json()
        return document
    hint = ""
    if response.status_code in (401, 403):
        hint = (
            " Check `gcloud auth login`, that the Compute Engine API is enabled "
            f"(gcloud services enable compute.googleapis.com --project {project}) and that you "
            "may read the project."
        )
    raise QuotaError(
        f"the Compute Engine API answered HTTP {response.status_code} for region {region} of "
        f"project {project}.{hint} Answer: {response.text[:300]}"
    )


def gcloud_access_token() -> str:
    try:
        return access_token("pass --skip-quota-check")
    except GcloudError as error:
        raise QuotaError(f"reading the CPU quota: {error}") from None
