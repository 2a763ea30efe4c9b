"""GPU node pools: G2 with its NVIDIA L4s and N1 with NVIDIA T4s, planned under the SDK's
mocks as `pulumi up` would declare them: the accelerators, GKE's driver installation, the
taint and the pod's toleration and nvidia.com/gpu, time-sharing, the -gpu image, the zones
each GPU exists in, the GPU's price beside its host's, and the GPU quotas a sweep checks."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pulumi_gcp.container._inputs as gcp_container_inputs
import pytest
import yaml
from google.cloud.monitoring_dashboard_v1.types import Dashboard

from infra import cli
from infra.bench.gpu_metrics import (
    attach_gpu_figures,
    gpu_figures,
    prometheus_query,
    window_figures,
)
from infra.billing.catalog import gpu_prices, render_prices, with_new_catalogue
from infra.data import DATA_DIR
from infra.design.machine import parse_machine_type
from infra.design.naming import cluster_name
from infra.design.pricing import node_usd_per_hour
from infra.inputs.errors import ConfigError
from infra.model.apis import PredictionLog
from infra.model.warmup.tfrecord import decode
from infra.plan.render import summary
from infra.plan.run import StackPlan, design_stack, plan_stack
from infra.sweep.design import design_sweep
from infra.sweep.durations import SearchSettings
from infra.sweep.quota import check, needs, preemptible_gpu_quota
from infra.sweep.report import cpu_or_gpu, markdown
from infra.sweep.search.model import Features
from infra.sweep.search.objective import Goal
from infra.sweep.search.run import candidate_settings
from infra.sweep.search.space import SearchSpace, read_space
from infra.sweep.search.strategy import Outcome, Search
from tests import landscapes
from tests.conftest import ROOT, container, declared, manifest, serving_image, serving_pool
from tests.json_api import JsonApi

SEARCH = SearchSettings(300.0, 0.01, "rest", 20.0, 6, 5.0, 20.0)
PROJECT = {"gcp:project": "demo-project"}
L4_HOUR, L4_SPOT_HOUR, T4_HOUR = 0.56004, 0.2231, 0.35
G2_VCPU, G2_GIB, N1_VCPU, N1_GIB = 0.024988, 0.002927, 0.031611, 0.004237


def gpu_plan(stack: str = "gpu-l4", **overrides: Any) -> StackPlan:
    return plan_stack(stack, {**PROJECT, **overrides})


def test_the_l4_preset_declares_its_gpu_driver_and_taint() -> None:
    plan = gpu_plan()
    config = serving_pool(plan)["nodeConfig"]
    assert config["machineType"] == "g2-standard-4"
    assert config["guestAccelerators"] == [
        {
            "type": "nvidia-l4",
            "count": 1,
            "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"},
        }
    ]
    assert config["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
    ]
    # G2 takes no Standard Persistent Disk.
    assert config["diskType"] == "pd-balanced"


def test_the_serving_pod_asks_for_one_gpu_and_tolerates_the_gpu_taint() -> None:
    plan = gpu_plan()
    pod = manifest(plan, "Deployment")["spec"]["template"]["spec"]
    assert container(plan)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
    ]
    # One pod per GPU: no memory fraction is imposed on TensorFlow.
    assert not any("per_process_gpu_memory_fraction" in a for a in container(plan)["args"])


def test_the_image_is_built_from_the_gpu_base() -> None:
    plan = gpu_plan()
    context = ROOT / str(serving_image(plan)["build"]["context"])
    dockerfile = (context / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM tensorflow/serving:2\.20\.0-gpu$", dockerfile, re.MULTILINE)


def test_a_cpu_stack_declares_no_gpu() -> None:
    plan = plan_stack("dev", PROJECT)
    config = serving_pool(plan)["nodeConfig"]
    assert "guestAccelerators" not in config and "taints" not in config
    pod = manifest(plan, "Deployment")["spec"]["template"]["spec"]
    assert "tolerations" not in pod
    assert "nvidia.com/gpu" not in container(plan)["resources"]["limits"]
    assert plan.design.gpu is None


def test_t4s_go_on_n1_in_the_count_asked_for() -> None:
    plan = gpu_plan("gpu-t4", machineType="n1-standard-8", gpuCount=2)
    (accelerator,) = serving_pool(plan)["nodeConfig"]["guestAccelerators"]
    assert (accelerator["type"], accelerator["count"]) == ("nvidia-tesla-t4", 2)
    lines = {line.item: line for line in plan.design.cost.lines}
    gpus = lines["nvidia-tesla-t4 GPUs, 2 per node"]
    assert gpus.quantity == 2 and gpus.usd_per_hour == pytest.approx(2 * T4_HOUR)
    # The host is billed at N1's rates: 8 vCPUs and 30 GiB.
    host = lines["n1-standard-8 nodes"].usd_per_hour
    assert host == pytest.approx(8 * N1_VCPU + 30 * N1_GIB)


def test_a_g2_node_costs_its_vcpus_memory_and_l4() -> None:
    plan = gpu_plan()
    lines = {line.item: line.usd_per_hour for line in plan.design.cost.lines}
    assert lines["g2-standard-4 nodes"] == pytest.approx(4 * G2_VCPU + 16 * G2_GIB)
    assert lines["nvidia-l4 GPUs, 1 per node"] == pytest.approx(L4_HOUR)
    # The catalogue's g2-standard-4 with its L4: 0.70683/h on demand (its rows add up).
    shape = parse_machine_type("g2-standard-4")
    assert node_usd_per_hour(shape, "us-central1", False) == pytest.approx(0.70683, abs=2e-5)
    # On Spot VMs: the host at G2's spot fraction, the L4 at its own spot price.
    spot = node_usd_per_hour(shape, "us-central1", True)
    assert spot == pytest.approx((4 * G2_VCPU + 16 * G2_GIB) * 0.4002 + L4_SPOT_HOUR)
    # Roughly the 3.9 x an n4-standard-4 the issue quotes.
    n4 = node_usd_per_hour(parse_machine_type("n4-standard-4"), "us-central1", False)
    assert 3.7 < node_usd_per_hour(shape, "us-central1", False) / n4 < 4.1


def test_a_gpu_in_another_region_is_priced_at_that_regions_rate() -> None:
    plan = gpu_plan(zone="europe-west4-a")
    lines = {line.item: line.usd_per_hour for line in plan.design.cost.lines}
    assert lines["nvidia-l4 GPUs, 1 per node"] == pytest.approx(0.58804)
    assert not any("nvidia-l4 price" in w for w in plan.design.warnings)


def test_more_pods_than_gpus_time_share_them_and_split_their_memory() -> None:
    plan = gpu_plan(podsPerNode=2)
    (accelerator,) = serving_pool(plan)["nodeConfig"]["guestAccelerators"]
    assert accelerator["gpuSharingConfig"] == {
        "gpuSharingStrategy": "TIME_SHARING",
        "maxSharedClientsPerGpu": 2,
    }
    # Each pod is held to its share less the driver's headroom: (1 - 0.05) / 2, rounded down.
    assert "--per_process_gpu_memory_fraction=0.47" in container(plan)["args"]
    assert container(plan)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "time-shared by 2 pods" in plan.design.gpu.describe()  # type: ignore[union-attr]


def test_a_memory_share_given_is_passed_to_tf_serving() -> None:
    plan = gpu_plan(podsPerNode=2, gpuMemoryPercent=40)
    assert "--per_process_gpu_memory_fraction=0.4" in container(plan)["args"]


@pytest.mark.parametrize(
    ("overrides", "key", "says"),
    [
        ({"tfServingVariant": "cpu"}, "tfServingVariant", "Set tfServingVariant gpu"),
        ({"zone": "us-central1-f"}, "zone", "us-central1-a, us-central1-b, us-central1-c"),
        ({"zone": "europe-north1-a"}, "zone", "europe-north1 has none; regions with it:"),
        ({"regional": True}, "regional", "A GPU pool here is zonal"),
        ({"gpuCount": 2}, "gpuCount", "g2-standard-24 carry 2"),
        ({"gpuType": "nvidia-tesla-t4"}, "gpuType", "G2 machines carry nvidia-l4"),
        ({"gpuType": "nvidia-a100"}, "gpuType", "nvidia-l4, nvidia-tesla-t4"),
        ({"gpuDriverVersion": "NEWEST"}, "gpuDriverVersion", "DEFAULT, LATEST"),
        ({"podsPerNode": 2, "gpuMemoryPercent": 60}, "gpuMemoryPercent", "at most 50% each"),
        ({"machineType": "n1-standard-4", "gpuType": ""}, "machineType", "gpuType nvidia-tesla-t4"),
        (
            {"machineType": "n1-standard-64", "gpuType": "nvidia-tesla-t4", "gpuCount": 1},
            "gpuCount",
            "at most 48 vCPUs",
        ),
        (
            {"machineType": "n1-standard-4", "gpuType": "nvidia-tesla-t4", "gpuCount": 3},
            "gpuCount",
            "1, 2, 4 do",
        ),
        ({"machineType": "e2-standard-4", "gpuType": "nvidia-l4"}, "gpuType", "G2 machine types"),
        (
            {"loadGenerator": True, "loadGeneratorMachineType": "g2-standard-4"},
            "loadGeneratorMachineType",
            "GPU host",
        ),
    ],
)
def test_a_gpu_setting_the_pool_cannot_take_is_refused_before_any_resource(
    overrides: dict[str, Any], key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as error:
        design_stack("gpu-l4", overrides)
    assert error.value.setting == key
    assert says in str(error.value)


def test_a_gpu_image_on_cpu_nodes_is_said_to_serve_on_the_cpu() -> None:
    design = design_stack("dev", {"tfServingVariant": "gpu"})[3]
    assert any("have no GPU" in w and "g2-standard-4" in w for w in design.warnings)


def test_a_gpu_without_batching_is_warned_about() -> None:
    design = design_stack("gpu-l4", {"enableBatching": False})[3]
    assert any(w.startswith("enableBatching is false on NVIDIA L4 nodes") for w in design.warnings)


def test_the_plan_json_says_what_gpus_each_node_has() -> None:
    plan = gpu_plan(podsPerNode=2)
    gpu = summary(plan.design)["gpu"]
    assert gpu == {
        "type": "nvidia-l4",
        "name": "NVIDIA L4",
        "per_node": 1,
        "memory_gib": 24,
        "shared_clients_per_gpu": 2,
        "memory_fraction": 0.47,
        "driver_version": "LATEST",
        "zones": ["us-central1-a", "us-central1-b", "us-central1-c"],
    }


def _args_class(path: list[str]) -> type | None:
    """pulumi_gcp's input class of a node pool field (NodePoolNodeConfigGuestAcceleratorArgs
    for nodeConfig.guestAccelerators); None for a plain map (labels)."""
    name = "NodePool" + "".join(p[0].upper() + p[1:] for p in path)
    for candidate in (f"{name}Args", f"{name.removesuffix('s')}Args"):
        if hasattr(gcp_container_inputs, candidate):
            return getattr(gcp_container_inputs, candidate)  # type: ignore[no-any-return]
    return None


def _unknown_fields(value: Any, path: list[str]) -> list[str]:
    """Fields of the declared node config that the provider's schema does not have."""
    if isinstance(value, list):
        return [u for item in value for u in _unknown_fields(item, path)]
    cls = _args_class(path)
    if not isinstance(value, dict) or cls is None:
        return []
    fields = {n for n in dir(cls) if isinstance(getattr(cls, n, None), property)}
    unknown = []
    for key, item in value.items():
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
        if snake not in fields:
            unknown.append(".".join([*path, key]))
        else:
            unknown += _unknown_fields(item, [*path, key[0].upper() + key[1:]])
    return unknown


