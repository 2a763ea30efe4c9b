"""The project's quotas against the sweep's largest phases, one quota metric at a time.

`needs` is pure: for every phase (each capacity search, each change of node pool at its
peak, the cluster's creation) what it holds at once in the region, per Compute Engine
quota metric:
- CPUS (regional): the vCPUs of E2 machines (and N1's: Compute Engine counts both there);
  CPUS_ALL_REGIONS (the project's, across regions): every vCPU;
- N2_CPUS, C3_CPUS... (regional, where the project lists them): the vCPUs of each other
  machine family's machines (infra/data/families.yaml names each family's metric);
- PREEMPTIBLE_CPUS (regional): Spot VMs' vCPUs instead of their standard metric, once the
  project has preemptible quota in the region (a limit above 0; until then Spot VMs count
  against the standard quotas, as Compute Engine's Spot VM page says);
- IN_USE_ADDRESSES (regional): one external IPv4 address per node, since the nodes are not
  private (and one per external load balancer);
- NVIDIA_L4_GPUS, NVIDIA_T4_GPUS (regional): the serving pool's GPUs (infra/data/gpus.yaml
  names each GPU's metric), or PREEMPTIBLE_NVIDIA_<MODEL>_GPUS for Spot VMs' once the
  project has that quota in the region; GPUS_ALL_REGIONS (the project's): every GPU, whose
  limit is 0 on a new project until raised;
then the largest of each over the sweep. A new project often has 24 CPUS in a region, 32
CPUS_ALL_REGIONS and 8 IN_USE_ADDRESSES: the 2-vCPU presets run 8 serving nodes, up to 4
load-generator nodes and a surge node at once.

`check` compares them with the quotas Compute Engine's `regions.get` and `projects.get`
answer (`quotas: [{metric, limit, usage}]`); `fetch_region` and `fetch_project` read those
with the gcloud account's access token (infra/gcp/credentials.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from infra.design.machine import family_facts, machine_family
from infra.gcp.credentials import GcloudError, access_token
from infra.sweep.changes import Step
from infra.sweep.durations import Durations
from infra.sweep.experiment import Planned

COMPUTE_API = "https://compute.googleapis.com"
TIMEOUT_SECONDS = (10.0, 30.0)
REGIONAL, PROJECT = "region", "project"
# metric -> where Compute Engine counts it; a family's CPU metric (N2_CPUS, C3_CPUS...)
# and PREEMPTIBLE_CPUS are regional, listed between CPUS and IN_USE_ADDRESSES.
METRICS = {
    "CPUS": REGIONAL,
    "IN_USE_ADDRESSES": REGIONAL,
    "CPUS_ALL_REGIONS": PROJECT,
    "GPUS_ALL_REGIONS": PROJECT,
}
PREEMPTIBLE = "PREEMPTIBLE_CPUS"
GPUS_ALL_REGIONS = "GPUS_ALL_REGIONS"
# Without these a check means nothing; the others are checked where the project has them.
REQUIRED = ("CPUS",)
# GKE's default pool, one e2-medium node, exists while a cluster is created.
DEFAULT_POOL_MACHINE = "e2-medium"


class QuotaError(RuntimeError):
    """The quota could not be read, or is short; the message says what to do."""


@dataclass(frozen=True)
class Demand:
    """The most of one quota metric the sweep holds at once, and in which phase."""

    metric: str
    amount: int
    where: str

    @property
    def scope(self) -> str:
        return METRICS.get(self.metric, REGIONAL)

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "scope": self.scope,
            "amount": self.amount,
            "largest_phase": self.where,
        }


@dataclass(frozen=True)
class Need:
    """What the sweep needs of each quota metric."""

    demands: tuple[Demand, ...]

    def of(self, metric: str) -> Demand:
        return next(d for d in self.demands if d.metric == metric)

    @property
    def vcpus(self) -> int:
        return self.of("CPUS").amount

    @property
    def where(self) -> str:
        return self.of("CPUS").where

    def to_json(self) -> dict[str, Any]:
        return {
            "vcpus": self.vcpus,
            "largest_phase": self.where,
            "metrics": [d.to_json() for d in self.demands],
        }

    def describe(self) -> str:
        return "; ".join(f"{d.metric} {d.amount} ({d.where})" for d in self.demands)


def cpu_metric(machine_type: str) -> str:
    """The regional quota metric of a machine type's vCPUs: CPUS (E2), N2_CPUS..."""
    return str(family_facts(machine_family(machine_type))["quota_metric"])


