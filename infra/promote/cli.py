"""`python -m infra promote <sweep report | experiment> --stack prod`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from infra.data import load
from infra.design.experiment import ExperimentDesign, design_experiment
from infra.design.settings import available_presets, project_name, resolve_values
from infra.design.stack_config import stack_file
from infra.inputs.errors import ConfigError, InputError
from infra.inputs.files import json_object
from infra.inputs.values import output_file, positive_int, project_id, stack_name
from infra.promote.config import Winner, production_settings, winner_from_report
from infra.sweep.report import REPORT_JSON


def add_parser(commands: Any) -> None:
    promote = commands.add_parser(
        "promote",
        help="write a production stack from the winning experiment (sweep report or preset)",
        description="Write Pulumi.<stack>.yaml carrying the experiment's node shape, threads "
        "and batching, with production defaults: autoscaling on, metrics and warm starts on, "
        "no TTL, no load generator. Checked as `pulumi up` would check it before writing.",
    )
    promote.add_argument(
        "source",
        help="a sweep's report.json (or its directory), or an experiment preset name",
    )
    promote.add_argument(
        "--stack", type=stack_name, default="prod", help="the production stack's name"
    )
    promote.add_argument(
        "--regional",
        action="store_true",
        help="a regional cluster: nodes in every zone of the region (zonal by default)",
    )
    promote.add_argument("--zone", default="", help="zone (default: the experiment's)")
    promote.add_argument(
        "--min-replicas", type=positive_int, help="fewest pods (default: the experiment's count)"
    )
    promote.add_argument(
        "--max-replicas", type=positive_int, help="most pods (default: twice the fewest)"
    )
    promote.add_argument(
        "--gcp-project", type=project_id, default="", help="written as gcp:project"
    )
    promote.add_argument(
        "--out", type=output_file, help="write here instead of Pulumi.<stack>.yaml in the project"
    )
    promote.add_argument("--force", action="store_true", help="overwrite an existing file")
    promote.set_defaults(run=run_promote)


def _winner(source: str) -> Winner:
    path = Path(source)
    if path.is_dir():
        path = path / REPORT_JSON
    if path.is_file() or path.suffix == ".json":
        report = json_object(path, "a sweep's report.json", "`sweep` writes it beside sweep.json.")
        try:
            return winner_from_report(report, str(path))
        except (KeyError, TypeError, AttributeError) as error:
            raise InputError(
                f"{path} is incomplete or edited by hand ({type(error).__name__}: {error}): "
                "write it again with `python -m infra sweep` (it rebuilds the report from "
                "the results)"
            ) from None
        except ValueError as error:
            raise InputError(str(error)) from None
    if source in available_presets():
        return Winner(source, {}, f"experiment preset {source} (no measurement)")
    raise ConfigError(
        "promote",
        f"{source!r} is neither a sweep report (report.json or a sweep directory) nor an "
        f"experiment preset ({', '.join(available_presets())}).",
    )


def _header(winner: Winner, measured: ExperimentDesign, design: ExperimentDesign) -> list[str]:
    server = measured.server
    batching = server.batching
    lines = [
        f"Production stack written by `python -m infra promote` on "
        f"{datetime.now(UTC):%Y-%m-%d}, from {winner.source}.",
        f"Experiment {winner.experiment}: {measured.nodes_total} x {measured.shape.machine_type}, "
        f"{measured.settings.pods_per_node} pod(s) per node, intra-op "
        f"{server.intra_op_parallelism}, inter-op {server.inter_op_parallelism}, REST "
        f"{server.rest_api_num_threads} / gRPC {server.grpc_max_threads} threads, batching "
        + ("off." if batching is None else f"max {batching.max_batch_size}."),
    ]
    if winner.capacity_rps and winner.replicas:
        lines.append(
            f"Measured: {winner.capacity_rps:g} requests/s within p99 ≤ {winner.p99_ms:g} ms on "
            f"{winner.replicas} pods, about {winner.capacity_rps / winner.replicas:.1f} a pod."
        )
    if winner.target_rps and winner.target_nodes:
        lines.append(
            f"Target: {winner.target_rps:g} requests/s needs {winner.target_nodes} node(s) "
            "(from the low end of the measured capacity range): the fewest pods are theirs."
        )
    scaling = design.autoscaling
    if scaling and design.cost_at_max:
        lines.append(
            f"Autoscaling: {scaling.min_replicas} to {scaling.max_replicas} pods at "
            f"{scaling.target_cpu_utilization}% CPU, {scaling.min_nodes} to {scaling.max_nodes} "
            f"nodes: {design.cost.usd_per_hour:.2f} to {design.cost_at_max.usd_per_hour:.2f} "
            f"USD/hour at list prices ({design.cost.catalogue})."
        )
    if winner.spot:
        lines.append(
            "spot: true, the price basis it won on (the sweep ranked at spot prices, "
            "--deploy-spot): Spot VMs can be preempted at any time, so keep minReplicas at 2 "
            "or more; set spot false for on-demand nodes at on-demand prices."
        )
    settings = design.settings
    if "@latest" in settings.model_source and not settings.model_sha256:
        lines.append(
            "modelSource follows the latest release: pin it (a tag, and modelSha256 from "
            f"`python -m infra model inspect {settings.model_source}`) so a new release does "
            "not reach production unmeasured."
        )
    lines.append("Every value is here (experiment: none); edit it like any stack config.")
    return lines


def render_stack_file(
    project: str, values: dict[str, Any], header: list[str], gcp_project: str
) -> str:
    config: dict[str, Any] = {}
    if gcp_project:
        config["gcp:project"] = gcp_project
    config |= {f"{project}:{key}": value for key, value in sorted(values.items())}
    comments = [f"# {line}" for line in header]
    if not gcp_project:
        comments.append("# Before `pulumi up`: pulumi config set gcp:project <your-project-id>")
    body = yaml.safe_dump({"config": config}, sort_keys=False, default_flow_style=False)
    return "\n".join(comments) + "\n" + body


def run_promote(args: argparse.Namespace) -> int:
    if args.min_replicas and args.max_replicas and args.max_replicas < args.min_replicas:
        raise InputError(
            f"--max-replicas {args.max_replicas} is below --min-replicas {args.min_replicas}: "
            "the autoscaler needs room to move. Give --max-replicas at least "
            f"{args.min_replicas}, or leave it out (twice the fewest)."
        )
    winner = _winner(args.source)
    measured_settings = resolve_values(
        winner.experiment, {"experiment": winner.experiment, **winner.settings}, ""
    )
    measured = design_experiment(measured_settings)
    values = production_settings(
        winner,
        measured,
        regional=args.regional,
        zone=args.zone,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        zones_per_region=int(load("gke")["zones_per_region"]),
    )
    try:
        design = design_experiment(resolve_values(args.stack, values, args.gcp_project))
    except ConfigError as error:
        raise ConfigError(f"the promoted stack {args.stack}", str(error)) from None
    target = args.out or stack_file(args.stack)
    if target.exists() and not args.force:
        raise ConfigError(
            "promote",
            f"{target} exists; pass --force to overwrite it, or --stack another name.",
        )
    header = _header(winner, measured, design)
    target.write_text(
        render_stack_file(project_name(), values, header, args.gcp_project), encoding="utf-8"
    )
    print(f"Wrote {target}:")
    print("\n".join(f"  {line}" for line in header))
    for warning in design.warnings:
        print(f"  warning: {warning}")
    print(
        f"Next: `python -m infra plan {args.stack}` (offline), then `pulumi up --stack "
        f"{args.stack}`."
    )
    return 0
