"""What users see offline, saved and compared: the check that a refactoring changed nothing.

`save DIR` runs the offline commands (plan --all with its manifests and plan.json, the
reference sweep's dry run, the e2-cpu and families spaces' dry runs, a replay of the e2-cpu
results, the dev plan) and writes their outputs under DIR. `compare BEFORE AFTER` says
which files differ (the snapshot's own directory name aside) and exits 1 when any does.

Run: venv/bin/python scripts/snapshot_outputs.py save /tmp/before   (then change the code)
     venv/bin/python scripts/snapshot_outputs.py save /tmp/after
     venv/bin/python scripts/snapshot_outputs.py compare /tmp/before /tmp/after
A change of the load generator's own files changes its image tag (the tag is its context's
digest), which `compare` reports like any other difference.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "<SNAPSHOT>"


def commands(out: Path) -> dict[str, list[str]]:
    """Each output file's name, and the infra command that prints it."""
    e2, families = "experiments/spaces/e2-cpu.yaml", "experiments/spaces/families.yaml"
    return {
        "plan-all.txt": ["plan", "--all", "--out", str(out / "plan")],
        "plan-dev.txt": ["plan", "dev"],
        "sweep-dry-run.txt": ["sweep", "--all", "--dry-run", "--json", str(out / "sweep.json")],
        "space-dry-run.txt": [
            "sweep", "--space", e2, "--dry-run", "--json", str(out / "space.json"),
        ],
        "families-dry-run.txt": ["sweep", "--space", families, "--dry-run"],
        "replay.txt": [
            "sweep", "--space", e2, "--target-rps", "2000", "--p99-ms", "300", "--replay",
            "tests/data/search/e2-cpu-results.json", "--json", str(out / "replay.json"),
        ],
    }  # fmt: skip


def save(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for name, argv in commands(out).items():
        run = subprocess.run(
            [sys.executable, "-m", "infra", *argv],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        (out / name).write_text(
            f"exit {run.returncode}\n{run.stdout}{run.stderr}".replace(str(out), MARK),
            encoding="utf-8",
        )
    for path in out.rglob("*.json"):
        path.write_text(path.read_text(encoding="utf-8").replace(str(out), MARK), "utf-8")
    print(f"saved {sum(1 for p in out.rglob('*') if p.is_file())} files under {out}")
    return 0


def compare(before: Path, after: Path) -> int:
    names = {p.relative_to(before) for p in before.rglob("*") if p.is_file()}
    names |= {p.relative_to(after) for p in after.rglob("*") if p.is_file()}
    differing = 0
    for name in sorted(names):
        old, new = before / name, after / name
        if not old.is_file() or not new.is_file():
            print(f"only in {'after' if new.is_file() else 'before'}: {name}")
            differing += 1
            continue
        if old.read_bytes() == new.read_bytes():
            continue
        differing += 1
        diff = difflib.unified_diff(
            old.read_text(encoding="utf-8").splitlines(),
            new.read_text(encoding="utf-8").splitlines(),
            f"before/{name}", f"after/{name}", lineterm="", n=1,
        )  # fmt: skip
        print("\n".join(list(diff)[:20]))
    print(f"{differing} of {len(names)} files differ")
    return 1 if differing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands_ = parser.add_subparsers(dest="command", required=True)
    saving = commands_.add_parser("save", help="write the offline outputs under DIR")
    saving.add_argument("dir", type=Path)
    comparing = commands_.add_parser("compare", help="exit 1 when two snapshots differ")
    comparing.add_argument("before", type=Path)
    comparing.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "save":
        return save(args.dir.resolve())
    for snapshot in (args.before, args.after):
        if not snapshot.is_dir():
            parser.error(f"{snapshot} is not a snapshot directory (write one with `save`)")
    return compare(args.before, args.after)


if __name__ == "__main__":
    raise SystemExit(main())
