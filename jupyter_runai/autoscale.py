"""How many replicas an inference endpoint should run, from the requests it has in flight.

The proxy reports each endpoint's requests in flight (:meth:`Autoscaler.observe`);
each cycle the service asks :meth:`Autoscaler.replicas`. More load than
``target_concurrency`` per replica adds replicas at once (up to ``max_replicas``);
less load removes them only after it stayed low for ``delay`` seconds (down to
``min_replicas``), so a short lull does not stop replicas that will be needed again.
"""

from __future__ import annotations

import math

from .models import WorkloadSpec

DEFAULT_TARGET_CONCURRENCY = 4


class Autoscaler:
    def __init__(self, delay: float = 30.0) -> None:
        self.delay = delay
        self._load: dict[str, float] = {}
        self._low_since: dict[str, float] = {}

    def observe(self, uid: str, in_flight: float) -> None:
        """The endpoint ``uid`` has ``in_flight`` requests now."""
        self._load[uid] = in_flight

    def load(self, uid: str) -> float:
        return self._load.get(uid, 0.0)

    def replicas(self, uid: str, spec: WorkloadSpec, current: int, now: float) -> int:
        """The replicas ``uid`` should run, given ``current`` and the time ``now`` (seconds)."""
        low, high = spec.min_replicas or 1, spec.max_replicas or 1
        load = self.load(uid)
        want = math.ceil(load / (spec.target_concurrency or DEFAULT_TARGET_CONCURRENCY)) if load > 0 else low
        want = max(low, min(high, want))
        if want >= current:
            self._low_since.pop(uid, None)
            return want
        since = self._low_since.setdefault(uid, now)
        if now - since < self.delay:
            return current
        self._low_since.pop(uid, None)
        return want

    def forget(self, uid: str) -> None:
        self._load.pop(uid, None)
        self._low_since.pop(uid, None)
