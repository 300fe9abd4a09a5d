"""The Kubernetes backend: the service's pods as Pods on a real cluster (``c.RunaiApp.backend =
"kubernetes"``), through the official ``kubernetes`` client.

It implements the same :class:`~jupyter_runai.clusters.base.Cluster` protocol as the local
cluster, and never blocks the server's event loop:

* **reads** come from two list+watch caches (:class:`~.kube_informer.Informer`), nodes and
  pods, each kept by a daemon thread that survives watch expiry (410 Gone: it lists again),
  bookmarks, timeouts and an API server away (backoff). :meth:`nodes`, :meth:`poll`,
  :meth:`adopt` and :meth:`endpoint` answer from them.
* **writes** are queued to one writer thread (:class:`~.kube_writer.KubeWriter`), in order:
  a pod's namespace, its Secrets, its creation and its binding come before its eviction.
  Each request is retried with a backoff on 429, 5xx, a timeout or a lost connection, for
  ``write_retry_seconds``; a pod whose writes fail for good is reported Failed with the reason.

Pods come from the pod template (``clusters/podtemplate.py``) in the namespace
``runai-<project>``, carrying our ``schedulerName``, created unbound and then bound to the
engine's node through the ``pods/binding`` subresource; a stop evicts through the Eviction
API (so PodDisruptionBudgets apply; a 429 from one is retried). Capacity held by pods the
service does not count is taken off their nodes.

GPU fractions hold each shared device with one reservation pod (``kube_reservations``), as
KAI-Scheduler does; a fractional pod is created once its devices' UUIDs are read from their
reservation pods' logs. An inference workload gets a Service; a workload's Secret and
Services are deleted with it. With ``leader_election``, a Lease (``kube_lease``) says which
replica may write: a standby's writer refuses every write. docs/kubernetes.md says what
works and what is next.

``import kubernetes`` costs seconds: only this module imports it, and only the server does,
when this backend is configured.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets import Bool, Float, Int, Unicode
from traitlets.config import LoggingConfigurable

from ..models import Node, NodePool
from ..models.names import NAMESPACE_PREFIX, namespace_for
from ..models.quantity import parse_memory
from . import logtimes
from .base import DeviceMetrics, Endpoint, PodLaunch, PodReport, PodState
from .base import DeviceMetrics, Endpoint, ExternalGroup, PodLaunch, PodReport, PodState
from .kube_foreign import ForeignPods, is_foreign
from .kube_informer import Informer
from .kube_lease import LeaseElector
from .kube_logs import LogCopy
from .kube_queues import GROUP as KAI_GROUP
from .kube_queues import PLURAL as KAI_PLURAL
from .kube_queues import VERSION as KAI_VERSION
from .kube_queues import KaiQueueConfig, KaiQueues
from .kube_objects import Usage, holds_resources, is_ours, node_from, pod_outcome, pod_ready, pod_usage
from .kube_reservations import DEFAULT_IMAGE as DEFAULT_RESERVATION_IMAGE
from .kube_reservations import (
    RESERVATION_NAMESPACE,
    is_reservation,
    reservation_device,
    reservation_manifest,
    reservation_name,
    uuid_from_log,
)
from .kube_workloads import WorkloadObjects, handle_of_pod
from .kube_writer import ANNOTATION_LAUNCH_ID, KubeWriter
from .podtemplate import (
    LABEL_PROJECT,
    LABEL_WORKLOAD_UID,
    Placement,
    TemplateOptions,
    credential_secret_name,
    pod_manifest,
    proxy_token_secret_name,
)

__all__ = ["KubernetesCluster"]

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _own_namespace() -> str | None:
    """The namespace of the pod this runs in (its service account says), else None."""
    try:
        return Path(SERVICE_ACCOUNT_NAMESPACE).read_text().strip() or None
    except OSError:
        return None

ENDED = (PodState.SUCCEEDED, PodState.FAILED, PodState.STOPPED, PodState.LOST)


@dataclass(slots=True)
class _Tracked:
    """A pod of ours the service knows: what it was told last."""

    launch_id: str | None
    workload_uid: str
    node: str
    devices: list[int]
    serves: bool
    told: PodState | None = None
    ready: bool = False
    stopping: bool = False
    created: bool = False
    fraction: float | None = None  # a share of each device: they are held by reservation pods
    secrets: list[str] | None = None  # the workload's credential Secrets (deleted with the workload)


class KubernetesCluster(LoggingConfigurable):
    """Pods on a Kubernetes cluster, placed by this scheduler."""

    name = "kubernetes"
    read_only_mounts = True  # the kubelet mounts read-only volumes read-only
    runs_images = True       # images are pulled and run as given
    gpu_fractions = True     # a reservation pod per shared device, as KAI-Scheduler does (kube_reservations)

    state_dir = Unicode(help="The service's state directory (pod logs are copied under it).").tag(config=True)
    host = Unicode(
        "", help="The API server's URL, without credentials (a test stand-in, or `kubectl proxy` on loopback). "
        "Default: from the kubeconfig, or the in-cluster service account.",
    ).tag(config=True)
    kubeconfig = Unicode("", help="A kubeconfig file. Default: $KUBECONFIG or ~/.kube/config.").tag(config=True)
    context = Unicode("", help="The kubeconfig context. Default: its current context.").tag(config=True)
    in_cluster = Bool(
        False, help="Use the pod's service account (the scheduler runs inside the cluster).").tag(config=True)
    scheduler_name = Unicode(
        "runai-scheduler", help="The schedulerName of our pods; pods with another are other schedulers' "
        "and their resources are taken off the nodes.",
    ).tag(config=True)
    node_pool_label = Unicode(
        "runai/node-pool", help="A node label whose values become node pools (each selects the nodes with "
        "its value). Empty: no pools from labels.",
    ).tag(config=True)
    gpu_memory_fallback = Unicode(
        "16Gi", help="Memory of each GPU of a node without the GPU feature discovery label "
        "nvidia.com/gpu.memory.",
    ).tag(config=True)
    watch_seconds = Int(300, help="Seconds a watch lasts before it is resumed (the server's timeout).").tag(
        config=True)
    request_timeout = Float(30.0, help="Seconds one API request may take.").tag(config=True)
    write_retry_seconds = Float(
        60.0, help="Seconds a write (create, bind, evict) is retried on 429, 5xx and timeouts before the pod "
        "is reported failed.",
    ).tag(config=True)
    sync_timeout = Float(30.0, help="Seconds to wait at start for the first list of nodes and pods.").tag(
        config=True)
    leader_election = Bool(
        False, help="Run as one of several replicas: only the one that holds the Lease schedules; the others "
        "wait as standbys and take over within lease_seconds when it stops renewing.",
    ).tag(config=True)
    lease_name = Unicode("runai-scheduler", help="The coordination.k8s.io Lease the replicas elect a leader "
                         "with.").tag(config=True)
    lease_namespace = Unicode(
        "", help="The Lease's namespace. Default: the pod's own namespace in the cluster, else runai-system.",
    ).tag(config=True)
    lease_seconds = Float(
        15.0, help="Seconds a standby waits after the leader's last renewal before it takes over. The leader "
        "stops scheduling if it could not renew for two thirds of this.",
    ).tag(config=True)
    reservation_image = Unicode(
        DEFAULT_RESERVATION_IMAGE, help="The image of the pods that hold a shared GPU for its fractions: it "
        "needs a shell; the NVIDIA container toolkit mounts nvidia-smi in it.",
    ).tag(config=True)
    reservation_timeout = Float(
        300.0, help="Seconds a fractional pod waits for its device's reservation pod to start and report its "
        "GPU's UUID before the pod is reported failed.",
    ).tag(config=True)
    workload_objects = Bool(
        True, help="Mirror every workload as a RunaiWorkload object (deploy/crd.yaml), so that the cluster is the "
        "source of truth: a scheduler with an empty state restores its workloads from them, and a `kubectl delete` "
        "of one deletes its workload. Needs the CRD installed.",
    ).tag(config=True)
    object_submitter = Unicode(
        "", help="The user that RunaiWorkload objects created by others (kubectl apply, without the scheduler's "
        "label) are admitted as, through the same admission as the REST API: its role bindings decide what it may "
        "submit where. Empty: such objects are refused, with the reason in their status.",
    ).tag(config=True)
    kai_queues = Bool(
        False, help="Read KAI-Scheduler's Queue objects (scheduling.run.ai/v2) as departments (parent queues) and "
        "projects (leaf queues), kept in step by a watch. A name the queue file or the API defines already is "
        "theirs: the KAI queue of that name is left out, with a log line.",
    ).tag(config=True)
    max_log_bytes = Int(
        64 * 1024 * 1024, help="Bytes of a pod's log copied under the state directory for the logs API "
        "(the rest stays on the node: kubectl logs).",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from kubernetes import client as k8s  # seconds to import: only here
        from kubernetes.watch.watch import iter_resp_lines

        self._iter_lines = iter_resp_lines
        self.api_client = self._api_client(k8s)
        self.core = k8s.CoreV1Api(self.api_client)
        self._fallback_memory = parse_memory(self.gpu_memory_fallback, bounded=False)
        self._lock = threading.RLock()
        self._tracked: dict[str, _Tracked] = {}
        self._reports: list[PodReport] = []
        self._nodes: list[Node] | None = None
        self._logs: dict[str, tuple[str, LogCopy]] = {}  # key -> (pod uid, its copy)
        # GPU fractions: (node, device index) -> its reservation pod's GPU UUID, once read from its log
        self._uuids: dict[tuple[str, int], str] = {}
        self._reserving: set[tuple[str, int]] = set()  # reservation pods asked for (created or queued)
        self._reading: set[str] = set()  # reservation pods (uid) whose log is being read
        self._waiting: dict[str, tuple[list[tuple[str, int]], float, Any]] = {}  # key -> (devices, deadline, start)
        self._closed = threading.Event()
        self.elector = self._elector(k8s) if self.leader_election else None
        self.writer = KubeWriter(self.core, request_timeout=self.request_timeout,
                                 retry_seconds=self.write_retry_seconds, closed=self._closed,
                                 may_write=lambda: self.leading)
        custom = k8s.CustomObjectsApi(self.api_client)
        self.foreign = ForeignPods(lock=self._lock, writer=self.writer, report=lambda r: self._reports.append(r),
                                   closed=self._closed,
                                   resolver_read=lambda api_version, plural, namespace, name: self._read_owner(
                                       custom, api_version, plural, namespace, name))
        self.node_informer = Informer("nodes", self._lister(self.core.list_node), self._watcher(self.core.list_node),
                                      self._node_changed, watch_seconds=self.watch_seconds)
        self.pod_informer = Informer("pods", self._lister(self.core.list_pod_for_all_namespaces),
                                     self._watcher(self.core.list_pod_for_all_namespaces), self._pod_changed,
                                     watch_seconds=self.watch_seconds)
        # the capability the service asks for: workloads as custom resources (None: not mirrored)
        self.workload_mirror = WorkloadObjects(k8s.CustomObjectsApi(self.api_client), self.writer, self._informer,
                                               request_timeout=self.request_timeout,
                                               submitter=self.object_submitter) \
            if self.workload_objects else None
        informers = [self.node_informer, self.pod_informer]
        if self.workload_mirror is not None:
            informers.append(self.workload_mirror.informer)
        for informer in informers:
            informer.start()
        self.queues = None
        if self.kai_queues:  # not waited for at start: KAI may not be installed (the log says so)
            def list_queues(**kw):
                return custom.list_cluster_custom_object(KAI_GROUP, KAI_VERSION, KAI_PLURAL, **kw)
            self.queues = KaiQueues(self._lister(list_queues), self._watcher(list_queues),
                                    watch_seconds=self.watch_seconds)
            self.queues.informer.start()
        deadline = time.monotonic() + self.sync_timeout
        for informer in informers:
            if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                self.close()
                where = self.api_client.configuration.host
                hint = " (is deploy/crd.yaml installed? Without it, set c.KubernetesCluster.workload_objects = " \
                    "False)" if self.workload_mirror is not None and informer is self.workload_mirror.informer else ""
                raise RuntimeError(f"the Kubernetes API server at {where} did not answer a list of {informer.kind} "
                                   f"within {self.sync_timeout:g}s (c.KubernetesCluster.sync_timeout){hint}")
        if self.elector is not None:  # the caches are warm first, so that a take-over is quick
            self.elector.start()

    @property
    def leading(self) -> bool:
        """This replica may write to the cluster: it holds the Lease (always, without leader election)."""
        return self.elector is None or self.elector.leading

    def _elector(self, k8s) -> LeaseElector:
        namespace = self.lease_namespace or _own_namespace() or "runai-system"
        identity = f"{os.environ.get('HOSTNAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        return LeaseElector(k8s.CoordinationV1Api(self.api_client), namespace, self.lease_name, identity,
                            lease_seconds=self.lease_seconds, renew_deadline=self.lease_seconds * 2 / 3,
                            retry_seconds=max(0.05, self.lease_seconds / 7.5),
                            request_timeout=min(self.request_timeout, self.lease_seconds / 3))

    def _api_client(self, k8s):
        from kubernetes import config

        if self.host:
            return k8s.ApiClient(k8s.Configuration(host=self.host.rstrip("/")))
        if self.in_cluster:
            configuration = k8s.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            return k8s.ApiClient(configuration)
        return config.new_client_from_config(config_file=os.path.expanduser(self.kubeconfig) or None,
                                             context=self.context or None)

    def _read_owner(self, custom, api_version: str, plural: str, namespace: str, name: str) -> dict:
        """An owner of third-party pods (a ReplicaSet, a Job...), read as JSON (kube_foreign follows them)."""
        group, _, version = api_version.rpartition("/")
        if not group:  # the core group: only a ReplicationController owns pods there
            if plural != "replicationcontrollers":
                return {}  # no owner above it
            resp = self.core.read_namespaced_replication_controller(
                name, namespace, _preload_content=False, _request_timeout=self.request_timeout)
        else:
            resp = custom.get_namespaced_custom_object(group, version, namespace, plural, name,
                                                       _preload_content=False, _request_timeout=self.request_timeout)
        return json.loads(resp.data)

    # ------------------------------------------------------------ the caches

    def _informer(self, kind: str, method, on_change) -> Informer:
        return Informer(kind, self._lister(method), self._watcher(method), on_change, watch_seconds=self.watch_seconds)

    def _lister(self, method):
        def list_all() -> tuple[list[dict], str]:
            resp = method(_preload_content=False, _request_timeout=self.request_timeout)
            body = json.loads(resp.data)
            return body.get("items") or [], (body.get("metadata") or {}).get("resourceVersion") or ""
        return list_all

    def _watcher(self, method):
        def watch(version: str, seconds: int):
            resp = method(watch=True, resource_version=version or None, timeout_seconds=seconds,
                          allow_watch_bookmarks=True, _preload_content=False,
                          _request_timeout=(self.request_timeout, seconds + self.request_timeout))
            try:
                for line in self._iter_lines(resp):
                    if self._closed.is_set():
                        return
                    if line.strip():
                        yield json.loads(line)
            finally:
                resp.close()
                resp.release_conn()
        return watch

    def _node_changed(self, kind: str, old: dict | None, new: dict | None) -> None:
        with self._lock:
            self._nodes = None

    def _pod_changed(self, kind: str, old: dict | None, new: dict | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        with self._lock:
            if (old is not None and holds_resources(old)) or (new is not None and holds_resources(new)):
                self._nodes = None  # what others hold changed
            if is_reservation(pod):
                self._reservation_changed(pod, deleted=new is None)
            elif is_ours(pod, self.scheduler_name):
                self._observe(pod, deleted=new is None)
            elif is_foreign(pod, self.scheduler_name):
                self.foreign.observe(pod, deleted=new is None)

    @staticmethod
    def _key_of(pod: dict) -> str:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        project = labels.get(LABEL_PROJECT) or (meta.get("namespace") or "").removeprefix(NAMESPACE_PREFIX)
        return f"{project}/{meta['name']}"

    def _observe(self, pod: dict, deleted: bool) -> None:
        """A pod of ours changed: tell the service what it means (with the lock held)."""
        key = self._key_of(pod)
        tracked = self._tracked.get(key)
        if tracked is None:
            return
        meta = pod.get("metadata") or {}
        if (meta.get("labels") or {}).get(LABEL_WORKLOAD_UID) != tracked.workload_uid:
            return  # another workload's pod of that name
        launch_id = (meta.get("annotations") or {}).get(ANNOTATION_LAUNCH_ID)
        if tracked.launch_id and launch_id and launch_id != tracked.launch_id:
            return  # an earlier launch's pod of that name, on its way out
        if tracked.told in ENDED:
            return
        if deleted:
            if tracked.stopping:
                self._tell(key, tracked, PodState.STOPPED, message="stopped")
            else:
                self._tell(key, tracked, PodState.FAILED, message="deleted from the cluster, not by the scheduler")
            return
        outcome = pod_outcome(pod)
        if outcome.state is None:
            return
        if outcome.state == PodState.RUNNING:
            ready = pod_ready(pod)
            if tracked.told != PodState.RUNNING or ready != tracked.ready:
                tracked.told = PodState.RUNNING
                changed = tracked.serves and ready != tracked.ready
                tracked.ready = ready
                self._reports.append(PodReport(key, PodState.RUNNING,
                                               handle=self._handle(key, tracked) if changed else None))
            return
        self._tell(key, tracked, outcome.state, outcome.exit_code, outcome.message)
        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            # it will not start (an image that cannot be pulled): free its node
            namespace, name = meta.get("namespace"), meta["name"]
            self.writer.queue(lambda: self.writer.delete_pod(namespace, name))

    def _tell(self, key: str, tracked: _Tracked, state: PodState, exit_code: int | None = None,
              message: str | None = None) -> None:
        tracked.told = state
        self._nodes = None  # the service stops counting it: if it still holds resources, they are taken off
        self._reports.append(PodReport(key, state, exit_code=exit_code, message=message))
        if tracked.fraction is not None and state in ENDED:
            self._waiting.pop(key, None)
            self._end_reservations()

    def _handle(self, key: str, tracked: _Tracked) -> dict[str, Any]:
        project, name = key.split("/", 1)
        handle = {"namespace": namespace_for(project), "pod": name, "launch_id": tracked.launch_id,
                  "workload_uid": tracked.workload_uid, "node": tracked.node, "devices": list(tracked.devices)}
        if tracked.serves:
            handle["ready"] = tracked.ready
        if tracked.fraction is not None:
            handle["fraction"] = tracked.fraction
        if tracked.secrets:
            handle["secrets"] = list(tracked.secrets)
        return handle

    # ------------------------------------------------------------ the protocol: reads

    def nodes(self) -> list[Node]:
        with self._lock:
            if self._nodes is None:
                others: dict[str, Usage] = {}
                placed = self.foreign.held()  # third-party pods the service placed: it counts them
                for pod in self.pod_informer.items():
                    if holds_resources(pod) and pod["metadata"].get("uid") not in placed and not self._accounted(pod):
                        others.setdefault(pod["spec"]["nodeName"], Usage()).add(pod_usage(pod))
                nodes = []
                for obj in self.node_informer.items():
                    name = (obj.get("metadata") or {}).get("name")
                    try:
                        nodes.append(node_from(obj, others.get(name), gpu_memory_fallback=self._fallback_memory))
                    except Exception as exc:  # one odd node does not hide the others
                        log.warning("node %s left out: %s", name, exc)
                self._nodes = sorted(nodes, key=lambda n: n.name)
            return list(self._nodes)

    def _accounted(self, pod: dict) -> bool:
        """The service counts this pod's resources itself: a pod of ours it knows runs. Any other
        pod that holds resources (another scheduler's, ours from a lost state, ours on its way out
        after the service was told it ended) is taken off its node."""
        if is_reservation(pod):  # the engine counts the fractions on its device, while any runs
            return reservation_device(pod) in self._needed()
        if not is_ours(pod, self.scheduler_name):
            return False
        tracked = self._tracked.get(self._key_of(pod))
        if tracked is None or tracked.told in ENDED:
            return False
        meta = pod.get("metadata") or {}
        launch_id = (meta.get("annotations") or {}).get(ANNOTATION_LAUNCH_ID)
        return (meta.get("labels") or {}).get(LABEL_WORKLOAD_UID) == tracked.workload_uid and \
            (not tracked.launch_id or launch_id in (None, tracked.launch_id))

    def node_pools(self) -> list[NodePool]:
        """One pool per value of ``node_pool_label`` among the nodes."""
        if not self.node_pool_label:
            return []
        values = sorted({n.labels[self.node_pool_label] for n in self.nodes() if self.node_pool_label in n.labels})
        return [NodePool(name=value, label_selector={self.node_pool_label: value}) for value in values]

    def poll(self) -> list[PodReport]:
        with self._lock:
            self._start_waiting()  # a fractional pod whose reservation took too long fails
            self.foreign.poll()  # so does a third-party workload's key that no pod of its owner took
            reports, self._reports = self._reports, []
        return reports

    def adopt(self, key: str, handle: dict[str, Any]) -> PodReport:
        if handle.get("external"):
            with self._lock:
                return self.foreign.adopt(key, handle)
        project, name = key.split("/", 1)
        pod = self.pod_informer.get(namespace_for(project), name)
        uid = handle.get("workload_uid")
        launch_id = handle.get("launch_id")
        meta = (pod or {}).get("metadata") or {}
        found = pod is not None and (meta.get("labels") or {}).get(LABEL_WORKLOAD_UID) == uid and \
            (not launch_id or (meta.get("annotations") or {}).get(ANNOTATION_LAUNCH_ID) in (None, launch_id))
        if not found:
            return PodReport(key, PodState.LOST, message="not found on the cluster")
        serves = "ready" in handle or any(p.get("name") == "http" for c in pod["spec"].get("containers", [])
                                          for p in c.get("ports") or [])
        tracked = _Tracked(launch_id=launch_id or meta.get("annotations", {}).get(ANNOTATION_LAUNCH_ID),
                           workload_uid=uid, node=handle.get("node") or pod["spec"].get("nodeName") or "",
                           devices=list(handle.get("devices") or []), serves=serves, created=True,
                           fraction=handle.get("fraction"), secrets=handle.get("secrets"))
        outcome = pod_outcome(pod)
        with self._lock:
            self._tracked[key] = tracked
            self._nodes = None
            if outcome.state in ENDED:
                tracked.told = outcome.state
                return PodReport(key, outcome.state, exit_code=outcome.exit_code, message=outcome.message,
                                 handle=self._handle(key, tracked))
            tracked.told = PodState.RUNNING
            tracked.ready = pod_ready(pod)
            if not pod["spec"].get("nodeName") and tracked.node:
                # created but never bound (the scheduler stopped in between): finish the decision
                self.writer.queue(lambda: self.writer.bind(namespace_for(project), name, tracked.node))
            return PodReport(key, PodState.RUNNING, handle=self._handle(key, tracked))

    def pods(self) -> list[str]:
        """The keys of every pod of ours on the cluster (to reconcile after a restart)."""
        return sorted(self._key_of(p) for p in self.pod_informer.items() if is_ours(p, self.scheduler_name))

    def pod_handles_of(self, project: str, workload_uid: str) -> dict[str, dict[str, Any]]:
        """The handles of a workload's pods on the cluster, by pod name: to adopt the pods of a
        workload restored from its custom resource (the store lacked it)."""
        namespace = namespace_for(project)
        return {pod["metadata"]["name"]: handle_of_pod(pod, ANNOTATION_LAUNCH_ID) for pod in self.pod_informer.items()
                if pod["metadata"].get("namespace") == namespace and is_ours(pod, self.scheduler_name)
                and (pod["metadata"].get("labels") or {}).get(LABEL_WORKLOAD_UID) == workload_uid}

    def endpoint(self, key: str, handle: dict[str, Any]) -> Endpoint | None:
        project, name = key.split("/", 1)
        pod = self.pod_informer.get(namespace_for(project), name)
        if pod is None or not pod_ready(pod):
            return None
        ip = (pod.get("status") or {}).get("podIP")
        return Endpoint(host=ip, port=TemplateOptions().port) if ip else None

    def _log_file(self, key: str) -> Path:
        project, name = key.split("/", 1)
        return Path(self.state_dir) / "kube-logs" / project / f"{name}.log"

    def log_path(self, key: str, handle: dict[str, Any] | None = None) -> Path | None:
        """A copy of the pod's log under the state directory, kept by a thread that reads it from
        the API server (following it while the pod runs). The path comes back at once; the file
        appears once the pod has output."""
        project, name = key.split("/", 1)
        namespace = namespace_for(project)
        pod = self.pod_informer.get(namespace, name)
        path = self._log_file(key)
        if pod is None:
            return path  # no pod (any more): what was copied stays
        uid = pod["metadata"].get("uid") or ""
        with self._lock:
            known = self._logs.get(key)
            if known is not None and known[0] == uid and (known[1].alive or known[1].done):
                return path

            def fetch(follow: bool):
                resp = self.core.read_namespaced_pod_log(
                    name, namespace, container="main", follow=follow, timestamps=True, _preload_content=False,
                    _request_timeout=(self.request_timeout, 3600) if follow else self.request_timeout)
                try:
                    yield from resp.stream(64 * 1024)
                finally:
                    resp.release_conn()

            def phase() -> str | None:
                now = self.pod_informer.get(namespace, name)
                if now is None or (now.get("metadata") or {}).get("uid") != uid:
                    return None
                return (now.get("status") or {}).get("phase") or "Pending"

            self._logs[key] = (uid, LogCopy(path, fetch, phase, self._closed, max_bytes=self.max_log_bytes).start())
        return path

    def metrics(self) -> list[DeviceMetrics]:
        return []  # no NVML here; DCGM exporter metrics are not read yet

    # ------------------------------------------------------------ the protocol: writes

    def launch(self, launch: PodLaunch) -> dict[str, Any]:
        workload = launch.workload_model
        if workload is None:
            raise ValueError("the Kubernetes backend needs the workload in the launch")
        if workload.external is not None:  # a third-party pod of its owner is bound, none is created
            with self._lock:
                self._nodes = None
                return self.foreign.launch(launch.key, workload.external.uid, launch.workload_uid, launch.node,
                                           list(launch.devices), launch.launch_id)
        spec = workload.spec
        options = TemplateOptions(scheduler_name=self.scheduler_name, bind="node_selector",
                                  proxy_prefix=self._proxy_prefix(launch))

        def manifest_for(uuids: tuple[str, ...] = ()) -> dict:
            placement = Placement(node=launch.node, devices=tuple(launch.devices), fraction=launch.fraction,
                                  gpu_memory_limit=launch.gpu_memory_limit if launch.fraction is not None else None,
                                  gpu_fraction_limit=launch.gpu_fraction_limit, device_uuids=uuids)
            # the credentials' values go to their Secrets; the pod only names them
            made = pod_manifest(workload, launch.index, placement, data_sources=launch.data_sources,
                                credentials=[cred.describe() for cred in launch.credentials], options=options)
            made["metadata"].setdefault("annotations", {})[ANNOTATION_LAUNCH_ID] = launch.launch_id or ""
            return made

        # a fraction's manifest needs its devices' UUIDs; a whole-GPU one is checked here, at once
        manifest = manifest_for() if launch.fraction is None else None
        secrets = {credential_secret_name(spec.name, cred.name): cred.secret_values() for cred in launch.credentials}
        project, name = launch.key.split("/", 1)
        namespace = namespace_for(project)
        serves = launch.needs_port
        tracked = _Tracked(launch_id=launch.launch_id, workload_uid=launch.workload_uid, node=launch.node,
                           devices=list(launch.devices), serves=serves, fraction=launch.fraction,
                           secrets=sorted(secrets) or None)
        token = launch.environment.get("RUNAI_PROXY_TOKEN") if serves else None
        master = spec.kind.value == "distributed" and launch.index == 0

        def write(manifest: dict) -> None:
            if tracked.stopping:  # stopped before it was created: nothing to undo
                with self._lock:
                    if tracked.told not in ENDED:
                        self._tell(launch.key, tracked, PodState.STOPPED, message="stopped before it started")
                return
            writer = self.writer
            try:
                writer.ensure_namespace(namespace)
                if token is not None:
                    writer.put_secret(namespace, proxy_token_secret_name(spec.name), {"token": token},
                                      launch.workload_uid)
                for secret_name, values in secrets.items():
                    writer.put_secret(namespace, secret_name, values, launch.workload_uid)
                if master:
                    writer.put_master_service(namespace, spec.name, launch.workload_uid)
                if spec.kind.value == "inference":
                    writer.put_inference_service(namespace, spec.name, launch.workload_uid)
                writer.create_pod(namespace, manifest, launch.launch_id)
                tracked.created = True
                writer.bind(namespace, name, launch.node)
            except Exception as exc:
                log.warning("could not start %s: %s", launch.key, exc)
                with self._lock:
                    if tracked.told not in ENDED:
                        self._tell(launch.key, tracked, PodState.FAILED, message=f"could not start: {exc}")
                if tracked.created:
                    writer.delete_pod(namespace, name)

        with self._lock:
            self._tracked[launch.key] = tracked
            self._nodes = None
            handle = self._handle(launch.key, tracked)
            if launch.fraction is None:
                self.writer.queue(lambda: write(manifest))
                return handle
            devices = [(launch.node, d) for d in launch.devices]
            for device in devices:
                self._reserve(device)

            def start(uuids: tuple[str, ...]) -> None:
                try:
                    made = manifest_for(uuids)
                except ValueError as exc:
                    self._tell(launch.key, tracked, PodState.FAILED, message=f"could not start: {exc}")
                    return
                self.writer.queue(lambda: write(made))
            self._waiting[launch.key] = (devices, time.monotonic() + self.reservation_timeout, start)
            self._start_waiting()
        return handle

    # ------------------------------------------------------------ GPU fractions: reservation pods

    def _needed(self) -> set[tuple[str, int]]:
        """The shared devices that a fractional pod of ours holds or waits for."""
        return {(t.node, d) for t in self._tracked.values() if t.fraction is not None and t.told not in ENDED
                for d in t.devices}

    def _reserve(self, device: tuple[str, int]) -> None:
        """Make sure a reservation pod holds ``device`` (with the lock held)."""
        node, index = device
        existing = self.pod_informer.get(RESERVATION_NAMESPACE, reservation_name(node, index))
        if device in self._reserving or existing is not None:
            self._reserving.add(device)
            if existing is not None:  # one from before a restart: its UUID is read again
                self._reservation_changed(existing, deleted=False)
            return
        self._reserving.add(device)
        manifest = reservation_manifest(node, index, image=self.reservation_image, scheduler_name=self.scheduler_name)

        def create() -> None:
            with self._lock:
                if device not in self._needed():  # its fractions ended (or were stopped) meanwhile
                    self._reserving.discard(device)
                    return
            try:
                self.writer.ensure_namespace(RESERVATION_NAMESPACE)
                self.writer.create_pod(RESERVATION_NAMESPACE, manifest, None)
            except Exception as exc:
                with self._lock:
                    self._reserving.discard(device)
                    self._fail_waiting(device, f"its GPU could not be reserved on {node}: {exc}")
        self.writer.queue(create)

    def _reservation_changed(self, pod: dict, deleted: bool) -> None:
        """A reservation pod changed (with the lock held): learn its UUID once it runs; a failed one
        fails the pods that wait for it."""
        device = reservation_device(pod)
        if device is None:
            return
        if deleted:
            self._uuids.pop(device, None)
            self._reserving.discard(device)
            return
        outcome = pod_outcome(pod)
        if outcome.state in (PodState.FAILED, PodState.SUCCEEDED):
            self._fail_waiting(device, f"the pod reserving its GPU on {device[0]} ended: {outcome.message}")
            return
        if outcome.state == PodState.RUNNING and device not in self._uuids:
            uid = pod["metadata"].get("uid") or ""
            if uid not in self._reading:
                self._reading.add(uid)
                threading.Thread(target=self._read_uuid, args=(device, pod["metadata"]["name"], uid),
                                 name="kube-reservation", daemon=True).start()

    def _read_uuid(self, device: tuple[str, int], name: str, uid: str) -> None:
        """Read the GPU UUID that a running reservation pod printed (its log; again until it is there)."""
        try:
            while not self._closed.is_set():
                with self._lock:
                    if device not in self._needed() and device not in self._reserving:
                        return
                try:
                    text = self.core.read_namespaced_pod_log(
                        name, RESERVATION_NAMESPACE, container="reserve", limit_bytes=4096,
                        _preload_content=False, _request_timeout=self.request_timeout).data.decode(errors="replace")
                except Exception as exc:  # not started yet, or the API server away: again
                    log.debug("reservation %s: log not read yet (%s)", name, exc)
                    text = ""
                found = uuid_from_log(text)
                if found:
                    with self._lock:
                        self._uuids[device] = found
                        self._start_waiting()
                    return
                if self._closed.wait(0.2):
                    return
        finally:
            with self._lock:
                self._reading.discard(uid)

    def _fail_waiting(self, device: tuple[str, int], why: str) -> None:
        """Fail the fractional pods that wait for ``device`` (with the lock held)."""
        for key, (devices, _, _) in list(self._waiting.items()):
            if device not in devices:
                continue
            self._waiting.pop(key, None)
            tracked = self._tracked.get(key)
            if tracked is not None and tracked.told not in ENDED:
                self._tell(key, tracked, PodState.FAILED, message=f"could not start: {why}")

    def _start_waiting(self) -> None:
        """Start the fractional pods whose devices' UUIDs are known (with the lock held)."""
        now = time.monotonic()
        for key, (devices, deadline, start) in list(self._waiting.items()):
            tracked = self._tracked.get(key)
            if tracked is None or tracked.told in ENDED:
                self._waiting.pop(key, None)
                continue
            if tracked.stopping:
                self._waiting.pop(key, None)
                self._tell(key, tracked, PodState.STOPPED, message="stopped before it started")
                continue
            uuids = [self._uuids.get(device) for device in devices]
            if all(uuids):
                self._waiting.pop(key, None)
                start(tuple(uuids))
            elif now > deadline:
                self._waiting.pop(key, None)
                self._tell(key, tracked, PodState.FAILED, message=(
                    f"could not start: the pod reserving its GPU on {tracked.node} did not report the GPU's "
                    f"UUID within {self.reservation_timeout:g}s (c.KubernetesCluster.reservation_timeout)"))

    def end_strays(self) -> list[str]:
        """Once the service re-adopted its pods (after a restart or a take-over): delete the
        reservation pods that no fractional pod uses any more. Returns what it ended, in words."""
        with self._lock:
            return self._end_reservations()

    def _end_reservations(self) -> list[str]:
        """Delete the reservation pods of devices no fractional pod of ours uses any more."""
        ended = []
        needed = self._needed()
        for pod in self.pod_informer.items():
            device = reservation_device(pod)
            if device is None or device in needed or (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            self._reserving.discard(device)
            self._uuids.pop(device, None)
            name = pod["metadata"]["name"]
            self.writer.queue(lambda name=name: self.writer.delete_pod(RESERVATION_NAMESPACE, name))
            ended.append(f"{RESERVATION_NAMESPACE}/{name}, which reserved device {device[1]} of {device[0]} "
                         "for fractions that no longer run")
        return ended

    def stop(self, key: str, grace_seconds: float) -> None:
        with self._lock:
            if self.foreign.owns(key):
                self.foreign.stop(key, grace_seconds)
                return
            tracked = self._tracked.get(key)
            if tracked is None or tracked.told in ENDED:
                return
            tracked.stopping = True
            self._start_waiting()  # one still waiting for its reservation is stopped now
        project, name = key.split("/", 1)
        namespace = namespace_for(project)

        def evict() -> None:
            if not tracked.created:
                return  # its create saw it stopping and told the service
            try:
                self.writer.evict(namespace, name, grace_seconds)
            except Exception as exc:
                log.warning("could not evict %s: %s", key, exc)
                return
            if self.pod_informer.get(namespace, name) is None:  # gone already: no event will say so
                with self._lock:
                    if tracked.told not in ENDED:
                        self._tell(key, tracked, PodState.STOPPED, message="stopped")

        self.writer.queue(evict)

    def release(self, key: str, handle: dict[str, Any]) -> None:
        if handle.get("external"):  # the pod is its owner's: it stays
            with self._lock:
                self.foreign.release(key)
            return
        project, name = key.split("/", 1)
        namespace = namespace_for(project)
        with self._lock:
            tracked = self._tracked.pop(key, None)
            self._nodes = None
        if tracked is not None and tracked.told not in ENDED:
            return  # still running: released when its workload is, after it ends
        with self._lock:
            self._logs.pop(key, None)
            uid = handle.get("workload_uid") or (tracked.workload_uid if tracked else None)
            last = not any(t.workload_uid == uid for t in self._tracked.values())
        self._log_file(key).unlink(missing_ok=True)
        logtimes.times_path(self._log_file(key)).unlink(missing_ok=True)
        self.writer.queue(lambda: self.writer.delete_pod(namespace, name))
        if last:  # the workload's last pod: its Secrets and Services go with it
            workload = name.rsplit("-", 1)[0]
            secrets = handle.get("secrets") or (tracked.secrets if tracked else None) or []
            self.writer.queue(lambda: self.writer.delete_workload_objects(namespace, workload, secrets))

    def external_groups(self) -> tuple[int, list[ExternalGroup], bool]:
        """Third-party pods with our scheduler name, grouped by their top owner (``kube_foreign``),
        and whether every pod's owner is known yet."""
        with self._lock:
            return self.foreign.groups()

    def kai_queue_config(self) -> tuple[int, KaiQueueConfig] | None:
        """KAI's Queue objects as departments and projects (``kube_queues``), with a version that
        changes with them; None when ``kai_queues`` is off or they are not listed yet."""
        return self.queues.config() if self.queues is not None else None

    def external_unschedulable(self, owner_uid: str, message: str) -> None:
        with self._lock:
            self.foreign.unschedulable(owner_uid, message)

    def close(self) -> None:
        """Stop the caches and the writer (after the writes already queued); pods keep running. A
        leader hands its Lease over (after its last writes), so that a standby takes over at once."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self.elector is not None:
            self.writer.drain(self.request_timeout)
            self.elector.release()
        self.node_informer.stop()
        self.pod_informer.stop()
        if self.workload_mirror is not None:
            self.workload_mirror.informer.stop()
        self.foreign.resolver.close()
        if self.queues is not None:
            self.queues.informer.stop()
        self.writer.close()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every write queued so far is done (tests, and a clean shutdown)."""
        return self.writer.drain(timeout)

    @staticmethod
    def _proxy_prefix(launch: PodLaunch) -> str:
        """The service's proxy prefix, from the proxy path it gave this launch."""
        path = launch.environment.get("RUNAI_PROXY_PATH")
        tail = f"{launch.project}/{launch.workload}/"
        if path and path.endswith(tail):
            return path[: -len(tail)]
        return TemplateOptions().proxy_prefix
