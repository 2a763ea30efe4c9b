"""Cost estimates for an experiment, from the dated price catalogue in infra/data/prices.yaml."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.data import load
from infra.design.machine import MachineShape
from infra.inputs.errors import ConfigError, did_you_mean


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
    # The region whose E2 rates priced the nodes: `region`, or the catalogue's fallback
    # when it has no rates for `region` (then `warnings` says so).
    rates_region: str = ""
    warnings: tuple[str, ...] = ()
    # Billed only while a benchmark runs (the load-generator pool scales from zero): at
    # most this much an hour, on top of the lines above.
    while_benchmarking: tuple[CostLine, ...] = ()

    @property
    def benchmarking_usd_per_hour(self) -> float:
        return sum(line.usd_per_hour for line in self.while_benchmarking)

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


def rates_region(region: str, catalogue_name: str | None = None) -> str:
    """The region whose E2 rates price nodes in `region`: itself when the catalogue has
    rates for it, else the catalogue's fallback region."""
    _, prices = catalogue(catalogue_name)
    return region if region in prices["e2"] else str(prices["fallback_region"])


def unpriced_region_warning(region: str, catalogue_name: str | None = None) -> str:
    """What the plan says when a region has no E2 rates in the catalogue."""
    name, prices = catalogue(catalogue_name)
    known = load("gke")["regions"]
    unknown = (
        ""
        if region in known
        else f" {region!r} is also not a GCP region this project knows (infra/data/gke.yaml): "
        f"a region that does not exist fails at pulumi up.{did_you_mean(region, known)}"
    )
    vcpu_rates = [rates["vcpu_hour"] for rates in prices["e2"].values()]
    spread = max(vcpu_rates) / min(vcpu_rates) - 1
    return (
        f"no E2 prices for region {region!r} in price catalogue {name} "
        f"({len(prices['e2'])} regions priced), so its nodes are priced at "
        f"{prices['fallback_region']} rates; E2 rates differ by region (by up to "
        f"{spread:.0%} among the priced ones). Refresh the catalogue from the Cloud Billing "
        "Catalog API with `venv/bin/python scripts/refresh_prices.py` (uses your gcloud "
        f"credentials).{unknown}"
    )


def _priced_region(table: Mapping[str, Any], region: str, prices: Mapping[str, Any]) -> str:
    """The region of `table` that prices `region`: itself, else the catalogue's fallback
    region, else the table's first."""
    fallback = str(prices["fallback_region"])
    return region if region in table else fallback if fallback in table else next(iter(table))


def family_rates(
    family: str, region: str, catalogue_name: str | None = None
) -> tuple[dict[str, float], str]:
    """A non-E2 family's rates in `region` (else at the fallback region's) and the region
    they are of; ConfigError when the catalogue has none for the family."""
    name, prices = catalogue(catalogue_name)
    table = (prices.get("families") or {}).get(family)
    if not table:
        sku = load("families")["families"][family]["sku"]
        raise ConfigError(
            "machineType",
            f"price catalogue {name} has no {family.upper()} prices, so its cost cannot be "
            "planned: run `venv/bin/python scripts/refresh_prices.py` (it reads the "
            f"'{sku} Core/Ram' SKUs), or pick another family.",
        )
    at = _priced_region(table, region, prices)
    return dict(table[at]), at


def family_price_warnings(family: str, region: str, catalogue_name: str | None = None) -> list[str]:
    """What the plan says of a non-E2 family's prices: unverified, or of another region."""
    if family == "e2":
        return []
    name, prices = catalogue(catalogue_name)
    _, at = family_rates(family, region, catalogue_name)
    warnings = []
    if family in (prices.get("unverified_families") or []):
        source = (prices.get("family_sources") or {}).get(family, "")
        warnings.append(
            f"{family.upper()} rates in price catalogue {name} are not read from the Billing "
            f"Catalog ({source}): run `venv/bin/python scripts/refresh_prices.py` before "
            "relying on the cost."
        )
    if at != region:
        warnings.append(
            f"no {family.upper()} prices for region {region!r} in price catalogue {name}: its "
            f"nodes are priced at {at} rates. Refresh the catalogue with "
            "`venv/bin/python scripts/refresh_prices.py`."
        )
    return warnings


