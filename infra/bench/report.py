"""Turn several load-test results into the answer: a table, a chart, and the best
experiment for a latency objective, or a tie. Pure, apart from writing the chart.

A capacity search's result is compared at its capacity, with its range: requests per
dollar from the range's low end (the rate that passed with confidence) to its high end
(the lowest that failed with confidence). Two runs whose ranges overlap are a tie, not a
winner and a loser. A run is never ranked when what it measured was not the server: its
load generator was the limit, its load did not reach every pod evenly, or its search ran
out of steps before its range closed.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.bench.results import RESULTS_SCHEMA

LIMITED, UNBALANCED, CUT_SHORT = "load generator limited", "unbalanced", "no rate certified"
STOPPED_EARLY = "stopped early: it could not win"  # a search's trial (sweep --space)
# What each flag means for the figures, said under the table.
FLAG_MEANING = {
    LIMITED: "the load generator was the limit, not the server: it measured the generator",
    UNBALANCED: "the load did not reach every serving pod evenly: it measured part of the "
    "Deployment",
}


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
    p99_ci_ms: tuple[float | None, float | None] = (None, None)
    # Too few samples to bound the p99 above: such a run meets no latency objective.
    p99_open_above: bool = False
    # Requests per dollar at the capacity range's ends (a plain run: its own figure).
    requests_per_usd_range: tuple[float | None, float | None] = (None, None)
    capacity_range: tuple[float | None, float | None] = (None, None)
    flags: tuple[str, ...] = ()  # why it is not ranked
    reasons: tuple[str, ...] = ()  # each flag said in full, in the same order

    @property
    def ranked(self) -> bool:
        return not self.flags


def _flags(result: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Why a result is not ranked: (flags, each said in full)."""
    summary = result["summary"]
    capacity = result.get("capacity")
    flags: list[tuple[str, str]] = []
    steps = capacity["steps"] if capacity else []
    if summary.get("load_generator_limited") or any(s["verdict"] == "limited" for s in steps):
        flags.append((LIMITED, FLAG_MEANING[LIMITED]))
    balance = (result.get("server") or {}).get("balance") or {}
    if balance.get("unbalanced") or any(s["verdict"] == "unbalanced" for s in steps):
        flags.append((UNBALANCED, FLAG_MEANING[UNBALANCED]))
    if capacity is not None and capacity.get("stopped_early"):
        flags.append((STOPPED_EARLY, f"a search stopped it early: {capacity['stopped_early']}"))
    elif capacity is not None and not capacity.get("converged", capacity.get("rate_per_s")):
        stopped = capacity.get("stopped") or "the search ended before a rate passed"
        flags.append((CUT_SHORT, f"its capacity search certified no rate: {stopped}"))
    return tuple(f for f, _ in flags), tuple(why for _, why in flags)


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
    low_rate: float | None = rps
    high_rate: float | None = rps
    if capacity is not None:
        # No rate met the objective: nothing was served within it.
        rps = capacity["rps"] if capacity["rps"] is not None else 0.0
        window = capacity.get("range") or {}
        low_rate = window.get("low", capacity.get("rate_per_s"))
        high_rate = window.get("high")
        curve = tuple(
            sorted(
                (
                    step["rate_per_s"],
                    (step.get("confidence") or step["result"]["summary"]).get("p99_ms"),
                )
                for step in capacity["steps"]
            )
        )

    def per_usd(rate: float | None) -> float | None:
        return round(rate * 3600 / usd_hour) if rate is not None and usd_hour else None

    figures = result.get("confidence") or {}
    ci = figures.get("p99_ci_ms") or [None, None]
    flags, reasons = _flags(result)
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
        requests_per_usd=per_usd(rps),
        generator_limited=bool(summary.get("load_generator_limited")),
        curve=curve,
        p99_ci_ms=(ci[0], ci[1]),
        p99_open_above=bool(figures.get("p99_open_above")),
        requests_per_usd_range=(per_usd(low_rate), per_usd(high_rate)),
        capacity_range=(low_rate, high_rate) if capacity is not None else (None, None),
        flags=flags,
        reasons=reasons,
    )


def named_rows(results: list[tuple[str, dict[str, Any]]]) -> list[Row]:
    """Rows named by experiment, and where two share one (repeats), by file too."""
    rows = [row(result, name) for name, result in results]
    counts = Counter(r.label for r in rows)
    return [
        Row(**{**r.__dict__, "label": f"{r.label} ({name})"}) if counts[r.label] > 1 else r
        for r, (name, _) in zip(rows, results, strict=True)
    ]


@dataclass(frozen=True)
class Ranking:
    """The best run, and the runs it cannot be told apart from (their ranges overlap)."""

    winner: Row | None
    tied: tuple[Row, ...] = ()
    # Runs that meet the objective but carry no cost (a URL target's): never called best.
    unpriced: tuple[Row, ...] = ()

    @property
    def is_tie(self) -> bool:
        return bool(self.tied)


