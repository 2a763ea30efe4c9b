"""E2 rates from Cloud Billing Catalog SKUs, and the price catalogue file they go into.

Pure: SKU documents in (as `services.skus.list` returns them), rates and YAML text out.
Compute Engine bills E2 as one vCPU SKU and one RAM SKU per region group ("E2 Instance
Core running in Americas" lists every region it prices in `serviceRegions`); a machine's
price is vCPUs x the first and GiB x the second.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import yaml

COMPUTE_ENGINE_SERVICE = "6F81-5844-456A"
ON_DEMAND = "OnDemand"
# Only the predefined on-demand E2 SKUs: "Spot Preemptible E2 ...", "E2 Custom ..." and
# "Commitment v1: E2 ..." descriptions do not match.
_E2_SKU = re.compile(r"^E2 Instance (?P<kind>Core|Ram) running in ")
_SPOT_E2_SKU = re.compile(r"^Spot Preemptible E2 Instance (?P<kind>Core|Ram) running in ")
PREEMPTIBLE = "Preemptible"
_RATE_KEYS = {"Core": ("vcpu_hour", "h"), "Ram": ("gib_hour", "GiBy.h")}
# The shape the spot fraction is taken on (4 vCPUs, 16 GiB: e2-standard-4).
SPOT_REFERENCE = {"vcpu_hour": 4, "gib_hour": 16}
NANOS_PER_UNIT = 1_000_000_000

PRICES_HEADER = """\
# On-demand GCP prices the cost estimates use, in USD. Prices change on their own schedule:
# update this file (with its date and source), never the code. `scripts/refresh_prices.py`
# rewrites it from the Cloud Billing Catalog API, adding a catalogue named for the month.
#
# current: the catalogue `pulumi up` and `plan` price with.
# Each catalogue:
#   e2: predefined E2 rates by region, per vCPU-hour and per GiB-hour.
#   fallback_region: whose rates price a region the catalogue has none for (the plan warns).
#   regions: every GCP region (zones are checked against it); the refresh takes them from
#     the SKUs' serviceRegions. Hand-kept catalogues: GCP's region list as of their date.
#   custom_e2_multiplier: custom E2 shapes cost this much more than predefined ones
#     (0.022902 per vCPU-hour and 0.0030697 per GiB-hour in us-central1).
#   spot_fractions: {family: {region: fraction}}: what a 4-vCPU, 16-GiB machine of the
#     family costs on Spot VMs over on demand there, from the "Spot Preemptible" SKUs.
#     Spot prices are dynamic (up to daily) and differ by family (0.22 to 0.60) and region:
#     a region without its own is priced at the fallback region's (the plan warns); a
#     family without any cannot be priced on spot until the refresh adds it.
#   gke_cluster_hour, gke_free_tier_credit_month: the GKE management fee and the free tier
#     credit that covers one zonal cluster per billing account (74.40 USD a month).
#   forwarding_rule_hour, external_ipv4_hour: load balancer and public address.
#   disk_gb_month: boot disk price per GB-month by disk type (hyperdisk-balanced: its
#     capacity; the baseline IOPS and throughput a boot disk gets are not billed extra).
#   families: the other machine families' rates (infra/data/families.yaml) by region, per
#     vCPU-hour and GiB-hour; a region without them is priced at the fallback region's.
#     A family missing here cannot be planned until the refresh adds it.
#   family_sources: where each family's rates come from; unverified_families: those not
#     read from the Billing Catalog (the plan warns until a refresh replaces them).
#   custom_multipliers: what a family's custom shapes cost over its predefined ones.
#   spot_sources: where the spot fractions come from.
#   gpus: {accelerator: {region: {hour, spot_hour}}}: one GPU's on-demand and Spot price
#     an hour (infra/data/gpus.yaml), billed beside its host machine's vCPUs and memory;
#     a region without its own is priced at the fallback region's (the plan warns).
#   gpu_sources: where the GPU prices come from.
"""


def _unit_price(sku: Mapping[str, Any], unit: str) -> float:
    """The SKU's current price for one `unit` (its first tier)."""
    expression = sku["pricingInfo"][0]["pricingExpression"]
    if expression.get("usageUnit") != unit:
        raise ValueError(
            f"SKU {sku.get('skuId')} ({sku.get('description')}) is priced per "
            f"{expression.get('usageUnit')!r}, not {unit!r}: the catalogue changed its units."
        )
    tiers = sorted(expression["tieredRates"], key=lambda tier: tier.get("startUsageAmount", 0))
    price = tiers[0]["unitPrice"]
    return round(int(price.get("units") or 0) + int(price.get("nanos") or 0) / NANOS_PER_UNIT, 10)