def node_usd_per_hour(
    shape: MachineShape, region: str, spot: bool, catalogue_name: str | None = None
) -> float:
    """On-demand (or spot) price of one node of this shape in this region (at the fallback
    region's rates when the catalogue has none for it)."""
    _, prices = catalogue(catalogue_name)
    if shape.family == "e2":
        rates = prices["e2"][rates_region(region, catalogue_name)]
        multiplier = float(prices["custom_e2_multiplier"])
    else:
        rates, _ = family_rates(shape.family, region, catalogue_name)
        multiplier = float((prices.get("custom_multipliers") or {}).get(shape.family, 1.0))
    per_hour = shape.billed_vcpus * rates["vcpu_hour"] + shape.memory_gib * rates["gib_hour"]
    if shape.custom:
        per_hour *= multiplier
    if spot:
        per_hour *= spot_fraction(shape.family, region, catalogue_name)[0]
    return float(per_hour) + gpus_usd_per_hour(shape, region, spot, catalogue_name)


def gpu_rates(
    gpu_type: str, region: str, catalogue_name: str | None = None
) -> tuple[dict[str, float], str]:
    """One GPU's {hour, spot_hour} in `region` (else the fallback region's) and the region
    they are of; ConfigError when the catalogue has none for the GPU."""
    name, prices = catalogue(catalogue_name)
    table = (prices.get("gpus") or {}).get(gpu_type)
    if not table:
        gpu = load("gpus")["accelerators"][gpu_type]
        sku = gpu["sku"]
        raise ConfigError(
            # A GPU the machine type carries is chosen by machineType, else by gpuType.
            "machineType" if gpu.get("attached") else "gpuType",
            f"price catalogue {name} has no {gpu_type} prices, so its cost cannot be planned: "
            f"run `venv/bin/python scripts/refresh_prices.py` (it reads the '{sku}' SKUs).",
        )
    at = _priced_region(table, region, prices)
    return {k: float(v) for k, v in table[at].items()}, at


def gpus_usd_per_hour(
    shape: MachineShape, region: str, spot: bool, catalogue_name: str | None = None
) -> float:
    """What the GPUs of one node of this shape cost an hour (0 for a CPU machine)."""
    if not shape.gpus:
        return 0.0
    rates, _ = gpu_rates(shape.gpu_type, region, catalogue_name)
    return shape.gpus * rates["spot_hour" if spot else "hour"]


def gpu_price_warnings(
    shape: MachineShape, region: str, catalogue_name: str | None = None
) -> list[str]:
    """What the plan says when a GPU's price is of another region than the nodes'."""
    if not shape.gpus:
        return []
    name, _ = catalogue(catalogue_name)
    _, at = gpu_rates(shape.gpu_type, region, catalogue_name)
    if at == region:
        return []
    return [
        f"no {shape.gpu_type} price for region {region!r} in price catalogue {name}: its GPUs "
        f"are priced at {at}'s. Refresh the catalogue with "
        "`venv/bin/python scripts/refresh_prices.py`."
    ]


def spot_fraction(family: str, region: str, catalogue_name: str | None = None) -> tuple[float, str]:
    """What a family's Spot VMs cost in `region` as a fraction of on demand, and the region
    that fraction is of (the fallback region's when the catalogue has none for `region`);
    ConfigError when it has none for the family at all: spot prices differ by family (0.22
    to 0.60 of on demand) and are never borrowed from another one."""
    name, prices = catalogue(catalogue_name)
    table = (prices.get("spot_fractions") or {}).get(family)
    if not table:
        raise ConfigError(
            "spot",
            f"price catalogue {name} has no spot price for {family.upper()}, so spot nodes of "
            "it cannot be priced: run `venv/bin/python scripts/refresh_prices.py` (it reads "
            "the 'Spot Preemptible' SKUs), or set spot false.",
        )
    at = _priced_region(table, region, prices)
    return float(table[at]), at


