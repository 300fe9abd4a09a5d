"""Third-party workloads in the service: groups of pods that others made on the cluster (a Job's,
a Deployment's...) with our scheduler name and a queue label become workloads of the queue's
project, scheduled like any other (quotas, fair share, preemption), stored and shown in every
list with ``external`` naming their owner. The backend finds and groups them
(``clusters/kube_foreign.py``); this mixin of :class:`~jupyter_runai.service.RunaiService`
keeps the workloads in step with the groups, once per cycle:

* a new group whose queue is a project becomes a workload: ``training`` for one pod,
  ``distributed`` (no master, ``min_available`` the gang minimum) for several; its priority
  class is the pods' when it is one of ours, else ``inference`` for a Deployment (as
  KAI-Scheduler does) and the kind's default otherwise;
* a group whose queue is no project, or that cannot be scheduled, waits: its pods are told
  why (``external_unschedulable``), where ``kubectl describe pod`` shows it;
* a finished workload whose owner made new pods (a Job's retry) goes back to the queue, unless
  a rule stopped it (max duration, idle GPUs): then the new pods are told why they wait;
* a workload whose owner's pods are all gone is deleted.

They cannot be stopped, resumed or deleted through the service: :func:`refuse_manage`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from pydantic import ValidationError

from .errors import Conflict
from .lifecycle import fresh_pods
from .models import ExternalOwner, Workload, WorkloadPhase, WorkloadSpec, WorkloadStatus
from .models.priority import PriorityClass
from .snapshot import HOLDING
from .models import format_validation_error

__all__ = ["ExternalWorkloads", "external_name", "refuse_manage"]

log = logging.getLogger(__name__)

#: who a third-party workload's events say did something
BY_CLUSTER = "the cluster"


def external_name(owner_name: str, owner_uid: str, taken: bool = False) -> str:
    """A workload name (a DNS-1123 label) for an owner's name (a DNS subdomain, up to 253
    characters); ``taken``: the plain one is another workload's, so a piece of the uid is added."""
    name = re.sub(r"[^a-z0-9-]+", "-", owner_name.lower()).strip("-") or "external"
    suffix = hashlib.sha256(owner_uid.encode()).hexdigest()[:6] if taken else ""
    limit = 63 - (len(suffix) + 1 if suffix else 0)
    if len(name) > limit:
        digest = hashlib.sha256(owner_name.encode()).hexdigest()[:8]
        name = f"{name[:limit - 9].rstrip('-')}-{digest}"
    return f"{name}-{suffix}" if suffix else name


def refuse_manage(workload: Workload) -> None:
    """Raise the 409 that says a third-party workload is managed with kubectl on its owner."""
    owner = workload.external
    if owner is None:
        return
    raise Conflict(f"workload {workload.spec.name!r} was made outside jupyter-runai by {owner.describe()}: "
                   f"stop, resume or delete it with kubectl on that object (for example: kubectl delete "
                   f"{owner.kind.lower()} {owner.name} -n {owner.namespace})", field="name",
                   allowed="workloads submitted through jupyter-runai")


def _spec_of(group: Any, project: str, name: str) -> WorkloadSpec:
    classes = {c.value for c in PriorityClass}
    priority = group.priority_class if group.priority_class in classes else (
        "inference" if group.owner_kind == "Deployment" else None)
    spec: dict[str, Any] = {"name": name, "project": project, "resources": group.resources,
                            "image": group.image, "priority_class": priority, "preemptible": group.preemptible}
    if group.pods > 1:
        spec.update(kind="distributed", master=False, workers=group.pods, min_available=group.min_member)
    else:
        spec["kind"] = "training"
    return WorkloadSpec.model_validate({k: v for k, v in spec.items() if v is not None})


