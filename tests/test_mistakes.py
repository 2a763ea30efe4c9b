"""A corpus of typical user mistakes, each run as the user runs it (a subprocess of the
real command in a copy of the project): every one exits non-zero without a traceback, and
its message names the setting, option or file that was wrong.

Each case: the command line (`{d}` is the case's own directory), files to write first
(`project/...` inside the project copy, anything else in the case's directory), and the
words its output must hold. Cases run concurrently, once, in a copy of the project, so
none can touch this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROJECT_PARTS = (
    "Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py", "infra", "experiments", "models",
    "requirements.txt", "requirements-loadgen.txt",
)  # fmt: skip
PRESET = "4vcpu-8gb-interop2"
REPORT = (ROOT / "tests/data/sweep/report.json").read_text()
GOOD_RESULT = {
    "schema": "tfserving-gke/bench/v1",
    "settings": {"protocol": "rest", "mode": "open", "rate_per_s": 10},
    "summary": {"rps": 10.0, "p99_ms": 50.0, "error_rate": 0.0, "requests": 100},
    "experiment": {"experiment": "x", "costUsdPerHour": 1.0},
}


@dataclass(frozen=True)
class Mistake:
    name: str
    argv: tuple[str, ...]
    says: tuple[str, ...]  # every one must appear in the output
    files: dict[str, str] = field(default_factory=dict)
    script: str = ""  # run scripts/<script> instead of python -m infra
    status: int | None = None  # None: any non-zero


def m(
    name: str, argv: str, *says: str, files: dict[str, str] | None = None, **kw: object
) -> Mistake:
    return Mistake(name, tuple(argv.split()), says, files or {}, **kw)  # type: ignore[arg-type]


def stack_file(body: str) -> dict[str, str]:
    return {"project/Pulumi.bad.yaml": body}


CORPUS: list[Mistake] = [
    # plan: stack files a user edits
    m("unknown stack", "plan nosuchstack", "nosuchstack"),
    m(
        "stack file not YAML",
        "plan bad",
        "Pulumi.bad.yaml",
        "YAML",
        files=stack_file("config:\n  tfserving-gke:nodeCount: [3\n"),
    ),
    m(
        "more intra-op threads than any node has",
        "plan bad",
        "tensorflowIntraOpParallelism",
        "64",
        "e2-medium's 2 vCPUs",
        "Use at most 2",
        files=stack_file(
            "config:\n  tfserving-gke:experiment: dev\n"
            "  tfserving-gke:tensorflowIntraOpParallelism: 64\n"
        ),
    ),
    m(
        "a stack's model source without its scheme",
        "plan bad",
        "github.com/o/r/releases/download/v1/m.tar.gz",
        "without its scheme",
        "github:o/r@v1#m.tar.gz",
        files=stack_file(
            "config:\n  tfserving-gke:modelSource: github.com/o/r/releases/download/v1/m.tar.gz\n"
        ),
    ),
    m(
        "stack file not a mapping",
        "plan bad",
        "Pulumi.bad.yaml",
        "mapping",
        files=stack_file("- nodeCount\n- 3\n"),
    ),
    m(
        "config not a mapping",
        "plan bad",
        "Pulumi.bad.yaml",
        "config",
        files=stack_file("config:\n  - tfserving-gke:nodeCount\n"),
    ),
    m(
        "key without the project prefix",
        "plan bad",
        "nodeCount",
        "tfserving-gke:nodeCount",
        files=stack_file("config:\n  nodeCount: 3\n"),
    ),
    m(
        "setting of the wrong type",
        "plan bad",
        "nodeCount",
        "three",
        files=stack_file("config:\n  tfserving-gke:nodeCount: three\n"),
    ),
    m("stack name Pulumi refuses", "plan my-prod!", "my-prod!", "stack name"),
    m(
        "gcp project as a display name",
        "plan bad",
        "gcp:project",
        "My Project",
        "project ID",
        files=stack_file("config:\n  gcp:project: My Project\n"),
    ),
    m(
        "one REST thread",
        "plan bad",
        "restApiNumThreads",
        "1",
        files=stack_file("config:\n  tfserving-gke:restApiNumThreads: 1\n"),
    ),
    m(
        "unchecked TF Serving version",
        "plan bad",
        "tfServingVersion",
        "2.99.0",
        files=stack_file("config:\n  tfserving-gke:tfServingVersion: 2.99.0\n"),
    ),
    m(
        "zone of no GCP region",
        "plan bad",
        "zone",
        "us-centrall-a",
        "us-central1-a",
        files=stack_file("config:\n  tfserving-gke:zone: us-centrall-a\n"),
    ),
    m(
        "label value cut or rewritten",
        "plan bad",
        "experimentLabel",
        "Big_Test!",
        files=stack_file("config:\n  tfserving-gke:experimentLabel: Big_Test!\n"),
    ),
    m(
        "preset settings a list",
        "plan bad",
        "experiments/bad.yaml",
        "settings",
        files={"project/experiments/bad.yaml": "description: x\nsettings:\n  - nodeCount\n"},
    ),
    m(
        "preset not YAML",
        "plan bad",
        "experiments/bad.yaml",
        files={"project/experiments/bad.yaml": "settings: {nodeCount: 3\n"},
    ),
    m("diff against an empty ref", "plan dev --diff=", "--diff", "ref"),
    m(
        "changed stacks without a diff",
        "plan dev --changed-stacks {d}/c.json",
        "--changed-stacks",
        "--diff",
    ),
    m("markdown without a diff", "plan dev --markdown {d}/r.md", "--markdown"),
    m("plan out is a file", "plan dev --out {d}/file", "--out", "file", files={"file": "x"}),
    m("compare with an unknown stack", "plan --compare dev nosuchstack", "nosuchstack"),
    m("all with stacks", "plan dev --all", "--all"),
    # model inspect
    m("model file missing", "model inspect {d}/missing.tar.gz", "missing.tar.gz"),
    m(
        "model not an archive",
        "model inspect {d}/model.tar.gz",
        "model.tar.gz",
        files={"model.tar.gz": "not an archive"},
    ),
    m("negative model version", f"model inspect {ROOT}/models --version -1", "--version", "-1"),
    m("github source malformed", "model inspect github:owner-only", "github:owner-only"),
    m("zero download cap", f"model inspect {ROOT}/models --max-download-mb 0", "--max-download-mb"),
    # bench: values that cannot be meant
    m("rate nan", "bench http://127.0.0.1:9 --rate nan", "--rate", "nan"),
    m(
        "repeats without a capacity search",
        "bench http://127.0.0.1:9 --model toy --max-repeats 3",
        "--max-repeats works only with --find-capacity",
    ),
    m(
        "users in the open loop",
        "bench http://127.0.0.1:9 --model toy --users 4",
        "--users works only with --mode closed",
    ),
    m(
        "a rate in the closed loop",
        "bench http://127.0.0.1:9 --model toy --mode closed --rate 5",
        "--rate works only with --mode open",
    ),
    m("negative warmup", "bench http://127.0.0.1:9 --warmup -1", "--warmup"),
    m("no request in flight", "bench http://127.0.0.1:9 --max-in-flight 0", "--max-in-flight"),
    m("batch of zero", "bench http://127.0.0.1:9 --batch 0", "--batch"),
    m("zero objective", "bench http://127.0.0.1:9 --p99-ms 0", "--p99-ms"),
    m("negative error limit", "bench http://127.0.0.1:9 --max-error-rate -0.1", "--max-error-rate"),
    m("error limit over 100%", "bench http://127.0.0.1:9 --max-error-rate 1.5", "--max-error-rate"),
    m("infinite duration", "bench http://127.0.0.1:9 --duration inf", "--duration", "inf"),
    m("zero users", "bench http://127.0.0.1:9 --mode closed --users 0", "--users"),
    m("zero timeout", "bench http://127.0.0.1:9 --timeout 0", "--timeout"),
    m("zero processes", "bench http://127.0.0.1:9 --processes 0", "--processes"),
    m(
        "zero steps",
        "bench http://127.0.0.1:9 --find-capacity --p99-ms 100 --max-steps 0",
        "--max-steps",
    ),
    m("capacity without objective", "bench http://127.0.0.1:9 --find-capacity", "--p99-ms"),
    m("payload missing", "bench http://127.0.0.1:9 --payload {d}/body.json", "body.json"),
    m(
        "payload not JSON",
        "bench http://127.0.0.1:9 --model toy --payload {d}/body.json",
        "body.json",
        "JSON",
        files={"body.json": "{instances: [1"},
    ),
    m("outputs missing", "bench http://127.0.0.1:9 --outputs {d}/outputs.json", "outputs.json"),
    m(
        "outputs not JSON",
        "bench http://127.0.0.1:9 --outputs {d}/outputs.json",
        "outputs.json",
        files={"outputs.json": "restEndpoint: x"},
    ),
    m(
        "out in a missing folder",
        "bench http://127.0.0.1:9 --out {d}/nowhere/r.json",
        "--out",
        "nowhere",
    ),
    m("out is a folder", "bench http://127.0.0.1:9 --out {d}", "--out"),
    m("address without scheme", "bench 127.0.0.1:8501", "127.0.0.1:8501", "http://"),
    m(
        "predict URL for the base",
        "bench http://127.0.0.1:9/v1/models/toy:predict",
        "http://127.0.0.1:9",
        "base URL",
    ),
    m(
        "gRPC target without port",
        "bench http://127.0.0.1:9 --protocol grpc --grpc-target 127.0.0.1",
        "--grpc-target",
        "port",
    ),
    m("bad objective before the CLI", f"bench {PRESET} --p99-ms -5", "--p99-ms"),
    # compare
    m("compare file missing", "compare {d}/missing.json", "missing.json"),
    m("compare truncated", "compare {d}/r.json", "r.json", files={"r.json": '{"summary": {'}),
    m("compare wrong shape", "compare {d}/r.json", "r.json", files={"r.json": "[1, 2]"}),
    m(
        "compare not a bench result",
        "compare {d}/r.json",
        "r.json",
        files={"r.json": '{"hello": 1}'},
    ),
    m(
        "compare zero objective",
        "compare {d}/r.json --p99-ms 0",
        "--p99-ms",
        files={"r.json": json.dumps(GOOD_RESULT)},
    ),
    m(
        "compare error limit",
        "compare {d}/r.json --max-error-rate 2",
        "--max-error-rate",
        files={"r.json": json.dumps(GOOD_RESULT)},
    ),
    m(
        "chart in a missing folder",
        "compare {d}/r.json --chart {d}/no/c.png",
        "--chart",
        files={"r.json": json.dumps(GOOD_RESULT)},
    ),
    # sweep
    m("sweep unknown preset", "sweep --dry-run nosuchpreset", "nosuchpreset"),
    m("sweep nothing to run", "sweep --dry-run", "--all"),
    m("sweep zero objective", f"sweep {PRESET} --p99-ms 0 --max-usd 5", "--p99-ms"),
    m("sweep negative budget", f"sweep {PRESET} --p99-ms 100 --max-usd -5", "--max-usd"),
    m("sweep rate nan", f"sweep {PRESET} --dry-run --rate nan", "--rate"),
    m("sweep infinite duration", f"sweep {PRESET} --dry-run --duration inf", "--duration"),
    m("sweep error limit", f"sweep {PRESET} --dry-run --max-error-rate 1.5", "--max-error-rate"),
    m("sweep set without =", f"sweep {PRESET} --dry-run --set nodeCount", "--set", "nodeCount"),
    m("sweep set unknown", f"sweep {PRESET} --dry-run --set nodeCont=3", "nodeCont", "nodeCount"),
    m("sweep set wrong type", f"sweep {PRESET} --dry-run --set nodeCount=abc", "nodeCount", "abc"),
    m("sweep stack name", f"sweep {PRESET} --dry-run --stack my-prod!", "--stack", "my-prod!"),
    m(
        "sweep json in a missing folder",
        f"sweep {PRESET} --dry-run --json {{d}}/no/p.json",
        "--json",
        "no",
    ),
    m(
        "sweep dir is a file",
        f"sweep {PRESET} --p99-ms 100 --max-usd 5 --dir {{d}}/f",
        "--dir",
        files={"f": "x"},
    ),
    m(
        "sweep manifest truncated",
        f"sweep {PRESET} --p99-ms 100 --max-usd 5 --dir {{d}}/s",
        "sweep.json",
        files={"s/sweep.json": '{"stack": "sweep", "steps": ['},
    ),
    m(
        "sweep manifest wrong shape",
        f"sweep {PRESET} --p99-ms 100 --max-usd 5 --dir {{d}}/s",
        "sweep.json",
        files={"s/sweep.json": "[]"},
    ),
    # machine families
    m(
        "an Arm machine type",
        "plan bad",
        "machineType",
        "T2A",
        "Supported families",
        files=stack_file("config:\n  tfserving-gke:machineType: t2a-standard-4\n"),
    ),
    m(
        "a disk the family does not attach",
        "plan bad",
        "diskType",
        "C4D takes hyperdisk-balanced",
        files=stack_file(
            "config:\n  tfserving-gke:machineType: c4d-standard-8\n"
            "  tfserving-gke:diskType: pd-ssd\n"
        ),
    ),
    m(
        "oneDNN neither auto, on nor off",
        "plan bad",
        "oneDnn",
        "auto, on, off",
        files=stack_file("config:\n  tfserving-gke:oneDnn: yes-please\n"),
    ),
    m(
        "a shape the family lacks",
        "plan bad",
        "n2-standard-6",
        "n2-standard-{2,4,8",
        files=stack_file("config:\n  tfserving-gke:machineType: n2-standard-6\n"),
    ),
    # sweep --space, --replay, --target-rps, --spot
    m(
        "search with experiments",
        f"sweep {PRESET} --space experiments/spaces/e2-cpu.yaml --dry-run",
        "--space",
        "presets",
    ),
    m("replay without a space", f"sweep {PRESET} --replay {{d}}/r.json --dry-run", "--replay"),
    m("sampler without a space", f"sweep {PRESET} --dry-run --sampler tpe", "--sampler"),
    m("space missing", "sweep --space {d}/none.yaml --dry-run", "--space", "none.yaml"),
    m(
        "space key misspelt",
        "sweep --space {d}/s.yaml --dry-run",
        "machineTyp",
        "machineType",
        files={"s.yaml": "dimensions:\n  machineTyp: [e2-standard-4]\n"},
    ),
    m(
        "space dimension empty",
        "sweep --space {d}/s.yaml --dry-run",
        "s.yaml",
        "podsPerNode",
        files={"s.yaml": "dimensions:\n  podsPerNode: []\n"},
    ),
    m(
        "replay of a file that is no results",
        "sweep --space experiments/spaces/e2-cpu.yaml --replay {d}/r.json",
        "r.json",
        "search-results.schema.json",
        files={"r.json": '{"schema": "nope"}'},
    ),
    m(
        "replay at another objective",
        "sweep --space experiments/spaces/e2-cpu.yaml --replay "
        f"{ROOT}/tests/data/search/e2-cpu-results.json --p99-ms 100",
        "--p99-ms 300",
    ),
    m(
        "replay with dry run",
        "sweep --space experiments/spaces/e2-cpu.yaml --replay "
        f"{ROOT}/tests/data/search/e2-cpu-results.json --dry-run",
        "--replay",
        "--dry-run",
    ),
    m(
        "search zero trials",
        "sweep --space experiments/spaces/e2-cpu.yaml --max-trials 0",
        "--max-trials",
    ),
    m("target zero", f"sweep {PRESET} --dry-run --target-rps 0", "--target-rps"),
    m("spot contradicted", f"sweep {PRESET} --dry-run --spot --set spot=false", "--spot"),
    # promote
    m("promote report missing", "promote {d}/report.json", "report.json"),
    m(
        "promote report truncated",
        "promote {d}/report.json",
        "report.json",
        files={"report.json": REPORT[: len(REPORT) // 2]},
    ),
    m(
        "promote report without winner",
        "promote {d}/report.json",
        "report.json",
        "winner",
        files={"report.json": json.dumps({**json.loads(REPORT), "winner": None})},
    ),
    m(
        "promote winner not in report",
        "promote {d}/report.json",
        "report.json",
        "ghost",
        files={"report.json": json.dumps({**json.loads(REPORT), "winner": "ghost"})},
    ),
    m(
        "promote zero replicas",
        f"promote {PRESET} --min-replicas 0 --out {{d}}/p.yaml",
        "--min-replicas",
    ),
    m(
        "promote max under min",
        f"promote {PRESET} --min-replicas 3 --max-replicas 1 --out {{d}}/p.yaml",
        "--max-replicas",
    ),
    m("promote stack name", f"promote {PRESET} --stack my-prod!", "--stack", "my-prod!"),
    m(
        "promote project display name",
        f"promote {PRESET} --gcp-project My-Project! --out {{d}}/p.yaml",
        "--gcp-project",
    ),
    m("promote out in a missing folder", f"promote {PRESET} --out {{d}}/no/p.yaml", "--out"),
    m(
        "promote zone typo",
        f"promote {PRESET} --zone us-centrall-a --out {{d}}/p.yaml",
        "us-centrall-a",
        "us-central1-a",
    ),
    m("promote unknown preset", "promote nosuchpreset --out {d}/p.yaml", "nosuchpreset"),
    # ttl and teardown
    m("ttl outputs missing", "ttl decide --outputs {d}/o.json", "o.json"),
    m("ttl outputs not JSON", "ttl decide --outputs {d}/o.json", "o.json", files={"o.json": "{"}),
    m(
        "ttl outputs of a stack not an object",
        "ttl decide --outputs {d}/o.json",
        "o.json",
        "'dev'",
        "not an object",
        files={"o.json": '{"dev": 3}'},
    ),
    m(
        "ttl bad time",
        "ttl decide --outputs {d}/o.json --now yesterday",
        "--now",
        "yesterday",
        files={"o.json": "{}"},
    ),
    m(
        "ttl decisions wrong shape",
        "ttl report --decisions {d}/d.json",
        "d.json",
        files={"d.json": '"x"'},
    ),
    m("teardown stack name", "teardown my-prod!", "my-prod!"),
    m("teardown negative lock age", "teardown dev --stale-lock-hours -1", "--stale-lock-hours"),
    # the price refresh
    m(
        "prices file missing",
        "--api-key k --prices {d}/p.yaml",
        "p.yaml",
        script="refresh_prices.py",
    ),
    m(
        "prices file not YAML",
        "--api-key k --prices {d}/p.yaml",
        "p.yaml",
        files={"p.yaml": "e2: [1\n"},
        script="refresh_prices.py",
    ),
    m(
        "prices without a key",
        "--prices {d}/p.yaml",
        "--api-key",
        files={"p.yaml": (ROOT / "infra/data/prices.yaml").read_text()},
        script="refresh_prices.py",
    ),
    m(
        "prices file without catalogues",
        "--api-key k --prices {d}/p.yaml",
        "p.yaml",
        "catalogues",
        files={"p.yaml": "currency: USD\n"},
        script="refresh_prices.py",
    ),
    m(
        "replicas over what the nodes take",
        "plan bad",
        "maxReplicas",
        files=stack_file(
            "config:\n  tfserving-gke:experiment: dev\n  tfserving-gke:autoscaling: true\n"
            "  tfserving-gke:maxReplicas: 5000\n"
        ),
    ),
]


@dataclass(frozen=True)
class Outcome:
    status: int
    output: str


def _run(project: Path, base: Path, index: int, mistake: Mistake) -> Outcome:
    here = base / f"case-{index}"
    here.mkdir()
    for name, body in mistake.files.items():
        target = (
            project / name.removeprefix("project/")
            if name.startswith("project/")
            else (here / name)
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    argv = [arg.replace("{d}", str(here)) for arg in mistake.argv]
    command = (
        [sys.executable, str(project / "scripts" / mistake.script), *argv]
        if mistake.script
        else [sys.executable, "-m", "infra", *argv]
    )
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin"
    run = subprocess.run(
        command, cwd=project, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    return Outcome(run.returncode, run.stdout + run.stderr)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case's outcome. Each case that writes project files gets a project of its own."""
    base = tmp_path_factory.mktemp("mistakes")
    shared = base / "project"
    shared.mkdir()
    for part in PROJECT_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, shared / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, shared / part)
    shutil.copytree(ROOT / "scripts", shared / "scripts")

    def project_for(index: int, mistake: Mistake) -> Path:
        if not any(name.startswith("project/") for name in mistake.files):
            return shared
        own = base / f"project-{index}"
        shutil.copytree(shared, own, symlinks=True)
        return own

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            mistake.name: pool.submit(_run, project_for(i, mistake), base, i, mistake)
            for i, mistake in enumerate(CORPUS)
        }
        return {name: future.result() for name, future in futures.items()}


def test_the_corpus_is_large_and_its_names_unique() -> None:
    assert len(CORPUS) >= 60
    assert len({mistake.name for mistake in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("mistake", CORPUS, ids=[mistake.name for mistake in CORPUS])
def test_a_mistake_gets_a_clear_answer(mistake: Mistake, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[mistake.name]
    assert "Traceback" not in outcome.output, outcome.output
    if mistake.status is None:
        assert outcome.status != 0, outcome.output
    else:
        assert outcome.status == mistake.status, outcome.output
    missing = [words for words in mistake.says if words not in outcome.output]
    assert not missing, f"{missing} not in:\n{outcome.output}"