def e2_rates(
    skus: Iterable[Mapping[str, Any]], *, spot: bool = False
) -> dict[str, dict[str, float]]:
    """{region: {"vcpu_hour": ..., "gib_hour": ...}} for every region with both E2 SKUs
    (on demand, or with `spot` the Spot VM SKUs).

    Where two SKUs price one region, the one naming fewer regions (the more specific) wins.
    """
    pattern, usage = (_SPOT_E2_SKU, PREEMPTIBLE) if spot else (_E2_SKU, ON_DEMAND)
    return _rates(skus, pattern, usage)


def family_rates(
    skus: Iterable[Mapping[str, Any]], sku_names: Mapping[str, str], *, spot: bool = False
) -> dict[str, dict[str, dict[str, float]]]:
    """{family: {region: rates}} from each family's on-demand "<name> Core/Ram running in"
    SKUs (`sku_names`: family -> name, e.g. "N2D AMD Instance"), or with `spot` its "Spot
    Preemptible <name> ..." ones; families without any left out."""
    listed = list(skus)
    found = {}
    prefix, usage = ("Spot Preemptible ", PREEMPTIBLE) if spot else ("", ON_DEMAND)
    for family, name in sku_names.items():
        pattern = re.compile(rf"^{prefix}{re.escape(name)} (?P<kind>Core|Ram) running in ")
        rates = _rates(listed, pattern, usage)
        if rates:
            found[family] = rates
    return found


def _rates(
    skus: Iterable[Mapping[str, Any]], pattern: re.Pattern[str], usage: str
) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, tuple[int, float]]] = {}
    for sku in skus:
        match = pattern.match(str(sku.get("description", "")))
        if not match or sku.get("category", {}).get("usageType") != usage:
            continue
        key, unit = _RATE_KEYS[match["kind"]]
        regions = list(sku.get("serviceRegions") or [])
        price = _unit_price(sku, unit)
        for region in regions:
            known = found.setdefault(region, {}).get(key)
            if known is None or len(regions) < known[0]:
                found[region][key] = (len(regions), price)
    return {
        region: {key: rates[key][1] for key in ("vcpu_hour", "gib_hour")}
        for region, rates in sorted(found.items())
        if len(rates) == 2
    }