def meets(r: Row, p99_ms: float | None, max_error_rate: float) -> bool:
    if not r.ranked or r.error_rate > max_error_rate:
        return False
    if r.mode == "capacity":
        return r.capacity_range[0] is not None
    if p99_ms is None:
        return True
    if r.p99_open_above:  # too few samples to bound the p99: it meets no objective
        return False
    high = r.p99_ci_ms[1] if r.p99_ci_ms[1] is not None else r.p99_ms
    return high is not None and high <= p99_ms


def rank(rows: list[Row], p99_ms: float | None, max_error_rate: float) -> Ranking:
    """The most requests per dollar (its range's low end) among ranked runs meeting the
    objective; every other whose range reaches the winner's low end is tied with it."""
    eligible = [r for r in rows if meets(r, p99_ms, max_error_rate)]
    priced = [r for r in eligible if r.requests_per_usd_range[0] is not None]
    if not priced:  # best per dollar needs a cost: say what met the objective instead
        return Ranking(None, unpriced=tuple(eligible))
    winner = max(priced, key=lambda r: r.requests_per_usd_range[0] or 0)
    floor = winner.requests_per_usd_range[0] or 0
    tied = tuple(
        r
        for r in priced
        if r is not winner
        and (r.requests_per_usd_range[1] is None or r.requests_per_usd_range[1] >= floor)
    )
    return Ranking(winner, tied)


def best(rows: list[Row], p99_ms: float | None, max_error_rate: float) -> Row | None:
    """The winner, or None when nothing meets the objective."""
    return rank(rows, p99_ms, max_error_rate).winner