@pytest.mark.parametrize("overrides", [{}, {"podsPerNode": 2}])
def test_the_gpu_node_config_has_only_fields_the_provider_knows(overrides: dict[str, Any]) -> None:
    config = serving_pool(gpu_plan(**overrides))["nodeConfig"]
    assert _unknown_fields(config, ["NodeConfig"]) == []
    # The check can fail: a misspelt field is caught.
    assert _unknown_fields({"guestAccelerators": [{"typo": 1}]}, ["NodeConfig"]) == [
        "NodeConfig.GuestAccelerators.typo"
    ]


def _region(quotas: Mapping[str, float]) -> dict[str, Any]:
    return {
        "name": "us-central1",
        "quotas": [{"metric": m, "limit": v, "usage": 0.0} for m, v in quotas.items()],
    }


def test_a_gpu_sweep_needs_the_gpus_regional_and_all_regions_quota() -> None:
    design = design_sweep(["gpu-l4", "gpu-t4"], SEARCH)
    need = needs(design.steps, design.durations)
    metrics = [d.metric for d in need.demands]
    assert {"NVIDIA_L4_GPUS", "NVIDIA_T4_GPUS", "GPUS_ALL_REGIONS"} <= set(metrics)
    assert need.of("GPUS_ALL_REGIONS").scope == "project"
    # While one pool replaces the other, both pools' GPUs at most.
    assert need.of("GPUS_ALL_REGIONS").amount == 2
    ample = {"CPUS": 100, "IN_USE_ADDRESSES": 100, "NVIDIA_L4_GPUS": 4, "NVIDIA_T4_GPUS": 4}
    project = {"quotas": [{"metric": "CPUS_ALL_REGIONS", "limit": 100, "usage": 0}]}
    # A new project: GPUS_ALL_REGIONS 0.
    project_without = {"quotas": [*project["quotas"], {"metric": "GPUS_ALL_REGIONS", "limit": 0}]}
    problems = check(_region(ample), project_without, need, "demo-project")
    assert len(problems) == 1 and problems[0].startswith("GPUS_ALL_REGIONS quota in the project")
    assert "GPU quota is granted on request" in problems[0]
    # A region that does not offer the T4 to the project lists no quota of it.
    no_t4 = {k: v for k, v in ample.items() if k != "NVIDIA_T4_GPUS"}
    problems = check(_region(no_t4), project, need, "demo-project")
    assert len(problems) == 1 and "lists no NVIDIA_T4_GPUS quota" in problems[0]
    assert check(_region(ample), project, need, "demo-project") == []


