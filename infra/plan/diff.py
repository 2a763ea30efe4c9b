"""Compare offline plans: two git refs, or two experiments, as a readable Markdown summary.

Works on plan.json documents (schema tfserving-gke/plan/v1), so it needs no cloud and no
secrets: pull requests from forks get it too.
"""

from __future__ import annotations

import difflib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.design.settings import DEFAULT
from infra.plan.render import SCHEMA, layer_name, setting_text

KUBERNETES_PREFIX = "kubernetes:"
MAX_DIFF_LINES = 200


@dataclass(frozen=True)
class SettingChange:
    key: str
    before: str
    after: str


@dataclass(frozen=True)
class ResourceChange:
    kind: str  # "+" added, "-" removed, "~" changed
    resource: str  # type::name
    fields: tuple[str, ...] = ()


@dataclass
class StackDiff:
    """Everything that differs between two plans of one stack (or two stacks)."""

    before_name: str
    after_name: str
    settings: list[SettingChange] = field(default_factory=list)
    resources: list[ResourceChange] = field(default_factory=list)
    manifest_diffs: list[str] = field(default_factory=list)
    cost_before: dict[str, float] | None = None
    cost_after: dict[str, float] | None = None
    warnings_added: list[str] = field(default_factory=list)
    presence: str = ""  # "new stack" or "stack removed" when only one side has it

    @property
    def changed(self) -> bool:
        return bool(
            self.presence
            or self.settings
            or self.resources
            or self.manifest_diffs
            or self._cost_changed()
            or self.warnings_added
        )

    def _cost_changed(self) -> bool:
        return (self.cost_before or {}).get("usd_per_hour") != (self.cost_after or {}).get(
            "usd_per_hour"
        )


def _setting_text(entry: dict[str, Any] | None, stack: str) -> str:
    if entry is None:
        return "(not a setting)"
    return setting_text(entry["value"], entry.get("effective"), layer_name(entry["source"], stack))


def _effect(entry: dict[str, Any] | None) -> Any:
    if entry is None:
        return None
    return entry.get("effective", entry["value"]), entry["value"]


def _resource_key(resource: dict[str, Any]) -> str:
    return f"{resource['type']}::{resource['name']}"


