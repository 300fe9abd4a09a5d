"""An API server stand-in for the Kubernetes backend's tests: kmock's HTTP server and request
parsing, with the server-side behaviour the backend relies on added here.

kmock alone (0.8) stores objects but leaves out what a real API server does on its own
(docs/kubernetes.md and the notes list the gaps). :class:`KubeStandIn` fills them:

* create answers **201** and fills ``metadata.namespace`` (from the URL), ``uid``,
  ``resourceVersion`` and ``creationTimestamp``; a second create of a name answers **409**
  ``AlreadyExists``; a replace with a stale ``resourceVersion`` answers **409** ``Conflict``;
* every change bumps one cluster-wide resource version and is kept in a bounded history;
* list answers the current resource version; ``labelSelector`` (``k=v``, ``k!=v``, ``k``,
  ``!k``) and ``fieldSelector`` (``metadata.name``, ``metadata.namespace``, ``spec.nodeName``,
  ``status.phase``) filter on the server;
* watch replays the history after ``resourceVersion``; one older than the history answers
  **410** ``Expired`` (as an ``ERROR`` event, as the API server does); ``timeoutSeconds`` ends
  the stream; ``allowWatchBookmarks`` sends ``BOOKMARK`` events; :meth:`expire` compacts the
  history and ends every open watch with 410;
* ``pods/binding`` sets ``spec.nodeName`` (409 if the pod is bound already); ``pods/eviction``
  deletes the pod; ``pods/log`` answers what :attr:`logs` holds for the pod (then ends, even
  when asked to follow), with ``timestamps=true`` each line after :func:`log_time` of its index;
* :meth:`fail_next` makes the next requests of a kind answer an error (500, 429, 409...);
  :meth:`answer_late` carries them out but answers late (a client's timeout).

It runs on its own event loop in a daemon thread, so tests and the backend call it with the
real, synchronous ``kubernetes`` client over HTTP on loopback. :meth:`call` runs a change
(a kubelet's status update, a node added) on that loop.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import re
import threading
import uuid
from collections import deque
from typing import Any, Callable

import aiohttp.web
import kmock
import pytest

__all__ = ["KubeStandIn", "gpu_node", "kube", "kubelet_runs", "other_pod", "running_stand_in"]

_NAMESPACES = re.compile(r"/api/v1/namespaces(?:/([^/]+))?/?")
HISTORY = 1000  # changes kept for watches that resume; older resource versions answer 410


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_time(index: int) -> str:
    """The time the stand-in's kubelet gives line ``index`` of a log: RFC 3339 with the
    fraction's trailing zeros cut, as Go's RFC3339Nano writes it."""
    return f"2026-01-02T03:04:{index % 60:02d}.12345Z"


def _merge(into: dict, patch: dict) -> dict:
    """A JSON merge patch (a null deletes a key); lists are replaced, as kmock does."""
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def _label_match(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


_FIELDS: dict[str, Callable[[dict], Any]] = {
    "metadata.name": lambda o: o.get("metadata", {}).get("name"),
    "metadata.namespace": lambda o: o.get("metadata", {}).get("namespace"),
    "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName") or "",
    "status.phase": lambda o: o.get("status", {}).get("phase"),
}


def _field_match(obj: dict, selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        key, value = term.replace("!=", "=").replace("==", "=").split("=", 1)
        getter = _FIELDS.get(key.strip())
        if getter is None:
            raise kmock.KubernetesError(status=400, reason="BadRequest",
                                        message=f"field label not supported: {key}")
        if (str(getter(obj) or "") == value.strip()) == negate:
            return False
    return True


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class KubeStandIn(kmock.KubernetesScaffold):
    """The stand-in's state and handlers (see the module's text). Use :func:`running_stand_in`."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.store: dict[tuple[str, str | None, str], dict] = {}  # (resource, namespace, name) -> object
        self.history: deque[tuple[int, str, str, dict]] = deque(maxlen=HISTORY)  # rv, resource, type, object
        self.rv = itertools.count(100)
        self.current = 99
        self.compacted = 0  # a watch may resume only after a version above this one (else 410)
        self.changed = asyncio.Condition()
        self.faults: list[list[Any]] = []  # [action, resource, subresource, status, remaining]
        self.generation = 0  # bumped by expire(): open watches end with 410
        self.closing = False
        self.logs: dict[tuple[str, str], str] = {}  # (namespace, pod) -> its output, for pods/log
        self.namespace_calls: list[str] = []  # verbs on namespaces (kmock does not record them, see __call__)
        self.bookmark_seconds = 0.2
        # kmock checks each request against every request recorded so far (O(n) a request): a
        # benchmark that sends thousands turns it off; requested() and verbs_used() then see none
        self.keep_requests = True
        self.loop: asyncio.AbstractEventLoop | None = None
        self.host = ""  # http://127.0.0.1:<port>, once served
        for action, handler in ((kmock.action.LIST, self._list), (kmock.action.WATCH, self._watch),
                                (kmock.action.FETCH, self._fetch), (kmock.action.CREATE, self._create),
                                (kmock.action.UPDATE, self._update), (kmock.action.DELETE, self._delete)):
            self.fallback[action] << self._faulty(action, handler)
        # kmock guesses no action for a POST to a named object (subresources) or a PUT
        self.fallback["post"] << self._faulty(kmock.action.CREATE, self._create)
        self.fallback["put"] << self._faulty(kmock.action.UPDATE, self._update)

    # ------------------------------------------------------------ test controls (any thread)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the stand-in's loop (its state belongs to that loop) and return its result."""
        async def run():
            return fn()
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def put(self, resource: str, obj: dict) -> dict:
        """Create or replace an object as a controller would (a node, a pod of someone else)."""
        def change():
            meta = obj.setdefault("metadata", {})
            key = (resource, meta.get("namespace"), meta["name"])
            kind = "MODIFIED" if key in self.store else "ADDED"
            return self._commit(resource, key, copy.deepcopy(obj), kind)
        return self.call(change)

    def patch(self, resource: str, namespace: str | None, name: str, patch: dict) -> dict:
        """Merge ``patch`` into a stored object (a kubelet reporting a pod's status)."""
        def change():
            key = (resource, namespace, name)
            return self._commit(resource, key, _merge(copy.deepcopy(self.store[key]), patch), "MODIFIED")
        return self.call(change)

    def delete(self, resource: str, namespace: str | None, name: str) -> None:
        """Remove an object as someone else would (``kubectl delete``, a node's eviction)."""
        def change():
            key = (resource, namespace, name)
            self._commit(resource, key, copy.deepcopy(self.store[key]), "DELETED")
        self.call(change)

    def get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        return self.call(lambda: copy.deepcopy(self.store.get((resource, namespace, name))))

    def objects(self, resource: str) -> list[dict]:
        return self.call(lambda: [copy.deepcopy(o) for (r, _, _), o in sorted(self.store.items()) if r == resource])

    def fail_next(self, action: str, resource: str, status: int, times: int = 1, subresource: str | None = None) -> None:
        """The next ``times`` requests of ``action`` (list, watch, fetch, create, update, delete) on
        ``resource`` (``pods``, ``nodes``...) answer ``status`` and change nothing. ``subresource``:
        None matches the resource and its subresources alike, ``""`` the resource only."""
        self.call(lambda: self.faults.append([action, resource, subresource, status, times, 0]))

    def answer_late(self, action: str, resource: str, seconds: float, times: int = 1,
                    subresource: str | None = None) -> None:
        """The next ``times`` requests of ``action`` on ``resource`` are carried out, then answered
        ``seconds`` late (a client with a shorter timeout gives up on a request that did happen)."""
        self.call(lambda: self.faults.append([action, resource, subresource, None, times, seconds]))

    def requested(self, subresource: str) -> list[kmock.Request]:
        """The requests made so far to a subresource (``binding``, ``eviction``), as kmock recorded them."""
        return self.call(lambda: [r for r in self._requests if r.subresource == subresource])

    def verbs_used(self) -> set[tuple[str, str]]:
        """Every (RBAC verb, resource) the clients asked for so far: ``("create", "pods/binding")``."""
        def collect():
            out = {(verb, "namespaces") for verb in self.namespace_calls}
            for r in self._requests:
                if r.resource is None or r.resource.plural is None:
                    continue  # discovery, /version
                resource = r.resource.plural + (f"/{r.subresource}" if r.subresource else "")
                method = r.method.value.upper()
                if method == "GET":
                    verb = "watch" if r.params.get("watch") == "true" else "get" if r.name else "list"
                else:
                    verb = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[method]
                out.add((verb, resource))
            return out
        return self.call(collect)

    def faults_left(self) -> int:
        return self.call(lambda: sum(f[4] for f in self.faults))

    def expire(self) -> None:
        """Compact the history (as etcd does): resuming from any version seen so far answers 410,
        and every open watch ends with a 410 ``ERROR`` event."""
        async def run():
            self.compacted = self.current
            self.generation += 1
            async with self.changed:
                self.changed.notify_all()
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    # ------------------------------------------------------------ state

    def _commit(self, resource: str, key: tuple, obj: dict, kind: str) -> dict:
        rv = next(self.rv)
        self.current = rv
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(rv)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        if kind == "DELETED":
            self.store.pop(key, None)
        else:
            self.store[key] = obj
        self.history.append((rv, resource, kind, copy.deepcopy(obj)))
        if len(self.history) == self.history.maxlen:  # what fell out of the history cannot be replayed
            self.compacted = max(self.compacted, self.history[0][0] - 2)
        asyncio.ensure_future(self._notify())
        return copy.deepcopy(obj)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    @staticmethod
    def _resource(request: kmock.Request) -> str:
        return request.resource.plural

    async def __call__(self, raw_request):
        # kmock 0.8 cannot parse /api/v1/namespaces (it reads "namespaces" as the start of a
        # namespaced path): namespaces are created and read here, before its parsing
        match = _NAMESPACES.fullmatch(raw_request.path)
        if match is None:
            if not self.keep_requests:
                self._requests.clear()
            return await super().__call__(raw_request)
        name = match.group(1)
        action = "fetch" if raw_request.method == "GET" else "create"
        self.namespace_calls.append("get" if action == "fetch" else "create")
        for fault in self.faults:
            if fault[0] == action and fault[1] == "namespaces" and not fault[5]:
                fault[4] -= 1
                if fault[4] <= 0:
                    self.faults.remove(fault)
                return aiohttp.web.json_response(_status(fault[3], "InjectedFault", "as the test asked"),
                                                 status=fault[3])
        if raw_request.method == "GET" and name:
            obj = self.store.get(("namespaces", None, name))
            if obj is None:
                return aiohttp.web.json_response(_status(404, "NotFound", f'namespaces "{name}" not found'),
                                                 status=404)
            return aiohttp.web.json_response(obj)
        if raw_request.method != "POST" or name:
            return aiohttp.web.json_response(_status(405, "MethodNotAllowed", "not in the stand-in"), status=405)
        obj = await raw_request.json()
        key = ("namespaces", None, obj.get("metadata", {}).get("name"))
        if key in self.store:
            return aiohttp.web.json_response(_status(409, "AlreadyExists", f'namespaces "{key[2]}" already exists'),
                                             status=409)
        obj.setdefault("status", {})["phase"] = "Active"
        return aiohttp.web.json_response(self._commit("namespaces", key, obj, "ADDED"), status=201)

    def _selected(self, request: kmock.Request, resource: str, obj: dict) -> bool:
        meta = obj.get("metadata", {})
        if request.namespace is not None and meta.get("namespace") != request.namespace:
            return False
        if request.name is not None and meta.get("name") != request.name:
            return False
        labels = request.params.get("labelSelector")
        if labels and not _label_match(meta.get("labels") or {}, labels):
            return False
        fields = request.params.get("fieldSelector")
        return not fields or _field_match(obj, fields)

    def _faulty(self, action, handler):
        async def serve(request: kmock.Request):
            for fault in self.faults:
                name, resource, sub, status, _, delay = fault
                if name == action.value.lower() and resource == self._resource(request) and \
                        (sub is None or sub == (request.subresource or "")):
                    fault[4] -= 1
                    if fault[4] <= 0:
                        self.faults.remove(fault)
                    if delay:  # done, but answered too late for the client
                        answer = await handler(request)
                        await asyncio.sleep(delay)
                        return answer
                    raise kmock.KubernetesError(status=status, reason="InjectedFault",
                                                message=f"the stand-in answers {status} to this {name}, as the test asked")
            return await handler(request)
        return serve

    # ------------------------------------------------------------ handlers

    async def _list(self, request: kmock.Request):
        resource = self._resource(request)
        items = [copy.deepcopy(o) for (r, _, _), o in sorted(self.store.items())
                 if r == resource and self._selected(request, resource, o)]
        return {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.current)},
                "items": items}

    async def _fetch(self, request: kmock.Request):
        if request.subresource == "log":  # what the container wrote (the test sets it: logs[(ns, name)])
            if ("pods", request.namespace, request.name) not in self.store:
                raise kmock.KubernetesError(status=404, reason="NotFound", message=f"{request.name} not found")
            text = self.logs.get((request.namespace, request.name), "")
            if request.params.get("timestamps") == "true":  # as the kubelet: RFC 3339, trailing zeros cut
                text = "".join(f"{log_time(i)} {line}" for i, line in enumerate(text.splitlines(keepends=True)))
            return text.encode()
        obj = self.store.get((self._resource(request), request.namespace, request.name))
        if obj is None:
            raise kmock.KubernetesError(status=404, reason="NotFound", message=f"{request.name} not found")
        return copy.deepcopy(obj)

    async def _create(self, request: kmock.Request):
        resource = self._resource(request)
        if request.subresource == "binding":
            return self._bind(request)
        if request.subresource == "eviction":
            return self._evict(request)
        obj = copy.deepcopy(request.data or {})
        meta = obj.setdefault("metadata", {})
        if request.namespace is not None:
            meta["namespace"] = request.namespace
        key = (resource, meta.get("namespace"), meta.get("name"))
        if key in self.store:
            raise kmock.KubernetesError(status=409, reason="AlreadyExists",
                                        message=f'{resource} "{meta.get("name")}" already exists')
        for server_set in ("uid", "resourceVersion", "creationTimestamp"):
            meta.pop(server_set, None)
        if resource == "pods":
            obj.setdefault("status", {})["phase"] = "Pending"
        return kmock.Response(status=201, payload=self._commit(resource, key, obj, "ADDED"))

    def _bind(self, request: kmock.Request):
        key = ("pods", request.namespace, request.name)
        pod = self.store.get(key)
        if pod is None:
            raise kmock.KubernetesError(status=404, reason="NotFound", message=f'pods "{request.name}" not found')
        if pod.get("spec", {}).get("nodeName"):
            raise kmock.KubernetesError(status=409, reason="Conflict",
                                        message=f"pod {request.name} is already assigned to node "
                                                f"{pod['spec']['nodeName']!r}")
        target = (request.data or {}).get("target", {}).get("name")
        pod = copy.deepcopy(pod)
        pod["spec"]["nodeName"] = target
        self._commit("pods", key, pod, "MODIFIED")
        return kmock.Response(status=201, payload={"kind": "Status", "apiVersion": "v1", "status": "Success",
                                                   "code": 201, "metadata": {}})

    def _evict(self, request: kmock.Request):
        key = ("pods", request.namespace, request.name)
        pod = self.store.get(key)
        if pod is None:
            raise kmock.KubernetesError(status=404, reason="NotFound", message=f'pods "{request.name}" not found')
        self._commit("pods", key, copy.deepcopy(pod), "DELETED")
        return kmock.Response(status=201, payload={"kind": "Status", "apiVersion": "v1", "status": "Success",
                                                   "code": 201, "metadata": {}})

    async def _update(self, request: kmock.Request):
        resource = self._resource(request)
        key = (resource, request.namespace, request.name)
        obj = self.store.get(key)
        if obj is None:
            raise kmock.KubernetesError(status=404, reason="NotFound", message=f"{request.name} not found")
        data = request.data or {}
        if request.method == kmock.method.PUT:
            given = data.get("metadata", {}).get("resourceVersion")
            if given and given != obj["metadata"]["resourceVersion"]:
                raise kmock.KubernetesError(status=409, reason="Conflict",
                                            message="the object has been modified; please apply your changes "
                                                    "to the latest version and try again")
            new = copy.deepcopy(data)
            for kept in ("uid", "creationTimestamp", "namespace"):
                new.setdefault("metadata", {})[kept] = obj["metadata"].get(kept)
        else:
            new = _merge(copy.deepcopy(obj), data)
        return self._commit(resource, key, new, "MODIFIED")

    async def _delete(self, request: kmock.Request):
        resource = self._resource(request)
        key = (resource, request.namespace, request.name)
        obj = self.store.get(key)
        if obj is None:
            raise kmock.KubernetesError(status=404, reason="NotFound", message=f"{request.name} not found")
        return self._commit(resource, key, copy.deepcopy(obj), "DELETED")

    async def _watch(self, request: kmock.Request):
        return self._stream(request)

    async def _stream(self, request: kmock.Request):
        resource = self._resource(request)
        given = request.params.get("resourceVersion")
        timeout = float(request.params.get("timeoutSeconds") or 0) or None
        bookmarks = request.params.get("allowWatchBookmarks") == "true"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        generation = self.generation
        yield b""  # the headers go out now, even if nothing happens for a while
        if given in (None, "", "0"):
            seen = self.current
            for (r, _, _), obj in sorted(self.store.items()):
                if r == resource and self._selected(request, resource, obj):
                    yield {"type": "ADDED", "object": copy.deepcopy(obj)}
        else:
            seen = int(given)
            if seen <= self.compacted:
                yield {"type": "ERROR", "object": _status(410, "Expired", f"too old resource version: {seen} "
                                                                         f"({self.compacted + 1})")}
                return
        while True:
            for rv, r, kind, obj in list(self.history):
                if rv > seen and r == resource:
                    seen = rv
                    if self._selected(request, resource, obj):
                        yield {"type": kind, "object": copy.deepcopy(obj)}
            seen = max(seen, self.current)
            if self.closing:
                return
            if self.generation != generation:
                yield {"type": "ERROR", "object": _status(410, "Expired", "the watch's history was compacted")}
                return
            wait = self.bookmark_seconds if bookmarks else 1.0
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    return
            try:
                async with self.changed:
                    await asyncio.wait_for(self.changed.wait(), wait)
            except asyncio.TimeoutError:
                if bookmarks:
                    yield {"type": "BOOKMARK", "object": {"kind": "Pod" if resource == "pods" else "Node",
                                                          "apiVersion": "v1",
                                                          "metadata": {"resourceVersion": str(self.current)}}}


