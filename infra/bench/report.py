"""Turn several load-test results into the answer: a table, a chart, and the best
experiment for a latency objective. Pure, apart from writing the chart.

A capacity search's result is compared at its capacity: the throughput of the highest
rate that met its objective, and requests per dollar at that throughput.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.bench.results import RESULTS_SCHEMA


@dataclass(frozen=True)
class Row:
    """One result, as compared."""

    label: str
    protocol: str
    mode: str
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    error_rate: float
    usd_per_month: float | None
    requests_per_usd: float | None
    generator_limited: bool = False
    # For a capacity search: (offered rate, p99 ms) of every step, in rate order.
    curve: tuple[tuple[float, float | None], ...] = ()


def row(result: dict[str, Any], fallback_label: str) -> Row:
    if result.get("schema") != RESULTS_SCHEMA:
        raise ValueError(f"{fallback_label}: not a {RESULTS_SCHEMA} result")
    summary = result["summary"]
    experiment = result.get("experiment") or {}
    usd_hour = experiment.get("costUsdPerHour")
    usd_month = experiment.get("costUsdPerMonth")
    capacity = result.get("capacity")
    rps = summary["rps"]
    curve: tuple[tuple[float, float | None], ...] = ()
    if capacity is not None:
        # No rate met the objective: nothing was served within it.
        rps = capacity["rps"] if capacity["rps"] is not None else 0.0
        curve = tuple(
            sorted(
                (step["rate_per_s"], step["result"]["summary"]["p99_ms"])
                for step in capacity["steps"]
            )
        )
    per_usd = rps * 3600 / usd_hour if usd_hour else None
    return Row(
        label=str(experiment.get("experiment") or fallback_label),
        protocol=result["settings"]["protocol"],
        mode="capacity" if capacity is not None else result["settings"]["mode"],
        rps=rps,
        p50_ms=summary["p50_ms"],
        p95_ms=summary["p95_ms"],
        p99_ms=summary["p99_ms"],
        max_ms=summary["max_ms"],
        error_rate=summary["error_rate"],
        usd_per_month=usd_month,
        requests_per_usd=round(per_usd) if per_usd is not None else None,
        generator_limited=bool(summary.get("load_generator_limited")),
        curve=curve,
    )


def best(rows: list[Row], p99_ms: float | None, max_error_rate: float) -> Row | None:
    """The most requests per dollar among runs meeting the latency objective; a run whose
    load generator was the limit measured the generator, so it is never picked."""
    eligible = [
        r
        for r in rows
        if not r.generator_limited
        and r.error_rate <= max_error_rate
        and (p99_ms is None or (r.p99_ms is not None and r.p99_ms <= p99_ms))
    ]
    priced = [r for r in eligible if r.requests_per_usd is not None]
    if priced:
        return max(priced, key=lambda r: r.requests_per_usd or 0)
    return max(eligible, key=lambda r: r.rps) if eligible else None


def _cell(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def markdown(
    rows: list[Row], winner: Row | None, p99_ms: float | None, max_error_rate: float
) -> str:
    lines = [
        "| run | protocol | mode | RPS | p50 ms | p95 ms | p99 ms | max ms | errors "
        "| USD/month | requests per USD |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -(r.requests_per_usd or 0)):
        mark = " **best**" if r is winner else ""
        mark += " (load generator was the limit)" if r.generator_limited else ""
        lines.append(
            f"| {r.label}{mark} | {r.protocol} | {r.mode} | {_cell(r.rps)} | {_cell(r.p50_ms)} "
            f"| {_cell(r.p95_ms)} | {_cell(r.p99_ms)} | {_cell(r.max_ms)} "
            f"| {r.error_rate:.2%} | {_cell(r.usd_per_month, 2)} "
            f"| {_cell(r.requests_per_usd, 0)} |"
        )
    objective = f"p99 ≤ {p99_ms:g} ms and " if p99_ms is not None else ""
    objective += f"errors ≤ {max_error_rate:.2%}"
    if winner:
        lines += [
            "",
            f"Best for {objective}: **{winner.label}** ({winner.protocol}, "
            f"{_cell(winner.rps)} RPS, p99 {_cell(winner.p99_ms)} ms, "
            f"{_cell(winner.requests_per_usd, 0)} requests per USD).",
        ]
    else:
        lines += ["", f"No run meets {objective}."]
    return "\n".join(lines) + "\n"


def chart(rows: list[Row], path: Path, p99_ms: float | None = None) -> None:
    """Throughput and p99 latency per run, side by side, and for capacity searches p99
    against offered load per experiment, as a PNG."""
    import matplotlib  # noqa: PLC0415 - only the compare command needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    labels = [f"{r.label}\n{r.protocol}/{r.mode}" for r in rows]
    curves = [r for r in rows if r.curve]
    panels = 3 if curves else 2
    figure, axes = plt.subplots(
        1, panels, figsize=(max(8, 1.6 * len(rows)) + 4 * (panels - 2), 4.5)
    )
    left, right = axes[0], axes[1]
    left.bar(labels, [r.rps for r in rows], color="#4c72b0")
    left.set_title("Throughput (requests/s)")
    right.bar(labels, [r.p99_ms or 0 for r in rows], color="#dd8452")
    right.set_title("p99 latency (ms)")
    for axis in (left, right):
        axis.tick_params(axis="x", labelrotation=30, labelsize=8)
    if curves:
        load = axes[2]
        for r in curves:
            points = [(rate, p99) for rate, p99 in r.curve if p99 is not None]
            load.plot([x for x, _ in points], [y for _, y in points], marker="o", label=r.label)
        if p99_ms is not None:
            load.axhline(p99_ms, color="grey", linestyle="--", linewidth=1)
        load.set_yscale("log")
        load.set_xlabel("offered load (requests/s)")
        load.set_title("p99 latency (ms) against load")
        load.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