def _changed_fields(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        fields: list[str] = []
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                path = f"{prefix}.{key}" if prefix else key
                nested = _changed_fields(before.get(key), after.get(key), path)
                fields += nested if nested and path.count(".") < 2 else [path]
        return fields
    return [] if before == after else [prefix] if prefix else ["(value)"]


def _manifest_text(resource: dict[str, Any] | None) -> list[str]:
    if resource is None:
        return []
    return yaml.safe_dump(resource["inputs"], sort_keys=True).splitlines(keepends=True)


def diff_plans(
    before: dict[str, Any] | None, after: dict[str, Any] | None, before_name: str, after_name: str
) -> StackDiff:
    """Settings, resources, manifests, cost and new warnings that differ."""
    for plan in (before, after):
        if plan is not None and plan.get("schema") != SCHEMA:
            raise ValueError(f"plan.json schema {plan.get('schema')!r} is not {SCHEMA!r}")
    diff = StackDiff(before_name, after_name)
    old, new = before or {}, after or {}
    old_settings, new_settings = old.get("settings", {}), new.get("settings", {})
    old_stack, new_stack = old.get("stack", before_name), new.get("stack", after_name)
    if before is None or after is None:
        # A new (or removed) stack: what it sets is the news, not every default.
        present, stack = (new_settings, new_stack) if before is None else (old_settings, old_stack)
        for key in sorted(present):
            if present[key]["source"] != DEFAULT:
                text = _setting_text(present[key], stack)
                missing = "(new stack)" if before is None else "(stack removed)"
                change = (missing, text) if before is None else (text, missing)
                diff.settings.append(SettingChange(key, *change))
        if before is not None or after is not None:
            diff.presence = "new stack" if before is None else "stack removed"
    else:
        for key in sorted(set(old_settings) | set(new_settings)):
            a, b = old_settings.get(key), new_settings.get(key)
            if _effect(a) != _effect(b):
                diff.settings.append(
                    SettingChange(key, _setting_text(a, old_stack), _setting_text(b, new_stack))
                )

    old_resources = {_resource_key(r): r for r in old.get("resources", [])}
    new_resources = {_resource_key(r): r for r in new.get("resources", [])}
    for key in sorted(set(old_resources) | set(new_resources)):
        a, b = old_resources.get(key), new_resources.get(key)
        if a is None:
            diff.resources.append(ResourceChange("+", key))
        elif b is None:
            diff.resources.append(ResourceChange("-", key))
        elif a["inputs"] != b["inputs"]:
            fields = tuple(_changed_fields(a["inputs"], b["inputs"]))
            diff.resources.append(ResourceChange("~", key, fields))
        if key.startswith(KUBERNETES_PREFIX) and (a or {}).get("inputs") != (b or {}).get("inputs"):
            lines = list(
                difflib.unified_diff(
                    _manifest_text(a),
                    _manifest_text(b),
                    f"{before_name}/{key}",
                    f"{after_name}/{key}",
                    n=2,
                )
            )
            if len(lines) > MAX_DIFF_LINES:
                lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more lines\n"]
            diff.manifest_diffs.append("".join(lines))
    diff.cost_before = old.get("cost")
    diff.cost_after = new.get("cost")
    old_warnings = set(old.get("warnings", []))
    diff.warnings_added = [w for w in new.get("warnings", []) if w not in old_warnings]
    return diff


def without_stack_name(plan: dict[str, Any], stack: str) -> dict[str, Any]:
    """The plan with its stack name written as STACK, so two experiments compare on
    what differs between them rather than on their names. The layers settings came from
    keep their names: a preset's file is where to look."""
    neutral: dict[str, Any] = json.loads(json.dumps(plan).replace(stack, "STACK"))
    for key, entry in neutral["settings"].items():
        entry["source"] = plan["settings"][key]["source"]
    return neutral


def _money(cost: dict[str, float] | None, key: str, digits: int) -> str:
    return "-" if cost is None else f"{cost[key]:.{digits}f}"


def _delta(diff: StackDiff, key: str, digits: int) -> str:
    if diff.cost_before is None or diff.cost_after is None:
        return ""
    change = diff.cost_after[key] - diff.cost_before[key]
    return f" ({change:+.{digits}f})"


def _cost_line(diff: StackDiff) -> str:
    return (
        f"{_money(diff.cost_before, 'usd_per_month', 2)} → "
        f"{_money(diff.cost_after, 'usd_per_month', 2)}{_delta(diff, 'usd_per_month', 2)}"
    )


def render_markdown(title: str, diffs: dict[str, StackDiff]) -> str:
    """One Markdown report: a summary table, then the details of each changed stack."""
    changed = {name: d for name, d in diffs.items() if d.changed}
    lines = [f"## {title}", ""]
    if not changed:
        lines.append(f"No changes ({len(diffs)} stack{'s' if len(diffs) != 1 else ''} compared).")
        return "\n".join(lines) + "\n"
    lines += [
        "| stack | settings | resources + / ~ / - | USD/month |",
        "|---|---|---|---|",
    ]
    for name, diff in changed.items():
        counts = [sum(1 for r in diff.resources if r.kind == k) for k in "+~-"]
        presence = f" ({diff.presence})" if diff.presence else ""
        lines.append(
            f"| `{name}`{presence} | {len(diff.settings)} | {counts[0]} / {counts[1]} / "
            f"{counts[2]} "
            f"| {_cost_line(diff)} |"
        )
    unchanged = sorted(set(diffs) - set(changed))
    if unchanged:
        lines += ["", f"No changes: {', '.join(f'`{n}`' for n in unchanged)}."]
    for name, diff in changed.items():
        lines += ["", f"<details><summary><b>{name}</b></summary>", ""]
        if diff.presence == "new stack":
            lines += ["A new stack; the settings it does not leave at their default:", ""]
        elif diff.presence:
            lines += ["The stack is removed; the settings it had changed:", ""]
        if diff.settings:
            lines += ["| setting | before | after |", "|---|---|---|"]
            lines += [f"| `{c.key}` | {c.before} | {c.after} |" for c in diff.settings]
            lines.append("")
        if diff.resources:
            lines.append("Resources:")
            for change in diff.resources:
                fields = f" ({', '.join(change.fields[:8])})" if change.fields else ""
                lines.append(f"- `{change.kind}` {change.resource}{fields}")
            lines.append("")
        if diff.manifest_diffs:
            lines += [
                "Kubernetes manifests:",
                "",
                "```diff",
                *("".join(diff.manifest_diffs).rstrip("\n").splitlines()),
                "```",
                "",
            ]
        before_hour = _money(diff.cost_before, "usd_per_hour", 4)
        after_hour = _money(diff.cost_after, "usd_per_hour", 4)
        lines.append(
            f"Cost: {before_hour} → {after_hour} USD/hour{_delta(diff, 'usd_per_hour', 4)}; "
            f"{_cost_line(diff)} USD/month"
        )
        if diff.warnings_added:
            lines += ["", "New warnings:", *(f"- {w}" for w in diff.warnings_added)]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def diff_plan_sets(
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    before_ref: str,
    after_ref: str,
) -> dict[str, StackDiff]:
    """Diffs of every stack present on either side, by stack name."""
    return {
        stack: diff_plans(before.get(stack), after.get(stack), before_ref, after_ref)
        for stack in sorted(set(before) | set(after))
    }


def read_plans(directory: Path) -> dict[str, dict[str, Any]]:
    """plan.json documents under DIR/<stack>/plan.json, by stack."""
    plans = {}
    for path in sorted(directory.glob("*/plan.json")):
        plans[path.parent.name] = json.loads(path.read_text(encoding="utf-8"))
    return plans


def plans_at_ref(project_dir: Path, ref: str) -> dict[str, dict[str, Any]]:
    """Plan every stack as the project was at a git ref, with that ref's own code."""
    archive = subprocess.run(
        ["git", "-C", str(project_dir), "archive", "--format=tar", ref],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        message = archive.stderr.decode(errors="replace").strip()
        raise ValueError(f"cannot read git ref {ref!r}: {message}")
    with tempfile.TemporaryDirectory(prefix="tfserving-gke-base-") as temporary:
        tree = Path(temporary) / "tree"
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tree, filter="data")
        if not (tree / "infra" / "plan").is_dir():
            return {}
        out = Path(temporary) / "plans"
        plans_run = subprocess.run(
            [sys.executable, "-m", "infra", "plan", "--all", "--out", str(out)],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
        if plans_run.returncode != 0:
            raise ValueError(f"planning {ref} failed: {plans_run.stderr.strip()}")
        return read_plans(out)
