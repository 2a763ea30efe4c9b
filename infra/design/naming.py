"""Cloud resource names and label values derived from names users chose, within each API's
limits.

Names are stable for a stack: renaming one would replace real infrastructure. Whenever a
derived name is not the original text (cut, lower-cased, characters replaced), it carries a
short hash of the original, so two stacks never share a cluster or service account (as
`my_stack` and `my-stack` would).
"""

from __future__ import annotations

import hashlib
import re

CLUSTER_NAME_MAX = 40
SERVICE_ACCOUNT_ID_MAX = 30
REPOSITORY_ID_MAX = 63
LABEL_VALUE_MAX = 63
HASH_LENGTH = 6
NODE_POOL_NAME = "serving"

# A value valid both as a GCE label (lower-case letters, digits, '_' and '-') and as a
# Kubernetes label (at most 63 characters, alphanumeric at both ends): node labels are both.
_LABEL_VALUE = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")
# A path component of a Docker repository name (distribution's reference grammar).
_IMAGE_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")


def stack_slug(stack: str) -> str:
    """The stack name in lower-case letters, digits and single hyphens."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", stack.lower())).strip("-")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def _with_hash(derived: str, original: str, max_len: int) -> str:
    """`derived`, cut to fit max_len with `-<hash of original>` after it."""
    head = derived[: max_len - HASH_LENGTH - 1].rstrip("-_")
    return f"{head}-{_short_hash(original)}" if head else _short_hash(original)


def bounded_name(prefix: str, stack: str, max_len: int) -> str:
    """`<prefix>-<stack>` when that is the stack name as written and fits; otherwise the
    stack's slug, cut to fit, with a hash of the stack name."""
    slug = stack_slug(stack)
    name = f"{prefix}-{slug}"
    if slug == stack and len(name) <= max_len:
        return name
    return _with_hash(name, stack, max_len)


def cluster_name(stack: str) -> str:
    return bounded_name("tfs", stack, CLUSTER_NAME_MAX)


def node_service_account_id(stack: str) -> str:
    return bounded_name("tfs-nodes", stack, SERVICE_ACCOUNT_ID_MAX)


def repository_id(stack: str) -> str:
    return bounded_name("tfserving", stack, REPOSITORY_ID_MAX)


def label_value(text: str) -> str:
    """A label value valid on GCE resources and Kubernetes objects alike: the text itself
    when it already is one, else its slug (cut to fit) with a hash of the text."""
    if _LABEL_VALUE.match(text):
        return text
    return _with_hash(stack_slug(text), text, LABEL_VALUE_MAX)


def cost_labels(project: str, stack: str, experiment: str) -> dict[str, str]:
    """GCP labels that attribute billing to this project, stack and experiment."""
    return {
        "app": label_value(project),
        "stack": label_value(stack),
        "experiment": label_value(experiment),
        "managed-by": "pulumi",
    }


def image_repository_name(model_name: str) -> str:
    """The image's repository (package) name for a model: the model name in lower case
    when Docker accepts that, else its letters and digits joined by '-'."""
    lower = model_name.lower()
    if _IMAGE_REPOSITORY.match(lower):
        return lower
    return "-".join(re.findall(r"[a-z0-9]+", lower)) or "model"