def test_spot_gpus_count_against_their_preemptible_quota_once_the_project_has_it() -> None:
    design = design_sweep(["gpu-l4"], SEARCH, extra={"spot": True})
    region = _region(
        {"CPUS": 100, "PREEMPTIBLE_NVIDIA_L4_GPUS": 2, "PREEMPTIBLE_NVIDIA_T4_GPUS": 0}
    )
    spot = preemptible_gpu_quota(region)
    assert spot == frozenset({"PREEMPTIBLE_NVIDIA_L4_GPUS"})
    need = needs(design.steps, design.durations, preemptible_gpus=spot)
    metrics = [d.metric for d in need.demands]
    assert "PREEMPTIBLE_NVIDIA_L4_GPUS" in metrics and "NVIDIA_L4_GPUS" not in metrics
    # Without it, Spot VMs' GPUs count against the standard metric.
    plain = [d.metric for d in needs(design.steps, design.durations).demands]
    assert "NVIDIA_L4_GPUS" in plain


def _gpu_sku(description: str, usage: str, regions: list[str], nanos: int) -> dict[str, Any]:
    return {
        "skuId": description[:14],
        "description": description,
        "category": {"resourceFamily": "Compute", "resourceGroup": "GPU", "usageType": usage},
        "serviceRegions": regions,
        "pricingInfo": [
            {
                "pricingExpression": {
                    "usageUnit": "h",
                    "tieredRates": [
                        {"startUsageAmount": 0, "unitPrice": {"units": "0", "nanos": nanos}}
                    ],
                }
            }
        ],
    }


