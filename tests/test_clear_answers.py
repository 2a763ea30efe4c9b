"""What the plan, the diff and the sweep's dry run tell a newcomer: only the settings that
change something, the values that take effect, new stacks without a row per default, the
settings a switched-off feature ignores, advice that is not already followed, and a sweep
that would cost more than separate stacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from infra.plan.diff import diff_plans, render_markdown
from infra.plan.render import describe, plan_json
from infra.sweep.design import advice, design_sweep, dry_run_json
from infra.sweep.design import describe as describe_sweep
from infra.sweep.durations import SearchSettings
from tests.conftest import ROOT, PlanFn

SEARCH = SearchSettings(None, 0.01, "rest", 20.0, 14, 5.0, 20.0)


def _changed_block(text: str) -> list[str]:
    block = text.split("Settings not at their default\n", 1)[1].split("\n\n", 1)[0]
    return block.splitlines()


def test_a_value_restating_the_default_is_not_listed_as_changed(plan: PlanFn) -> None:
    lines = _changed_block(describe(plan("dev", nodeCount=1, podsPerNode=1, nodeVcpus=4)))
    assert not any("nodeCount" in line or "podsPerNode" in line for line in lines)
    assert "  nodeVcpus = 4 (Pulumi.dev.yaml)" in lines
    assert '  machineType = "e2-medium" (preset experiments/dev.yaml)' in lines


def test_derived_values_are_shown_as_they_take_effect(plan: PlanFn) -> None:
    stack = plan(
        "dev", machineType="", nodeVcpus=4, nodeMemoryGb=16, tensorflowIntraOpParallelism=0
    )
    settings = plan_json(stack)["settings"]
    assert settings["tensorflowIntraOpParallelism"] == {
        "value": 0,
        "source": "stack",
        "effective": 4,
    }
    assert settings["machineType"]["effective"] == "e2-standard-4"
    assert "effective" not in settings["nodeVcpus"]
    # The stack sets intra-op 0 explicitly, which is the default: not a change.
    assert not any("IntraOp" in line for line in _changed_block(describe(stack)))


def test_a_new_stack_lists_only_what_it_sets(plan: PlanFn) -> None:
    after = plan_json(plan("dev", nodeCount=2, replicas=2))
    diff = diff_plans(None, after, "main", "working tree")
    assert diff.presence == "new stack" and diff.changed
    text = render_markdown("t", {"dev": diff})
    assert "(not a setting)" not in text
    assert "`dev` (new stack)" in text
    keys = {change.key for change in diff.settings}
    assert {"nodeCount", "replicas", "machineType"} <= keys
    assert "maxBatchSize" not in keys and len(keys) < 10
    removed = diff_plans(after, None, "main", "working tree")
    assert removed.presence == "stack removed"
    assert all(change.after == "(stack removed)" for change in removed.settings)


def test_settings_of_a_switched_off_feature_warn(plan: PlanFn) -> None:
    warnings = plan("dev", loadGeneratorMaxNodes=8).warnings
    assert (
        "loadGenerator is false, so loadGeneratorMaxNodes has no effect; set loadGenerator "
        "true to declare the load-generator pool it shapes." in warnings
    )
    both = plan("dev", loadGeneratorMaxNodes=8, loadGeneratorMachineType="e2-highcpu-8")
    assert any(
        "so loadGeneratorMachineType, loadGeneratorMaxNodes have no effect" in w
        for w in both.warnings
    )
    sized = plan("dev", machineType="e2-standard-4", nodeVcpus=8).warnings
    assert any(
        "machineType is e2-standard-4, so nodeVcpus has no effect; leave machineType empty" in w
        for w in sized
    )
    assert not any("no effect" in w for w in plan("dev", loadGenerator=True).warnings)


def test_thread_advice_names_only_the_count_still_short(plan: PlanFn) -> None:
    stack = plan(
        "dev",
        machineType="e2-standard-4",
        enableBatching=True,
        maxBatchSize=32,
        restApiNumThreads=80,
        grpcMaxThreads=8,
    )
    (warning,) = [w for w in stack.warnings if "batching guidance" in w]
    assert "grpcMaxThreads 8 (set explicitly) is below" in warning
    assert warning.endswith("To fill batches, set grpcMaxThreads 64.")
    assert "restApiNumThreads" not in warning


def test_a_sweep_of_different_models_and_dearer_than_separate_stacks_says_so() -> None:
    design = design_sweep(["dev", "2vcpu-4gb-interop2"], SEARCH)
    notes = advice(design)
    assert design.estimate.usd > design.separate.usd
    assert any(
        note.startswith("The experiments serve 2 different models")
        and "tiny_classifier from models/tiny_classifier: dev" in note
        for note in notes
    )
    assert any(
        "costs more than the same experiments as separate stacks" in note
        and "python -m infra sweep <experiment>" in note
        for note in notes
    )
    text = describe_sweep(design, None)
    assert "Before you run it:" in text


def test_one_experiment_is_said_in_the_singular_without_advice() -> None:
    design = design_sweep(["8vcpu-16gb-interop2"], SEARCH)
    text = describe_sweep(design, None)
    assert "Sweep on stack sweep: 1 experiment on one cluster" in text
    assert "one experiment: the sweep is the same as a stack of its own." in text
    assert "Before you run it" not in text
    same_model = design_sweep(["8vcpu-16gb-interop2", "8vcpu-16gb-interop4"], SEARCH)
    assert advice(same_model) == []
    mixed = dry_run_json(design_sweep(["dev", "8vcpu-16gb-interop2"], SEARCH), None)
    assert json.loads(json.dumps(mixed))["advice"][0].startswith("The experiments serve 2")


@pytest.mark.parametrize(
    "command",
    [["init"], ["plan"], ["rehearse"], ["bench"], ["compare"], ["sweep"], ["promote"],
     ["teardown"], ["ttl", "decide"], ["model", "inspect"]],
)  # fmt: skip
def test_every_option_has_help_and_says_its_default_once(command: list[str]) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "infra", *command, "--help"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stdout.split())
    assert not re.search(r"\(default: [^)]*\) \(default:", text), text
    assert "(default: None)" not in text
    lines = run.stdout.split("options:", 1)[1].splitlines()
    for index, line in enumerate(lines):
        flags_only = re.fullmatch(r"  (-\S+(?: \S+)?(?:, -\S+(?: \S+)?)*)", line)
        following = lines[index + 1] if index + 1 < len(lines) else ""
        # argparse puts an option's help after its flags, or on the next, indented line.
        if flags_only and not re.match(r" {6,}\S", following):
            raise AssertionError(f"{' '.join(command)}: {flags_only[1]} has no help")