@dataclass(frozen=True)
class _Phase:
    where: str
    # (quota metric, serving vCPUs counted against it, on Spot VMs): two pools while one
    # replaces another
    serving: tuple[tuple[str, int, bool], ...]
    serving_nodes: int
    experiment: Planned | None  # its load-generator pool at its most and its load balancer
    extra_e2_vcpus: int = 0
    extra_nodes: int = 0
    # (quota metric, its preemptible twin, GPUs, on Spot VMs): the serving pools' GPUs.
    gpus: tuple[tuple[str, str, int, bool], ...] = ()

    def amounts(
        self, preemptible: bool, preemptible_gpus: frozenset[str] = frozenset()
    ) -> dict[str, int]:
        """metric -> vCPUs or addresses held; with `preemptible`, Spot VMs' vCPUs count
        against PREEMPTIBLE_CPUS instead of their standard metric."""
        experiment = self.experiment
        groups = list(self.serving)
        if experiment and experiment.load_generator_max_vcpus:
            groups.append(
                (
                    cpu_metric(experiment.load_generator_machine_type),
                    experiment.load_generator_max_vcpus,
                    experiment.load_generator_spot,
                )
            )
        if self.extra_e2_vcpus:
            groups.append((cpu_metric(DEFAULT_POOL_MACHINE), self.extra_e2_vcpus, False))
        addresses = self.serving_nodes + self.extra_nodes
        if experiment:
            addresses += experiment.load_generator_max_nodes + experiment.external_addresses
        amounts = {
            "CPUS": 0,
            "CPUS_ALL_REGIONS": sum(vcpus for _, vcpus, _ in groups),
            "IN_USE_ADDRESSES": addresses,
        }
        for metric, vcpus, spot in groups:
            counted = PREEMPTIBLE if spot and preemptible else metric
            amounts[counted] = amounts.get(counted, 0) + vcpus
        if self.gpus:
            amounts[GPUS_ALL_REGIONS] = sum(count for _, _, count, _ in self.gpus)
        for metric, twin, count, spot in self.gpus:
            counted = twin if spot and twin in preemptible_gpus else metric
            amounts[counted] = amounts.get(counted, 0) + count
        return amounts


def _phases(steps: Sequence[Step], durations: Durations) -> list[_Phase]:
    phases = []
    for step in steps:
        experiment = step.experiment
        metric = cpu_metric(experiment.machine_type)
        phases.append(
            _Phase(
                f"{experiment.name}'s capacity search: {experiment.describe_shape()} + the "
                "load-generator pool at its most",
                ((metric, experiment.serving_vcpus, experiment.spot),),
                experiment.nodes,
                experiment,
                gpus=_gpus(experiment),
            )
        )
        previous = step.previous
        # At the peak of a change of pool, the old nodes' and the new ones' vCPUs: each
        # counted against its own metric, at most the peak.
        peak = step.pool.peak_vcpus
        change = (
            ((metric, peak, experiment.spot),)
            if previous is None
            or (cpu_metric(previous.machine_type), previous.spot) == (metric, experiment.spot)
            else (
                (metric, min(peak, experiment.serving_vcpus), experiment.spot),
                (
                    cpu_metric(previous.machine_type),
                    min(peak, previous.serving_vcpus),
                    previous.spot,
                ),
            )
        )
        phases.append(
            _Phase(
                f"the change to {experiment.name} ({step.pool.kind}): {step.pool.peak_vcpus} "
                f"serving vCPUs on {step.pool.peak_nodes} nodes at its peak + the "
                "load-generator pool still up",
                change,
                step.pool.peak_nodes,
                experiment,
                # At most both pools' GPUs at once.
                gpus=_gpus(experiment) + (_gpus(previous) if previous else ()),
            )
        )
        if previous is None:
            phases.append(
                _Phase(
                    f"the cluster's creation (GKE's default pool, one {DEFAULT_POOL_MACHINE})",
                    (),
                    0,
                    None,
                    extra_e2_vcpus=durations.default_pool_vcpus,
                    extra_nodes=1,
                )
            )
    return phases


