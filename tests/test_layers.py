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
