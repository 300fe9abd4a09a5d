"""Callers of the hub-scale benchmark, as a hub would name them: ``token bench-admin`` is an
admin; ``token bench-user-N`` is user ``user-N`` of group ``team-<N mod teams>``, a researcher
on project ``team-<k>`` by its group (role bindings in the benchmark's configuration).
Configured with ``ServerApp.identity_provider_class = "hub_identity.BenchIdentityProvider"``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jupyter_server.auth.identity import IdentityProvider
from jupyter_server.auth.identity import User as JupyterUser

from jupyter_runai.identity import User

ADMIN_TOKEN = "bench-admin"
TEAMS = 10


def team_of(user: int) -> str:
    return f"team-{user % TEAMS}"


@dataclass
class BenchJupyterUser(JupyterUser):
    runai_identity: User | None = None


class BenchIdentityProvider(IdentityProvider):
    def get_user(self, handler: Any) -> BenchJupyterUser | None:
        match = self.auth_header_pat.match(handler.request.headers.get("Authorization", ""))
        token = match.group(2) if match else ""
        if token == ADMIN_TOKEN:
            caller = User("bench-admin", admin=True)
        elif token.startswith("bench-user-") and token[11:].isdigit():
            number = int(token[11:])
            caller = User(f"user-{number}", groups=frozenset({team_of(number)}))
        else:
            return None
        handler._token_authenticated = True  # a token login: no XSRF cookie needed
        return BenchJupyterUser(username=caller.name, runai_identity=caller)

    def identity_model(self, user: Any) -> dict[str, Any]:
        model = asdict(user)
        model.pop("runai_identity", None)
        return model
