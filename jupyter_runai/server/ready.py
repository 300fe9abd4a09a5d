"""``GET /runai/ready``: does this server schedule? For a Kubernetes readiness probe, so that
the scheduler's Service sends requests only to the replica that holds the Lease.

It answers without authentication (a kubelet's probe has no token) and says one thing only:
200 ``{"scheduling": true}`` where the scheduler runs, 503 ``{"scheduling": false}`` in a
standby, or in a server whose scheduler could not start. No reason, no holder, nothing else:
those stay behind the API's authentication (``GET /runai/api/v1/info`` answers 503 with them).
"""

from __future__ import annotations

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler

__all__ = ["ReadyHandler"]


class ReadyHandler(JupyterHandler):
    auth_resource = "runai"

    def check_xsrf_cookie(self) -> None:  # GET only; nothing to forge
        return None

    @allow_unauthenticated  # also where c.ServerApp.allow_unauthenticated_access is False
    async def get(self) -> None:
        scheduling = self.settings.get("runai_service") is not None
        self.set_status(200 if scheduling else 503)
        self.set_header("Cache-Control", "no-store")
        self.finish({"scheduling": scheduling})
