"""A sweep's design: every experiment planned offline as the sweep's stack (the real
program under the SDK's mocks), put in order, each step's changes, the estimates and the
quota it needs. The dry run prints it; a real run starts from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from infra.data import read_yaml
from infra.design.load_generator import POOL_NAME
from infra.design.pricing import NodeGroup, node_group_lines
from infra.design.settings import EXPERIMENTS_DIR, available_presets
from infra.inputs.errors import ConfigError, ModelSourceError
from infra.loadgen.tensors import PayloadError, outputs_inputs, payload_protocol
from infra.plan.render import plan_json
from infra.plan.run import StackPlan, plan_stack
from infra.sweep.changes import NODE_POOL, SERVING_POOL_NAME, Step, plan_steps, teardown
from infra.sweep.durations import Durations, SearchSettings
from infra.sweep.estimate import Estimate, separate_estimate, sweep_estimate
from infra.sweep.experiment import Planned
from infra.sweep.order import sweep_order
from infra.sweep.quota import PROJECT, Need, needs

SCHEMA = "tfserving-gke/sweep-plan/v1"
DEFAULT_STACK = "sweep"
# Settings the sweep itself sets on its stack, for every experiment.
SWEEP_SETTINGS = ("experiment", "experimentLabel", "ttlHours", "loadGenerator")
# The signature a sweep's capacity searches send requests to.
SEARCH_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class SweepDesign:
    stack: str
    steps: tuple[Step, ...]
    estimate: Estimate
    separate: Estimate
    need: Need
    search: SearchSettings
    durations: Durations
    ttl_hours: int
    extra: Mapping[str, Any]  # --set settings, on every experiment
    gcp_project: str
    region: str
    warnings: tuple[str, ...]
    # experiment -> the model sha256 every `up` must serve (a real run resolves and pins
    # each source before anything is created; empty in a dry run)
    model_pins: Mapping[str, str] = field(default_factory=dict)
    # Measured on spot VMs: the same sweep and separate stacks on on-demand nodes.
    on_demand: Estimate | None = None
    on_demand_separate: Estimate | None = None

    @property
    def experiments(self) -> list[Planned]:
        return [step.experiment for step in self.steps]

    def config(self, experiment: str) -> dict[str, Any]:
        """The sweep stack's project settings while it serves `experiment` (its model
        pinned to the artifact the sweep measures, unless --set pins one)."""
        settings = sweep_settings(self.stack, experiment, self.ttl_hours, self.extra)
        pin = self.model_pins.get(experiment)
        if pin and "modelSha256" not in self.extra:
            settings["modelSha256"] = pin
        return settings

    def model_requests(self) -> dict[str, dict[str, Any]]:
        """experiment -> its model's source, name, version and pin, as its plan resolved
        them."""
        return {
            e.name: {
                key: e.plan["settings"][key]["value"]
                for key in (
                    "modelSource",
                    "modelName",
                    "modelVersion",
                    "modelSha256",
                    "githubApiUrl",
                    "modelMaxDownloadMb",
                )
            }
            for e in self.experiments
        }

    def count(self, type_: str, *actions: str) -> int:
        return sum(
            1
            for step in self.steps
            for c in step.changes
            if c.type == type_ and c.action in actions
        )


def ttl_hours(search: SearchSettings, durations: Durations) -> int:
    """expiresAt moves on with every `up`; the longest a sweep goes between two (the
    slowest change plus a capacity search), with an hour's margin, and the time to destroy."""
    d = durations
    longest = (
        d.image_build_push
        + d.node_pool_delete
        + d.node_pool_create
        + d.first_rollout
        + d.load_generator_scale_up
        + search.minutes(d)
        + d.destroy
    )
    return math.ceil(longest / 60) + 1


def sweep_settings(
    stack: str, experiment: str, ttl: int, extra: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        **extra,
        "experiment": experiment,
        # The cloud resources keep one label for the whole sweep: switching experiments
        # then relabels nothing (GKE would run a node-pool update for a label).
        "experimentLabel": stack,
        "ttlHours": ttl,
        # Capacity is measured from inside the cluster.
        "loadGenerator": True,
    }


def check_names(names: Sequence[str]) -> list[str]:
    """The experiments asked for, each once, in the order given; unknown names refused."""
    presets = available_presets()
    unknown = [name for name in names if name not in presets]
    if unknown:
        raise ConfigError(
            "sweep",
            f"no experiment preset named {unknown[0]!r}. Presets: {', '.join(presets)}.",
        )
    if not names:
        raise ConfigError("sweep", "name the experiments to sweep, or pass --all")
    return list(dict.fromkeys(names))


