"""A sweep's report: per experiment its capacity at the objective, latency there, CPU per
serving pod, price and requests per dollar; the winner; and whether the reference
system's conclusion holds for this model. Markdown, a PNG chart and the raw JSON, written
beside the sweep's manifest. Pure apart from writing the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.bench.report import Row, best, chart, row
from infra.sweep.manifest import SweepManifest

# The reference system (ml-deployment-k8s-tfserving) found 2 nodes of 8 vCPU / 16 GB with
# inter_op 4 best (shared/facts/seed-system.md); our preset of that experiment:
REFERENCE_WINNER = "8vcpu-16gb-interop4"
# Within this much of the winner's requests per dollar, the reference pick still holds.
HOLDS_WITHIN = 0.05
REPORT_MD = "report.md"
REPORT_PNG = "report.png"
REPORT_JSON = "report.json"


def _pod_cpu_cores(result: dict[str, Any]) -> float | None:
    pods = ((result.get("server") or {}).get("pods_cpu") or {}).get("serving_pods") or {}
    means = [figures["mean_m"] for figures in pods.values()]
    return round(sum(means) / len(means) / 1000, 2) if means else None


def _entry(name: str, result: dict[str, Any], r: Row) -> dict[str, Any]:
    capacity = result.get("capacity") or {}
    experiment = result.get("experiment") or {}
    return {
        "experiment": name,
        "machine_type": experiment.get("machineType"),
        "nodes": experiment.get("nodeCount"),
        "capacity_rate_per_s": capacity.get("rate_per_s"),
        "capacity_rps": r.rps,
        "p50_ms": r.p50_ms,
        "p99_ms": r.p99_ms,
        "error_rate": r.error_rate,
        "cpu_per_pod_cores": _pod_cpu_cores(result),
        "replicas": experiment.get("replicas"),
        "usd_per_hour": experiment.get("costUsdPerHour"),
        "requests_per_usd": r.requests_per_usd,
        # The exact model measured, for `promote` to pin.
        "model_release_tag": experiment.get("modelReleaseTag"),
        "model_sha256": experiment.get("modelSha256"),
        "load_generator_limited": r.generator_limited,
        "stopped": capacity.get("stopped"),
    }


def reference_verdict(entries: list[dict[str, Any]], winner: str | None) -> str:
    """Whether 8 vCPU / 16 GB with inter-op 4 is (still) the best per dollar here."""
    by_name = {e["experiment"]: e for e in entries}
    reference = by_name.get(REFERENCE_WINNER)
    if reference is None:
        return f"not tested: {REFERENCE_WINNER} is not in this sweep"
    if winner is None:
        return "undecided: no experiment met the objective"
    if winner == REFERENCE_WINNER:
        return f"holds: {REFERENCE_WINNER} serves the most requests per dollar"
    best_value = by_name[winner]["requests_per_usd"] or 0
    value = reference["requests_per_usd"] or 0
    if best_value and value >= best_value * (1 - HOLDS_WITHIN):
        return (
            f"holds within {HOLDS_WITHIN:.0%}: {winner} leads by "
            f"{best_value / value - 1:.1%}, within the measurement's resolution"
            if value
            else "undecided"
        )
    gain = f"{best_value / value - 1:.0%} more" if value else "requests where it served none"
    return f"does not hold for this model: {winner} serves {gain} requests per dollar"


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
    rows = {name: row(result, name) for name, result in results.items()}
    winner_row = best(list(rows.values()), search["p99_ms"], search["max_error_rate"])
    winner = next((name for name, r in rows.items() if r is winner_row), None)
    entries = [_entry(name, results[name], r) for name, r in rows.items()]
    return {
        "schema": "tfserving-gke/sweep-report/v1",
        "stack": manifest.stack,
        "objective": {"p99_ms": search["p99_ms"], "max_error_rate": search["max_error_rate"]},
        "protocol": search["protocol"],
        # The --set values every experiment ran with (a model of the user's, say).
        "settings": manifest.settings,
        "experiments": entries,
        "winner": winner,
        "reference": {
            "experiment": REFERENCE_WINNER,
            "verdict": reference_verdict(entries, winner),
        },
        "not_measured": {name: why for name, why in manifest.failed.items() if name not in results},
        "spent_usd": round(manifest.spent_usd, 2),
        "phases": manifest.phases,
    }


def markdown(report: dict[str, Any]) -> str:
    objective = report["objective"]
    lines = [
        f"## Sweep {report['stack']}: capacity at p99 ≤ {objective['p99_ms']:g} ms, errors ≤ "
        f"{objective['max_error_rate']:.2%} ({report['protocol']})",
        "",
        "| experiment | nodes | capacity (req/s) | p50 ms | p99 ms | CPU per pod (cores) "
        "| USD/hour | requests per USD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ranked = sorted(report["experiments"], key=lambda e: -(e["requests_per_usd"] or 0))
    for e in ranked:
        mark = " **winner**" if e["experiment"] == report["winner"] else ""
        mark += " (load generator was the limit)" if e["load_generator_limited"] else ""
        lines.append(
            f"| {e['experiment']}{mark} | {_cell(e['nodes'])} x {_cell(e['machine_type'])} "
            f"| {_cell(e['capacity_rps'])} | {_cell(e['p50_ms'])} | {_cell(e['p99_ms'])} "
            f"| {_cell(e['cpu_per_pod_cores'], 2)} | {_cell(e['usd_per_hour'], 4)} "
            f"| {_cell(e['requests_per_usd'], 0)} |"
        )
    lines.append("")
    if not report["experiments"]:
        lines.append("Nothing measured yet.")
    elif report["winner"]:
        winner = next(e for e in report["experiments"] if e["experiment"] == report["winner"])
        lines.append(
            f"Winner: **{report['winner']}**, {_cell(winner['capacity_rps'])} requests/s within "
            f"the objective, {_cell(winner['requests_per_usd'], 0)} requests per USD."
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
    lines += ["", f"Spent: about {report['spent_usd']:.2f} USD (list prices, all runs)."]
    return "\n".join(lines) + "\n"


def write_report(manifest: SweepManifest) -> tuple[dict[str, Any], Path]:
    """report.md, report.png (with a latency-against-load panel) and report.json."""
    report = build_report(manifest)
    directory = manifest.directory
    (directory / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (directory / REPORT_MD).write_text(markdown(report), encoding="utf-8")
    results = manifest.results()
    if results:
        rows = [row(result, name) for name, result in results.items()]
        chart(rows, directory / REPORT_PNG, report["objective"]["p99_ms"])
    return report, directory / REPORT_MD
