"""Strict validation of custom resources, the way kubernetes-validate --strict checks the
built-in kinds: the CRD's schema (tests/data/crds/) with every object closed to properties
it does not name, and metadata checked against Kubernetes' own ObjectMeta from
kubernetes-validate's strict definitions for the version asked for."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

from tests.conftest import ROOT

CRD_DIR = ROOT / "tests" / "data" / "crds"
DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
OBJECT_META = f"{DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def _closed(schema: Any) -> Any:
    """The schema with additionalProperties false wherever an object lists its properties
    and says nothing else about the rest (a structural schema's unknown fields)."""
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if "properties" in closed and "additionalProperties" not in closed:
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


def _definitions(version: str) -> dict[str, Any]:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    path = folder / f"v{version}-local-strict" / "_definitions.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def validator(crd: Path, version: str) -> jsonschema.protocols.Validator:
    document = yaml.safe_load(crd.read_text(encoding="utf-8"))
    schema = _closed(document["openAPIV3Schema"])
    schema["$defs"] = _closed(document.get("$defs", {}))
    schema["properties"]["metadata"] = {"$ref": OBJECT_META}
    schema["properties"]["apiVersion"] = {"const": document["apiVersion"]}
    schema["properties"]["kind"] = {"const": document["kind"]}
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    registry = Resource.from_contents(_definitions(version)) @ Registry()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_custom(obj: dict[str, Any], version: str) -> None:
    """Raise jsonschema.ValidationError when the object breaks its CRD's schema."""
    crd = CRD_DIR / f"{obj['kind'].lower()}-{obj['apiVersion'].rsplit('/', 1)[-1]}.yaml"
    validator(crd, version).validate(obj)