def reference_experiments() -> list[str]:
    """--all: every preset that reproduces a reference experiment (not `dev`)."""
    names = []
    for name in available_presets():
        if (read_yaml(EXPERIMENTS_DIR / f"{name}.yaml") or {}).get("reference"):
            names.append(name)
    return names


def planned(plan: StackPlan) -> Planned:
    """What the sweep needs from one experiment's offline plan."""
    design, s = plan.design, plan.settings
    catalogue = design.cost.catalogue
    serving = NodeGroup(design.shape, design.nodes_total, s.disk_type, s.disk_size_gb, s.spot)
    nodes_usd = sum(line.usd_per_hour for line in node_group_lines(serving, s.region, catalogue))
    on_demand = replace(serving, spot=False)
    on_demand_usd = sum(
        line.usd_per_hour for line in node_group_lines(on_demand, s.region, catalogue)
    )
    generator = design.load_generator
    generator_usd = generator_on_demand_usd = 0.0
    if generator is not None:
        one = NodeGroup(
            generator.shape,
            1,
            generator.disk_type,
            generator.disk_size_gb,
            spot=generator.spot,
            role=POOL_NAME,
        )
        generator_usd = sum(
            line.usd_per_hour for line in node_group_lines(one, s.region, catalogue)
        )
        generator_on_demand_usd = sum(
            line.usd_per_hour
            for line in node_group_lines(replace(one, spot=False), s.region, catalogue)
        )
    resources = plan.recording.resources
    pool_urn = next(r.urn for r in resources if (r.type, r.name) == (NODE_POOL, SERVING_POOL_NAME))
    images = tuple(
        sorted(
            str(r.inputs["imageName"]) for r in resources if r.type == "docker:index/image:Image"
        )
    )
    return Planned(
        name=s.experiment,
        plan=plan_json(plan),
        machine_type=design.shape.machine_type,
        vcpus=design.shape.vcpus,
        memory_gib=design.shape.memory_gib,
        nodes=design.nodes_total,
        spot=s.spot,
        disk_type=s.disk_type,
        disk_size_gb=s.disk_size_gb,
        pod_requests=design.pod_requests,
        node_allocatable=design.node_allocatable,
        images=images,
        batching=design.server.batching is not None,
        fixed_usd_per_hour=design.cost.usd_per_hour - nodes_usd,
        nodes_usd_per_hour=nodes_usd,
        load_generator_node_usd_per_hour=generator_usd,
        load_generator_node_vcpus=generator.shape.vcpus if generator else 0,
        load_generator_max_nodes=generator.max_nodes if generator else 0,
        serving_pool_urn=pool_urn,
        load_generator_machine_type=generator.shape.machine_type if generator else "",
        load_generator_spot=bool(generator and generator.spot),
        external_addresses=1 if s.exposure == "external" else 0,
        on_demand_nodes_usd_per_hour=on_demand_usd,
        on_demand_load_generator_node_usd_per_hour=generator_on_demand_usd,
        gpus=design.nodes_total * design.gpu.per_node if design.gpu else 0,
        gpu_quota_metric=design.gpu.quota_metric if design.gpu else "",
        gpu_preemptible_metric=design.gpu.preemptible_quota_metric if design.gpu else "",
    )


def design_sweep(
    names: Sequence[str],
    search: SearchSettings,
    *,
    stack: str = DEFAULT_STACK,
    extra: Mapping[str, Any] | None = None,
    gcp_project: str = "",
    durations: Durations | None = None,
) -> SweepDesign:
    """Plan every experiment as the sweep's stack, order them, and estimate the sweep."""
    d = durations or Durations.from_data()
    extra = dict(extra or {})
    owned = sorted(set(extra) & set(SWEEP_SETTINGS))
    if owned:
        raise ConfigError(
            owned[0], "is set by the sweep for each experiment; leave it out of --set"
        )
    ttl = ttl_hours(search, d)
    plans = [
        plan_configuration(
            stack, name, sweep_settings(stack, name, ttl, extra), gcp_project, search
        )
        for name in check_names(names)
    ]
    return assemble(plans, search, stack=stack, extra=extra, durations=d)


