"""`runai submit --help` (and `runai workspace submit --help`, ...) ends with the policy in force for the
project and kind the command line names: each field's default and bounds, and whose they are.

Only asked when help is: the project is -p, else $RUNAI_PROJECT or the saved one, else the server's
first project; the kind is --kind (or the group's, `runai workspace submit`), else training. The server
is asked with a short timeout; without an answer the help says how to see the policy later and does not
fail.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["TIMEOUT", "policy_note", "submit_help_target"]

#: connect and read seconds for the one request help makes: help must come at once, server or not
TIMEOUT = (1.0, 2.0)

#: the words before `submit` -> the kind they fix (None: --kind says, else training)
_PATHS: dict[tuple[str, ...], str | None] = {
    (): None, ("workspace",): "workspace", ("training",): "training", ("inference",): "inference",
    ("training", "standard"): "training", ("training", "pytorch"): "distributed",
}
_GLOBAL_VALUES = ("--url", "--token", "-p", "--project", "-o", "--output")


def _value(options: Sequence[str], *names: str) -> str | None:
    """The last value given to any of ``names`` (``-p x``, ``--project=x``, ``-px``)."""
    found = None
    for index, word in enumerate(options):
        for name in names:
            if word == name and index + 1 < len(options):
                found = options[index + 1]
            elif name.startswith("--") and word.startswith(name + "="):
                found = word[len(name) + 1:]
            elif not name.startswith("--") and word.startswith(name) and len(word) > len(name):
                found = word[len(name):]
    return found


def submit_help_target(options: Sequence[str]) -> dict[str, Any] | None:
    """When ``options`` (the words before ``--``) ask for a submit command's help: its kind, project,
    url and token (None where the command line does not say); else None."""
    if "-h" not in options and "--help" not in options:
        return None
    path: list[str] = []
    skip = False
    for word in options:
        if skip:
            skip = False
        elif word in _GLOBAL_VALUES:
            skip = True
        elif word == "submit":
            break
        elif not word.startswith("-"):
            path.append(word)
    else:
        return None
    if tuple(path) not in _PATHS:
        return None
    kind = _PATHS[tuple(path)]
    if kind is None:
        kind = "workspace" if "--interactive" in options else (_value(options, "--kind") or "training")
    return {"kind": kind, "project": _value(options, "-p", "--project"), "url": _value(options, "--url"),
            "token": _value(options, "--token")}


def policy_note(target: dict[str, Any]) -> str:
    """The lines the help ends with: the effective policy of the target's project and kind, or how to
    see it when the server does not answer (never raises)."""
    from .client import RunaiClient, default_project

    kind = target["kind"]
    project = target.get("project") or default_project()
    try:
        with RunaiClient(target.get("url"), target.get("token"), project=project, timeout=TIMEOUT) as client:
            document = client.effective_policy(kind, project)
    except Exception as error:  # noqa: BLE001 - help is shown whatever went wrong
        reason = " ".join(str(getattr(error, "message", None) or error).split()).split(". ")[0].rstrip(".")
        if len(reason) > 160:
            reason = reason[:157] + "..."
        return (f"\nThe policy in force (defaults, min/max, allowed values) was not read ({reason}).\n"
                f"See it with: runai policy effective {kind}" + (f" -p {project}" if project else "") + "\n")
    return effective_note(document)


def effective_note(document: dict[str, Any]) -> str:
    """The effective policy document (`GET policies/effective`) as help lines, one per field."""
    from .cli_policy import _rule_text, _text
    from .submit_args import FIELD_OPTIONS

    kind, project = document.get("kind"), document.get("project")
    defaults, rules = document.get("defaults") or {}, document.get("rules") or {}
    head = f"\nPolicy in force for {kind} workloads in project {project}"
    if not defaults and not rules:
        return head + ": none (the built-in defaults apply).\n"
    lines = [head + " (runai policy effective " + f"{kind} -p {project}):"]
    for field in dict.fromkeys([*defaults, *rules]):
        rule = rules.get(field) or {}
        parts = [f"default {_text(defaults[field])}"] if field in defaults else []
        if _rule_text(rule):
            parts.append(_rule_text(rule))
        sources = [(document.get("default_from") or {}).get(field), *rule.get("from", [])]
        whose = ", ".join(dict.fromkeys(s for s in sources if s))
        option = FIELD_OPTIONS.get(field)
        name = f"{field} ({option})" if option else field
        lines.append(f"  {name}: {', '.join(parts)}" + (f" ({whose})" if whose else ""))
    return "\n".join(lines) + "\n"
