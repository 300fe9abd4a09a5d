"""The service is the only way in (DESIGN.md, "Decisions already taken"): the REST handlers,
the event stream, the metrics and the proxy call service methods, never the store or the
cluster, so that checks every request needs (validation, who may do what) live in one place.
The server extension (``app.py``) builds the service from them and is the one exception."""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parents[1] / "jupyter_runai" / "server"
PRIVATE = {"store", "cluster", "workloads", "handles"}


def test_the_server_layer_reaches_state_only_through_the_service():
    offenders = []
    for path in sorted(SERVER.glob("*.py")):
        if path.name == "app.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in PRIVATE and isinstance(node.value, (ast.Name, ast.Attribute)):
                owner = node.value.attr if isinstance(node.value, ast.Attribute) else node.value.id
                if owner == "service":
                    offenders.append(f"{path.name}:{node.lineno}: service.{node.attr}")
    assert offenders == [], "handlers must call service methods:\n" + "\n".join(offenders)


PACKAGE = SERVER.parent


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, those under ``if TYPE_CHECKING`` too, relative
    ones resolved to ``jupyter_runai.<...>``."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = parts[:len(parts) - node.level] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            out += [(node.lineno, module)]
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return out


def test_the_service_parts_do_not_import_the_service():
    """service.py is built from its parts (admission, events, lifecycle, the views of allocation,
    the mixins): a part that imports it back makes a circle. Only the server layer imports it."""
    offenders = [f"{path.relative_to(PACKAGE)}:{line}" for path in sorted(PACKAGE.rglob("*.py"))
                 if path.parent != SERVER and path.name != "service.py"
                 for line, module in _imports(path) if module == "jupyter_runai.service"]
    assert offenders == [], "imports of the service from below it:\n" + "\n".join(offenders)


def test_the_lifecycle_is_pure():
    """The workload lifecycle reads no clock, store or cluster: the service passes the time in and
    applies the result."""
    path = PACKAGE / "lifecycle.py"
    allowed = ("__future__", "collections", "dataclasses", "datetime", "typing", "jupyter_runai.errors",
               "jupyter_runai.models", "jupyter_runai.snapshot", "jupyter_runai.scheduler",
               "jupyter_runai.clusters.base.PodState")
    modules = [module for _, module in _imports(path)]
    assert [m for m in modules if not m.startswith(allowed) and m != "jupyter_runai.clusters.base"] == []
    calls = [node.func.attr for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]
    assert not {"now", "utcnow", "today", "time", "monotonic"} & set(calls)


def test_no_part_keeps_its_state_in_another_objects_dict():
    """State lives with its owner as an attribute it sets up (the service's workload views: its own
    cache, asked through its methods), never slipped into another object's ``__dict__``."""
    offenders = [f"{path.relative_to(PACKAGE)}:{node.lineno}" for path in sorted(PACKAGE.rglob("*.py"))
                 for node in ast.walk(ast.parse(path.read_text(), str(path)))
                 if isinstance(node, ast.Attribute) and node.attr == "__dict__"
                 and not (isinstance(node.value, ast.Name) and node.value.id == "self")]
    assert offenders == [], "state kept in another object's __dict__:\n" + "\n".join(offenders)