def spot_fractions(
    skus: Iterable[Mapping[str, Any]],
    sku_names: Mapping[str, str],
    e2_on_demand: Mapping[str, Mapping[str, float]],
    on_demand: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> dict[str, dict[str, float]]:
    """{family: {region: spot fraction}} for E2 and every family the SKUs price on spot,
    in every region that has both its spot and its on-demand rates."""
    listed = list(skus)
    spot = {"e2": e2_rates(listed, spot=True), **family_rates(listed, sku_names, spot=True)}
    regular = {"e2": e2_on_demand, **on_demand}
    found: dict[str, dict[str, float]] = {}
    for family, table in spot.items():
        for region, rates in table.items():
            fraction = fraction_of(rates, (regular.get(family) or {}).get(region))
            if fraction is not None:
                found.setdefault(family, {})[region] = fraction
    return found


def fraction_of(
    spot: Mapping[str, float] | None, rates: Mapping[str, float] | None
) -> float | None:
    """A 4-vCPU, 16-GiB machine's spot price over its on-demand one."""
    if not spot or not rates:
        return None

    def price(r: Mapping[str, float]) -> float:
        return sum(r[key] * amount for key, amount in SPOT_REFERENCE.items())

    return round(price(spot) / price(rates), 4)


def gpu_prices(
    skus: Iterable[Mapping[str, Any]], sku_names: Mapping[str, str]
) -> dict[str, dict[str, dict[str, float]]]:
    """{accelerator: {region: {"hour": ..., "spot_hour": ...}}} from each GPU's "<name>
    running in" SKUs, on demand and "Spot Preemptible" (`sku_names`: accelerator -> name,
    e.g. "Nvidia L4 GPU"), in every region that has both; GPUs without any left out."""
    listed = list(skus)
    found: dict[str, dict[str, dict[str, float]]] = {}
    for gpu, name in sku_names.items():
        prices: dict[str, dict[str, float]] = {}
        for key, prefix, usage in (
            ("hour", "", ON_DEMAND),
            ("spot_hour", "Spot Preemptible ", PREEMPTIBLE),
        ):
            pattern = re.compile(rf"^{prefix}{re.escape(name)} running in ")
            span: dict[str, int] = {}
            for sku in listed:
                if not pattern.match(str(sku.get("description", ""))):
                    continue
                if sku.get("category", {}).get("usageType") != usage:
                    continue
                regions = list(sku.get("serviceRegions") or [])
                price = _unit_price(sku, "h")
                for region in regions:
                    if region not in span or len(regions) < span[region]:
                        span[region] = len(regions)
                        prices.setdefault(region, {})[key] = price
        complete = {r: p for r, p in sorted(prices.items()) if len(p) == 2}
        if complete:
            found[gpu] = {
                r: {"hour": p["hour"], "spot_hour": p["spot_hour"]} for r, p in complete.items()
            }
    return found


_REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")


def service_regions(skus: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every GCP region the Compute Engine SKUs are sold in (multi-regions and "global"
    left out): the regions zones are checked against."""
    return sorted(
        {
            str(region)
            for sku in skus
            for region in sku.get("serviceRegions") or []
            if _REGION.match(str(region))
        }
    )


def with_new_catalogue(
    prices: Mapping[str, Any],
    rates: Mapping[str, Mapping[str, float]],
    as_of: date,
    regions: Iterable[str] = (),
    *,
    families: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    spot: Mapping[str, Mapping[str, float]] | None = None,
    gpus: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> dict[str, Any]:
    """The price file's data with a catalogue named for `as_of`'s month holding `rates`
    (and `regions`, when the SKUs named any; the families' rates and the spot fractions
    they priced), made current. Everything else is carried over from the current
    catalogue."""
    if not rates:
        raise ValueError("the catalogue lists no E2 vCPU and RAM SKUs; nothing to write")
    base = prices["catalogues"][prices["current"]]
    name = as_of.strftime("%Y-%m")
    catalogue: dict[str, Any] = {
        "source": (
            "Cloud Billing Catalog API (services/"
            f"{COMPUTE_ENGINE_SERVICE}/skus, on-demand 'E2 Instance Core/Ram' SKUs) for the "
            f"E2 rates; the other prices carried over from catalogue {prices['current']}."
        ),
        "as_of": as_of.isoformat(),
        "e2": {region: dict(rate) for region, rate in sorted(rates.items())},
        **{key: value for key, value in base.items() if key not in ("source", "as_of", "e2")},
    }
    if regions:
        catalogue["regions"] = sorted(set(regions) | set(rates))
    if families:
        read = {
            family: {r: dict(v) for r, v in sorted(t.items())} for family, t in families.items()
        }
        catalogue["families"] = {**(base.get("families") or {}), **read}
        catalogue["family_sources"] = {
            **(base.get("family_sources") or {}),
            **{family: f"Billing Catalog SKUs, read {as_of.isoformat()}" for family in read},
        }
        catalogue["unverified_families"] = [
            family for family in base.get("unverified_families") or [] if family not in read
        ]
    if spot:
        fractions = {f: dict(t) for f, t in (base.get("spot_fractions") or {}).items()}
        for family, table in spot.items():
            fractions[family] = {**fractions.get(family, {}), **dict(sorted(table.items()))}
        catalogue["spot_fractions"] = fractions
        catalogue["spot_sources"] = (
            f"'Spot Preemptible' SKUs, read {as_of.isoformat()}, for "
            f"{', '.join(f.upper() for f in sorted(spot))}; the rest carried over"
        )
        catalogue["source"] += " spot_fractions from the 'Spot Preemptible' SKUs."
    if gpus:
        known: Mapping[str, Mapping[str, Any]] = base.get("gpus") or {}
        gpu_table: dict[str, dict[str, dict[str, float]]] = {
            g: {r: dict(p) for r, p in t.items()} for g, t in known.items()
        }
        for gpu, fresh in gpus.items():
            carried = gpu_table.get(gpu, {})
            gpu_table[gpu] = {**carried, **{r: dict(p) for r, p in sorted(fresh.items())}}
        catalogue["gpus"] = gpu_table
        catalogue["gpu_sources"] = (
            f"on-demand and 'Spot Preemptible' GPU SKUs, read {as_of.isoformat()}, for "
            f"{', '.join(sorted(gpus))}; the rest carried over"
        )
    if catalogue["fallback_region"] not in catalogue["e2"]:
        catalogue["fallback_region"] = next(iter(catalogue["e2"]))
    updated = dict(prices)
    updated["catalogues"] = {**prices["catalogues"], name: catalogue}
    updated["current"] = name
    return updated


class _NoAliases(yaml.SafeDumper):
    """Writes a value carried over from another catalogue in full, not as an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_prices(prices: Mapping[str, Any]) -> str:
    """infra/data/prices.yaml's text for this data: the explanatory header, then the data."""
    body = yaml.dump(
        dict(prices), Dumper=_NoAliases, sort_keys=False, width=96, default_flow_style=None
    )
    return PRICES_HEADER + body