def test_the_refresh_reads_gpu_prices_on_demand_and_spot() -> None:
    americas, central = "running in Americas", ["us-central1"]
    skus = [
        _gpu_sku(f"Nvidia L4 GPU {americas}", "OnDemand", [*central, "us-east1"], 560040000),
        _gpu_sku(f"Spot Preemptible Nvidia L4 GPU {americas}", "Preemptible", central, 223100000),
        _gpu_sku("Nvidia L4 GPU running in Netherlands", "OnDemand", ["europe-west4"], 588040000),
        _gpu_sku(f"Commitment v1: Nvidia L4 GPU {americas}", "Commit1Yr", central, 1),
        _gpu_sku(f"Nvidia Tesla T4 GPU {americas}", "OnDemand", central, 350000000),
    ]
    names = {"nvidia-l4": "Nvidia L4 GPU", "nvidia-tesla-t4": "Nvidia Tesla T4 GPU"}
    read = gpu_prices(skus, names)
    # Only regions with both prices; the T4 has no spot SKU here, so none of its.
    assert read == {"nvidia-l4": {"us-central1": {"hour": 0.56004, "spot_hour": 0.2231}}}
    prices = yaml.safe_load((DATA_DIR / "prices.yaml").read_text(encoding="utf-8"))
    updated = with_new_catalogue(
        prices, prices["catalogues"]["2026-12"]["e2"], date(2027, 1, 5), gpus=read
    )
    new = updated["catalogues"]["2027-01"]
    assert new["gpus"]["nvidia-l4"]["us-central1"] == {"hour": 0.56004, "spot_hour": 0.2231}
    # What was not read is carried over.
    assert (
        new["gpus"]["nvidia-tesla-t4"] == prices["catalogues"]["2026-12"]["gpus"]["nvidia-tesla-t4"]
    )
    assert "GPU SKUs, read 2027-01-05, for nvidia-l4" in new["gpu_sources"]
    assert yaml.safe_load(render_prices(updated)) == updated


@pytest.mark.parametrize(
    ("machine_type", "vcpus", "memory_gib", "gpus"),
    [
        ("g2-standard-4", 4, 16, 1),
        ("g2-standard-32", 32, 128, 1),
        ("g2-standard-24", 24, 96, 2),
        ("g2-standard-96", 96, 384, 8),
        # N1 takes its T4s from gpuType: the shape alone carries none.
        ("n1-standard-4", 4, 15, 0),
        ("n1-highcpu-8", 8, 7.2, 0),
    ],
)
def test_gpu_hosts_have_their_documented_shapes(
    machine_type: str, vcpus: int, memory_gib: float, gpus: int
) -> None:
    shape = parse_machine_type(machine_type)
    assert (shape.vcpus, round(shape.memory_gib, 1), shape.gpus) == (vcpus, memory_gib, gpus)
    assert shape.gpu_type == ("nvidia-l4" if gpus else "")


