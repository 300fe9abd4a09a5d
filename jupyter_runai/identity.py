"""Who is asking: the identity every service method receives.

A :class:`User` is built by the server from the Jupyter identity (``server/base.py``). An identity
provider that knows more than a name (JupyterHub's groups and admin flag) attaches a ``User`` to the
Jupyter identity as ``runai_identity``; without one, the caller is the Jupyter server's own user, who
on one machine administers everything. Roles on scopes (RBAC) are decided from this object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["User"]


@dataclass(frozen=True)
class User:
    """A caller: a name, the groups it belongs to, and whether it administers the whole cluster."""

    name: str
    admin: bool = False
    groups: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", frozenset(self.groups))

    def __repr__(self) -> str:
        return f"User({self.name!r})"
