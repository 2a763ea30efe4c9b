"""The order a sweep runs its experiments in. Pure.

Experiments on the same node shape share the serving pool's nodes: only their pods roll
between them. So the sweep groups experiments by node shape, smallest shape first (the
pods of a smaller shape fit on a larger one's nodes, so a pool upgraded in place never
strands them), and inside a group by node count, then by image (a new image is a build and
a push), then batching off before on, then name.
"""

from __future__ import annotations

from collections.abc import Sequence

from infra.sweep.experiment import Planned


def sweep_order(experiments: Sequence[Planned]) -> list[Planned]:
    groups: dict[tuple[str, bool, str, int], list[Planned]] = {}
    for experiment in experiments:
        groups.setdefault(experiment.pool_shape, []).append(experiment)

    def group_key(members: list[Planned]) -> tuple[float, ...]:
        first = members[0]
        return (first.vcpus, first.memory_gib, min(m.nodes for m in members))

    ordered: list[Planned] = []
    for members in sorted(groups.values(), key=lambda m: (group_key(m), m[0].machine_type)):
        ordered += sorted(members, key=lambda e: (e.nodes, e.images, e.batching, e.name))
    return ordered
