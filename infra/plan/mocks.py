"""Pulumi SDK mocks for the offline plan: record what the program declares.

The program runs unchanged under pulumi.runtime.set_mocks, the way Pulumi documents unit
testing. Values only the cloud can know (addresses, digests, certificates) are filled in
with named placeholders so that everything depending on them is still declared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc

from infra.design.settings import PROJECT_DIR

SECRET = "[secret]"
PLACEHOLDERS = {
    "LOAD_BALANCER_IP": "the Service's load-balancer address, assigned by GCP on deploy",
    "CLUSTER_ENDPOINT": "the GKE control plane's address, assigned on deploy",
    "CLUSTER_CA_CERTIFICATE": "the cluster's CA certificate, created on deploy",
    "ACCESS_TOKEN": "the deployer's short-lived Google access token",
    "PROJECT_NUMBER": "the GCP project's number",
    "DASHBOARD_ID": "the dashboard's id, assigned by Cloud Monitoring",
    "UNRESOLVED_MODEL_IMAGE_DIGEST": (
        "the registry digest of an image whose model this machine has not resolved (`model "
        "inspect` caches it; pulumi preview/up build and push it)"
    ),
    "imageDigest": (
        "sha256 of the image build context (Dockerfile and model), standing in for the "
        "registry digest the push returns"
    ),
}
_SECRET_SIG = rpc._special_sig_key
_SECRET_VALUE = rpc._special_secret_sig


@dataclass
class DeclaredResource:
    """One resource as the program registered it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    dependencies: list[str]
    provider: str
    delete_before_replace: bool = False


@dataclass
class Recording:
    """Everything one program run declared, in registration order."""

    resources: list[DeclaredResource] = field(default_factory=list)
    stack_outputs: dict[str, Any] = field(default_factory=dict)
    # (invoke token, how many resources were registered when it ran), in call order.
    invokes: list[tuple[str, int]] = field(default_factory=list)


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == _SECRET_VALUE:
            return SECRET
        return {key: _redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def build_context_digest(context_dir: str) -> str:
    """sha256 over a build context's file paths and contents."""
    root = PROJECT_DIR / context_dir
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class PlanMocks(pulumi.runtime.Mocks):
    """Fakes the outputs the program chains on; leaves declared inputs untouched."""

    def __init__(self, gcp_project: str) -> None:
        self.gcp_project = gcp_project

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        kind = args.typ
        if kind == "gcp:container/cluster:Cluster":
            state |= {
                "endpoint": "CLUSTER_ENDPOINT",
                "masterAuth": {"clusterCaCertificate": "CLUSTER_CA_CERTIFICATE"},
            }
        elif kind == "gcp:serviceaccount/account:Account":
            state["email"] = (
                f"{args.inputs['accountId']}@{self.gcp_project}.iam.gserviceaccount.com"
            )
        elif kind == "docker:index/image:Image":
            repository = str(args.inputs["imageName"]).rsplit(":", 1)[0]
            context = args.inputs["build"]["context"]
            if (PROJECT_DIR / context).is_dir():
                state["repoDigest"] = f"{repository}@sha256:{build_context_digest(context)}"
            else:
                # The model is not resolved here, so there is no context to digest.
                state["repoDigest"] = f"{repository}@sha256:UNRESOLVED_MODEL_IMAGE_DIGEST"
        elif kind == "gcp:monitoring/dashboard:Dashboard":
            return "projects/PROJECT_NUMBER/dashboards/DASHBOARD_ID", state
        elif kind == "kubernetes:core/v1:Service":
            state["status"] = {"loadBalancer": {"ingress": [{"ip": "LOAD_BALANCER_IP"}]}}
        return f"{args.name}-id", state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"accessToken": "ACCESS_TOKEN", "project": self.gcp_project}, []
        return {}, []


class RecordingMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, also keeping each resource's parent and the stack outputs."""

    def __init__(self, plan_mocks: PlanMocks, recording: Recording) -> None:
        super().__init__(plan_mocks)
        self.recording = recording

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.recording.resources.append(
                DeclaredResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    custom=bool(request.custom),
                    inputs=_redact(rpc.deserialize_properties(request.object, keep_internal=False)),
                    dependencies=sorted(request.dependencies),
                    # "<provider urn>::<provider id>"; empty for the default provider.
                    provider=request.provider.rsplit("::", 1)[0],
                    delete_before_replace=bool(request.deleteBeforeReplace),
                )
            )
        return response

    def Invoke(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self.recording.invokes.append((request.tok, len(self.recording.resources)))
        return super().Invoke(request)  # type: ignore[no-untyped-call]

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        if request.urn.split("::")[-2].endswith("pulumi:pulumi:Stack"):
            outputs = rpc.deserialize_properties(request.outputs, keep_internal=False)
            self.recording.stack_outputs = _redact(outputs)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]
