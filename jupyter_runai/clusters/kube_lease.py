"""One active scheduler per cluster: leader election with a ``coordination.k8s.io/v1`` Lease.

Every replica runs a :class:`LeaseElector` on the same Lease. One holds it and renews it
every ``retry_seconds``; the others are standbys that read it as often. A standby takes
the Lease over when the holder has not renewed it for ``lease_seconds``, measured on the
standby's own clock from when it last saw the Lease change (so clock skew between nodes
does not matter, as in client-go). Every write carries the ``resourceVersion`` read, so two
standbys racing for an expired Lease cannot both win: the API server answers the loser 409.

A holder that cannot renew for ``renew_deadline`` seconds (shorter than ``lease_seconds``)
stops leading at once, before any standby may take over: :attr:`leading` is what the
backend's writes check (fencing), and ``on_stopped`` tells the server, which exits so that
its Deployment restarts it as a standby. :meth:`release` on a clean shutdown hands the Lease
over without waiting.

Needs a ``CoordinationV1Api`` (given; this module imports nothing from ``kubernetes``); plain
JSON through ``_preload_content=False``.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
from typing import Any, Callable

__all__ = ["LeaseElector"]

log = logging.getLogger(__name__)


def _micro_time() -> str:
    """A Lease's MicroTime: RFC 3339 with microseconds, UTC."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    """Acquire, renew and hand over one Lease from a daemon thread."""

    def __init__(self, coordination: Any, namespace: str, name: str, identity: str, *,
                 lease_seconds: float = 15.0, renew_deadline: float = 10.0, retry_seconds: float = 2.0,
                 request_timeout: float = 5.0,
                 on_started: Callable[[], None] | None = None,
                 on_stopped: Callable[[], None] | None = None) -> None:
        if not 0 < retry_seconds < renew_deadline < lease_seconds:
            raise ValueError("leader election needs 0 < retry_seconds < renew_deadline < lease_seconds, got "
                             f"{retry_seconds:g}, {renew_deadline:g}, {lease_seconds:g}")
        self.api = coordination
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_deadline = renew_deadline
        self.retry_seconds = retry_seconds
        self.request_timeout = request_timeout
        self.on_started = on_started or (lambda: None)
        self.on_stopped = on_stopped or (lambda: None)
        self.holder: str | None = None       # who holds the Lease, as last read
        self.transitions = 0                  # leaseTransitions, as last read
        self._renewed = 0.0                   # monotonic time of our last successful write
        self._observed: tuple[str | None, str | None] = (None, None)  # (holder, renewTime) last seen
        self._observed_at = 0.0               # monotonic time it last changed
        self._leading = False
        self._lock = threading.Lock()
        self._became = threading.Event()
        self.tried = threading.Event()  # set once the first attempt is done (led or not)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-lease", daemon=True)

    # ------------------------------------------------------------ for the backend and the server

    @property
    def leading(self) -> bool:
        """This replica holds the Lease and renewed it within ``renew_deadline``: it may write."""
        with self._lock:
            return self._leading and time.monotonic() - self._renewed < self.renew_deadline

    def start(self) -> "LeaseElector":
        self._thread.start()
        return self

    def wait_leading(self, timeout: float | None = None) -> bool:
        return self._became.wait(timeout)

    def stop(self) -> None:
        """Stop renewing, without handing over (a crash, as standbys see it)."""
        self._stop.set()
        self._thread.join(self.request_timeout + self.retry_seconds)

    def release(self) -> None:
        """Stop, and hand the Lease over at once if this replica holds it (a clean shutdown)."""
        self.stop()
        with self._lock:
            was, self._leading = self._leading, False
        if not was:
            return
        try:
            lease = self._read()
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                spec = lease["spec"]
                spec.update(holderIdentity=None, leaseDurationSeconds=1, renewTime=_micro_time())
                self._replace(lease)
        except Exception as exc:  # the standby takes over when the Lease expires instead
            log.warning("could not release the Lease %s/%s: %s", self.namespace, self.name, exc)

    # ------------------------------------------------------------ the API

    def _read(self) -> dict | None:
        try:
            resp = self.api.read_namespaced_lease(self.name, self.namespace, _preload_content=False,
                                                  _request_timeout=self.request_timeout)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise
        return json.loads(resp.data)

    def _replace(self, lease: dict) -> dict:
        resp = self.api.replace_namespaced_lease(self.name, self.namespace, lease, _preload_content=False,
                                                 _request_timeout=self.request_timeout)
        return json.loads(resp.data)

    def _create(self) -> dict:
        now = _micro_time()
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": int(round(self.lease_seconds)),
                         "acquireTime": now, "renewTime": now, "leaseTransitions": 0}}
        resp = self.api.create_namespaced_lease(self.namespace, body, _preload_content=False,
                                                _request_timeout=self.request_timeout)
        return json.loads(resp.data)

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._try()
            except Exception as exc:  # the API server away, a timeout, a 409 lost race: try again
                if getattr(exc, "status", None) != 409:
                    log.warning("Lease %s/%s: %s", self.namespace, self.name, exc)
            self._check_deadline()
            self.tried.set()
            self._stop.wait(self.retry_seconds)

    def _try(self) -> None:
        lease = self._read()
        now = time.monotonic()
        if lease is None:
            self._won(self._create(), now)
            return
        spec = lease.setdefault("spec", {})
        holder = spec.get("holderIdentity") or None
        self.holder, self.transitions = holder, int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            spec["renewTime"] = _micro_time()
            spec["leaseDurationSeconds"] = int(round(self.lease_seconds))
            self._won(self._replace(lease), now)
            return
        observed = (holder, spec.get("renewTime"))
        if observed != self._observed:
            self._observed, self._observed_at = observed, now
        duration = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
        if holder is not None and now - self._observed_at < duration:
            self._lose()  # someone else holds it (if we thought we did, we were taken over)
            return
        # free, or its holder has not renewed it for its duration: take it over
        stamp = _micro_time()
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=int(round(self.lease_seconds)),
                    acquireTime=stamp, renewTime=stamp, leaseTransitions=self.transitions + 1)
        self._won(self._replace(lease), now)
        log.info("took over the Lease %s/%s from %s", self.namespace, self.name, holder or "nobody")

    def _won(self, lease: dict, at: float) -> None:
        self.holder = self.identity
        self.transitions = int((lease.get("spec") or {}).get("leaseTransitions") or 0)
        with self._lock:
            self._renewed = at
            started = not self._leading
            self._leading = True
        if started:
            log.info("leading: this replica (%s) holds the Lease %s/%s", self.identity, self.namespace, self.name)
            self._became.set()
            self.on_started()

    def _check_deadline(self) -> None:
        with self._lock:
            late = self._leading and time.monotonic() - self._renewed >= self.renew_deadline
        if late:
            log.error("could not renew the Lease %s/%s for %gs: no longer leading", self.namespace, self.name,
                      self.renew_deadline)
            self._lose()

    def _lose(self) -> None:
        with self._lock:
            was, self._leading = self._leading, False
        if was:
            self._stop.set()  # a replica that lost the Lease does not come back: it restarts as a standby
            self.on_stopped()