def _cell(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _interval(pair: tuple[float | None, float | None], digits: int = 1) -> str:
    low, high = pair
    if low is None and high is None:
        return "-"
    return f"{_cell(low, digits)} to {_cell(high, digits) if high is not None else 'open'}"


def _capacity_cell(r: Row) -> str:
    low, high = r.capacity_range
    if r.mode != "capacity":
        return "-"
    if low is None:
        return f"none certified (fails at {_cell(high)})" if high is not None else "none certified"
    return _interval(r.capacity_range)


def _miss(r: Row, p99_ms: float | None, max_error_rate: float) -> str:
    """Why a ranked run does not meet the objective ('' when it does)."""
    if r.error_rate > max_error_rate:
        return f"errors over {max_error_rate:.2%}"
    if r.mode == "capacity":
        return "" if r.capacity_range[0] is not None else "no rate certified"
    if p99_ms is None:
        return ""
    if r.p99_open_above:
        return "p99 not bounded: too few samples (run longer)"
    high = r.p99_ci_ms[1] if r.p99_ci_ms[1] is not None else r.p99_ms
    if high is None or high > p99_ms:
        return f"p99 not within {p99_ms:g} ms with confidence"
    return ""


def markdown(
    rows: list[Row], ranking: Ranking | Row | None, p99_ms: float | None, max_error_rate: float
) -> str:
    if not isinstance(ranking, Ranking):
        ranking = Ranking(ranking)
    lines = [
        "| run | protocol | mode | RPS | capacity range (req/s) | p50 ms | p99 ms (95% CI) "
        "| errors | USD/month | requests per USD (range) | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    tied = {id(r) for r in ranking.tied}
    unpriced = {id(r) for r in ranking.unpriced}
    for r in sorted(rows, key=lambda r: (not r.ranked, -(r.requests_per_usd_range[0] or 0))):
        if r is ranking.winner:
            status = "**tie (best)**" if ranking.is_tie else "**best**"
        elif id(r) in tied:
            status = "**tie**"
        elif r.flags:
            status = "not ranked: " + ", ".join(r.flags)
        elif id(r) in unpriced:
            status = "meets it, no cost"
        else:
            miss = _miss(r, p99_ms, max_error_rate)
            status = f"misses: {miss}" if miss else ""
        lines.append(
            f"| {r.label} | {r.protocol} | {r.mode} | {_cell(r.rps)} "
            f"| {_capacity_cell(r)} | {_cell(r.p50_ms)} "
            f"| {_cell(r.p99_ms)} ({_interval(r.p99_ci_ms)}) | {r.error_rate:.2%} "
            f"| {_cell(r.usd_per_month, 2)} | {_interval(r.requests_per_usd_range, 0)} "
            f"| {status} |"
        )
    objective = f"p99 ≤ {p99_ms:g} ms and " if p99_ms is not None else ""
    objective += f"errors ≤ {max_error_rate:.2%}"
    winner = ranking.winner
    if winner and ranking.is_tie:
        others = ", ".join(r.label for r in ranking.tied)
        lines += [
            "",
            f"Tie for {objective}: **{winner.label}** and {others}: their capacity ranges "
            "overlap, so the measurements cannot tell them apart (measure longer, or again).",
        ]
    elif winner:
        lines += [
            "",
            f"Best for {objective}: **{winner.label}** ({winner.protocol}, "
            f"{_cell(winner.rps)} RPS, p99 {_cell(winner.p99_ms)} ms, "
            f"{_interval(winner.requests_per_usd_range, 0)} requests per USD).",
        ]
    elif ranking.unpriced:
        lines += [
            "",
            f"Meet {objective}: {', '.join(r.label for r in ranking.unpriced)}; none is called "
            "best, since none has a cost to rank per dollar by (a stack's results carry its "
            "cost; a URL target's do not: bench the stack by name).",
        ]
    else:
        lines += ["", f"No run meets {objective} with confidence."]
    unranked = [r for r in rows if r.flags]
    if unranked:
        lines += ["", "Not ranked:"]
        lines += [f"- {r.label}: {'; '.join(r.reasons or r.flags)}" for r in unranked]
    return "\n".join(lines) + "\n"


def _error_bars(values: list[float], ranges: list[tuple[float | None, float | None]]) -> Any:
    lower = [
        max(0.0, v - (lo if lo is not None else v))
        for v, (lo, _) in zip(values, ranges, strict=True)
    ]
    upper = [
        max(0.0, (hi if hi is not None else v) - v)
        for v, (_, hi) in zip(values, ranges, strict=True)
    ]
    return [lower, upper]


def chart(
    rows: list[Row], path: Path, p99_ms: float | None = None, ranking: Ranking | None = None
) -> dict[str, list[str]]:
    """Throughput (capacity range as error bars), p99 (its 95% interval), requests per
    dollar (its range; only when some run has a cost), and for capacity searches p99
    against offered load per run, as a PNG; the best run (or the tie) marked, unranked runs
    greyed. Returns each panel's title with its y axis's labels, as drawn."""
    import matplotlib  # noqa: PLC0415 - only the compare command needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib import ticker  # noqa: PLC0415

    ranking = ranking or rank(rows, p99_ms, 1.0)
    marked = {id(ranking.winner), *(id(r) for r in ranking.tied)} if ranking.winner else set()

    def colour(r: Row, base: str) -> str:
        if not r.ranked:
            return "#bbbbbb"
        return "#2ca02c" if id(r) in marked else base

    labels = [
        f"{r.label}\n{r.protocol}/{r.mode}" + ("\n(best)" if r is ranking.winner else "")
        for r in rows
    ]
    curves = [r for r in rows if r.curve]
    priced = any(r.requests_per_usd is not None for r in rows)
    panels = 2 + priced + bool(curves)
    figure, axes = plt.subplots(
        1, panels, figsize=(max(10, 1.8 * len(rows)) + 4 * max(0, panels - 3), 4.8)
    )
    throughput, latency = axes[0], axes[1]
    # A capacity search that certified nothing has no throughput to draw: no bar, said.
    rates = [r.rps for r in rows]
    certified = [not (r.mode == "capacity" and r.capacity_range[0] is None) for r in rows]
    throughput.bar(
        labels, [rate if ok else 0.0 for rate, ok in zip(rates, certified, strict=True)],
        color=[colour(r, "#4c72b0") for r in rows],
        yerr=_error_bars(
            rates, [r.capacity_range if ok else (None, None) for r, ok in
                    zip(rows, certified, strict=True)]
        ),
        capsize=4,
    )  # fmt: skip
    for index, ok in enumerate(certified):
        if not ok:
            throughput.annotate(
                "none\ncertified", (index, 0), ha="center", va="bottom", fontsize=7,
                xytext=(0, 3), textcoords="offset points",
            )  # fmt: skip
    throughput.set_title("Throughput (requests/s; capacity range)")
    p99s = [r.p99_ms or 0.0 for r in rows]
    latency.bar(
        labels, p99s, color=[colour(r, "#dd8452") for r in rows],
        yerr=_error_bars(p99s, [r.p99_ci_ms for r in rows]), capsize=4,
    )  # fmt: skip
    if p99_ms is not None:
        latency.axhline(p99_ms, color="grey", linestyle="--", linewidth=1)
    latency.set_title("p99 latency (ms; 95% interval)")
    bar_panels = [throughput, latency]
    if priced:  # without any cost (URL targets) there is nothing per dollar to draw
        value = axes[2]
        per_usd = [r.requests_per_usd or 0.0 for r in rows]
        value.bar(
            labels, per_usd, color=[colour(r, "#8172b3") for r in rows],
            yerr=_error_bars(per_usd, [r.requests_per_usd_range for r in rows]), capsize=4,
        )  # fmt: skip
        value.set_title("Requests per USD (range)")
        bar_panels.append(value)
    for axis in bar_panels:
        axis.tick_params(axis="x", labelrotation=30, labelsize=7)
    if curves:
        load = axes[-1]
        for r in curves:
            points = [(rate, p99) for rate, p99 in r.curve if p99 is not None]
            load.plot([x for x, _ in points], [y for _, y in points], marker="o", label=r.label)
        if p99_ms is not None:
            load.axhline(p99_ms, color="grey", linestyle="--", linewidth=1)
        load.set_yscale("log")
        # Plain numbers at 1, 2 and 5 of each decade, not powers of ten.
        load.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        load.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
        load.yaxis.set_minor_formatter(ticker.NullFormatter())
        load.set_xlabel("offered load (requests/s)")
        load.set_title("p99 latency (ms) against load")
        load.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    drawn = {
        axis.get_title(): [label.get_text() for label in axis.get_yticklabels()]
        for axis in figure.axes
    }
    plt.close(figure)
    return drawn
