"""What the serving pods' objects say, read as the kubelet and the controllers write them.
Pure: pod objects (the Kubernetes client's models) in, decisions out.

- A pod can serve while it is neither Failed nor Succeeded nor being deleted. After a
  Spot VM's preemption the kubelet's graceful node shutdown leaves the pod object in
  phase Failed (reason Terminated, "Pod was terminated in response to imminent node
  shutdown.", condition DisruptionTarget/TerminationByKubelet); GKE recreates the VM
  under the same node name and collects terminated pods only past a threshold, so such
  objects stay listed beside the Deployment's replacement: they are not serving pods.
- The Deployment is whole when exactly `replicas` pods can serve, all of one pod
  template (one ReplicaSet: no rollout half done) and all Ready.
- A serving pod that went away during a run was disrupted (its node shut down, it was
  preempted, drained or collected: the DisruptionTarget condition names which) unless the
  kubelet evicted it for node pressure (reason Evicted): that, like a container restarted
  in place (OOMKilled above all, or killed by its probes), is the server failing at the
  rate it was loaded with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TERMINAL_PHASES = ("Failed", "Succeeded")
# The kubelet's graceful node shutdown: "Terminated" since Kubernetes 1.22 (with its
# message), "Shutdown" in 1.21; "NodeShutdown" when a pod was refused as its node shut.
SHUTDOWN_REASONS = ("Terminated", "Shutdown", "NodeShutdown")
SHUTDOWN_MESSAGES = ("node shutdown", "node is shutting down")
EVICTED = "Evicted"
DISRUPTION_TARGET = "DisruptionTarget"
TEMPLATE_HASH = "pod-template-hash"


def can_serve(pod: Any) -> bool:
    """Neither finished nor on its way out."""
    return pod.status.phase not in TERMINAL_PHASES and not pod.metadata.deletion_timestamp


def ready(pod: Any) -> bool:
    return can_serve(pod) and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or ()
    )


def _condition(pod: Any, kind: str) -> Any:
    return next(
        (c for c in pod.status.conditions or () if c.type == kind and c.status == "True"), None
    )


def stopped_by_shutdown(pod: Any) -> bool:
    """Whether the kubelet stopped the pod because its node shut down (a Spot VM
    preempted, a node recreated)."""
    status = pod.status
    if status.phase != "Failed":
        return False
    messages = [status.message or ""]
    target = _condition(pod, DISRUPTION_TARGET)
    if target is not None:
        messages.append(target.message or "")
    said = any(m in text.lower() for text in messages for m in SHUTDOWN_MESSAGES)
    by_kubelet = status.reason == "Terminated" or target is not None
    return status.reason in ("Shutdown", "NodeShutdown") or (by_kubelet and said)


def why_gone(pod: Any | None) -> tuple[str, str]:
    """(disruption | failure, why) for a serving pod that no longer serves; None: its
    object is gone (collected with its node, or deleted)."""
    if pod is None:
        return "disruption", "its pod object is gone (collected with its node, or deleted)"
    status = pod.status
    if status.reason == EVICTED:
        return "failure", f"the kubelet evicted it: {status.message or 'node pressure'}"
    if stopped_by_shutdown(pod):
        return "disruption", "its node shut down (a preempted Spot VM, or a node recreated)"
    target = _condition(pod, DISRUPTION_TARGET)
    if target is not None:
        return "disruption", f"{target.reason}: {target.message or 'disrupted'}"
    if pod.metadata.deletion_timestamp:
        return "disruption", "it is being deleted (a rollout, a drain or a node upgrade)"
    return "disruption", f"phase {status.phase}{f', {status.reason}' if status.reason else ''}"


@dataclass(frozen=True)
class ServingPod:
    """A serving pod as a run saw it: its node, restarts and last container exit."""

    node: str
    restarts: int
    last_exit: str  # "OOMKilled (exit 137)", or "" before any restart


def _last_exit(pod: Any) -> str:
    for container in pod.status.container_statuses or ():
        terminated = getattr(container.last_state, "terminated", None)
        if terminated is not None:
            code = f" (exit {terminated.exit_code})" if terminated.exit_code is not None else ""
            return f"{terminated.reason or 'terminated'}{code}"
    return ""


def serving(pods: list[Any]) -> dict[str, ServingPod]:
    """pod name -> what it is now, for every pod that can serve."""
    return {
        pod.metadata.name: ServingPod(
            pod.spec.node_name or "",
            sum(int(c.restart_count or 0) for c in pod.status.container_statuses or ()),
            _last_exit(pod),
        )
        for pod in pods
        if can_serve(pod)
    }


def change(before: dict[str, ServingPod], pods_after: list[Any]) -> tuple[str, str]:
    """("", "") when the serving pods were the same through a run; else (disruption |
    failure, why): what the run measured was not the deployment, or was it failing."""
    by_name = {pod.metadata.name: pod for pod in pods_after}
    after = serving(pods_after)
    for name in sorted(before):
        if name in after:
            continue
        kind, why = why_gone(by_name.get(name))
        return kind, f"serving pod {name} on node {before[name].node} stopped serving: {why}"
    for name, now in sorted(after.items()):
        if name in before and now.restarts > before[name].restarts:
            return "failure", (
                f"serving pod {name} on node {now.node} restarted during the run: its "
                f"container ended {now.last_exit or 'for a reason not recorded'}"
            )
    return "", ""


def whole(pods: list[Any], replicas: int) -> tuple[bool, str]:
    """Whether exactly `replicas` pods of one template can serve and are Ready; what is
    short otherwise."""
    live = [pod for pod in pods if can_serve(pod)]
    leaving = [pod for pod in pods if pod.metadata.deletion_timestamp]
    templates = {(pod.metadata.labels or {}).get(TEMPLATE_HASH, "") for pod in live}
    ready_count = sum(ready(pod) for pod in live)
    if not leaving and len(templates) <= 1 and len(live) == ready_count == replicas:
        return True, ""
    finished = sum(pod.status.phase in TERMINAL_PHASES for pod in pods)
    return False, (
        f"{ready_count} of {replicas} ready, {len(live)} live"
        + (f" of {len(templates)} pod templates (a rollout)" if len(templates) > 1 else "")
        + f", {len(leaving)} terminating, {finished} finished (ignored)"
    )