def plan_configuration(
    stack: str, name: str, overrides: Mapping[str, Any], gcp_project: str, search: SearchSettings
) -> StackPlan:
    """One experiment (or a search's configuration) planned offline as the sweep's stack."""
    given = dict(overrides)
    if gcp_project:
        given["gcp:project"] = gcp_project
    try:
        plan = plan_stack(stack, given)
    except (ConfigError, ModelSourceError) as error:
        raise ConfigError(f"experiment {name}", str(error)) from None
    _check_requests(plan, search)
    return plan


def assemble(
    plans: Sequence[StackPlan],
    search: SearchSettings,
    *,
    stack: str,
    extra: Mapping[str, Any],
    durations: Durations,
    names: Sequence[str] = (),
) -> SweepDesign:
    """The design of a sweep of these plans: ordered cheapest first (unless `names` are
    given: then in this order, each plan named so), the steps, estimates and quota."""
    d = durations
    experiments = [planned(plan) for plan in plans]
    if names:
        ordered = [replace(e, name=n) for e, n in zip(experiments, names, strict=True)]
    else:
        ordered = sweep_order(experiments)
    steps = plan_steps(ordered, d)
    warnings = tuple(dict.fromkeys(w for plan in plans for w in plan.warnings))
    first = plans[0].settings
    sweep_on_demand, separate_on_demand = on_demand_estimates(steps, search, d)
    return SweepDesign(
        stack=stack,
        steps=tuple(steps),
        estimate=sweep_estimate(steps, search, d),
        separate=separate_estimate(ordered, search, d),
        need=needs(steps, d),
        search=search,
        durations=d,
        ttl_hours=ttl_hours(search, d),
        extra=dict(extra),
        gcp_project=first.gcp_project,
        region=first.region,
        warnings=warnings,
        on_demand=sweep_on_demand,
        on_demand_separate=separate_on_demand,
    )


def on_demand(experiment: Planned) -> Planned:
    """The experiment on on-demand nodes (the same hardware, the list price)."""
    if not experiment.spot or experiment.on_demand_nodes_usd_per_hour is None:
        return experiment
    generator = experiment.on_demand_load_generator_node_usd_per_hour
    return replace(
        experiment,
        spot=False,
        nodes_usd_per_hour=experiment.on_demand_nodes_usd_per_hour,
        load_generator_node_usd_per_hour=(
            experiment.load_generator_node_usd_per_hour if generator is None else generator
        ),
    )


def on_demand_estimates(
    steps: Sequence[Step], search: SearchSettings, d: Durations
) -> tuple[Estimate | None, Estimate | None]:
    """(the sweep, separate stacks) at on-demand prices, when any experiment is on spot."""
    if not any(step.experiment.spot for step in steps):
        return None, None
    repriced = [
        replace(
            step,
            experiment=on_demand(step.experiment),
            previous=on_demand(step.previous) if step.previous else None,
        )
        for step in steps
    ]
    return (
        sweep_estimate(repriced, search, d),
        separate_estimate([step.experiment for step in repriced], search, d),
    )


def _check_requests(plan: StackPlan, search: SearchSettings) -> None:
    """The capacity search's requests, generated from the model's serving signature, must
    be ones bench can build and send over the search's protocol (known once the model is
    resolved: after `model inspect`, or in a real run)."""
    specs = outputs_inputs(plan.recording.stack_outputs, SEARCH_SIGNATURE)
    if specs is None:
        return
    try:
        payload_protocol(specs, search.protocol, chosen_by_user=True)
    except PayloadError as error:
        raise ConfigError(
            f"experiment {plan.settings.experiment}",
            f"its model's {SEARCH_SIGNATURE} signature cannot be load-tested by the sweep: {error}",
        ) from None


def pool_operations(design: SweepDesign) -> dict[str, int]:
    """Node-pool creations, replacements and in-place node recreations over the sweep."""
    return {
        "created": design.count(NODE_POOL, "create"),
        "replaced": design.count(NODE_POOL, "replace"),
        "recreated_in_place": sum(1 for s in design.steps if s.pool.kind == "in-place"),
    }