def _warmup_rows(plan: StackPlan) -> list[int]:
    """The rows of each generated warmup request in the serving image's context."""
    context = ROOT / str(serving_image(plan)["build"]["context"])
    (path,) = context.glob("models/*/*/assets.extra/tf_serving_warmup_requests")
    rows = []
    for record in decode(path.read_bytes()):
        log = PredictionLog()
        log.ParseFromString(record)
        tensor = next(iter(log.predict_log.request.inputs.values()))
        rows.append(tensor.tensor_shape.dim[0].size)
    return rows


def test_a_gpu_server_is_warmed_at_every_batch_size_it_runs() -> None:
    assert _warmup_rows(gpu_plan()) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    allowed = gpu_plan(maxBatchSize=64, allowedBatchSizes=[8, 32, 64])
    assert _warmup_rows(allowed) == [8, 32, 64]
    # Without batching it runs what it is sent: one row, as on a CPU.
    unbatched = {"machineType": "g2-standard-4", "tfServingVariant": "gpu"}
    assert _warmup_rows(plan_stack("dev", {**PROJECT, **unbatched})) == [1]
    assert _warmup_rows(plan_stack("dev", PROJECT)) == [1]
    # A CPU stack keeps its one record, batching or not (as before GPUs).
    assert _warmup_rows(plan_stack("dev", {**PROJECT, "enableBatching": True})) == [1]


def test_a_gpu_stack_with_metrics_collects_gkes_dcgm_metrics_and_charts_them() -> None:
    plan = gpu_plan(metrics=True)
    cluster = declared(plan, "gcp:container/cluster:Cluster", "cluster")
    assert cluster["monitoringConfig"] == {
        "enableComponents": ["SYSTEM_COMPONENTS", "DCGM"],
        "managedPrometheus": {"enabled": True},
    }
    board = declared(plan, "gcp:monitoring/dashboard:Dashboard", "dashboard")
    parsed = Dashboard.from_json(board["dashboardJson"], ignore_unknown_fields=False)
    titles = [tile.widget.title for tile in parsed.mosaic_layout.tiles]
    assert len(titles) == 9
    assert {"GPU utilisation (%)", "GPU memory (MiB)"} <= set(titles)
    queries = [
        data_set.time_series_query.prometheus_query
        for tile in parsed.mosaic_layout.tiles
        for data_set in tile.widget.xy_chart.data_sets
    ]
    gpu_queries = [q for q in queries if "DCGM_FI_" in q]
    assert len(gpu_queries) == 5
    assert all(f'cluster="{cluster_name("gpu-l4")}"' in q for q in gpu_queries)
    # No tile overlaps another.
    spots = {(t.x_pos, t.y_pos) for t in parsed.mosaic_layout.tiles}
    assert len(spots) == len(titles)
    assert json.loads(board["dashboardJson"])["mosaicLayout"]["columns"] == 48
    # A CPU stack with metrics keeps GKE's default components and its six tiles.
    cpu = plan_stack("dev", {**PROJECT, "metrics": True})
    cpu_cluster = declared(cpu, "gcp:container/cluster:Cluster", "cluster")
    assert cpu_cluster["monitoringConfig"] == {"managedPrometheus": {"enabled": True}}
    cpu_board = declared(cpu, "gcp:monitoring/dashboard:Dashboard", "dashboard")
    assert "DCGM_FI_" not in cpu_board["dashboardJson"]


def _entry(
    name: str, machine: str, per_usd: tuple[float, float | None], **more: Any
) -> dict[str, Any]:
    return {
        "experiment": name,
        "machine_type": machine,
        "nodes": 2,
        "usd_per_hour": 1.0,
        "not_ranked": [],
        "requests_per_usd_range": list(per_usd),
        "nodes_for_target": more.get("nodes"),
        "target_usd_per_hour": more.get("target"),
        "target_usd_per_hour_range": [more.get("could"), more.get("target")],
    }


