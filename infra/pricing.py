"""Cost estimates for an experiment, from the dated price catalogue in infra/data/prices.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.errors import ConfigError
from infra.facts import load
from infra.machine import MachineShape


@dataclass(frozen=True)
class CostLine:
    """One billed item: what, how many, and its price."""

    item: str
    quantity: float
    usd_per_hour: float

    @property
    def usd_per_month(self) -> float:
        return self.usd_per_hour * hours_per_month()


@dataclass(frozen=True)
class CostEstimate:
    """The hourly and monthly list price of one experiment stack."""

    catalogue: str
    as_of: str
    region: str
    lines: tuple[CostLine, ...]
    free_tier_credit_usd_per_month: float

    @property
    def usd_per_hour(self) -> float:
        return sum(line.usd_per_hour for line in self.lines)

    @property
    def usd_per_month(self) -> float:
        return self.usd_per_hour * hours_per_month()


def hours_per_month() -> int:
    return int(load("prices")["hours_per_month"])


def catalogue(name: str | None = None) -> tuple[str, dict[str, Any]]:
    """The named price catalogue (default: the current one) and its name."""
    prices = load("prices")
    chosen = name or prices["current"]
    return chosen, prices["catalogues"][chosen]


def node_usd_per_hour(
    shape: MachineShape, region: str, spot: bool, catalogue_name: str | None = None
) -> float:
    """On-demand (or spot) price of one node of this shape in this region."""
    name, prices = catalogue(catalogue_name)
    if region not in prices["e2"]:
        raise ConfigError(
            "zone",
            f"no E2 prices for region {region!r} in price catalogue {name}. Priced regions: "
            f"{', '.join(sorted(prices['e2']))}. Add the region to infra/data/prices.yaml "
            "or pick a zone in one of these.",
        )
    rates = prices["e2"][region]
    per_hour = shape.billed_vcpus * rates["vcpu_hour"] + shape.memory_gib * rates["gib_hour"]
    if shape.custom:
        per_hour *= prices["custom_e2_multiplier"]
    if spot:
        per_hour *= prices["spot_fraction"]
    return float(per_hour)


def estimate_cost(
    *,
    shape: MachineShape,
    node_count_total: int,
    region: str,
    spot: bool,
    regional_cluster: bool,
    disk_type: str,
    disk_size_gb: int,
    external_ip: bool,
    catalogue_name: str | None = None,
) -> CostEstimate:
    """Every billed item of an experiment stack: nodes, disks, GKE fee, load balancer."""
    name, prices = catalogue(catalogue_name)
    node_rate = node_usd_per_hour(shape, region, spot, name)
    disk_rate = prices["disk_gb_month"][disk_type] / hours_per_month()
    kind = "spot " if spot else ""
    lines = [
        CostLine(
            f"{kind}{shape.machine_type} nodes", node_count_total, node_count_total * node_rate
        ),
        CostLine(
            f"{disk_type} boot disks, {disk_size_gb} GB each",
            node_count_total,
            node_count_total * disk_size_gb * disk_rate,
        ),
        CostLine("GKE cluster management fee", 1, prices["gke_cluster_hour"]),
        CostLine("load balancer forwarding rule", 1, prices["forwarding_rule_hour"]),
    ]
    if external_ip:
        lines.append(CostLine("external IPv4 address", 1, prices["external_ipv4_hour"]))
    credit = 0.0 if regional_cluster else float(prices["gke_free_tier_credit_month"])
    return CostEstimate(name, str(prices["as_of"]), region, tuple(lines), credit)
