"""The sweep directory: its manifest (sweep.json) and each experiment's results.

<dir>/sweep.json (schema tfserving-gke/sweep/v1):
  stack, search {p99_ms, max_error_rate, protocol, start_rate, max_steps, warmup_s,
  duration_s}, settings (the --set values), models {modelSource: {release_tag, sha256}}
  (what each source resolved to when the sweep first ran: every run serves exactly that),
  order (experiments in sweep order),
  goal {target_rps, deploy_spot, space} (what the report ranks by: the last run's; a new target
  re-ranks without measuring again),
  measured {experiment: {file, measured_at, capacity_rate_per_s, capacity_rps,
  usd_per_hour (as measured), nodes, spot, fixed_usd_per_hour, node_usd_per_hour and
  on_demand_node_usd_per_hour (one node and its disk), settings (a search's
  configuration: its settings)}}, failed {experiment: message},
  spent_usd (all runs together),
  runs [{started_at, ended_at, experiments, stopped, spent_usd}],
  phases [{experiment, what, estimated_minutes, actual_minutes}]
<dir>/results/<experiment>.json: the capacity search's results (tfserving-gke/bench/v1).

Rerunning the same sweep reads the manifest and runs only what is not measured yet (an
experiment whose results file was deleted counts as not measured, and is said). A
rerun with a different objective or different settings would mix results that do not
compare, so it is refused. The manifest is rewritten atomically after every change.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.inputs.errors import ConfigError, InputError
from infra.inputs.files import json_object
from infra.sweep.experiment import Planned

SCHEMA = "tfserving-gke/sweep/v1"
MANIFEST = "sweep.json"
RESULTS_DIR = "results"


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SweepManifest:
    directory: Path
    stack: str
    search: dict[str, Any]
    settings: dict[str, Any]
    models: dict[str, dict[str, str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    spent_usd: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    goal: dict[str, Any] = field(default_factory=dict)
    # Listed as measured, but their results files are gone: measured again.
    lost: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.directory / MANIFEST

    def result_path(self, experiment: str) -> Path:
        return self.directory / RESULTS_DIR / f"{experiment}.json"

    def pending(self, names: list[str]) -> list[str]:
        return [name for name in names if name not in self.measured]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "stack": self.stack,
            "search": self.search,
            "settings": self.settings,
            "models": self.models,
            "order": self.order,
            "goal": self.goal,
            "measured": self.measured,
            "failed": self.failed,
            "spent_usd": round(self.spent_usd, 4),
            "runs": self.runs,
            "phases": self.phases,
        }

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)

    def record_result(
        self,
        experiment: str,
        result: dict[str, Any],
        planned: Planned,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Its results file and what the report needs of it; `settings`: the settings of a
        search's configuration (not a preset), for `promote` to carry."""
        path = self.result_path(experiment)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        capacity = result.get("capacity") or {}
        self.measured[experiment] = {
            "file": path.relative_to(self.directory).as_posix(),
            "measured_at": now_text(),
            "capacity_rate_per_s": capacity.get("rate_per_s"),
            "capacity_rps": capacity.get("rps"),
            "usd_per_hour": round(planned.usd_per_hour, 4),
            "nodes": planned.nodes,
            "spot": planned.spot,
            "fixed_usd_per_hour": round(planned.fixed_usd_per_hour, 6),
            "node_usd_per_hour": round(planned.nodes_usd_per_hour / planned.nodes, 6),
            "on_demand_node_usd_per_hour": round(
                (planned.on_demand_nodes_usd_per_hour or planned.nodes_usd_per_hour)
                / planned.nodes,
                6,
            ),
        }
        if settings is not None:
            self.measured[experiment]["settings"] = settings
        self.failed.pop(experiment, None)
        self.save()

    def pin_models(self, resolved: dict[str, dict[str, str]]) -> None:
        """Record what each model source resolved to; refused when a source the sweep
        already measured now resolves to another artifact (a new `@latest` release)."""
        for source, now in resolved.items():
            before = self.models.get(source)
            if before and before["sha256"] != now["sha256"]:
                raise ConfigError(
                    "--dir",
                    f"{self.directory} measured {source} as release {before['release_tag']} "
                    f"(sha256 {before['sha256']}); it now resolves to release "
                    f"{now['release_tag']} (sha256 {now['sha256']}). Results of two models "
                    "would not compare: continue with the first by passing --set "
                    f"modelSha256={before['sha256']} (and its tag in modelSource), or start "
                    "another sweep with another --dir.",
                )
            self.models.setdefault(source, now)
        self.save()

    def results(self) -> dict[str, dict[str, Any]]:
        """Every measured experiment's results document, in sweep order."""
        found = {}
        for name in [*self.order, *sorted(set(self.measured) - set(self.order))]:
            entry = self.measured.get(name)
            if entry:
                found[name] = json_object(
                    self.directory / entry["file"],
                    f"{name}'s results",
                    f"{self.directory / MANIFEST} lists it as measured: restore the file, or "
                    f"remove {name} from `measured` there to measure it again.",
                )
        return found


def open_manifest(
    directory: Path, stack: str, search: dict[str, Any], settings: dict[str, Any]
) -> SweepManifest:
    """The sweep directory's manifest, or a new one; refused when it was a different sweep."""
    path = directory / MANIFEST
    if not path.is_file():
        return SweepManifest(directory, stack, search, settings)
    fix = "Move it aside to start this sweep afresh (or pass another --dir)."
    data = json_object(path, f"a sweep manifest ({SCHEMA})", fix)
    if data.get("schema") != SCHEMA:
        raise ConfigError("--dir", f"{path} is not a sweep manifest ({SCHEMA}). {fix}")
    shapes = {"stack": str, "search": dict, "settings": dict}
    lists = ("order", "runs", "phases")
    maps = ("models", "measured", "failed", "goal")
    wrong = [key for key, kind in shapes.items() if not isinstance(data.get(key), kind)]
    wrong += [key for key in lists if not isinstance(data.get(key) or [], list)]
    wrong += [key for key in maps if not isinstance(data.get(key) or {}, dict)]
    if not isinstance(data.get("spent_usd") or 0, (int, float)):
        wrong.append("spent_usd")
    if wrong:
        raise InputError(
            f"{path}: {', '.join(wrong)} missing or of the wrong type: the manifest was edited "
            f"or cut short. {fix}"
        )
    for what, before, now in (
        ("stack", data["stack"], stack),
        ("capacity search", data["search"], search),
        ("settings (--set)", data["settings"], settings),
    ):
        if before != now:
            raise ConfigError(
                "--dir",
                f"{directory} holds a sweep with another {what} ({json.dumps(before)}; now "
                f"{json.dumps(now)}): its results would not compare with this run's. Rerun "
                "with the same options to continue it, or pass another --dir.",
            )
    measured = dict(data.get("measured") or {})
    lost = sorted(
        name
        for name, entry in measured.items()
        if not isinstance(entry, dict) or not (directory / str(entry.get("file", ""))).is_file()
    )
    for name in lost:
        del measured[name]
    return SweepManifest(
        directory,
        stack,
        search,
        settings,
        models=dict(data.get("models") or {}),
        order=list(data.get("order") or []),
        measured=measured,
        failed=dict(data.get("failed") or {}),
        spent_usd=float(data.get("spent_usd") or 0.0),
        runs=list(data.get("runs") or []),
        phases=list(data.get("phases") or []),
        goal=dict(data.get("goal") or {}),
        lost=lost,
    )
