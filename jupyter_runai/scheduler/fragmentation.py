"""GPU fragmentation: how much of a node's free GPU the expected workload could not use.

Pure functions, no I/O, no clock, no randomness. Units: GPU in *milli-devices* (1000 is
one whole device; the engine converts its float fractions with ``round(f * 1000)``),
CPU in millicores.

The measure follows Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing
Workloads with Fragmentation Gradient Descent" (USENIX ATC 2023). Given a *workload
distribution* (the typical pod shapes and how often each arrives), the fragmentation
of a node is the expected amount of its free GPU that an arriving pod could not use::

    F(node) = sum over shapes s of  weight(s) * unusable(node, s)

    unusable(node, s) = free GPU on devices with less than s.gpu_milli free,
                            when the node can host s (model, enough devices, CPU);
                        all free GPU of the node, otherwise (and for CPU-only shapes,
                            which use no GPU at all).

Placing a pod on a node changes F of that node only; the FGD rule takes the node and
devices that increase F the least. :func:`placement_key` scores one candidate
(node, devices) with that rule and two of ours (fractions keep whole devices whole
when whole-device pods are a tenth of the workload or more; CPU-only pods go where the
GPUs are already taken), and :func:`best_on_node` returns a node's best candidate. Both take only what a snapshot
holds: the node's per-device free shares, its free CPU, its GPU model, and the pod's
request, plus a :class:`WorkloadDistribution` that the caller keeps (from the trace,
or from the pods pending and recently submitted).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MILLI = 1000
#: the share of the workload distribution (by weight) that whole-device shapes must reach
#: for a fraction to avoid opening a fully free device: below it, keeping devices whole
#: for the few whole-GPU pods crowds the fractions and costs more than it saves (on the
#: FGD protocol, gpushare80 has 7.7 % whole-device shapes: 10.99 % unallocated with the rule,
#: 10.84 % without; gpushare60, 22 %, is better with it; benchmarks/README.md)
KEEP_WHOLE_MIN_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class Shape:
    """A pod's request as placement sees it.

    ``gpus`` devices with ``gpu_milli`` each (a fraction is ``gpus=1, gpu_milli<1000``;
    whole devices have ``gpu_milli=1000``; CPU-only pods ``gpus=0, gpu_milli=0``),
    ``cpu`` millicores, and the GPU models it accepts (``None``: any).
    """

    cpu: int = 0
    gpu_milli: int = 0
    gpus: int = 0
    models: frozenset[str] | None = None

    @property
    def total_milli(self) -> int:
        return self.gpu_milli * self.gpus

    def accepts(self, model: str) -> bool:
        return self.models is None or model in self.models


class WorkloadDistribution:
    """The typical pod shapes and their weights (normalized to sum 1).

    ``fragmentation`` is memoized on the node state that matters (model, which CPU
    thresholds the free CPU passes, the sorted free shares): nodes in the same state
    are computed once.
    """

    def __init__(self, weights: Mapping[Shape, float]):
        total = float(sum(weights.values()))
        if total <= 0:
            raise ValueError("a workload distribution needs at least one shape with a positive weight")
        self.weights: dict[Shape, float] = {s: w / total for s, w in weights.items() if w > 0}
        self._cpu_levels = sorted({s.cpu for s in self.weights if s.gpus > 0})
        #: the weight of shapes that ask whole devices
        self.whole_share = sum(w for s, w in self.weights.items() if s.gpus > 0 and s.gpu_milli >= MILLI)
        self._by_model: dict[str, tuple[float, tuple]] = {}
        self._memo: dict[tuple, float] = {}

    @classmethod
    def from_requests(cls, requests: Iterable[Shape], coverage: float = 0.95) -> WorkloadDistribution:
        """The most frequent shapes that together make ``coverage`` of the requests.

        As in the FGD paper: count shapes, take them in decreasing count (ties: larger
        shape first) until their cumulative share reaches ``coverage``, renormalize.
        """
        return cls.from_counts(Counter(requests), coverage)

    @classmethod
    def from_counts(cls, counts: Mapping[Shape, int], coverage: float = 0.95) -> WorkloadDistribution:
        """:meth:`from_requests` from the count of each shape."""
        if not counts:
            raise ValueError("no requests to build a workload distribution from")
        total = sum(counts.values())
        ordered = sorted(counts.items(), key=lambda kv: (kv[1], _shape_order(kv[0])), reverse=True)
        chosen: dict[Shape, float] = {}
        cum = 0
        for shape, n in ordered:
            if cum >= coverage * total:
                break
            chosen[shape] = n
            cum += n
        return cls(chosen)

    def cpu_rank(self, cpu_free: float) -> int:
        """Which of the shapes' CPU thresholds ``cpu_free`` passes (what :meth:`fragmentation`
        depends on, besides the model and the free shares)."""
        return bisect_right(self._cpu_levels, cpu_free)

    # -- the measure ---------------------------------------------------------------
    def _model_table(self, model: str) -> tuple[float, tuple]:
        table = self._by_model.get(model)
        if table is None:
            const = 0.0  # shapes for which every free milli of this node is a fragment
            by_milli: dict[int, list[tuple[int, int, float]]] = {}
            for s, w in self.weights.items():
                if s.gpus == 0 or not s.accepts(model):
                    const += w
                else:
                    by_milli.setdefault(s.gpu_milli, []).append((s.cpu, s.gpus, w))
            groups = tuple((m, tuple(v)) for m, v in sorted(by_milli.items()))
            table = self._by_model[model] = (const, groups)
        return table

    def fragmentation(self, free: Sequence[int], cpu_free: int, model: str) -> float:
        """F(node): expected free milli-GPU of the node the distribution cannot use."""
        total = sum(free)
        if total <= 0:
            return 0.0
        rank = bisect_right(self._cpu_levels, cpu_free)
        key = (model, rank, tuple(sorted(free)))
        value = self._memo.get(key)
        if value is not None:
            return value
        const, groups = self._model_table(model)
        value = const * total
        for milli, shapes in groups:
            fits = 0
            frag = 0
            for x in free:
                if x >= milli:
                    fits += 1
                else:
                    frag += x
            for cpu, gpus, w in shapes:
                if fits >= gpus and cpu <= cpu_free:
                    value += w * frag
                else:
                    value += w * total
        if len(self._memo) > 2_000_000:  # bound the memo on very long runs
            self._memo.clear()
        self._memo[key] = value
        return value


def _shape_order(s: Shape) -> tuple:
    return (s.cpu, s.gpu_milli, s.gpus, tuple(sorted(s.models)) if s.models else ())


# -- candidates on one node -------------------------------------------------------------
def candidate_devices(free: Sequence[int], shape: Shape) -> list[tuple[int, ...]]:
    """Device choices for ``shape`` on a node with per-device ``free`` shares.

    One choice per distinct resulting state: a fraction goes on one device with enough
    free share (the first device of each distinct free value); the same fraction on
    several devices takes the tightest-fitting ones; whole devices take the fully free
    devices in index order; CPU-only pods take no device (``()``).
    """
    if shape.gpus == 0:
        return [()]
    if shape.gpu_milli < MILLI and shape.gpus > 1:  # the same fraction on several devices:
        fit = sorted((x, i) for i, x in enumerate(free) if x >= shape.gpu_milli)  # the tightest ones
        return [tuple(sorted(i for _, i in fit[: shape.gpus]))] if len(fit) >= shape.gpus else []
    if shape.gpu_milli < MILLI:
        seen: set[int] = set()
        out = []
        for i, x in enumerate(free):
            if x >= shape.gpu_milli and x not in seen:
                seen.add(x)
                out.append((i,))
        return out
    idle = [i for i, x in enumerate(free) if x >= MILLI]
    if len(idle) < shape.gpus:
        return []
    return [tuple(idle[: shape.gpus])]


def after(free: Sequence[int], shape: Shape, devices: Sequence[int]) -> list[int]:
    out = list(free)
    for d in devices:
        out[d] -= shape.gpu_milli
    return out


def fgd_score(delta: float, buckets: int = 100) -> int:
    """The FGD paper's node score for a fragmentation change ``delta`` (milli-GPU):
    ``int(buckets * sigmoid(-delta / 1000))``, higher is better. The rounding into
    ``buckets`` groups choices whose fragmentation differs by a few percent of a GPU;
    inside a group, the node listed first wins, which packs the cluster in node order."""
    return int(buckets / (1.0 + math.exp(delta / 1000.0)))


def placement_key(free: Sequence[int], cpu_free: int, model: str, shape: Shape,
                  devices: Sequence[int], dist: WorkloadDistribution,
                  frag_before: float | None = None) -> tuple:
    """Score of placing ``shape`` on ``devices`` of a node; **lower is better**.

    * GPU pods: first, a fraction does not open a fully free device while whole-device
      shapes make at least :data:`KEEP_WHOLE_MIN_SHARE` of the workload (keep whole
      devices whole for them); then the FGD score of the fragmentation change
      (:func:`fgd_score`).
    * CPU-only pods: first, the node with the least free GPU (a node whose devices are
      all taken loses nothing by hosting them; CPU spent next to free devices strands
      them); then the FGD score.

    Callers break the remaining ties by node order (the first listed node wins).
    """
    if frag_before is None:
        frag_before = dist.fragmentation(free, cpu_free, model)
    new_free = after(free, shape, devices)
    delta = dist.fragmentation(new_free, cpu_free - shape.cpu, model) - frag_before
    score = fgd_score(delta)
    if shape.gpus == 0:
        return (sum(free), -score)
    opens = 1 if (shape.gpu_milli < MILLI and dist.whole_share >= KEEP_WHOLE_MIN_SHARE
                  and any(free[d] >= MILLI for d in devices)) else 0
    return (opens, -score)


def best_on_node(free: Sequence[int], cpu_free: int, model: str, shape: Shape,
                 dist: WorkloadDistribution) -> tuple[tuple, tuple[int, ...]] | None:
    """The best (key, devices) for ``shape`` on this node, or None when the GPU part does
    not fit (model, devices, CPU). Memory and other filters are the caller's."""
    if cpu_free < shape.cpu:
        return None
    if shape.gpus and not shape.accepts(model):
        return None
    best = None
    frag_before = None
    for devices in candidate_devices(free, shape):
        if frag_before is None:
            frag_before = dist.fragmentation(free, cpu_free, model)
        key = placement_key(free, cpu_free, model, shape, devices, dist, frag_before)
        if best is None or key < best[0]:
            best = (key, devices)
    return best
