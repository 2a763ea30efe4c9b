"""Cloud resource names derived from the stack name, within each API's limits.

Names are stable for a stack: renaming one would replace real infrastructure.
"""

from __future__ import annotations

import hashlib
import re

CLUSTER_NAME_MAX = 40
SERVICE_ACCOUNT_ID_MAX = 30
REPOSITORY_ID_MAX = 63
NODE_POOL_NAME = "serving"


def stack_slug(stack: str) -> str:
    """The stack name in lower-case letters, digits and single hyphens."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", stack.lower())).strip("-") or "stack"


def bounded_name(prefix: str, stack: str, max_len: int) -> str:
    """`<prefix>-<stack slug>`, cut to max_len with a short hash of the stack when too long."""
    name = f"{prefix}-{stack_slug(stack)}"
    if len(name) <= max_len:
        return name
    suffix = hashlib.sha256(stack.encode()).hexdigest()[:6]
    return f"{name[: max_len - len(suffix) - 1].rstrip('-')}-{suffix}"


def cluster_name(stack: str) -> str:
    return bounded_name("tfs", stack, CLUSTER_NAME_MAX)


def node_service_account_id(stack: str) -> str:
    return bounded_name("tfs-nodes", stack, SERVICE_ACCOUNT_ID_MAX)


def repository_id(stack: str) -> str:
    return bounded_name("tfserving", stack, REPOSITORY_ID_MAX)


def cost_labels(project: str, stack: str, experiment: str) -> dict[str, str]:
    """GCP labels that attribute billing to this project, stack and experiment."""
    return {
        "app": stack_slug(project)[:63],
        "stack": stack_slug(stack)[:63],
        "experiment": stack_slug(experiment)[:63],
        "managed-by": "pulumi",
    }
