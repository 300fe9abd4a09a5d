"""An identity provider for tests: each token names a caller with its groups and admin flag, as
JupyterHub's would (the Jupyter identity carries a ``runai_identity``). Configured with
``ServerApp.identity_provider_class = "rbac_identity.TokenIdentityProvider"`` (tests/ on the path)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from jupyter_server.auth.identity import IdentityProvider
from jupyter_server.auth.identity import User as JupyterUser

from jupyter_runai.identity import User

#: token -> caller; "live-server-token" (the LiveServer's own) is the server's owner, an admin
CALLERS = {
    "live-server-token": User("owner", admin=True),
    "tok-ada": User("ada", admin=True),                              # a hub admin: admin by its flag
    "tok-dan": User("dan"),                                          # department-admin of vision (seeded)
    "tok-mel": User("mel"),                                          # ml-engineer on cats (seeded)
    "tok-rae": User("rae", groups=frozenset({"cat-people"})),        # researcher on cats, by its group
    "tok-vic": User("vic"),                                          # viewer on cats (granted at runtime)
    "tok-nob": User("nob"),                                          # no role at all
}


@dataclass
class RunaiJupyterUser(JupyterUser):
    runai_identity: User | None = None


class TokenIdentityProvider(IdentityProvider):
    """``Authorization: token <t>`` -> the caller ``CALLERS[t]``; anything else is not logged in."""

    def get_user(self, handler: Any) -> RunaiJupyterUser | None:
        match = self.auth_header_pat.match(handler.request.headers.get("Authorization", ""))
        caller = CALLERS.get(match.group(2)) if match else None
        if caller is None:
            return None
        handler._token_authenticated = True  # as jupyter_server marks a token login: no XSRF cookie needed
        return RunaiJupyterUser(username=caller.name, runai_identity=caller)

    def identity_model(self, user: Any) -> dict[str, Any]:
        model = asdict(user)
        model.pop("runai_identity", None)
        return model


class ServerTokenAs(IdentityProvider):
    """The server's own login (its token, then the cookie it sets), as the caller that
    ``CALLERS[$RUNAI_TEST_CALLER]`` names: a browser, which logs in with the server's token,
    then acts as that caller (the sidebar's browser tests of a non-admin). A request with another
    caller's token (``Authorization: token tok-ada``) is that caller's."""

    async def get_user(self, handler: Any) -> RunaiJupyterUser | None:
        # another caller's token (``tok-ada``: an admin granting a role to the browser's user meanwhile)
        match = self.auth_header_pat.match(handler.request.headers.get("Authorization", ""))
        if match and match.group(2) in CALLERS and match.group(2) != self.token:
            return TokenIdentityProvider.get_user(self, handler)  # type: ignore[arg-type]
        user = await self._get_user(handler)
        if user is None:
            return None
        caller = CALLERS[os.environ["RUNAI_TEST_CALLER"]]
        return RunaiJupyterUser(username=caller.name, name=caller.name, runai_identity=caller)

    identity_model = TokenIdentityProvider.identity_model
