"""A sweep's report: per experiment its capacity at the objective and its range, latency
there, CPU per serving pod, price and requests per dollar with their range; the winner,
or the experiments tied with it (their ranges overlap); and whether the reference
system's conclusion holds for this model, decided from the ranges. Markdown, a PNG chart
and the raw JSON, written beside the sweep's manifest. Pure apart from writing the files.

Prices are those the user will deploy at: on demand, even when the sweep measured on spot
VMs (`sweep --spot`), unless it was told otherwise (`--deploy-spot`). With a target load
(`sweep --target-rps`), experiments rank by the cost per hour of serving it, in whole
nodes from the low end of their per-node capacity range, cluster fee and load balancer
included; two whose ranges of that cost overlap are tied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.bench.report import Ranking, Row, chart, meets, named_rows, rank
from infra.design.machine import is_gpu_machine
from infra.sweep.manifest import SweepManifest
from infra.sweep.search.objective import Goal, Price

# The reference system (ml-deployment-k8s-tfserving) found 2 nodes of 8 vCPU / 16 GB with
# inter_op 4 best (shared/facts/seed-system.md); our preset of that experiment:
REFERENCE_WINNER = "8vcpu-16gb-interop4"
REPORT_MD = "report.md"
REPORT_PNG = "report.png"
REPORT_JSON = "report.json"


def _pod_cpu_cores(result: dict[str, Any]) -> float | None:
    pods = ((result.get("server") or {}).get("pods_cpu") or {}).get("serving_pods") or {}
    means = [figures["mean_m"] for figures in pods.values() if figures.get("mean_m") is not None]
    return round(sum(means) / len(means) / 1000, 2) if means else None


def deploy_price(
    measured: dict[str, Any], result: dict[str, Any], deploy_spot: bool
) -> Price | None:
    """An experiment's price per hour as the user will deploy it, from what the manifest
    recorded of it (a manifest older than the split: all of it counted per node)."""
    experiment = result.get("experiment") or {}
    nodes = measured.get("nodes") or experiment.get("nodeCount")
    if not nodes:
        return None
    if "fixed_usd_per_hour" in measured:
        node = float(measured["node_usd_per_hour"])
        if measured.get("spot") and not deploy_spot:
            node = float(measured.get("on_demand_node_usd_per_hour") or node)
        return Price(float(measured["fixed_usd_per_hour"]), node, int(nodes))
    usd = measured.get("usd_per_hour") or experiment.get("costUsdPerHour")
    return Price(0.0, float(usd) / int(nodes), int(nodes)) if usd else None


def _at_price(result: dict[str, Any], price: Price | None) -> dict[str, Any]:
    """The results document priced at `price` (what requests per dollar divide by)."""
    if price is None:
        return result
    experiment = dict(result.get("experiment") or {})
    experiment["costUsdPerHour"] = round(price.usd_per_hour, 4)
    return {**result, "experiment": experiment}


def _target_figures(goal: Goal, price: Price | None, r: Row) -> dict[str, Any]:
    """With a target: nodes that serve it and its cost per hour, over the capacity range."""
    low, high = r.capacity_range
    if goal.target_rps is None or price is None or not low:
        return {
            "nodes_for_target": None,
            "target_usd_per_hour": None,
            "target_usd_per_hour_range": [None, None],
        }
    best, sure = goal.score_range(price, low, high)
    return {
        "nodes_for_target": goal.nodes_needed(price, low),
        "target_usd_per_hour": round(sure, 4),
        # From the range's high end (the cheapest it may turn out) to its low end.
        "target_usd_per_hour_range": [None if high is None else round(best, 4), round(sure, 4)],
    }


def rank_at_target(
    scored: dict[str, tuple[float, float | None]],
) -> tuple[str | None, list[str]]:
    """The cheapest at the target (its sure cost, from the range's low end), and every
    other whose best case (the range's high end) is no dearer: they cannot be told apart."""
    if not scored:
        return None, []
    winner = min(scored, key=lambda name: (scored[name][0], name))
    floor = scored[winner][0]
    tied = [
        name
        for name, (_, best) in scored.items()
        if name != winner and (best is None or best <= floor)
    ]
    return winner, tied


def _entry(name: str, result: dict[str, Any], r: Row) -> dict[str, Any]:
    capacity = result.get("capacity") or {}
    experiment = result.get("experiment") or {}
    return {
        "experiment": name,
        "machine_type": experiment.get("machineType"),
        "nodes": experiment.get("nodeCount"),
        "capacity_rate_per_s": capacity.get("rate_per_s"),
        "capacity_range": list(r.capacity_range),
        "capacity_rps": r.rps,
        "p50_ms": r.p50_ms,
        "p99_ms": r.p99_ms,
        "error_rate": r.error_rate,
        "cpu_per_pod_cores": _pod_cpu_cores(result),
        "replicas": experiment.get("replicas"),
        "usd_per_hour": experiment.get("costUsdPerHour"),
        "requests_per_usd": r.requests_per_usd,
        "requests_per_usd_range": list(r.requests_per_usd_range),
        "not_ranked": list(r.flags),
        # The exact model measured, for `promote` to pin.
        "model_release_tag": experiment.get("modelReleaseTag"),
        "model_sha256": experiment.get("modelSha256"),
        "load_generator_limited": r.generator_limited,
        "stopped": capacity.get("stopped"),
    }


def reference_verdict(entries: list[dict[str, Any]], winner: str | None, tied: list[str]) -> str:
    """Whether 8 vCPU / 16 GB with inter-op 4 is (still) the best per dollar here, from the
    requests-per-dollar ranges: holding when it wins or ties, failing only when its whole
    range lies under the winner's, undecided otherwise."""
    by_name = {e["experiment"]: e for e in entries}
    reference = by_name.get(REFERENCE_WINNER)
    if reference is None:
        return f"not tested: {REFERENCE_WINNER} is not in this sweep"
    if winner is None:
        return "undecided: no experiment met the objective with confidence"
    if reference["not_ranked"]:
        return f"undecided: {REFERENCE_WINNER}'s figures are {', '.join(reference['not_ranked'])}"
    if winner == REFERENCE_WINNER:
        suffix = f", tied with {', '.join(tied)}" if tied else ""
        return f"holds: {REFERENCE_WINNER} serves the most requests per dollar{suffix}"
    if REFERENCE_WINNER in tied:
        return (
            f"holds as a tie: {REFERENCE_WINNER}'s range of requests per dollar overlaps "
            f"{winner}'s, so the measurements cannot tell them apart"
        )
    low, high = by_name[winner]["requests_per_usd_range"][0], reference["requests_per_usd_range"][1]
    if high is not None and low is not None and high < low:
        return (
            f"does not hold for this model: {winner} serves at least {low:,} requests per "
            f"dollar, {REFERENCE_WINNER} at most {high:,}"
        )
    return f"undecided: {REFERENCE_WINNER}'s range is open above"


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def build_report(manifest: SweepManifest) -> dict[str, Any]:
    """The report's figures, from every result the sweep directory holds."""
    return _build(manifest)[0]


def _build(manifest: SweepManifest) -> tuple[dict[str, Any], dict[str, Row]]:
    """The report, and each experiment's row as it ranked (priced as deployed)."""
    deploy_spot = bool(manifest.goal.get("deploy_spot"))
    prices: dict[str, Price | None] = {}
    results: dict[str, dict[str, Any]] = {}
    for name, result in manifest.results().items():
        prices[name] = deploy_price(manifest.measured[name], result, deploy_spot)
        results[name] = _at_price(result, prices[name])
    search = manifest.search
    goal = Goal(manifest.goal.get("target_rps"))
    rows = dict(zip(results, named_rows(list(results.items())), strict=True))
    entries = []
    for name, r in rows.items():
        entry = _entry(name, results[name], r)
        record = manifest.measured[name]
        entry["measured_on_spot"] = bool(record.get("spot"))
        entry["measured_usd_per_hour"] = record.get("usd_per_hour")
        if record.get("settings"):
            entry["settings"] = record["settings"]
        entry |= _target_figures(goal, prices[name], r)
        entries.append(entry)
    ranking = rank(list(rows.values()), search["p99_ms"], search["max_error_rate"])
    winner = next((name for name, r in rows.items() if r is ranking.winner), None)
    tied = [name for name, r in rows.items() if any(r is t for t in ranking.tied)]
    # The reference system compared requests per dollar: its verdict is decided on those.
    verdict = reference_verdict(entries, winner, tied)
    if goal.target_rps is not None:
        by_name = {e["experiment"]: e for e in entries}
        scored = {
            name: (
                by_name[name]["target_usd_per_hour"],
                by_name[name]["target_usd_per_hour_range"][0],
            )
            for name, r in rows.items()
            if meets(r, search["p99_ms"], search["max_error_rate"])
            and by_name[name]["target_usd_per_hour"] is not None
        }
        winner, tied = rank_at_target(scored)
    hardware = cpu_or_gpu(entries, goal.target_rps)
    last_run: dict[str, Any] = manifest.runs[-1] if manifest.runs else {}
    finished = not manifest.failed and all(name in results for name in manifest.order)
    if not finished and not verdict.startswith("not tested"):
        verdict = "undecided: the sweep did not measure every experiment"
    report = {
        "schema": "tfserving-gke/sweep-report/v1",
        "stack": manifest.stack,
        "objective": {"p99_ms": search["p99_ms"], "max_error_rate": search["max_error_rate"]},
        "protocol": search["protocol"],
        "goal": {"target_rps": goal.target_rps, "unit": goal.unit, "deploy_spot": deploy_spot},
        # The --set values every experiment ran with (a model of the user's, say).
        "settings": manifest.settings,
        "experiments": entries,
        "finished": finished,
        "winner": winner,
        "tied_with_winner": tied,
        # With CPU machines and GPU hosts measured: the best of each, side by side.
        "cpu_or_gpu": hardware,
        "reference": {
            "experiment": REFERENCE_WINNER,
            "verdict": verdict,
        },
        "not_measured": {name: why for name, why in manifest.failed.items() if name not in results},
        # Asked for, neither measured nor failed: the sweep stopped before them.
        "not_reached": [
            name for name in manifest.order if name not in results and name not in manifest.failed
        ],
        "stopped": last_run.get("stopped", ""),
        "still_up": list(last_run.get("still_up") or []),
        "spent_usd": round(manifest.spent_usd, 2),
        "phases": manifest.phases,
    }
    return report, rows


def _usd_per_million(requests_per_usd: float | None) -> float | None:
    return None if not requests_per_usd else round(1e6 / requests_per_usd, 4)


def cpu_or_gpu(entries: list[dict[str, Any]], target_rps: float | None) -> dict[str, Any] | None:
    """Where both CPU machines and GPU hosts met the objective: the best of each by the
    goal, with what a million requests cost on it (at the low end of its capacity range,
    and at the high end), what serving the target costs an hour, and which kind wins
    (a tie when their ranges overlap). None when only one kind was measured."""
    ranked = [e for e in entries if not e["not_ranked"] and e["requests_per_usd_range"][0]]
    if target_rps is not None:
        ranked = [e for e in ranked if e.get("target_usd_per_hour") is not None]
    kinds = {
        kind: [e for e in ranked if is_gpu_machine(str(e.get("machine_type") or "")) == kind]
        for kind in (False, True)
    }
    if not all(kinds.values()):
        return None

    def sure(e: dict[str, Any]) -> float:
        if target_rps is not None:
            return float(e["target_usd_per_hour"])
        return 1e6 / float(e["requests_per_usd_range"][0])

    def could(e: dict[str, Any]) -> float:
        """The best it may still turn out, from the range's high end (0: open)."""
        if target_rps is not None:
            best = e["target_usd_per_hour_range"][0]
        else:
            high = e["requests_per_usd_range"][1]
            best = 1e6 / high if high else None
        return 0.0 if best is None else float(best)

    best = {kind: min(kinds[kind], key=sure) for kind in (False, True)}
    side = {}
    for kind, name in ((False, "cpu"), (True, "gpu")):
        e = best[kind]
        per_low, per_high = e["requests_per_usd_range"]
        side[name] = {
            "experiment": e["experiment"],
            "machine_type": e["machine_type"],
            "nodes": e["nodes"],
            "usd_per_hour": e["usd_per_hour"],
            # A million requests at full load: from the low end of the range, and (the
            # cheapest it may turn out) from its high end.
            "usd_per_million_requests": _usd_per_million(per_low),
            "usd_per_million_requests_range": [
                _usd_per_million(per_high),
                _usd_per_million(per_low),
            ],
            "nodes_for_target": e.get("nodes_for_target"),
            "target_usd_per_hour": e.get("target_usd_per_hour"),
        }
    cpu, gpu = best[False], best[True]
    cheaper, dearer = (gpu, cpu) if sure(gpu) < sure(cpu) else (cpu, gpu)
    # Tied when the dearer one's best case (its range's far end) is no dearer than what
    # the cheaper one is sure of: their ranges overlap.
    cheaper_kind = "gpu" if cheaper is gpu else "cpu"
    verdict = "tie" if could(dearer) <= sure(cheaper) else cheaper_kind
    return {
        **side,
        "winner": verdict,
        "saving": round(1 - sure(cheaper) / sure(dearer), 4),
    }


def _hardware_lines(hardware: dict[str, Any], target: float | None) -> list[str]:
    """The CPU-against-GPU section of the report."""
    lines = ["", "### CPU or GPU", ""]
    header = "| best on | configuration | USD/hour | USD per million requests (range) |"
    if target:
        header += f" nodes for {target:g} req/s | USD/hour at the target |"
    lines += [header, "|" + "---|" * header.count(" |")]
    for kind in ("cpu", "gpu"):
        side = hardware[kind]
        cheap, dear = side["usd_per_million_requests_range"]
        line = (
            f"| {kind.upper()} | {side['experiment']} ({_cell(side['nodes'])} x "
            f"{side['machine_type']}) | {_cell(side['usd_per_hour'], 4)} "
            f"| {_cell(side['usd_per_million_requests'], 4)} ({_cell(cheap, 4)} to "
            f"{_cell(dear, 4)}) |"
        )
        if target:
            line += (
                f" {_cell(side['nodes_for_target'])} | {_cell(side['target_usd_per_hour'], 2)} |"
            )
        lines.append(line)
    what = f"serving {target:g} requests/s" if target else "a million requests"
    if hardware["winner"] == "tie":
        lines += ["", f"CPU and GPU tie on the cost of {what}: their ranges overlap."]
    else:
        lines += [
            "",
            f"{hardware['winner'].upper()}s serve {what} for {hardware['saving']:.0%} less than "
            f"the best {'CPU' if hardware['winner'] == 'gpu' else 'GPU'} configuration measured.",
        ]
    return lines


def _target_cell(entry: dict[str, Any]) -> str:
    """Its cost at the target over its capacity range, cheapest first (no upper end of
    capacity yet: it could cost less)."""
    cheap, dear = entry.get("target_usd_per_hour_range") or (None, None)
    if dear is None:
        return "-"
    if cheap is None:
        return f"at most {dear:,.2f}"
    return f"{dear:,.2f}" if cheap == dear else f"{cheap:,.2f} to {dear:,.2f}"


def markdown(report: dict[str, Any]) -> str:
    objective = report["objective"]
    goal = report.get("goal") or {}
    target = goal.get("target_rps")
    spot = any(e.get("measured_on_spot") for e in report["experiments"])
    price_note = "spot" if goal.get("deploy_spot") else "on-demand"
    lines = [
        f"## Sweep {report['stack']}: capacity at p99 ≤ {objective['p99_ms']:g} ms, errors ≤ "
        f"{objective['max_error_rate']:.2%} ({report['protocol']})",
        "",
    ]
    if target:
        lines += [
            f"Ranked by the cost per hour of serving {target:g} requests/s: whole nodes from "
            "the low end of each capacity range, the cluster fee and load balancer included, "
            f"at {price_note} prices.",
            "",
        ]
    if spot:
        lines += [
            "Measured on spot VMs (the USD/hour measured column); priced and ranked at "
            f"{price_note} prices.",
            "",
        ]
    header = (
        "| experiment | nodes | capacity (req/s) | range (req/s) | p50 ms | p99 ms "
        "| CPU per pod (cores) | USD/hour | requests per USD (range) |"
    )
    if spot:
        header += " USD/hour measured |"
    if target:
        header += f" nodes for {target:g} req/s | USD/hour at the target (range) |"
    lines += [header, "|" + "---|" * header.count(" |")]

    def order(e: dict[str, Any]) -> tuple[bool, float]:
        if target:
            return (bool(e["not_ranked"]), e.get("target_usd_per_hour") or float("inf"))
        return (bool(e["not_ranked"]), -((e["requests_per_usd_range"] or [0])[0] or 0))

    for e in sorted(report["experiments"], key=order):
        mark = " **winner**" if e["experiment"] == report["winner"] else ""
        mark += " **tie**" if e["experiment"] in report["tied_with_winner"] else ""
        if e["not_ranked"]:
            mark += f" (not ranked: {', '.join(e['not_ranked'])})"
        low, high = e["capacity_range"]
        per_low, per_high = e["requests_per_usd_range"]
        line = (
            f"| {e['experiment']}{mark} | {_cell(e['nodes'])} x {_cell(e['machine_type'])} "
            f"| {_cell(e['capacity_rate_per_s'])} | {_cell(low)} to {_cell(high)} "
            f"| {_cell(e['p50_ms'])} | {_cell(e['p99_ms'])} "
            f"| {_cell(e['cpu_per_pod_cores'], 2)} | {_cell(e['usd_per_hour'], 4)} "
            f"| {_cell(per_low, 0)} to {_cell(per_high, 0)} |"
        )
        if spot:
            line += f" {_cell(e.get('measured_usd_per_hour'), 4)} |"
        if target:
            line += f" {_cell(e.get('nodes_for_target'))} | {_target_cell(e)} |"
        lines.append(line)
    lines.append("")
    unfinished = not report.get("finished", True)
    if unfinished:
        missing = len(report["not_measured"]) + len(report.get("not_reached", []))
        measured = len(report["experiments"])
        stopped = (
            f" (stopped: {report['stopped']})" if report.get("stopped") not in ("", "done") else ""
        )
        lines += [
            f"**The sweep did not finish{stopped}:** {measured} of {measured + missing} "
            f"{'experiment' if measured + missing == 1 else 'experiments'} measured. What "
            "follows is the best of those measured, not a verdict.",
            "",
        ]
    best = "Best so far" if unfinished else "Winner"
    if not report["experiments"]:
        lines.append("Nothing measured yet.")
    elif report["winner"] and report["tied_with_winner"]:
        what = "costs at the target" if target else "requests-per-dollar ranges"
        lines.append(
            f"No single winner: **{report['winner']}** ties with "
            f"{', '.join(report['tied_with_winner'])} (their {what} overlap)."
        )
    elif report["winner"] and target:
        winner = next(e for e in report["experiments"] if e["experiment"] == report["winner"])
        lines.append(
            f"{best}: **{report['winner']}**: {winner['nodes_for_target']} x "
            f"{winner['machine_type']} serve {target:g} requests/s for "
            f"{_cell(winner['target_usd_per_hour'], 2)} USD/hour at {price_note} prices "
            "(`promote` carries the node count)."
        )
    elif report["winner"]:
        winner = next(e for e in report["experiments"] if e["experiment"] == report["winner"])
        per_low, per_high = winner["requests_per_usd_range"]
        lines.append(
            f"{best}: **{report['winner']}**, {_cell(winner['capacity_rps'])} requests/s within "
            f"the objective, {_cell(per_low, 0)} to {_cell(per_high, 0)} requests per USD."
        )
    else:
        lines.append("No experiment met the objective.")
    lines.append(
        f"The reference system's conclusion (8 vCPU / 16 GB, inter-op 4): "
        f"{report['reference']['verdict']}."
    )
    if report.get("cpu_or_gpu"):
        lines += _hardware_lines(report["cpu_or_gpu"], target)
    if report["not_measured"]:
        lines += ["", "Not measured:"]
        lines += [f"- {name}: {why}" for name, why in report["not_measured"].items()]
    if report.get("not_reached"):
        lines += ["", "Never deployed (the sweep stopped first):"]
        lines += [f"- {name}" for name in report["not_reached"]]
    lines += ["", f"Spent: about {report['spent_usd']:.2f} USD (list prices, all runs)."]
    if report.get("still_up"):
        lines += [
            "",
            f"**THE SWEEP STACK {report['stack']} MAY STILL BE UP AND BILLING.** Finish the "
            "teardown by hand:",
            "",
            *[f"    {command}" for command in report["still_up"]],
        ]
    return "\n".join(lines) + "\n"


def write_report(manifest: SweepManifest) -> tuple[dict[str, Any], Path]:
    """report.md, report.png (with a latency-against-load panel) and report.json."""
    report, rows = _build(manifest)
    directory = manifest.directory
    (directory / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (directory / REPORT_MD).write_text(markdown(report), encoding="utf-8")
    if rows:
        # The chart marks what the report ranked (by its goal, at the deploy price).
        ranking = Ranking(
            rows.get(report["winner"]) if report["winner"] else None,
            tuple(rows[name] for name in report["tied_with_winner"]),
        )
        chart(list(rows.values()), directory / REPORT_PNG, report["objective"]["p99_ms"], ranking)
    return report, directory / REPORT_MD
