"""The text of a new stack's Pulumi.<stack>.yaml. Pure: values in, YAML out.

The file sets what `init` was given (the preset, the model's source and name, the GCP
project) and lists, commented out, the settings a user changes next with the value each
has now, so the file itself says what can be set and where it stands.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from infra.design.experiment import ExperimentDesign
from infra.design.settings import Declaration

# Settings a new stack's owner changes next, in the order they come up.
NEXT_SETTINGS = (
    "modelSha256",
    "machineType",
    "nodeCount",
    "spot",
    "tensorflowIntraOpParallelism",
    "enableBatching",
    "maxBatchSize",
    "exposure",
    "loadBalancerSourceRanges",
    "ttlHours",
)
DESCRIPTION_MAX = 72
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)])\.\s+(?=[A-Z])")


@dataclass(frozen=True)
class NewStack:
    """What `init` writes: the stack, its settings (short keys) and its GCP project."""

    project: str
    stack: str
    values: Mapping[str, Any]
    gcp_project: str
    written_on: str  # YYYY-MM-DD


def _short(description: str) -> str:
    """A declaration's first sentence, cut to fit a comment line."""
    sentence = _SENTENCE_END.split(" ".join(description.split()))[0].rstrip(".")
    if len(sentence) <= DESCRIPTION_MAX:
        return sentence
    return sentence[: DESCRIPTION_MAX - 3].rsplit(" ", 1)[0] + "..."


def _in_effect(key: str, design: ExperimentDesign) -> Any:
    """The value a setting has in the design (a derived machine type named as such)."""
    if key == "machineType":
        return design.shape.machine_type
    return design.settings.value_of(key)


def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000)
    return text.strip().removesuffix("...").strip()


def render(new: NewStack, design: ExperimentDesign, declarations: Mapping[str, Declaration]) -> str:
    """The stack file: a header, the values set, then the next settings commented out."""
    s = design.settings
    lines = [
        f"# Stack {new.stack}: serves the model {s.model_name!r} from {s.model_source}.",
        f"# Written by `python -m infra init` on {new.written_on}. Every key below is a setting",
        f"# declared in Pulumi.yaml; `python -m infra plan {new.stack}` shows each value in",
        "# effect and the layer it came from (default, preset or this file).",
    ]
    if not new.gcp_project:
        lines.append("# Before `pulumi up`: pulumi config set gcp:project <your-project-id>")
    config: dict[str, Any] = {}
    if new.gcp_project:
        config["gcp:project"] = new.gcp_project
    config |= {f"{new.project}:{key}": value for key, value in new.values.items()}
    lines.append(
        yaml.safe_dump({"config": config}, sort_keys=False, default_flow_style=False).rstrip()
    )
    lines.append("  # Set next (uncomment and edit); each shows the value in effect now.")
    for key in NEXT_SETTINGS:
        if key in new.values:
            continue
        value = _yaml_value(_in_effect(key, design))
        why = _short(declarations[key].description)
        lines.append(f"  # {new.project}:{key}: {value}  # {why}")
    return "\n".join(lines) + "\n"
