"""Cost estimates against the reference system's table and the price catalogue."""

from __future__ import annotations

import pytest

from infra.design.experiment import design_experiment
from infra.design.machine import parse_machine_type, shape_from_size
from infra.design.pricing import estimate_cost, node_usd_per_hour
from infra.design.settings import resolve_settings
from infra.inputs.errors import ConfigError

REFERENCE_TABLE = [  # shape x nodes -> USD for 24 hours (GCP calculator, us-central1)
    ("e2-custom-2-4096", 8, 11.15),
    ("e2-custom-4-8192", 4, 11.15),
    ("e2-custom-8-16384", 2, 11.15),
    ("e2-custom-8-65536", 2, 18.21),
]


@pytest.mark.parametrize(("machine_type", "nodes", "usd"), REFERENCE_TABLE)
def test_reference_cost_table_is_reproduced_to_the_cent(
    machine_type: str, nodes: int, usd: float
) -> None:
    shape = parse_machine_type(machine_type)
    day = nodes * node_usd_per_hour(shape, "us-central1", False, "reference-2022") * 24
    assert round(day, 2) == usd


def test_current_prices_put_the_64gb_row_one_cent_higher() -> None:
    rows = [
        round(n * node_usd_per_hour(parse_machine_type(t), "us-central1", False) * 24, 2)
        for t, n, _ in REFERENCE_TABLE
    ]
    assert rows == [11.15, 11.15, 11.15, 18.22]


def test_predefined_highmem_is_cheaper_than_the_custom_shape_the_reference_priced() -> None:
    predefined = node_usd_per_hour(shape_from_size(8, 64), "us-central1", False)
    custom = node_usd_per_hour(parse_machine_type("e2-custom-8-65536"), "us-central1", False)
    assert round(predefined, 6) == round(8 * 0.02181159 + 64 * 0.00292353, 6)
    assert predefined < custom


def test_spot_is_priced_at_the_spot_fraction() -> None:
    shape = parse_machine_type("e2-standard-4")
    on_demand = node_usd_per_hour(shape, "us-central1", False)
    assert node_usd_per_hour(shape, "us-central1", True) == pytest.approx(on_demand * 0.6)
    assert on_demand == pytest.approx(0.134023, abs=1e-6)


def test_estimate_lists_every_billed_item() -> None:
    cost = estimate_cost(
        shape=parse_machine_type("e2-standard-4"),
        node_count_total=2,
        region="us-central1",
        spot=False,
        regional_cluster=False,
        disk_type="pd-balanced",
        disk_size_gb=50,
        external_ip=True,
    )
    items = {line.item: line.usd_per_hour for line in cost.lines}
    assert items == pytest.approx(
        {
            "e2-standard-4 nodes": 2 * 0.134023,
            "pd-balanced boot disks, 50 GB each": 2 * 50 * 0.10 / 730,
            "GKE cluster management fee": 0.10,
            "load balancer forwarding rule": 0.025,
            "external IPv4 address": 0.005,
        },
        abs=1e-6,
    )
    assert cost.usd_per_month == pytest.approx(cost.usd_per_hour * 730)
    assert cost.free_tier_credit_usd_per_month == 74.40


def test_regional_cluster_gets_no_free_tier_credit() -> None:
    cost = estimate_cost(
        shape=parse_machine_type("e2-standard-4"),
        node_count_total=3,
        region="europe-west1",
        spot=False,
        regional_cluster=True,
        disk_type="pd-standard",
        disk_size_gb=30,
        external_ip=False,
    )
    assert cost.free_tier_credit_usd_per_month == 0
    assert cost.lines[0].usd_per_hour == pytest.approx(3 * (4 * 0.02399337 + 16 * 0.00321609))


def test_an_unpriced_region_is_planned_at_the_fallback_rates_with_a_warning() -> None:
    shape = parse_machine_type("e2-standard-4")
    assert node_usd_per_hour(shape, "me-west1", False) == node_usd_per_hour(
        shape, "us-central1", False
    )
    cost = estimate_cost(
        shape=shape,
        node_count_total=1,
        region="me-west1",
        spot=False,
        regional_cluster=False,
        disk_type="pd-standard",
        disk_size_gb=30,
        external_ip=False,
    )
    assert (cost.region, cost.rates_region) == ("me-west1", "us-central1")
    (warning,) = cost.warnings
    assert warning.startswith(
        "no E2 prices for region 'me-west1' in price catalogue 2026-12 (7 regions priced), so "
        "its nodes are priced at us-central1 rates"
    )
    assert "scripts/refresh_prices.py" in warning
    assert "Did you mean" not in warning


def test_a_zone_of_a_region_gcp_lacks_is_refused_with_the_closest() -> None:
    with pytest.raises(ConfigError, match="The closest is us-central1: zone us-central1-a"):
        resolve_settings(
            stack="scratch",
            gcp_project="my-project",
            config={"zone": "us-centrl1-a"},
            explicit_keys={"zone"},
        )


def test_a_priced_region_plans_without_a_price_warning() -> None:
    settings = resolve_settings(
        stack="scratch",
        gcp_project="my-project",
        config={"zone": "europe-west4-b"},
        explicit_keys={"zone"},
    )
    design = design_experiment(settings)
    assert design.cost.rates_region == "europe-west4"
    assert not any("no E2 prices" in w for w in design.warnings)