def test_the_report_puts_the_best_cpu_and_gpu_side_by_side() -> None:
    entries = [
        _entry("cpu-a", "n2-highcpu-8", (1_000_000, 1_100_000)),
        _entry("cpu-b", "c3-highcpu-8", (900_000, 950_000)),
        _entry("gpu-a", "g2-standard-4", (2_000_000, 2_300_000)),
        _entry("t4", "n1-standard-4", (800_000, 850_000)),
    ]
    hardware = cpu_or_gpu(entries, None)
    assert hardware is not None
    assert (hardware["cpu"]["experiment"], hardware["gpu"]["experiment"]) == ("cpu-a", "gpu-a")
    # A million requests: 1e6 / requests per USD, from the range's low end (and high end).
    assert hardware["cpu"]["usd_per_million_requests"] == 1.0
    assert hardware["gpu"]["usd_per_million_requests_range"] == [0.4348, 0.5]
    assert hardware["winner"] == "gpu" and hardware["saving"] == 0.5
    report: dict[str, Any] = {
        "stack": "sweep", "objective": {"p99_ms": 300, "max_error_rate": 0.01},
        "protocol": "rest", "goal": {}, "experiments": [], "winner": None,
        "tied_with_winner": [], "reference": {"verdict": "not tested"}, "not_measured": {},
        "spent_usd": 1.0, "cpu_or_gpu": hardware,
    }  # fmt: skip
    text = markdown(report)
    assert "### CPU or GPU" in text
    assert "| GPU | gpu-a (2 x g2-standard-4) |" in text
    assert "GPUs serve a million requests for 50% less than the best CPU" in text
    # Ranges that overlap are a tie, not a winner.
    close = [entries[0], _entry("gpu-b", "g2-standard-4", (1_050_000, 1_200_000))]
    assert cpu_or_gpu(close, None)["winner"] == "tie"  # type: ignore[index]
    # One kind only: nothing to compare.
    assert cpu_or_gpu(entries[:2], None) is None


def test_at_a_target_the_report_compares_the_cost_of_serving_it() -> None:
    entries = [
        _entry("cpu", "n2-highcpu-8", (1e6, 1.1e6), nodes=6, target=2.1, could=1.7),
        _entry("gpu", "g2-standard-4", (2e6, 2.2e6), nodes=2, target=1.8, could=1.8),
    ]
    hardware = cpu_or_gpu(entries, 500.0)
    assert hardware is not None
    assert hardware["gpu"]["nodes_for_target"] == 2
    # The CPU's best case (1.70) is no dearer than what the GPU is sure of (1.80): a tie.
    assert hardware["winner"] == "tie"
    entries[0]["target_usd_per_hour_range"] = [2.0, 2.1]
    assert cpu_or_gpu(entries, 500.0)["winner"] == "gpu"  # type: ignore[index]


GPU_SPACE = ROOT / "tests" / "data" / "search" / "gpu-landscape.yaml"


@pytest.fixture(scope="module")
def mixed() -> SearchSpace:
    return read_space(GPU_SPACE, stack="sweep")


def test_a_space_of_cpus_and_gpus_serves_the_gpu_image_on_gpu_hosts(mixed: SearchSpace) -> None:
    gpus = [c for c in mixed.candidates if c.gpus_per_pod]
    assert (len(mixed.candidates), len(gpus), len(mixed.refused)) == (504, 224, 0)
    l4 = next(c for c in gpus if c.machine_type == "g2-standard-4")
    assert l4.settings["tfServingVariant"] == "gpu" and l4.gpu_type == "nvidia-l4"
    t4 = next(c for c in gpus if c.machine_type == "n1-standard-4")
    assert t4.settings["gpuType"] == "nvidia-tesla-t4" and t4.settings["tfServingVariant"] == "gpu"
    cpu = next(c for c in mixed.candidates if c.machine_type == "n2-highcpu-8")
    assert "tfServingVariant" not in cpu.settings and cpu.gpus_per_pod == 0
    # Two pods on one GPU share it: half a GPU each, the node's price with its L4.
    shared = next(c for c in gpus if c.features["podsPerNode"] == 2)
    assert shared.gpus_per_pod == 0.5
    assert shared.price.node_usd_per_hour > 0.56


