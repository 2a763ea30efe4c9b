"""E2 shapes, GKE allocatable resources and serving-pod sizing."""

from __future__ import annotations

import pytest

from infra.design.machine import (
    node_allocatable,
    parse_machine_type,
    resolve_machine,
    serving_pod_requests,
    shape_from_size,
)
from infra.inputs.errors import ConfigError


@pytest.mark.parametrize(
    ("machine_type", "cpu_m", "memory_mib"),
    [
        ("e2-standard-4", 3920, 13621),  # Google's sample output: 3920m
        ("e2-custom-2-4096", 1930, 2972),
        ("e2-custom-8-16384", 7910, 13621),
        ("e2-highmem-8", 7910, 59824),
        ("e2-medium", 940, 2972),  # shared-core: 1060m reserved in all
    ],
)
def test_node_allocatable_follows_gke_reservations(
    machine_type: str, cpu_m: int, memory_mib: int
) -> None:
    allocatable = node_allocatable(parse_machine_type(machine_type))
    assert (allocatable.cpu_m, allocatable.memory_mib) == (cpu_m, memory_mib)


@pytest.mark.parametrize(
    ("vcpus", "memory_gb", "machine_type"),
    [
        (2, 4, "e2-custom-2-4096"),
        (4, 8, "e2-custom-4-8192"),
        (8, 16, "e2-custom-8-16384"),
        (8, 64, "e2-highmem-8"),
        (4, 16, "e2-standard-4"),
        (16, 16, "e2-highcpu-16"),
    ],
)
def test_shape_is_predefined_when_one_matches_else_custom(
    vcpus: int, memory_gb: int, machine_type: str
) -> None:
    assert shape_from_size(vcpus, memory_gb).machine_type == machine_type


def test_explicit_machine_type_wins_over_size() -> None:
    assert resolve_machine("e2-standard-8", 2, 4).machine_type == "e2-standard-8"


@pytest.mark.parametrize(
    ("machine_type", "vcpus", "memory_gb", "message"),
    [
        ("", 3, 6, "3 vCPUs is not an E2 shape: custom E2 takes 2 to 32 vCPUs in steps of 2"),
        ("", 34, 64, "34 vCPUs is not an E2 shape"),
        ("", 2, 32, "32 GB with 2 vCPUs is not an E2 shape: memory must be 1 to 16 GB"),
        ("c2-standard-8", 0, 0, "'c2-standard-8': C2 is not supported"),
        ("e2-standard-64", 0, 0, "'e2-standard-64' is not an E2 machine type"),
        ("e2-custom-4-1000", 0, 0, "in multiples of 256 MB"),
    ],
)
def test_impossible_shapes_are_rejected_with_the_rule(
    machine_type: str, vcpus: int, memory_gb: int, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_machine(machine_type, vcpus, memory_gb)


def test_pod_gets_what_the_node_leaves_after_gke_system_pods() -> None:
    requests = serving_pod_requests(parse_machine_type("e2-custom-8-16384"), 1)
    assert (requests.cpu_m, requests.memory_mib) == (7910 - 800, 13621 - 1112)
    halves = serving_pod_requests(parse_machine_type("e2-custom-8-16384"), 2)
    assert (halves.cpu_m, halves.memory_mib) == (3550, (13621 - 1112) // 2)


def test_pods_that_cannot_fit_are_rejected_with_the_numbers() -> None:
    with pytest.raises(ConfigError) as caught:
        serving_pod_requests(parse_machine_type("e2-custom-2-4096"), 8)
    message = str(caught.value)
    assert message.startswith("podsPerNode: 8 pods do not fit on e2-custom-2-4096")
    assert "1930m CPU / 2972 MiB" in message
    assert "GKE's system pods need 800m CPU / 1112 MiB, leaving 1130m CPU / 1860 MiB" in message
    assert "140m CPU / 232 MiB per pod" in message
    assert "Lower podsPerNode or pick a larger machine" in message
