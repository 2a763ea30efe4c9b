"""The project's quotas against the sweep's largest phases, one quota metric at a time.

`needs` is pure: for every phase (each capacity search, each change of node pool at its
peak, the cluster's creation) what it holds at once in the region, per Compute Engine
quota metric:
- CPUS (regional) and CPUS_ALL_REGIONS (the project's, across regions): every vCPU;
- E2_CPUS, N2_CPUS, C3_CPUS... (regional, where the project lists them): the vCPUs of
  each machine family's machines (infra/data/families.yaml names each family's metric);
- IN_USE_ADDRESSES (regional): one external IPv4 address per node, since the nodes are not
  private (and one per external load balancer);
then the largest of each over the sweep. A new project often has 24 CPUS in a region, 32
CPUS_ALL_REGIONS and 8 IN_USE_ADDRESSES: the 2-vCPU presets run 8 serving nodes, up to 4
load-generator nodes and a surge node at once.

`check` compares them with the quotas Compute Engine's `regions.get` and `projects.get`
answer (`quotas: [{metric, limit, usage}]`); `fetch_region` and `fetch_project` read those
with the gcloud account's access token (infra/gcloud.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from infra.gcloud import GcloudError, access_token
from infra.machine import family_facts, machine_family
from infra.sweep.changes import Step
from infra.sweep.durations import Durations
from infra.sweep.experiment import Planned

COMPUTE_API = "https://compute.googleapis.com"
TIMEOUT_SECONDS = (10.0, 30.0)
REGIONAL, PROJECT = "region", "project"
# metric -> where Compute Engine counts it; a family's CPU metric (E2_CPUS, N2_CPUS...) is
# regional, listed between CPUS and IN_USE_ADDRESSES.
METRICS = {
    "CPUS": REGIONAL,
    "IN_USE_ADDRESSES": REGIONAL,
    "CPUS_ALL_REGIONS": PROJECT,
}
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
    """The regional quota metric of a machine type's vCPUs: E2_CPUS, N2_CPUS..."""
    return str(family_facts(machine_family(machine_type))["quota_metric"])


@dataclass(frozen=True)
class _Phase:
    where: str
    # quota metric -> serving vCPUs counted against it (two families while one pool
    # replaces another)
    serving: dict[str, int]
    serving_nodes: int
    experiment: Planned | None  # its load-generator pool at its most and its load balancer
    extra_e2_vcpus: int = 0
    extra_nodes: int = 0

    def amounts(self) -> dict[str, int]:
        experiment = self.experiment
        generator_vcpus = experiment.load_generator_max_vcpus if experiment else 0
        generator_nodes = experiment.load_generator_max_nodes if experiment else 0
        vcpus = sum(self.serving.values()) + generator_vcpus + self.extra_e2_vcpus
        addresses = self.serving_nodes + generator_nodes + self.extra_nodes
        if experiment:
            addresses += experiment.external_addresses
        families = dict(self.serving)
        if experiment and generator_vcpus:
            metric = cpu_metric(experiment.load_generator_machine_type)
            families[metric] = families.get(metric, 0) + generator_vcpus
        if self.extra_e2_vcpus:
            families["E2_CPUS"] = families.get("E2_CPUS", 0) + self.extra_e2_vcpus
        return {"CPUS": vcpus, "CPUS_ALL_REGIONS": vcpus, "IN_USE_ADDRESSES": addresses} | families


def _phases(steps: Sequence[Step], durations: Durations) -> list[_Phase]:
    phases = []
    for step in steps:
        experiment = step.experiment
        metric = cpu_metric(experiment.machine_type)
        phases.append(
            _Phase(
                f"{experiment.name}'s capacity search: {experiment.describe_shape()} + the "
                "load-generator pool at its most",
                {metric: experiment.serving_vcpus},
                experiment.nodes,
                experiment,
            )
        )
        before = cpu_metric(step.previous.machine_type) if step.previous else metric
        # At the peak of a change of family, the old nodes' and the new ones' vCPUs: each
        # family's metric counts its own, at most the peak.
        peak = step.pool.peak_vcpus
        change = (
            {metric: peak}
            if before == metric or step.previous is None
            else {
                metric: min(peak, experiment.serving_vcpus),
                before: min(peak, step.previous.serving_vcpus),
            }
        )
        phases.append(
            _Phase(
                f"the change to {experiment.name} ({step.pool.kind}): {step.pool.peak_vcpus} "
                f"serving vCPUs on {step.pool.peak_nodes} nodes at its peak + the "
                "load-generator pool still up",
                change,
                step.pool.peak_nodes,
                experiment,
            )
        )
        if step.previous is None:
            phases.append(
                _Phase(
                    f"the cluster's creation (GKE's default pool, one {DEFAULT_POOL_MACHINE})",
                    {},
                    0,
                    None,
                    extra_e2_vcpus=durations.default_pool_vcpus,
                    extra_nodes=1,
                )
            )
    return phases


def needs(steps: Sequence[Step], durations: Durations) -> Need:
    """The most the sweep holds at once of each quota metric, and where."""
    best: dict[str, Demand] = {}
    for phase in _phases(steps, durations):
        for metric, amount in phase.amounts().items():
            if metric not in best or amount > best[metric].amount:
                best[metric] = Demand(metric, amount, phase.where)
    families = sorted((m for m in best if m not in METRICS), key=lambda m: (m != "E2_CPUS", m))
    order = ["CPUS", *families, "IN_USE_ADDRESSES", "CPUS_ALL_REGIONS"]
    return Need(tuple(best[metric] for metric in order))


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