def test_gpu_settings_have_no_effect_on_a_cpu_machine(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(
        "dimensions:\n  machineType: [n2-highcpu-8, n1-standard-8]\n  gpuCount: [1, 2]\n",
        encoding="utf-8",
    )
    space = read_space(path, stack="sweep")
    names = sorted(c.name for c in space.candidates)
    # The CPU machine once (gpuCount dropped), N1 with one and with two T4s.
    assert names == [
        "gpuCount=1,machineType=n1-standard-8",
        "gpuCount=2,machineType=n1-standard-8",
        "machineType=n2-highcpu-8",
    ]


def test_the_model_does_not_scale_a_gpu_servers_capacity_with_its_cores(
    mixed: SearchSpace,
) -> None:
    columns = Features(mixed)
    assert columns.gpu_columns is not None
    level, share = columns.gpu_columns
    small = next(c for c in mixed.candidates if c.machine_type == "g2-standard-4")
    row = columns.row(small)
    assert row[1] == 0.0  # no cores term on a GPU
    assert row[level] == 1.0 and row[share] == math.log(small.gpus_per_pod)
    cpu = next(c for c in mixed.candidates if not c.gpus_per_pod)
    cpu_row = columns.row(cpu)
    assert cpu_row[1] == math.log(cpu.pod_cores) and cpu_row[level] == 0.0
    # A value acts on a GPU through its own column as well as the one it shares with CPUs.
    batching = columns.gpu_index[("enableBatching", True)]
    on = next(c for c in mixed.candidates if c.gpus_per_pod and c.features["enableBatching"])
    assert columns.row(on)[batching] == 1.0
    assert all(columns.row(c)[batching] == 0.0 for c in mixed.candidates if not c.gpus_per_pod)


def test_a_gpu_landscape_pays_for_gpus_only_batched(mixed: SearchSpace) -> None:
    truth = landscapes.table(mixed, "gpu", 1001)
    by = {c.name: c for c in mixed.candidates}

    def best(where: Any) -> float:
        return max(truth[n] / by[n].price.usd_per_hour for n in truth if where(by[n]))

    batched_gpu = best(lambda c: c.gpus_per_pod and c.features["enableBatching"])
    single_gpu = best(lambda c: c.gpus_per_pod and not c.features["enableBatching"])
    cpu = best(lambda c: not c.gpus_per_pod)
    assert batched_gpu > cpu > single_gpu


def test_the_search_finds_the_gpu_that_wins_at_a_tenth_of_the_trials(
    mixed: SearchSpace, tmp_path: Path
) -> None:
    truth = landscapes.table(mixed, "gpu", 1001)
    best = max(mixed.candidates, key=lambda c: truth[c.name] / c.price.usd_per_hour)
    assert best.gpus_per_pod  # on this table a GPU wins
    search = Search(mixed, Goal(None), seed=0, max_trials=50)
    for _ in range(50):
        chosen = search.next()
        assert chosen is not None
        capacity = truth[chosen.name]
        search.record(Outcome(chosen.name, capacity * 0.98 or None, capacity * 1.02 or 1.0))
    picked = search.incumbent()
    assert picked is not None and picked[0].gpus_per_pod
    gap = picked[1].score(Goal(None), picked[0]) / Goal(None).score(
        best.price, truth[best.name] * 0.98
    )
    assert gap < 1.03


def test_a_cpu_trial_after_a_gpu_one_resets_what_the_gpu_host_implied(
    mixed: SearchSpace,
) -> None:
    gpu = next(c for c in mixed.candidates if c.machine_type == "n1-standard-4")
    cpu = next(c for c in mixed.candidates if not c.gpus_per_pod)
    on_gpu = candidate_settings(mixed, gpu, "sweep", 24)
    assert on_gpu["tfServingVariant"] == "gpu" and on_gpu["gpuType"] == "nvidia-tesla-t4"
    # The sweep stack keeps what the trial before set: the CPU trial sets them back.
    on_cpu = candidate_settings(mixed, cpu, "sweep", 24)
    assert on_cpu["tfServingVariant"] == "cpu" and on_cpu["gpuType"] == ""
    design_stack("sweep", {**on_gpu, **on_cpu})  # plans: no T4 left on a CPU machine


def _matrix(*series: list[float]) -> dict[str, Any]:
    """A Prometheus query_range answer, as the API documents it."""
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "gpu": str(i)},
                    "values": [[1765000000 + 10 * j, str(v)] for j, v in enumerate(values)],
                }
                for i, values in enumerate(series)
            ],
        },
    }


def test_gpu_figures_are_read_from_the_dcgm_samples_of_the_window() -> None:
    figures = gpu_figures(_matrix([40, 60, 80], [50, float("nan")]), _matrix([9000, 9500]))
    assert figures == {
        "source": "GKE managed DCGM metrics (Managed Service for Prometheus)",
        "gpus": 2,
        "samples": 4,
        "utilization_pct_mean": 57.5,
        "utilization_pct_max": 80.0,
        "memory_used_mib_max": 9500.0,
    }
    assert gpu_figures(_matrix(), _matrix())["why"] == "no DCGM samples in the window yet"
    with pytest.raises(ValueError, match="bad query"):
        gpu_figures({"status": "error", "error": "bad query"}, _matrix())