def spot_price_warnings(family: str, region: str, catalogue_name: str | None = None) -> list[str]:
    """What the plan says when a spot fraction is of another region than the nodes'."""
    name, prices = catalogue(catalogue_name)
    fraction, at = spot_fraction(family, region, catalogue_name)
    if at == region:
        return []
    known = sorted((prices.get("spot_fractions") or {}).get(family, {}).values())
    spread = f" ({known[0]:g} to {known[-1]:g} where known)" if len(known) > 1 else ""
    return [
        f"no {family.upper()} spot price for region {region!r} in price catalogue {name}: "
        f"its spot nodes are priced at {at}'s fraction of on demand, {fraction:g}; spot "
        f"fractions differ by region{spread}. Refresh the catalogue with "
        "`venv/bin/python scripts/refresh_prices.py`."
    ]


@dataclass(frozen=True)
class NodeGroup:
    """Nodes of one shape and their boot disks."""

    shape: MachineShape
    count: int
    disk_type: str
    disk_size_gb: int
    spot: bool = False
    role: str = ""  # shown before "nodes", e.g. "load-generator"


def node_group_lines(group: NodeGroup, region: str, catalogue_name: str) -> list[CostLine]:
    """What a group of nodes bills an hour: the machines and their boot disks."""
    _, prices = catalogue(catalogue_name)
    gpu_rate = gpus_usd_per_hour(group.shape, region, group.spot, catalogue_name)
    node_rate = node_usd_per_hour(group.shape, region, group.spot, catalogue_name) - gpu_rate
    disk_rate = prices["disk_gb_month"][group.disk_type] / hours_per_month()
    kind = "spot " if group.spot else ""
    role = f"{group.role} " if group.role else ""
    gpus = (
        [
            CostLine(
                f"{kind}{group.shape.gpu_type} GPUs, {group.shape.gpus} per node",
                group.count * group.shape.gpus,
                group.count * gpu_rate,
            )
        ]
        if group.shape.gpus
        else []
    )
    return [
        CostLine(
            f"{kind}{group.shape.machine_type} {role}nodes", group.count, group.count * node_rate
        ),
        *gpus,
        CostLine(
            f"{group.disk_type} boot disks, {group.disk_size_gb} GB each",
            group.count,
            group.count * group.disk_size_gb * disk_rate,
        ),
    ]


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
    benchmark_nodes: NodeGroup | None = None,
    catalogue_name: str | None = None,
) -> CostEstimate:
    """Every billed item of an experiment stack: nodes, disks, GKE fee, load balancer; and
    apart, what its load-generator nodes bill while a benchmark runs (at most)."""
    name, prices = catalogue(catalogue_name)
    serving = NodeGroup(shape, node_count_total, disk_type, disk_size_gb, spot)
    lines = [
        *node_group_lines(serving, region, name),
        CostLine("GKE cluster management fee", 1, prices["gke_cluster_hour"]),
        CostLine("load balancer forwarding rule", 1, prices["forwarding_rule_hour"]),
    ]
    if external_ip:
        lines.append(CostLine("external IPv4 address", 1, prices["external_ipv4_hour"]))
    credit = 0.0 if regional_cluster else float(prices["gke_free_tier_credit_month"])
    priced_at = rates_region(region, name)
    warnings = (
        (() if priced_at == region else (unpriced_region_warning(region, name),))
        + tuple(family_price_warnings(shape.family, region, name))
        + tuple(spot_price_warnings(shape.family, region, name) if spot else ())
        + tuple(gpu_price_warnings(shape, region, name))
    )
    benchmarking = tuple(node_group_lines(benchmark_nodes, region, name)) if benchmark_nodes else ()
    return CostEstimate(
        name, str(prices["as_of"]), region, tuple(lines), credit, priced_at, warnings, benchmarking
    )
