"""Who is asking, when the scheduler runs as a JupyterHub service (``runai serve``).

Every request is authenticated with the hub: a hub token in the ``Authorization`` header (what
each user's own Jupyter server sends when it forwards a request), or the hub's OAuth cookie of
this service (a browser that opened a workspace through the service's proxy). The hub answers
with the caller's name, groups and admin flag; they become the caller's
:class:`~jupyter_runai.identity.User` (``runai_identity``), so a client can never name itself.
A request without a hub identity that may access this service gets no user: the REST API
answers 403 and a page redirects to the hub's login. The server's own random token, which a
plain Jupyter server accepts as its owner, is never accepted here.

JupyterHub's own identity provider for Jupyter servers does the hub conversation (token and
cookie checks, the OAuth dance, XSRF); this one adds the identity the scheduler uses.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import Authorizer
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider

from ..identity import User

__all__ = ["HubIdentityProvider", "RunaiOnlyAuthorizer", "identity_of"]

#: the most groups taken from the hub for one caller (every size is bounded)
MAX_GROUPS = 1000


def identity_of(model: dict[str, Any]) -> User:
    """The scheduler's caller from the hub's model of a user (``GET /hub/api/user`` with the
    caller's token): its name, groups and admin flag, as the hub says."""
    groups = model.get("groups") or []
    return User(str(model["name"]), admin=bool(model.get("admin")),
                groups=frozenset(str(g) for g in groups[:MAX_GROUPS]))


class HubIdentityProvider(JupyterHubIdentityProvider):
    """Authenticates every request with the hub and attaches the hub's identity as ``runai_identity``."""

    async def get_user(self, handler):  # type: ignore[override]
        user = await super().get_user(handler)
        if user is None:
            return None
        model = getattr(user, "hub_user", None) or {}
        if model.get("kind", "user") != "user" or "name" not in model:
            # a hub service's token: services submit nothing of their own (no user to bill)
            self.log.warning("runai serve: refused %s %r: only users may call the scheduler",
                             model.get("kind"), model.get("name"))
            return None
        user.runai_identity = identity_of(model)
        return user


class RunaiOnlyAuthorizer(Authorizer):
    """Only the scheduler's own routes, and only for a caller the hub identified: whatever else a
    Jupyter server might offer (contents, kernels, ...) is refused in this process, which may run
    as root. What each caller may do inside the scheduler is the service's decision (RBAC)."""

    def is_authorized(self, handler, user, action, resource) -> bool:  # type: ignore[override]
        from .base import AUTH_RESOURCE

        return resource == AUTH_RESOURCE and getattr(user, "runai_identity", None) is not None