def test_the_prometheus_api_is_asked_for_the_window_with_the_token() -> None:
    api = JsonApi(lambda path, query, headers: (200, _matrix([70.0])))
    try:
        query = prometheus_query("demo-project", "tok3n", base_url=api.url)
        figures = window_figures(query, "tfserving-gke-gpu", 100.0, 120.0)
    finally:
        api.close()
    assert figures["utilization_pct_mean"] == 70.0
    first = api.requests[0]
    assert first.path == "/v1/projects/demo-project/location/global/prometheus/api/v1/query_range"
    assert first.query["query"] == ['DCGM_FI_DEV_GPU_UTIL{cluster="tfserving-gke-gpu"}']
    assert (first.query["start"], first.query["end"]) == (["100.000"], ["120.000"])
    assert first.headers["Authorization"] == "Bearer tok3n"
    assert api.requests[1].query["query"][0].startswith("DCGM_FI_DEV_FB_USED{")


def test_an_api_error_leaves_the_figure_out_and_says_why() -> None:
    api = JsonApi(lambda path, query, headers: (403, {"error": "denied"}))
    try:
        figures = window_figures(prometheus_query("p", "t", base_url=api.url), "c", 0.0, 1.0)
    finally:
        api.close()
    assert figures["source"] is None and "HTTP 403" in figures["why"]


def _run(started: str) -> dict[str, Any]:
    return {"started_at": started, "settings": {"warmup_s": 5.0, "duration_s": 20.0}}


def test_each_capacity_step_gets_its_gpu_figures_once_they_landed() -> None:
    runs = [_run("2026-12-06T10:00:00+00:00"), _run("2026-12-06T10:01:00+00:00")]
    outputs = {"gpu": {"type": "nvidia-l4"}, "metrics": True, "clusterName": "c"}
    asked: list[tuple[str, float, float]] = []
    slept: list[float] = []

    def query(promql: str, start: float, end: float) -> dict[str, Any]:
        asked.append((promql, start, end))
        return _matrix([55.0])

    second = datetime.fromisoformat("2026-12-06T10:01:00+00:00").timestamp()
    last_end = second + 5.0 + 20.0
    attach_gpu_figures(
        runs, outputs, lambda: query, now=lambda: last_end, sleep=slept.append, say=lambda _: None
    )
    assert slept == [90.0]  # the last run's samples land before any is read
    assert [r["server"]["gpu"]["utilization_pct_mean"] for r in runs] == [55.0, 55.0]
    # The measured window: after the warmup, for the duration.
    assert asked[0][1:] == (second - 60 + 5.0, second - 60 + 25.0)
    # Without metrics, or without a token, the runs say why there are no figures.
    quiet = [_run("2026-12-06T10:00:00+00:00")]
    attach_gpu_figures(quiet, {**outputs, "metrics": False}, lambda: query, sleep=slept.append)
    assert "metrics false" in quiet[0]["server"]["gpu"]["why"]

    def no_token() -> Any:
        raise RuntimeError("gcloud is not installed")

    lost = [_run("2026-12-06T10:00:00+00:00")]
    attach_gpu_figures(lost, outputs, no_token, now=lambda: 2e9, say=lambda _: None)
    assert lost[0]["server"]["gpu"] == {"source": None, "why": "not read: gcloud is not installed"}
    # A CPU stack's runs are left as they are.
    cpu_runs = [_run("2026-12-06T10:00:00+00:00")]
    attach_gpu_figures(cpu_runs, {"gpu": None, "metrics": True}, lambda: query)
    assert "server" not in cpu_runs[0]


def test_the_cpu_or_gpu_space_dry_run_prices_gpus_beside_cpus(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "plan.json"
    space = str(ROOT / "experiments" / "spaces" / "cpu-or-gpu.yaml")
    assert cli.main(["sweep", "--space", space, "--dry-run", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "120 configurations" in text
    configurations = json.loads(out.read_text(encoding="utf-8"))["configurations"]
    l4 = [c for c in configurations if "g2-standard-4" in c["name"]]
    cpu = [c for c in configurations if "n2-highcpu-8" in c["name"]]
    assert l4 and cpu
    assert all("(1 x NVIDIA L4)" in c["summary"] for c in l4)
    # A node with its L4 costs its host and its GPU.
    assert all(c["node_usd_per_hour"] > 0.70 for c in l4)
    assert all(c["node_usd_per_hour"] < 0.35 for c in cpu)


def test_a_gpu_stacks_rehearsal_says_it_runs_without_the_gpu(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["rehearse", "gpu-l4", "--print"]) == 0
    out = capsys.readouterr().out
    assert "runs its -gpu image without one (no --gpus)" in out
    assert "--gpus" not in out.split("Build the stack's image", 1)[1]