def _gpus(experiment: Planned) -> tuple[tuple[str, str, int, bool], ...]:
    if not experiment.gpus:
        return ()
    return (
        (
            experiment.gpu_quota_metric,
            experiment.gpu_preemptible_metric,
            experiment.gpus,
            experiment.spot,
        ),
    )


def needs(
    steps: Sequence[Step],
    durations: Durations,
    *,
    preemptible: bool = False,
    preemptible_gpus: frozenset[str] = frozenset(),
) -> Need:
    """The most the sweep holds at once of each quota metric, and where; with
    `preemptible` (the project has preemptible quota in the region), Spot VMs' vCPUs on
    PREEMPTIBLE_CPUS, and their GPUs on the PREEMPTIBLE_NVIDIA_..._GPUS metrics of
    `preemptible_gpus` (those the project has quota of)."""
    best: dict[str, Demand] = {}
    for phase in _phases(steps, durations):
        for metric, amount in phase.amounts(preemptible, preemptible_gpus).items():
            if metric not in best or amount > best[metric].amount:
                best[metric] = Demand(metric, amount, phase.where)
    families = sorted(
        (m for m in best if m not in METRICS and best[m].amount),
        key=lambda m: (m == PREEMPTIBLE, m),
    )
    order = [m for m in ("CPUS",) if best[m].amount] + families
    tail = ["IN_USE_ADDRESSES", "CPUS_ALL_REGIONS"]
    if GPUS_ALL_REGIONS in best:
        tail.append(GPUS_ALL_REGIONS)
    return Need(tuple(best[metric] for metric in [*order, *tail]))


def gpu_metrics(need: Need) -> list[str]:
    """The regional GPU metrics a sweep needs (NVIDIA_L4_GPUS...): a region that lists none
    of one does not offer that GPU to the project."""
    return [d.metric for d in need.demands if d.metric.endswith("_GPUS") and d.scope == REGIONAL]


def preemptible_gpu_quota(region: dict[str, Any]) -> frozenset[str]:
    """The PREEMPTIBLE_NVIDIA_..._GPUS metrics the project has quota of in the region (a
    limit above 0): Spot VMs' GPUs count there instead of against the standard metric."""
    return frozenset(
        metric
        for metric, quota in _quotas(region).items()
        if str(metric).startswith("PREEMPTIBLE_NVIDIA_") and float(quota.get("limit", 0)) > 0
    )


def preemptible_quota(region: dict[str, Any]) -> bool:
    """Whether the project has preemptible quota in the region (a PREEMPTIBLE_CPUS limit
    above 0): from then on Spot VMs count there instead of against the standard quotas."""
    quota = _quotas(region).get(PREEMPTIBLE)
    return quota is not None and float(quota.get("limit", 0)) > 0