def dry_run_json(design: SweepDesign, max_usd: float | None) -> dict[str, Any]:
    """The dry run as JSON: steps with the resource types each creates, replaces, updates and
    deletes; the estimates; the quota it needs; whether the budget allows it."""
    steps = []
    for index, step in enumerate(design.steps, start=1):
        phases = design.estimate.of(step.experiment.name)
        steps.append(
            {
                "step": index,
                "experiment": step.experiment.name,
                "nodes": step.experiment.describe_shape(),
                "creates": step.types("create"),
                "replaces": step.types("replace"),
                "updates": step.types("update"),
                "deletes": step.types("delete"),
                "node_pool": step.pool.to_json(),
                "replace_targets": step.replace_urns,
                "minutes": round(sum(p.minutes for p in phases), 1),
                "usd": round(sum(p.usd for p in phases), 2),
                "usd_per_hour": round(step.experiment.usd_per_hour, 4),
                "resources": [c.to_json() for c in step.changes],
            }
        )
    last = design.steps[-1].experiment
    return {
        "schema": SCHEMA,
        "stack": design.stack,
        "gcp_project": design.gcp_project,
        "region": design.region,
        "experiments": [e.name for e in design.experiments],
        "steps": steps,
        "teardown": {"deletes": sorted(c.type for c in teardown(last))},
        "node_pools": pool_operations(design),
        "clusters_created": design.count("gcp:container/cluster:Cluster", "create"),
        "estimate": design.estimate.to_json(),
        "separate_stacks_estimate": design.separate.to_json(with_phases=False),
        "sweep_fraction": {
            "hours": round(design.estimate.hours / design.separate.hours, 3),
            "usd": round(design.estimate.usd / design.separate.usd, 3),
        },
        "on_demand": None
        if design.on_demand is None or design.on_demand_separate is None
        else {
            # Measured on spot VMs: what the same would cost on on-demand nodes.
            "sweep_usd": round(design.on_demand.usd, 2),
            "separate_stacks_usd": round(design.on_demand_separate.usd, 2),
            "spot_sweep_fraction_of_separate_on_demand": round(
                design.estimate.usd / design.on_demand_separate.usd, 3
            ),
        },
        "quota": {"region": design.region, **design.need.to_json()},
        "budget": {
            "max_usd": max_usd,
            "fits": None if max_usd is None else design.estimate.usd <= max_usd,
        },
        "capacity_search": design.search.to_json(),
        "ttl_hours": design.ttl_hours,
        "durations": design.durations.to_json(),
        "prices": {
            "catalogue": last.plan["cost"]["catalogue"],
            "as_of": last.plan["cost"]["as_of"],
        },
        "warnings": list(design.warnings),
        "advice": advice(design),
    }


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _model_of(experiment: Planned) -> str:
    settings = experiment.plan["settings"]
    text = f"{settings['modelName']['value']} from {settings['modelSource']['value']}"
    version = settings["modelVersion"]["value"]
    return text + (
        f" (version {version})" if settings["modelVersion"]["source"] != "default" else ""
    )


def advice(design: SweepDesign) -> list[str]:
    """What the user should know before running this sweep: experiments that measure
    different models, and a sweep that costs more than separate stacks."""
    notes = []
    models: dict[str, list[str]] = {}
    for experiment in design.experiments:
        models.setdefault(_model_of(experiment), []).append(experiment.name)
    if len(models) > 1:
        serving = "; ".join(f"{model}: {', '.join(names)}" for model, names in models.items())
        notes.append(
            f"The experiments serve {len(models)} different models ({serving}). A capacity "
            "measures one model's work, so the sweep ranks only experiments of the same model "
            "fairly, and every switch of model rebuilds the image. Sweep one model at a time, "
            "or give them one with --set modelSource=... --set modelName=...."
        )
    sweep, separate = design.estimate, design.separate
    if len(design.steps) > 1 and sweep.usd > separate.usd:
        notes.append(
            f"This sweep costs more than the same experiments as separate stacks "
            f"({sweep.usd:.2f} against {separate.usd:.2f} USD): run each on a stack of its "
            "own instead (`python -m infra sweep <experiment>` once per experiment)."
        )
    return notes


def _counts(step: Step) -> str:
    return " / ".join(str(len(step.types(a))) for a in ("create", "replace", "update"))


def _spot_lines(design: SweepDesign) -> list[str]:
    """Measured on spot VMs: both prices, and what spot saves against separate on-demand
    stacks (how the experiments would otherwise be run)."""
    if design.on_demand is None or design.on_demand_separate is None:
        return []
    sweep, separate = design.estimate, design.on_demand_separate
    return [
        f"  on spot VMs; on on-demand nodes the sweep would cost {design.on_demand.usd:.2f} "
        f"USD and separate stacks {separate.usd:.2f} USD: this sweep is "
        f"{sweep.usd / separate.usd:.0%} of separate on-demand stacks. Spot prices move "
        "(the catalogue's spot fraction); a preempted node's step is measured again.",
    ]


