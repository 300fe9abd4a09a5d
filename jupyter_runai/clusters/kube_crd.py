"""The custom resource our workloads live as on Kubernetes: ``RunaiWorkload`` (plural
``runaiworkloads``, short name ``rwl``), in the group ``jupyter-runai.io``, one object per
workload in its project's namespace ``runai-<project>``.

Its ``spec`` is the workload's spec as the REST API writes it (the same field names); its
``status`` is the workload's status with the submitter, the GPUs it holds and standard
``conditions``. The CustomResourceDefinition is generated here from the models, so the two
cannot drift: ``deploy/crd.yaml`` is this module's output (``python -m
jupyter_runai.clusters.kube_crd > deploy/crd.yaml``) and a test checks that it still is.

The schema is *structural* (every node has a type, no ``$ref``, no ``anyOf`` of types) and
bounded: pydantic's JSON schema is converted by :func:`structural`. Where the models accept
two shapes, the CRD keeps one: quantities (``cpu: 2`` or ``"2"``) are strings, and a command
(a string or a list) is left to the service's own validation
(``x-kubernetes-preserve-unknown-fields``). Pure: no I/O, no ``kubernetes`` import.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

__all__ = ["GROUP", "KIND", "PLURAL", "SHORT_NAMES", "VERSION", "API_VERSION", "crd_manifest", "structural",
           "status_schema", "spec_schema"]

GROUP = "jupyter-runai.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RunaiWorkload"
PLURAL = "runaiworkloads"
SINGULAR = "runaiworkload"
SHORT_NAMES = ["rwl"]

# bounds for what the models leave unbounded (messages, lists of pods and devices)
MAX_STRING = 32768
MAX_ITEMS = 1024
MAX_PROPERTIES = 1024
_DROPPED = {"title", "examples", "default", "additionalProperties", "propertyNames", "$defs"}


def structural(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pydantic JSON schema as a structural, bounded OpenAPI v3 schema for a CRD."""
    defs = schema.get("$defs", {}) if defs is None else defs
    node = copy.deepcopy(schema)
    if "$ref" in node:
        ref = node.pop("$ref").rsplit("/", 1)[-1]
        node = {**copy.deepcopy(defs[ref]), **node}
    if "anyOf" in node:
        branches = _flatten(node.pop("anyOf"), defs)
        nullable = any(b.get("type") == "null" for b in branches)
        branches = [b for b in branches if b.get("type") != "null"]
        merged = _one_shape(branches, defs)
        description = node.get("description") or merged.get("description")
        node = {k: v for k, v in node.items() if k in ("description",)}
        node.update({k: v for k, v in merged.items() if k != "description"})
        if description:
            node["description"] = description
        if nullable:
            node["nullable"] = True
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out["properties"] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = structural(value, defs)
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key == "description":
            out[key] = value.split("\n\n")[0][:500]
        else:
            out[key] = value
    kind = out.get("type")
    if kind == "string" and "enum" not in out and "format" not in out:
        out.setdefault("maxLength", MAX_STRING)
    elif kind == "array":
        out.setdefault("maxItems", MAX_ITEMS)
    elif kind == "object" and "properties" not in node:
        extra = node.get("additionalProperties")
        out["additionalProperties"] = structural(extra, defs) if isinstance(extra, dict) else {"type": "string"}
        out.setdefault("maxProperties", MAX_PROPERTIES)
    return out


def _flatten(branches: list[dict], defs: dict) -> list[dict]:
    flat: list[dict] = []
    for branch in branches:
        if "$ref" in branch:
            branch = {**defs[branch["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in branch.items() if k != "$ref"}}
        if "anyOf" in branch:
            flat.extend(_flatten(branch["anyOf"], defs))
        else:
            flat.append(branch)
    return flat


def _one_shape(branches: list[dict], defs: dict) -> dict:
    """One structural node for the non-null shapes a field accepts."""
    if len(branches) == 1:
        return structural(branches[0], defs)
    types = {b.get("type") for b in branches}
    if types == {"integer", "number"}:  # a whole number or a fraction: one number, the widest bounds
        numbers = [structural(b, defs) for b in branches]
        return {"type": "number", "minimum": min(n.get("minimum", 0) for n in numbers),
                "maximum": max(n.get("maximum", 0) for n in numbers)}
    if types == {"string", "number"}:  # a quantity: written as a string
        return structural(next(b for b in branches if b.get("type") == "string"), defs)
    return {"x-kubernetes-preserve-unknown-fields": True}  # checked by the service's own validation


def spec_schema() -> dict[str, Any]:
    from ..models import WorkloadSpec

    schema = structural(WorkloadSpec.model_json_schema())
    schema["required"] = ["name", "project"]
    return schema


def status_schema() -> dict[str, Any]:
    from ..models import WorkloadStatus

    schema = structural(WorkloadStatus.model_json_schema())
    schema["properties"].pop("queue_position", None)  # changes with others' workloads: not written
    schema.pop("required", None)
    schema["properties"].update({
        "submitted_by": {"type": "string", "maxLength": 256, "description": "The user who submitted it."},
        "allocated_gpus": {"type": "number", "minimum": 0, "maximum": 1048576,
                           "description": "GPUs its running pods hold (fractions count as their share)."},
        "conditions": {"type": "array", "maxItems": 16, "description": "Standard conditions: Admitted, Running.",
                       "items": {"type": "object", "required": ["type", "status"], "properties": {
                           "type": {"type": "string", "maxLength": 64},
                           "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                           "reason": {"type": "string", "maxLength": 128},
                           "message": {"type": "string", "maxLength": MAX_STRING},
                           "lastTransitionTime": {"type": "string", "format": "date-time"}}},
                       "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    })
    return schema


def crd_manifest() -> dict[str, Any]:
    """The CustomResourceDefinition of ``RunaiWorkload`` (apiextensions.k8s.io/v1)."""
    columns = [
        {"name": "Project", "type": "string", "jsonPath": ".spec.project"},
        {"name": "Kind", "type": "string", "jsonPath": ".spec.kind"},
        {"name": "GPUs", "type": "number", "jsonPath": ".status.allocated_gpus",
         "description": "GPUs held now"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Submitter", "type": "string", "jsonPath": ".status.submitted_by", "priority": 1},
        {"name": "Reason", "type": "string", "jsonPath": ".status.pending_reason", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": SINGULAR,
                      "shortNames": SHORT_NAMES, "categories": ["runai"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A jupyter-runai workload: what was submitted (spec) and what it does (status). "
                                   "The scheduler writes both; docs/kubernetes.md.",
                    "properties": {
                        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec_schema(),
                        "status": status_schema(),
                    },
                    "required": ["spec"],
                }},
            }],
        },
    }


def main() -> None:
    import yaml

    sys.stdout.write("# Generated by `python -m jupyter_runai.clusters.kube_crd` from the models: do not edit.\n"
                     "# tests/test_kube_workloads.py checks that it matches. docs/kubernetes.md explains it.\n")
    sys.stdout.write(yaml.safe_dump(crd_manifest(), sort_keys=False, width=120))


if __name__ == "__main__":
    main()
