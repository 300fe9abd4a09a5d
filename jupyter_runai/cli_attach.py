"""``runai submit --attach`` (Run:ai v1's flag): once the workload runs, print its log as it comes
until its pod ends, then its final phase. There is no terminal to attach to on the local cluster
(a pod's standard input is not connected), so attaching means following the output of the first
pod (the master of a distributed job). Ctrl-C stops following, says how to follow again, and
leaves the workload running.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from .client import RunaiClient

# after the followed pod ended: how long the workload may take to say it finished (a workspace's or
# an endpoint's pod is started again instead; then the phase it has is shown)
SETTLE_SECONDS = 10.0


def attach(client: RunaiClient, name: str, project: str, out: Console | None) -> dict[str, Any]:
    """Follow the log of ``name``'s first pod to standard output until the pod ends; return the
    workload as it is then. ``out``: where to print its final phase (``None``: nothing but the log)."""
    from .client import FINISHED_PHASES

    try:
        for chunk in client.logs(name, project, follow=True):
            sys.stdout.write(chunk)
            sys.stdout.flush()
    except KeyboardInterrupt:
        sys.stdout.flush()
        print(f"\nDetached from {name}: it goes on running. Follow it again with "
              f"`runai logs {name} -p {project} -f`.", file=sys.stderr)
        raise
    try:
        workload = client.wait(name, project, timeout=SETTLE_SECONDS,
                               until=lambda w: w.get("status", {}).get("phase") in FINISHED_PHASES)
    except TimeoutError:
        workload = client.get(name, project)
    if out is not None:
        from rich.text import Text

        from .cli_render import phase_text

        status = workload.get("status", {})
        out.print(Text(f"{name}: "), phase_text(status.get("phase")), sep="")
        if status.get("message"):
            out.print(Text(f"  {status['message']}"))
    return workload
