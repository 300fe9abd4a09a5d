"""Names: DNS-1123 labels, node names, Kubernetes label keys and values, variables.

Each ``Annotated`` type here checks its value and says, on failure, what the
rule is. The same checks are available as plain functions (``is_dns_label``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema

from .validation import invalid

__all__ = [
    "DNS_LABEL_MAX",
    "PROJECT_NAME_MAX",
    "DnsLabel",
    "EnvName",
    "LabelKey",
    "LabelValue",
    "NodeName",
    "ProjectName",
    "is_dns_label",
    "namespace_for",
    "pod_name",
]

DNS_LABEL_MAX = 63
# Every project is the namespace ``runai-<project>`` on Kubernetes, itself a
# DNS-1123 label of at most 63 characters.
NAMESPACE_PREFIX = "runai-"
PROJECT_NAME_MAX = DNS_LABEL_MAX - len(NAMESPACE_PREFIX)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_NODE_NAME = re.compile(r"^[A-Za-z0-9]([-._A-Za-z0-9]*[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-._A-Za-z0-9]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[-._A-Za-z][-._A-Za-z0-9]*$")

_DNS_RULE = "lowercase letters, digits and '-', starting and ending with a letter or digit"


def is_dns_label(name: str, max_length: int = DNS_LABEL_MAX) -> bool:
    """True when ``name`` is a DNS-1123 label of at most ``max_length`` characters."""
    return isinstance(name, str) and 0 < len(name) <= max_length and bool(_DNS_LABEL.match(name))


def pod_name(workload: str, index: int) -> str:
    """The name of pod ``index`` of a workload: ``<workload>-<index>``."""
    return f"{workload}-{index}"


def namespace_for(project: str) -> str:
    """The Kubernetes namespace of a project: ``runai-<project>``."""
    return f"{NAMESPACE_PREFIX}{project}"


def _require_str(value: Any, info: ValidationInfo, rule: str, prefix: str = "must be ") -> str:
    if not isinstance(value, str):
        raise invalid(info.field_name, f"{prefix}{rule}", allowed=rule, got=value)
    return value


def _dns_label_checker(max_length: int, note: str = ""):
    rule = f"a DNS-1123 label: {_DNS_RULE}, at most {max_length} characters{note}"

    def check(value: Any, info: ValidationInfo) -> str:
        _require_str(value, info, rule)
        if not is_dns_label(value, max_length):
            raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)
        return value

    return check


def _check_node_name(value: Any, info: ValidationInfo) -> str:
    rule = "letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 253 characters"
    _require_str(value, info, rule, "must be a host name: ")
    if not (0 < len(value) <= 253 and _NODE_NAME.match(value)):
        raise invalid(info.field_name, f"must be a host name: {rule}", allowed=rule, got=value)
    return value


def _check_label_key(value: Any, info: ValidationInfo) -> str:
    rule = (
        "a Kubernetes label key: an optional DNS subdomain prefix and '/', then a name of at most 63 "
        "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    )
    _require_str(value, info, rule)
    prefix, _, name = value.rpartition("/")
    ok = 0 < len(name) <= 63 and bool(_LABEL_NAME.match(name))
    if prefix or "/" in value:
        ok = ok and 0 < len(prefix) <= 253 and bool(_DNS_SUBDOMAIN.match(prefix))
    if not ok:
        raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)
    return value


def _check_label_value(value: Any, info: ValidationInfo) -> str:
    rule = (
        "a Kubernetes label value: empty, or at most 63 letters, digits, '-', '_' and '.', "
        "starting and ending with a letter or digit"
    )
    _require_str(value, info, rule)
    if value and not (len(value) <= 63 and _LABEL_NAME.match(value)):
        raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)
    return value


def _check_env_name(value: Any, info: ValidationInfo) -> str:
    rule = "an environment variable name: letters, digits, '_', '-' and '.', not starting with a digit"
    _require_str(value, info, rule, "keys must be ")
    if not _ENV_NAME.match(value):
        raise invalid(info.field_name, f"keys must be {rule}", allowed=rule, got=value)
    return value


DnsLabel = Annotated[
    str,
    BeforeValidator(_dns_label_checker(DNS_LABEL_MAX)),
    WithJsonSchema({"type": "string", "maxLength": DNS_LABEL_MAX, "pattern": _DNS_LABEL.pattern}),
]
"""A DNS-1123 label: ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63 characters."""

ProjectName = Annotated[
    str,
    BeforeValidator(
        _dns_label_checker(PROJECT_NAME_MAX, f" (the namespace '{NAMESPACE_PREFIX}<project>' must fit in 63)")
    ),
    WithJsonSchema({"type": "string", "maxLength": PROJECT_NAME_MAX, "pattern": _DNS_LABEL.pattern}),
]
"""A project name: a DNS-1123 label of at most 57 characters, so ``runai-<project>`` fits."""

NodeName = Annotated[
    str,
    BeforeValidator(_check_node_name),
    WithJsonSchema({"type": "string", "maxLength": 253, "pattern": _NODE_NAME.pattern}),
]
"""A node's name: a host name (case is kept, as machines name themselves)."""

LabelKey = Annotated[str, BeforeValidator(_check_label_key)]
LabelValue = Annotated[str, BeforeValidator(_check_label_value)]
EnvName = Annotated[str, BeforeValidator(_check_env_name), WithJsonSchema({"type": "string", "pattern": _ENV_NAME.pattern})]


def keys_by_pattern(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of a mapping whose key type has a pattern: pydantic writes it as
    ``patternProperties``, which still lets any other key through; ``propertyNames`` says it."""
    patterns = schema.pop("patternProperties", None) or {}
    if len(patterns) == 1:
        ((pattern, values),) = patterns.items()
        schema["propertyNames"] = {"pattern": pattern}
        schema["additionalProperties"] = values
    elif patterns:
        schema["patternProperties"] = patterns
