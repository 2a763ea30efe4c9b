"""A sweep's report: per experiment its capacity at the objective and its range, latency
there, CPU per serving pod, price and requests per dollar with their range; the winner,
or the experiments tied with it (their ranges overlap); and whether the reference
system's conclusion holds for this model, decided from the ranges. Markdown, a PNG chart
and the raw JSON, written beside the sweep's manifest. Pure apart from writing the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.bench.report import Ranking, Row, chart, named_rows, rank
from infra.sweep.manifest import SweepManifest

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
    results = manifest.results()
    search = manifest.search
    rows = dict(zip(results, named_rows(list(results.items())), strict=True))
    ranking = rank(list(rows.values()), search["p99_ms"], search["max_error_rate"])
    winner = next((name for name, r in rows.items() if r is ranking.winner), None)
    tied = [name for name, r in rows.items() if any(r is t for t in ranking.tied)]
    entries = [_entry(name, results[name], r) for name, r in rows.items()]
    last_run: dict[str, Any] = manifest.runs[-1] if manifest.runs else {}
    finished = not manifest.failed and all(name in results for name in manifest.order)
    verdict = reference_verdict(entries, winner, tied)
    if not finished and not verdict.startswith("not tested"):
        verdict = "undecided: the sweep did not measure every experiment"
    return {
        "schema": "tfserving-gke/sweep-report/v1",
        "stack": manifest.stack,
        "objective": {"p99_ms": search["p99_ms"], "max_error_rate": search["max_error_rate"]},
        "protocol": search["protocol"],
        # The --set values every experiment ran with (a model of the user's, say).
        "settings": manifest.settings,
        "experiments": entries,
        "finished": finished,
        "winner": winner,
        "tied_with_winner": tied,
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


def markdown(report: dict[str, Any]) -> str:
    objective = report["objective"]
    lines = [
        f"## Sweep {report['stack']}: capacity at p99 ≤ {objective['p99_ms']:g} ms, errors ≤ "
        f"{objective['max_error_rate']:.2%} ({report['protocol']})",
        "",
        "| experiment | nodes | capacity (req/s) | range (req/s) | p50 ms | p99 ms "
        "| CPU per pod (cores) | USD/hour | requests per USD (range) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ranked = sorted(
        report["experiments"],
        key=lambda e: (bool(e["not_ranked"]), -((e["requests_per_usd_range"] or [0])[0] or 0)),
    )
    for e in ranked:
        mark = " **winner**" if e["experiment"] == report["winner"] else ""
        mark += " **tie**" if e["experiment"] in report["tied_with_winner"] else ""
        if e["not_ranked"]:
            mark += f" (not ranked: {', '.join(e['not_ranked'])})"
        low, high = e["capacity_range"]
        per_low, per_high = e["requests_per_usd_range"]
        lines.append(
            f"| {e['experiment']}{mark} | {_cell(e['nodes'])} x {_cell(e['machine_type'])} "
            f"| {_cell(e['capacity_rate_per_s'])} | {_cell(low)} to {_cell(high)} "
            f"| {_cell(e['p50_ms'])} | {_cell(e['p99_ms'])} "
            f"| {_cell(e['cpu_per_pod_cores'], 2)} | {_cell(e['usd_per_hour'], 4)} "
            f"| {_cell(per_low, 0)} to {_cell(per_high, 0)} |"
        )
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
        lines.append(
            f"No single winner: **{report['winner']}** ties with "
            f"{', '.join(report['tied_with_winner'])} (their requests-per-dollar ranges "
            "overlap)."
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
    report = build_report(manifest)
    directory = manifest.directory
    (directory / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (directory / REPORT_MD).write_text(markdown(report), encoding="utf-8")
    results = manifest.results()
    if results:
        rows = named_rows(list(results.items()))
        objective = report["objective"]
        ranking: Ranking = rank(rows, objective["p99_ms"], objective["max_error_rate"])
        chart(rows, directory / REPORT_PNG, objective["p99_ms"], ranking)
    return report, directory / REPORT_MD
