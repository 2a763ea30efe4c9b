"""Machine families beyond E2 (infra/data/families.yaml): their shapes, boot disks, quota
metrics and prices, checked against the sources the catalogue cites; E2's rules as they
were; families the project refuses named with the supported ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.data import load
from infra.design.machine import family_facts, parse_machine_type, supported_families
from infra.design.pricing import node_usd_per_hour, spot_fraction, spot_price_warnings
from infra.design.settings import DISK_TYPES
from infra.inputs.errors import ConfigError
from infra.plan.run import design_stack, plan_stack
from infra.sweep.design import design_sweep
from infra.sweep.durations import SearchSettings
from infra.sweep.quota import needs
from tests.conftest import ROOT, manifest

SEARCH = SearchSettings(300.0, 0.01, "rest", 20.0, 6, 5.0, 20.0)
FAMILIES = load("families")["families"]


def test_the_supported_families_are_the_x86_general_purpose_and_compute_ones() -> None:
    assert supported_families() == [
        "e2", "n2", "n2d", "t2d", "n4", "c3", "c3d", "c4", "c4d", "g2", "n1",
    ]  # fmt: skip
    for family in supported_families():
        facts = family_facts(family)
        # TF Serving's release build needs AVX (tensorflow/serving .bazelrc: -mavx
        # -msse4.2); every family listed has AVX2, a superset.
        assert "avx2" in facts["instructions"], family
        assert facts["disks"] and set(facts["disks"]) <= set(DISK_TYPES), family
        # E2 counts against the regional CPUS quota with N1 and G2 (the GPU hosts, whose
        # GPUs have metrics of their own); the others against their own.
        shared = ("e2", "g2", "n1")
        assert facts["quota_metric"] == ("CPUS" if family in shared else f"{family.upper()}_CPUS")
        assert facts["sku"].startswith(family.upper())
        # The GPU hosts, and only they, name their GPU.
        assert bool(facts.get("gpu")) == (family in ("g2", "n1"))


@pytest.mark.parametrize(
    ("machine_type", "vcpus", "memory_gib"),
    [
        ("n2-standard-8", 8, 32),
        ("n2-highcpu-96", 96, 96),
        ("n2d-highmem-16", 16, 128),
        ("t2d-standard-60", 60, 240),
        ("n4-highcpu-8", 8, 16),
        ("c3-standard-22", 22, 88),
        # Not vCPUs x the kind's figure (shared/facts/gke-families.md, "Shapes").
        ("c3d-highcpu-30", 30, 59),
        ("c3d-highcpu-360", 360, 708),
        ("n2-highmem-128", 128, 864),
        ("n2-custom-128-131072", 128, 128),
        ("c4-standard-8", 8, 30),
        ("c4d-standard-8", 8, 31),
        ("c4d-highmem-8", 8, 63),
        ("n2-custom-10-20480", 10, 20),
        ("n2-custom-36-36864", 36, 36),
        ("n2d-custom-48-98304", 48, 96),
        ("n4-custom-6-12288", 6, 12),
    ],
)
def test_each_family_shape_has_its_documented_size(
    machine_type: str, vcpus: int, memory_gib: float
) -> None:
    shape = parse_machine_type(machine_type)
    assert (shape.vcpus, shape.memory_gib) == (vcpus, memory_gib)
    assert shape.family == machine_type.split("-", maxsplit=1)[0]


@pytest.mark.parametrize(
    ("machine_type", "says"),
    [
        ("n2-standard-6", "n2-standard-{2,4,8,16,32,48,64,80,96,128}"),
        ("t2d-highcpu-8", "t2d-standard-{1,2,4,8,16,32,48,60}"),
        ("n2-custom-34-34816", "multiples of 4 up to 128"),
        ("n2-custom-130-133120", "2 to 128"),
        ("n2-custom-8-131072", "4 to 64 GB"),
        ("c3-custom-8-16384", "c3-highcpu-{4,8,22,44,88,176}"),
        ("n2d-custom-12-24576", "takes 2, 4, 8, 16, 32, 48, 64, 80, 96 vCPUs"),
        ("n4-custom-6-8192", "12 to 48 GB"),
        ("c2-standard-8", "C2 is not supported"),
        ("t2a-standard-4", "Arm series"),
        ("a2-highgpu-1g", "Supported families: E2, N2, N2D, T2D, N4, C3, C3D, C4, C4D, G2, N1"),
        ("x9-standard-4", "Other supported families: N2, N2D"),
    ],
)
def test_a_type_outside_the_families_is_refused_naming_what_exists(
    machine_type: str, says: str
) -> None:
    with pytest.raises(ConfigError, match="machineType") as error:
        parse_machine_type(machine_type)
    assert says in str(error.value)


def test_e2_is_unchanged() -> None:
    assert parse_machine_type("e2-standard-4").family == "e2"
    shape = parse_machine_type("e2-custom-8-16384")
    assert shape.custom and node_usd_per_hour(shape, "us-central1", False) == pytest.approx(
        (8 * 0.02181159 + 16 * 0.00292353) * 1.05
    )


@pytest.mark.parametrize(
    ("machine_type", "usd_per_hour"),
    [
        # shared/facts/gke-families.md's rates times the shape (us-central1): N2 0.031611
        # per vCPU and 0.004237 per GiB, N2D and T2D 0.027502 and 0.003686, C3 and C4
        # 0.03465 and 0.003938, N4 0.03119 and 0.00354, C4D 0.0327035 and 0.0037533 per GiB.
        ("n2-standard-8", 8 * 0.031611 + 32 * 0.004237),
        ("n2-highcpu-16", 16 * 0.031611 + 16 * 0.004237),
        ("n2d-standard-8", 8 * 0.027502 + 32 * 0.003686),
        ("t2d-standard-8", 8 * 0.027502 + 32 * 0.003686),
        ("c3-standard-4", 4 * 0.03465 + 16 * 0.003938),
        ("c4-standard-8", 8 * 0.03465 + 30 * 0.003938),
        ("n4-standard-8", 8 * 0.03119 + 32 * 0.00354),
        ("c4d-standard-8", 8 * 0.0327035 + 31 * 0.0037533),
        ("c3d-standard-8", 8 * 0.029563 + 32 * 0.003959),
        ("n2-custom-10-20480", (10 * 0.031611 + 20 * 0.004237) * 1.05),
        ("n2d-custom-16-32768", (16 * 0.027502 + 32 * 0.003686) * 1.05),
    ],
)
def test_a_family_is_priced_at_its_catalogue_rates(machine_type: str, usd_per_hour: float) -> None:
    shape = parse_machine_type(machine_type)
    assert node_usd_per_hour(shape, "us-central1", False) == pytest.approx(usd_per_hour)
    catalogue = load("prices")["catalogues"]["2026-12"]
    spot = catalogue["spot_fractions"][shape.family]["us-central1"]
    assert node_usd_per_hour(shape, "us-central1", True) == pytest.approx(usd_per_hour * spot)


@pytest.mark.parametrize(
    ("machine_type", "fraction"),
    # Spot over on demand in us-central1, 2026-07-30 (shared/facts/gke-families.md): each
    # family its own, never E2's 0.6 for all.
    [("n2d-standard-8", 0.289), ("c3-highcpu-8", 0.245), ("c3d-highcpu-8", 0.223),
     ("t2d-standard-8", 0.373), ("n2-standard-8", 0.474), ("c4-highcpu-8", 0.6)],
)  # fmt: skip
def test_each_family_is_priced_on_spot_at_its_own_fraction(
    machine_type: str, fraction: float
) -> None:
    shape = parse_machine_type(machine_type)
    on_demand = node_usd_per_hour(shape, "us-central1", False)
    assert node_usd_per_hour(shape, "us-central1", True) == pytest.approx(on_demand * fraction)


def test_spot_e2_is_priced_at_its_regions_own_fraction_else_the_fallbacks_with_a_warning() -> None:
    shape = parse_machine_type("e2-standard-4")
    belgium = node_usd_per_hour(shape, "europe-west1", True)
    assert belgium == pytest.approx(node_usd_per_hour(shape, "europe-west1", False) * 0.484)
    assert spot_fraction("e2", "us-east1") == (0.6, "us-central1")
    (said,) = spot_price_warnings("e2", "us-east1")
    assert "priced at us-central1's fraction of on demand, 0.6" in said
    assert "0.478 to 0.6 where known" in said
    assert spot_price_warnings("e2", "europe-west4") == []


def test_the_cited_list_prices_come_out() -> None:
    # The list prices the SKU rates give (us-central1, on demand): n2-standard-8 0.3885 and
    # n2d-standard-8 0.3380 USD an hour.
    n2 = node_usd_per_hour(parse_machine_type("n2-standard-8"), "us-central1", False)
    n2d = node_usd_per_hour(parse_machine_type("n2d-standard-8"), "us-central1", False)
    assert (round(n2, 4), round(n2d, 4)) == (0.3885, 0.3380)


def test_a_family_without_spot_prices_cannot_be_planned_on_spot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prices = load("prices")
    current = prices["catalogues"][prices["current"]]
    fractions = {k: v for k, v in current["spot_fractions"].items() if k != "n4"}
    monkeypatch.setitem(current, "spot_fractions", fractions)
    with pytest.raises(ConfigError, match="no spot price for N4") as error:
        node_usd_per_hour(parse_machine_type("n4-standard-8"), "us-central1", True)
    assert "scripts/refresh_prices.py" in str(error.value)


def warnings_of(overrides: dict[str, Any]) -> tuple[str, list[str]]:
    _, _, warnings, design = design_stack("8vcpu-16gb-interop4", overrides)
    return design.settings.disk_type, [*warnings, *design.warnings]


def test_a_family_that_refuses_the_default_disk_boots_from_its_own_and_says_so() -> None:
    disk, warnings = warnings_of({"machineType": "c3-highcpu-8"})
    assert disk == "pd-balanced"
    said = [w for w in warnings if w.startswith("diskType pd-standard")]
    assert said and "C3 takes pd-balanced, pd-ssd, hyperdisk-balanced" in said[0]
    disk, _ = warnings_of({"machineType": "c4d-standard-8"})
    assert disk == "hyperdisk-balanced"
    # Every family's rates are sourced now: nothing is said of them.
    assert not any("are not read from the Billing Catalog" in w for w in warnings)


def test_a_disk_the_stack_sets_that_the_family_refuses_is_an_error(tmp_path: Path) -> None:
    stack = ROOT / "Pulumi.families-test.yaml"
    stack.write_text(
        "config:\n  tfserving-gke:machineType: c4d-standard-8\n  tfserving-gke:diskType: pd-ssd\n",
        encoding="utf-8",
    )
    try:
        with pytest.raises(ConfigError, match="diskType") as error:
            design_stack("families-test")
        assert "C4D takes hyperdisk-balanced" in str(error.value)
    finally:
        stack.unlink()


def test_the_node_pool_is_declared_with_the_familys_type_and_disk() -> None:
    plan = plan_stack("dev", {"machineType": "c3d-highcpu-8", "gcp:project": "demo-project"})
    pools = [r for r in plan.recording.resources if r.type == "gcp:container/nodePool:NodePool"]
    serving = next(r for r in pools if r.name.endswith("serving"))
    assert serving.inputs["nodeConfig"]["machineType"] == "c3d-highcpu-8"
    assert serving.inputs["nodeConfig"]["diskType"] == "pd-balanced"
    assert any(line.item == "pd-balanced boot disks, 30 GB each" for line in plan.design.cost.lines)


def test_a_load_generator_of_a_hyperdisk_family_is_refused() -> None:
    with pytest.raises(ConfigError, match="loadGeneratorMachineType"):
        design_stack("dev", {"loadGenerator": True, "loadGeneratorMachineType": "c4d-highcpu-8"})


def test_a_sweep_across_families_counts_each_familys_cpu_quota() -> None:
    design = design_sweep(["8vcpu-16gb-interop4"], SEARCH, extra={"machineType": "n2-highcpu-8"})
    need = needs(design.steps, design.durations)
    metrics = [d.metric for d in need.demands]
    assert metrics == ["CPUS", "N2_CPUS", "IN_USE_ADDRESSES", "CPUS_ALL_REGIONS"]
    # The serving nodes count against N2_CPUS; CPUS (E2's) holds the load generator and
    # GKE's default pool, never the N2 nodes; every vCPU counts against CPUS_ALL_REGIONS.
    experiment = design.experiments[0]
    assert need.of("N2_CPUS").amount == experiment.serving_vcpus
    assert need.of("CPUS").amount == experiment.load_generator_max_vcpus
    assert need.of("CPUS_ALL_REGIONS").amount == (
        experiment.serving_vcpus + experiment.load_generator_max_vcpus
    )


def test_the_families_space_plans_with_prices_and_warns_of_unverified_rates(
    tmp_path: Path,
) -> None:
    out = tmp_path / "plan.json"
    run = subprocess.run(
        [sys.executable, "-m", "infra", "sweep", "--space",
         "experiments/spaces/families.yaml", "--dry-run", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    document = json.loads(out.read_text())
    types = {c["settings"]["machineType"] for c in document["configurations"]}
    assert {"n2-standard-8", "t2d-standard-8", "c3-highcpu-8", "c4d-highcpu-8"} <= types
    assert not document["refused"]
    assert {"n4-highcpu-8", "c4-highcpu-8"} <= types  # priced now
    assert {c["settings"]["oneDnn"] for c in document["configurations"]} == {"on", "off"}
    assert "are not read" not in run.stdout
    # 96 configurations over 12 machine types: a tenth would leave two types untried.
    assert "at most 12 trials" in run.stdout


def test_every_family_is_priced_or_named_as_missing() -> None:
    catalogue = load("prices")["catalogues"]["2026-12"]
    for family in FAMILIES:
        assert (
            family in catalogue["families"]
            or "refresh_prices" in (catalogue["family_sources"][family])
        ), family
    assert "hyperdisk-balanced" in catalogue["disk_gb_month"]


@pytest.mark.parametrize(
    ("machine_type", "one_dnn", "env", "said"),
    [
        # TensorFlow's default: on where the CPU has AVX512_VNNI, AVX512_BF16, AVX_VNNI or
        # AMX, off on AMD Rome/Milan, the host's own on E2.
        ("n2-standard-8", "auto", None, "on: TensorFlow's default on N2 (avx512-vnni)"),
        ("c4-highcpu-8", "auto", None, "on: TensorFlow's default on C4 (avx512-vnni, amx)"),
        ("n2d-standard-8", "auto", None, "off: TensorFlow's default on N2D"),
        ("t2d-standard-8", "auto", None, "off: TensorFlow's default on T2D"),
        ("e2-standard-8", "auto", None, "depends on the host E2 lands on"),
        ("n2d-standard-8", "on", "1", "on (oneDnn on)"),
        ("n2-standard-8", "off", "0", "off (oneDnn off)"),
    ],
)
def test_onednn_is_a_setting_the_plan_explains_per_family(
    machine_type: str, one_dnn: str, env: str | None, said: str
) -> None:
    plan = plan_stack("dev", {"machineType": machine_type, "oneDnn": one_dnn})
    assert said in plan.design.onednn
    container = manifest(plan, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    found = {e["name"]: e["value"] for e in container.get("env", [])}
    assert found.get("TF_ENABLE_ONEDNN_OPTS") == env


def test_a_onednn_value_outside_auto_on_off_is_refused() -> None:
    with pytest.raises(ConfigError, match="oneDnn") as error:
        design_stack("dev", {"oneDnn": "yes"})
    assert "auto" in str(error.value) and "off" in str(error.value)