def _quotas(document: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {q.get("metric"): q for q in (document or {}).get("quotas") or []}


def check(
    region: dict[str, Any], project_document: dict[str, Any] | None, need: Need, project: str
) -> list[str]:
    """What is short, one message per quota metric; empty when every phase fits."""
    problems = []
    name = region.get("name", "?")
    quotas = {REGIONAL: _quotas(region), PROJECT: _quotas(project_document)}
    for demand in need.demands:
        quota = quotas[demand.scope].get(demand.metric)
        if quota is None:
            if demand.metric in REQUIRED:
                problems.append(
                    f"the Compute Engine API listed no {demand.metric} quota for {name}"
                )
            elif demand.metric.endswith("_GPUS"):
                problems.append(
                    f"{name} lists no {demand.metric} quota for the project, and the sweep "
                    f"needs {demand.amount} ({demand.where}): the GPU is not offered to it "
                    f"there. Request it: https://console.cloud.google.com/iam-admin/quotas?"
                    f"project={project}&metric=compute.googleapis.com%2F"
                    f"{demand.metric.lower()} , or sweep in a region that has it."
                )
            continue
        limit, usage = float(quota.get("limit", 0)), float(quota.get("usage", 0))
        free = limit - usage
        if demand.amount > free:
            where = name if demand.scope == REGIONAL else "the project (all regions)"
            location = f"&location={name}" if demand.scope == REGIONAL else ""
            problems.append(
                f"{demand.metric} quota in {where}: {free:g} of {limit:g} free ({usage:g} in "
                f"use), but the sweep needs {demand.amount} at once ({demand.where}). Request "
                f"at least {usage + demand.amount:g}: https://console.cloud.google.com/"
                f"iam-admin/quotas?project={project}{location}&metric=compute.googleapis.com"
                f"%2F{demand.metric.lower()} . {_advice(demand.metric)}"
            )
    return problems


def _advice(metric: str) -> str:
    if "GPUS" in metric:
        return (
            "GPU quota is granted on request, often after a few days; GPUS_ALL_REGIONS is 0 "
            "on a new project. Or sweep fewer GPU nodes at once."
        )
    if metric == "IN_USE_ADDRESSES":
        return (
            "Each node holds an external address: sweep fewer nodes at once, or lower "
            "loadGeneratorMaxNodes (--set loadGeneratorMaxNodes=N)."
        )
    return (
        "Or sweep fewer or smaller shapes, or lower loadGeneratorMaxNodes "
        "(--set loadGeneratorMaxNodes=N)."
    )


def _get(url: str, token: str, what: str, project: str, session: requests.Session | None) -> Any:
    http = session or requests.Session()
    try:
        response = http.get(
            url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_SECONDS
        )
    except (requests.ConnectionError, requests.Timeout) as error:
        raise QuotaError(
            f"could not reach the Compute Engine API: {type(error).__name__}"
        ) from None
    if response.status_code == 200:
        return response.json()
    hint = ""
    if response.status_code in (401, 403):
        hint = (
            " Check `gcloud auth login`, that the Compute Engine API is enabled "
            f"(gcloud services enable compute.googleapis.com --project {project}) and that you "
            "may read the project (roles/compute.viewer)."
        )
    raise QuotaError(
        f"the Compute Engine API answered HTTP {response.status_code} for {what} of "
        f"project {project}.{hint} Answer: {response.text[:300]}"
    )


def fetch_region(
    project: str,
    region: str,
    token: str,
    *,
    base_url: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Compute Engine's `regions.get` for the project: the regional quotas."""
    url = f"{(base_url or COMPUTE_API).rstrip('/')}/compute/v1/projects/{project}/regions/{region}"
    document: dict[str, Any] = _get(url, token, f"region {region}", project, session)
    return document


def fetch_project(
    project: str,
    token: str,
    *,
    base_url: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """Compute Engine's `projects.get`: the project-wide quotas (CPUS_ALL_REGIONS...)."""
    url = f"{(base_url or COMPUTE_API).rstrip('/')}/compute/v1/projects/{project}"
    document: dict[str, Any] = _get(url, token, "the project's quotas", project, session)
    return document


def gcloud_access_token() -> str:
    try:
        return access_token("pass --skip-quota-check")
    except GcloudError as error:
        raise QuotaError(f"reading the quotas: {error}") from None