class ExternalWorkloads:
    """Mixin of the service: third-party workloads kept in step with the cluster's groups."""

    _external_version: tuple[int, set[str]] | None = None
    _external_no_pod: dict[str, str] = {}  # workload uid -> why it waits: its owner has no pod to place now

    def _external_holds(self) -> dict[str, str]:
        """The third-party workloads kept out of this cycle, with the reason: nothing of theirs holds
        devices and their owner has no pod waiting to be placed (a Job making a new pod after an
        eviction), so a placement would bind nothing."""
        held = {}
        for uid, reason in self._external_no_pod.items():
            workload = self.workloads.get(uid)
            if workload is not None and workload.status.phase in (WorkloadPhase.PENDING, WorkloadPhase.RUNNING) \
                    and not any(p.phase in HOLDING for p in workload.status.pods):
                held[uid] = reason
        return held

    def _sync_external(self) -> None:
        groups_of = getattr(self.cluster, "external_groups", None)
        if not callable(groups_of):
            return
        version, groups, settled = groups_of()
        projects = {p.name for p in self._queues()[0]}
        if (version, projects) == self._external_version:  # a new project may take a waiting group
            return
        self._external_version = (version, projects)
        by_owner = {w.external.uid: w for w in self.workloads.values() if w.external is not None}
        seen = set()
        no_pod = {}
        for group in groups:
            seen.add(group.owner_uid)
            workload = by_owner.get(group.owner_uid)
            if workload is not None and not group.waiting:
                no_pod[workload.uid] = (f"waiting for {workload.external.describe()} to make a pod: none of its "
                                        "pods waits to be placed")
            if workload is None:
                if group.pods:  # pods that all ended before we saw them (a restart) make no workload
                    self._external_new(group, projects)
            elif workload.status.phase == WorkloadPhase.STOPPED and group.waiting:
                # stopped by a rule (max duration, idle GPUs): its owner's new pods are not run again
                self.cluster.external_unschedulable(group.owner_uid, (
                    f"{workload.external.describe()} waits: its workload {workload.spec.project}/"
                    f"{workload.spec.name} was stopped ({workload.status.message or 'by a rule'}); delete the "
                    f"{workload.external.kind} and make it again to run it"))
            elif workload.status.phase.is_finished and group.waiting:
                step = self._step(workload)
                step.resume_request(f"{BY_CLUSTER} ({workload.external.describe()} made new pods)")
                self._apply(step)
        self._external_no_pod = no_pod
        for owner_uid, workload in by_owner.items():
            if settled and owner_uid not in seen and workload.status.phase != WorkloadPhase.DELETING:
                self._event("Warning", workload, f"its owner {workload.external.describe()} has no pods left "
                            "on the cluster")
                step = self._step(workload)
                step.delete_request()
                self._apply(step, by=BY_CLUSTER)

    def _external_new(self, group: Any, projects: set[str]) -> None:
        what = f"{group.owner_kind} {group.namespace}/{group.owner_name}"
        if group.problem:
            self.cluster.external_unschedulable(group.owner_uid, f"runai-scheduler cannot schedule {what}: "
                                                                 f"{group.problem}")
            return
        if group.queue is None or group.queue not in projects:
            given = (f"queue {group.queue!r} is not a project of runai-scheduler" if group.queue is not None
                     else "its pods carry no queue label (kai.scheduler/queue, runai/queue or runai/project)")
            names = sorted(projects)
            known = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
            self.cluster.external_unschedulable(group.owner_uid, f"{what} waits: {given}; the projects are "
                                                                 f"{known or 'none'}")
            return
        name = external_name(group.owner_name, group.owner_uid)
        if (group.queue, name) in self._names:
            name = external_name(group.owner_name, group.owner_uid, taken=True)
        try:
            spec = _spec_of(group, group.queue, name)
        except ValidationError as exc:
            self.cluster.external_unschedulable(group.owner_uid, f"runai-scheduler cannot schedule {what}: "
                                                                 f"{format_validation_error(exc)[0]['message']}")
            return
        owner = ExternalOwner(api_version=group.owner_api_version, kind=group.owner_kind, name=group.owner_name,
                              namespace=group.namespace, uid=group.owner_uid)
        workload = Workload(spec=spec, external=owner,
                            status=WorkloadStatus(submitted_at=self._now(), pods=fresh_pods(spec)))
        seq = self.store.add_workload(workload)
        self.workloads[workload.uid] = workload
        self._names[(spec.project, spec.name)] = workload.uid
        self.seq[workload.uid] = seq
        self._event("Submitted", workload, f"found on the cluster: {what}, {group.pods} pod"
                    f"{'s' if group.pods != 1 else ''} in queue {group.queue}")
        log.info("third-party workload %s/%s: %s", spec.project, spec.name, what)
