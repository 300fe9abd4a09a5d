"""The cluster as the source of truth (Kubernetes): the service's side of workloads as custom
resources (``clusters/kube_workloads.py``). A mixin of :class:`~jupyter_runai.service.RunaiService`.

Only a backend whose ``workload_mirror`` is set (the Kubernetes one) does any of this; on the
local cluster every method returns at once. With a mirror:

* every workload has an object on the cluster: created at admission (queued before the answer,
  and before any of its pods), its status written after every change, deleted with it;
* at start (a restart, or a standby that becomes leader) the store is reconciled with the
  objects: an object the store lacks (a lost state volume, a replica without it) is restored
  with its spec, submitter and status, its pods on the cluster adopted again; a stored workload
  whose object the cluster was seen to hold and holds no more was deleted there while no
  scheduler ran, and is deleted as a REST delete would; one whose object was never written
  gets it now;
* while it runs, an object deleted by someone else (``kubectl delete``) deletes its workload
  (stopping its pods first), with a warning event saying so;
* an object created by someone else (``kubectl apply``, without our label) goes through the same
  admission as a REST submit, as the configured ``c.KubernetesCluster.object_submitter`` (the
  service cannot know the Kubernetes caller): admitted, it is labelled as ours and runs; refused
  (no submitter configured, a namespace that is no project's, RBAC, policies, quotas, a bad
  spec), the reason is written into its ``Admitted`` condition. It is never silently ignored.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from typing import Any

from pydantic import ValidationError

from .clusters.kube_workloads import workload_from_object, workload_uid_of
from .errors import Conflict, Forbidden, Invalid, ServiceError, Unavailable
from .identity import User
from .models import PodPhase, Workload, WorkloadPhase, WorkloadSpec
from .models.names import NAMESPACE_PREFIX
from .models.validation import format_validation_error

__all__ = ["ClusterTruth"]

log = logging.getLogger(__name__)

DELETED_THERE = "its RunaiWorkload object was deleted from the cluster (kubectl delete?)"


class ClusterTruth:
    """Reconcile the store with the workloads' custom resources (see the module's text)."""

    def _init_cluster_truth(self) -> None:
        self._restored: list[str] = []  # uids restored from the cluster at start: told once loaded
        self._gone_there: list[str] = []  # uids whose object went while no scheduler ran
        self._submitting: set[tuple[str, str]] = set()  # (project, name) whose object is being created
        self._adopting: list[tuple[Future, Workload, User, dict]] = []  # others' objects admitted, being labelled

    @property
    def _mirror(self) -> Any:
        return getattr(self.cluster, "workload_mirror", None)

    # ------------------------------------------------------------ at start

    def _restore_from_cluster(self) -> None:
        """Before the store is loaded: add to it the workloads whose objects it lacks."""
        mirror = self._mirror
        if mirror is None:
            return
        # third-party workloads (external_workloads.py) have their owner on the cluster, not an object
        stored = {w.uid: w for w in self.store.workloads() if w.external is None}
        names = {(w.spec.project, w.spec.name) for w in stored.values()}
        marked = self.store.cluster_object_uids()
        seen: set[str] = set()
        objects = sorted(mirror.objects(), key=lambda o: ((o.get("status") or {}).get("submitted_at") or "",
                                                           (o.get("metadata") or {}).get("creationTimestamp") or ""))
        for obj in objects:
            uid = workload_uid_of(obj)
            seen.add(uid)
            if uid in stored:
                continue
            meta = obj.get("metadata") or {}
            where = f"{meta.get('namespace')}/{meta.get('name')}"
            try:
                workload = workload_from_object(obj)
            except ValueError as exc:
                log.warning("the RunaiWorkload %s could not be restored: %s", where, exc)
                continue
            if (workload.spec.project, workload.spec.name) in names:
                log.warning("the RunaiWorkload %s was not restored: the store has another workload of that name",
                            where)
                continue
            handles = self._live_pods(workload)
            with self.store.batch():
                self.store.add_workload(workload)
                for name, handle in handles.items():
                    self.store.set_pod_handle(workload.uid, name, handle)
            names.add((workload.spec.project, workload.spec.name))
            stored[uid] = workload
            self._restored.append(uid)
        self.store.mark_cluster_objects(seen & set(stored))
        for uid, workload in stored.items():
            if uid in seen:
                continue
            if uid in marked:
                self._gone_there.append(uid)
            else:  # never written (it failed, or the mirror is new): write it now
                mirror.create(workload)

    def _live_pods(self, workload: Workload) -> dict[str, dict[str, Any]]:
        """The handles of the workload's pods on the cluster; its pods' status follows them (an
        object's status may lag behind a pod started just before the scheduler stopped)."""
        live = self.cluster.pod_handles_of(workload.spec.project, workload.uid)
        for pod in workload.status.pods:
            handle = live.get(pod.name)
            if handle is None or pod.phase in (PodPhase.RUNNING, PodPhase.TERMINATING):
                continue
            pod.phase = PodPhase.RUNNING  # adopted next: it reports its end if it ended
            pod.node = handle.get("node")
            pod.devices = list(handle.get("devices") or [])
            pod.fraction = handle.get("fraction")
        for pod in workload.status.pods:
            if pod.name in live and pod.fraction is not None:
                live[pod.name]["fraction"] = pod.fraction
        return {name: h for name, h in live.items() if any(p.name == name for p in workload.status.pods)}

    def _reconcile_after_load(self) -> None:
        """After the store is loaded and the pods adopted (inside a transaction): tell what was
        restored, delete what was deleted on the cluster, and write every status afresh."""
        mirror = self._mirror
        if mirror is None:
            return
        for uid in self._restored:
            workload = self.workloads.get(uid)
            if workload is not None:
                self._event("Warning", workload, "restored from its RunaiWorkload object on the cluster: the "
                            "scheduler's state did not hold it (a new or lost state volume)")
        self._restored = []
        gone, self._gone_there = self._gone_there, []
        for uid in gone:
            self._delete_from_cluster(uid)
        for workload in self.workloads.values():
            if workload.external is None:
                self._after_commit.append(lambda workload=workload: mirror.update(workload))

    # ------------------------------------------------------------ while it runs

    async def submit_confirmed(self, spec: WorkloadSpec | dict[str, Any], user: User) -> Workload:
        """Submit as :meth:`submit` does; with a mirror, the workload's object is created on the
        cluster first (awaited, never blocking the loop) and only then is the workload stored. An
        object the cluster refuses is a 503 and nothing is stored."""
        mirror = self._mirror
        if mirror is None:
            return self.submit(spec, user)
        admitted = self._admit(spec, user)
        self._check_not_submitting(admitted)
        workload = self._new_workload(admitted, user)
        key = (admitted.project, admitted.name)
        self._submitting.add(key)
        try:
            try:
                await asyncio.wrap_future(mirror.create(workload))
            except Exception as exc:
                raise Unavailable(f"the cluster did not take the workload's RunaiWorkload object, so it was not "
                                  f"submitted: {exc}") from exc
            try:
                return self.submit(admitted, user, admitted=workload)
            except BaseException:
                mirror.delete(workload)  # not stored: its object goes
                raise
        finally:
            self._submitting.discard(key)

    def _check_not_submitting(self, spec: WorkloadSpec) -> None:
        if (spec.project, spec.name) in self._submitting:
            raise Conflict(f"a workload named {spec.name!r} is being submitted in project {spec.project!r}; "
                           f"choose another name", field="name")

    def _mirror_created(self, workload: Workload) -> None:
        """A workload was admitted: its object, once the transaction commits."""
        mirror = self._mirror
        if mirror is not None:
            self._after_commit.append(lambda: mirror.create(workload))

    def _mirror_changed(self, workloads: list[Workload]) -> None:
        mirror = self._mirror
        ours = [w for w in workloads if w.external is None]
        if mirror is not None and ours:
            self._after_commit.append(lambda: [mirror.update(w) for w in ours])

    def _mirror_removed(self, workload: Workload) -> None:
        mirror = self._mirror
        if mirror is not None and workload.external is None:
            self._after_commit.append(lambda: mirror.delete(workload))

    def _follow_cluster_objects(self) -> None:
        """In a cycle: remember the objects the cluster holds; delete the workloads whose objects
        someone else deleted."""
        mirror = self._mirror
        if mirror is None:
            return
        seen = [uid for uid in mirror.take_seen() if uid in self.workloads]
        if seen:
            self.store.mark_cluster_objects(seen)
        for uid, _, _ in mirror.take_removed():
            self._delete_from_cluster(uid)

    def _admit_cluster_objects(self) -> None:
        """Before a cycle: admit or refuse the objects created by others; store the admitted ones
        once they are labelled as ours (each in its own transaction, as a REST submit)."""
        mirror = self._mirror
        if mirror is None:
            return
        for obj in mirror.take_foreign():
            try:
                user, spec = self._foreign_submission(obj, mirror.submitter)
                admitted = self._admit(spec, user)  # admission.py: RBAC, hooks, policies, quotas, names
                self._check_not_submitting(admitted)
            except ValidationError as exc:
                mirror.refuse(obj, "; ".join(item["message"] for item in format_validation_error(exc)))
                continue
            except ServiceError as exc:
                mirror.refuse(obj, exc.message)
                continue
            workload = self._new_workload(admitted, user)
            self._submitting.add((admitted.project, admitted.name))
            self._adopting.append((mirror.adopt(obj, workload), workload, user, obj))
        for item in [item for item in self._adopting if item[0].done()]:
            self._adopting.remove(item)
            done, workload, user, obj = item
            self._submitting.discard((workload.spec.project, workload.spec.name))
            if done.exception() is not None:  # changed or deleted meanwhile: a change comes back as new
                log.warning("RunaiWorkload %s/%s not admitted: %s", obj["metadata"].get("namespace"),
                            obj["metadata"]["name"], done.exception())
                continue
            try:
                self.submit(workload.spec, user, admitted=workload)
            except ServiceError as exc:  # the name was taken meanwhile
                mirror.refuse(obj, exc.message)

    @staticmethod
    def _foreign_submission(obj: dict, submitter: str) -> tuple[User, dict[str, Any]]:
        """Whom an object created by someone else is submitted as, and its spec (its name and project
        from the object's own); raises a ServiceError naming what is wrong."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        if not submitter:
            raise Forbidden("RunaiWorkload objects created outside the scheduler are not admitted here: "
                            "c.KubernetesCluster.object_submitter is not set; submit through the REST API, the "
                            "CLI or the sidebar")
        if not namespace.startswith(NAMESPACE_PREFIX):
            raise Invalid(f"namespace {namespace!r} is not a project's", field="metadata.namespace",
                          allowed=f"{NAMESPACE_PREFIX}<project>")
        spec = dict(obj.get("spec") or {})
        project = namespace.removeprefix(NAMESPACE_PREFIX)
        for key, value in (("name", meta.get("name")), ("project", project)):
            if spec.setdefault(key, value) != value:
                raise Invalid(f"{spec[key]!r} is not the object's own", field=f"spec.{key}", allowed=value)
        return User(submitter), spec

    def _delete_from_cluster(self, uid: str) -> None:
        workload = self.workloads.get(uid)
        if workload is None or workload.status.phase == WorkloadPhase.DELETING:
            return  # gone, or going already
        self._event("Warning", workload, f"{DELETED_THERE}: the workload is deleted, as a REST delete would")
        step = self._step(workload)
        step.delete_request()
        self._apply(step, by="the cluster")