class running_stand_in:
    """``with running_stand_in() as api:`` the stand-in served on loopback from a daemon thread;
    ``api.host`` is its address, for ``Configuration(host=...)``."""

    def __init__(self) -> None:
        self.api: KubeStandIn | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="kube-stand-in", daemon=True)
        self.url = ""

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with KubeStandIn() as api, kmock.Server(api) as server:
            api.loop = asyncio.get_running_loop()
            self.api = api
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            api.closing = True  # open watches end now, so that the server stops at once
            await api._notify()

    def __enter__(self) -> KubeStandIn:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the API server stand-in did not start")
        assert self.api is not None
        self.api.host = self.url
        return self.api

    def __exit__(self, *exc) -> None:
        assert self.api is not None and self.api.loop is not None and self._stop is not None
        self.api.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


# ---------------------------------------------------------------- what tests put on the cluster


def gpu_node(name: str, gpus: int = 4, labels: dict | None = None, **spec: Any) -> dict:
    """A Ready GPU node as the device plugin and GPU feature discovery label it (H100s, 80 GiB)."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                                              "nvidia.com/gpu.memory": "81559", **(labels or {})}},
        "spec": spec,
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": str(gpus)},
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }


def other_pod(name: str, node: str, gpus: int, cpu: str = "2", phase: str = "Running") -> dict:
    """A pod of another scheduler (a Deployment's, say), bound and holding resources."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "team-x"},
            "spec": {"nodeName": node, "schedulerName": "default-scheduler",
                     "containers": [{"name": "c", "image": "nginx", "resources": {
                         "requests": {"cpu": cpu, "memory": "1Gi"}, "limits": {"nvidia.com/gpu": str(gpus)}}}]},
            "status": {"phase": phase}}


def kubelet_runs(api: KubeStandIn, namespace: str, name: str, ready: bool = True, ip: str = "10.1.2.3") -> None:
    """What the kubelet reports once the pod's container runs (and, with ``ready``, passes its probes)."""
    api.patch("pods", namespace, name, {"status": {
        "phase": "Running", "podIP": ip,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [{"name": "main", "ready": ready, "state": {"running": {}}}]}})


@pytest.fixture
def kube():
    """The stand-in, serving, with one 4-GPU node ``gpu-a``."""
    with running_stand_in() as stand_in:
        stand_in.put("nodes", gpu_node("gpu-a"))
        yield stand_in