def describe(design: SweepDesign, max_usd: float | None) -> str:
    """The dry run for a terminal."""
    s = design.search
    objective = f"p99 ≤ {s.p99_ms:g} ms" if s.p99_ms is not None else "p99 objective from --p99-ms"
    lines = [
        f"Sweep on stack {design.stack}: {_plural(len(design.steps), 'experiment')} on one "
        "cluster in "
        f"{design.region}, in this order. Each: `pulumi up`, then a capacity search ({objective}, "
        f"errors ≤ {s.max_error_rate:.2%}, {s.protocol}, from {s.start_rate:g}/s, at most "
        f"{s.max_steps} steps of {s.warmup_s:g}+{s.duration_s:g} s).",
        "",
        f"{'#':>2}  {'experiment':<28} {'nodes':<26} {'node pool':<10} "
        f"{'+ / replace / ~':<16} {'minutes':>7} {'USD':>6}",
    ]
    document = dry_run_json(design, max_usd)
    for entry, step in zip(document["steps"], design.steps, strict=True):
        lines.append(
            f"{entry['step']:>2}  {entry['experiment']:<28} {entry['nodes']:<26} "
            f"{step.pool.kind:<10} {_counts(step):<16} "
            f"{entry['minutes']:>7.1f} {entry['usd']:>6.2f}"
        )
    destroy = design.estimate.phases[-1]
    lines.append(
        f"{'':>2}  {'destroy':<28} {'':<26} {'':<10} {'':<16} "
        f"{destroy.minutes:>7.1f} {destroy.usd:>6.2f}"
    )
    lines.append("")
    models = sorted(
        {
            (str(e.plan["summary"]["model"]["name"]), str(e.plan["summary"]["model"]["source"]))
            for e in design.experiments
        }
    )
    lines += [f"Model: {name} (/v1/models/{name}) from {source}" for name, source in models]
    for step in design.steps:
        if step.pool.kind in ("replace", "in-place"):
            lines.append(f"  {step.experiment.name}: node pool {step.pool.kind} ({step.pool.why})")
    pools = document["node_pools"]
    sweep, separate = design.estimate, design.separate
    lines += [
        "",
        f"Estimate (durations as of {design.durations.as_of}, infra/data/sweep.yaml; prices "
        f"{document['prices']['catalogue']}):",
        f"  this sweep:          {sweep.hours:5.1f} h  {sweep.usd:7.2f} USD  (clusters created: "
        f"{document['clusters_created']}; node pools created {pools['created']}, replaced "
        f"{pools['replaced']}, nodes recreated in place {pools['recreated_in_place']} times)",
        f"  as separate stacks:  {separate.hours:5.1f} h  {separate.usd:7.2f} USD",
        (
            f"  the sweep takes {sweep.hours / separate.hours:.0%} of the time and "
            f"{sweep.usd / separate.usd:.0%} of the cost."
            if len(design.steps) > 1
            else "  one experiment: the sweep is the same as a stack of its own."
        )
        + " Capacity searches are counted at their most steps and "
        f"{_plural(design.durations.load_generator_nodes_assumed, 'load-generator node')}; "
        "the running total counts what really runs.",
        *_spot_lines(design),
        "",
        f"Quota needed at once in {design.region}, per metric (checked against the project's "
        "quotas before a real run):",
        *(
            f"  {d.metric:<17} {d.amount:>4}  "
            f"{'project-wide' if d.scope == PROJECT else 'regional':<12} {d.where}"
            for d in design.need.demands
        ),
        f"The sweep stack records expiresAt {design.ttl_hours} h after each `up`: if the sweep "
        "dies, the cleanup-expired workflow destroys it.",
    ]
    if max_usd is not None:
        verdict = (
            "fits"
            if sweep.usd <= max_usd
            else "is above it: a real run would be refused (raise --max-usd, or sweep fewer "
            "experiments or capacity steps)"
        )
        lines.append(
            f"Budget: --max-usd {max_usd:g}: the estimate of {sweep.usd:.2f} USD {verdict}."
        )
    notes = advice(design)
    if notes:
        lines += ["", "Before you run it:", *(f"  - {note}" for note in notes)]
    if design.warnings:
        lines += ["", "Warnings from the plans:", *(f"  - {w}" for w in design.warnings)]
    return "\n".join(lines) + "\n"
