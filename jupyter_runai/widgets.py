"""ipywidgets for notebooks (docs/widgets.md): submit, watch and manage GPU workloads.

    from jupyter_runai.widgets import SubmitForm, WorkloadMonitor, QuotaView, GpuView
    SubmitForm()          # the sidebar's form: fields, defaults and bounds from the server's /info
    WorkloadMonitor()     # a live table of workloads with stop / resume / delete / logs
    QuotaView()           # deserved, allocated, fair share and limit per project
    GpuView()             # each device: its allocated fraction, memory, utilization and pods

Every widget talks to the server through :class:`jupyter_runai.client.Client` (found as the
client finds it, or pass ``client=Client(url, token)``). The live ones follow the server's
event stream in a background thread and read the server again on each event; ``close()`` (or
closing the output) stops that thread. ``refresh()`` reads again at once.
"""

from __future__ import annotations

import socket
import threading
from html import escape
from typing import Any, Callable

import ipywidgets as widgets

from .client import (Client, RunaiClient, RunaiError, Workload, _request_text, _text_chunks, kind_text,
                     node_view_refusal, parse_sse)
from .log_text import as_terminal

__all__ = ["EventListener", "GpuView", "QuotaView", "SubmitForm", "WorkloadMonitor"]

#: seconds to wait before opening the event stream again after it broke
RECONNECT_SECONDS = 1.0


def _error_html(error: BaseException) -> str:
    field, allowed = getattr(error, "field", None), getattr(error, "allowed", None)
    text = str(getattr(error, "message", None) or error)
    if field and not text.startswith(str(field)):
        text = f"{field}: {text}"
    if allowed not in (None, "", []) and "allowed" not in text:
        text += " (allowed: " + (", ".join(map(str, allowed)) if isinstance(allowed, list) else str(allowed)) + ")"
    return f"<span style='color:var(--jp-error-color1, #c62828)'>{escape(text)}</span>"


def _shutdown(response: Any) -> None:
    """Close a streamed answer from another thread: shut its socket down, so that a read blocked
    on it returns at once (closing the file alone does not wake it on Linux)."""
    raw = getattr(response, "raw", None)
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        sock = getattr(getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    try:
        response.close()
    except Exception:  # noqa: BLE001 - closing a broken stream
        pass


class EventListener:
    """Calls ``on_event(event)`` for each event of the server's stream (of one project, or all),
    in a daemon thread, until :meth:`stop`. A broken stream is opened again after the last event
    taken (``Last-Event-ID``), so no event is missed while the widget is shown. Each time the
    stream opens, ``on_event({"type": "connected"})`` too: what happened before that reached
    no stream, and a view reads the server again."""

    def __init__(self, api: RunaiClient, on_event: Callable[[dict[str, Any]], None],
                 project: str | None = None) -> None:
        self._api, self._on_event, self._project = api, on_event, project
        self._stopped = threading.Event()
        self._response: Any = None
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._run, name="runai-widget-events", daemon=True)
        self.thread.start()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        last: Any = None
        while not self._stopped.is_set():
            try:
                headers = {"Accept": "text/event-stream"}
                if last is not None:
                    headers["Last-Event-ID"] = str(last)
                response = self._api.request("GET", "events", params={"project": self._project}, stream=True,
                                             headers=headers, timeout=(self._api.timeout[0], None))
                self._response = response
                if self._stopped.is_set():
                    break
                self.connected.set()
                # what happened between the view's first read (or the break) and this connection
                # reached no stream: a read now catches up (the stream has everything after it)
                self._on_event({"type": "connected"})
                for event in parse_sse(_text_chunks(response)):
                    if self._stopped.is_set():
                        return
                    if event.get("id") is not None:
                        last = event["id"]
                    if event.get("type") == "overflow":
                        break  # reopened after the last event taken
                    self._on_event(event)
            except Exception:  # noqa: BLE001 - the server went away or the stream broke: try again
                pass
            finally:
                if self._response is not None:
                    _shutdown(self._response)
                    self._response = None
            self._stopped.wait(RECONNECT_SECONDS)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening; returns once the thread has ended (or after ``timeout`` seconds)."""
        self._stopped.set()
        response = self._response
        if response is not None:
            _shutdown(response)
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)


class _LiveView(widgets.VBox):
    """A view that reads the server on start, on each event and on ``refresh()``: each view
    (the monitor, the quota and GPU views) reads and draws in its own ``_render()``."""

    _render: Callable[[], None]

    def __init__(self, client: Client | None = None, *, project: str | None = None, live: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client or Client()
        self.project = project
        self.message = widgets.HTML(value="")
        self._lock = threading.RLock()
        self.refresh()
        self.listener: EventListener | None = None
        self._wake, self._closed = threading.Event(), threading.Event()
        self._refresher: threading.Thread | None = None
        if live:
            # events wake a second thread that reads the server: a burst of events while it reads
            # makes one more read, not one per event
            self._refresher = threading.Thread(target=self._refresh_loop, name="runai-widget-refresh",
                                               daemon=True)
            self._refresher.start()
            self.listener = EventListener(self.client.api, self._on_event, project)

    def _on_event(self, event: dict[str, Any]) -> None:
        self._wake.set()

    def _refresh_loop(self) -> None:
        while True:
            self._wake.wait()
            if self._closed.is_set():
                return
            self._wake.clear()
            self.refresh()

    def refresh(self) -> None:
        """Read the server again and show what it says (an error shows in the view's message)."""
        with self._lock:
            try:
                self._render()
            except RunaiError as error:
                self.message.value = _error_html(error)

    @property
    def listening(self) -> bool:
        """Whether it still follows the event stream (false once closed)."""
        return (self.listener is not None and self.listener.alive) or (
            self._refresher is not None and self._refresher.is_alive())

    def close(self) -> None:
        """Stop following the event stream and close the widgets."""
        self._closed.set()
        self._wake.set()
        if self.listener is not None:
            self.listener.stop()
        if self._refresher is not None and self._refresher is not threading.current_thread():
            self._refresher.join(5.0)
        for child in list(self.children):
            child.close()
        super().close()


# --------------------------------------------------------------------------- workloads


class WorkloadMonitor(_LiveView):
    """A live table of workloads (of ``project``, by default the client's; ``all_projects=True``:
    every one) with stop / resume / delete / logs on each row. ``rows`` maps ``project/name`` to
    the row's widgets (``phase``, ``why``, ``stop``, ...); ``logs`` shows the log a row's button
    asked for."""

    COLUMNS = ("name", "kind", "phase", "request", "why")

    def __init__(self, client: Client | None = None, *, project: str | None = None, all_projects: bool = False,
                 live: bool = True, **kwargs: Any) -> None:
        self.all_projects = all_projects
        self.rows: dict[str, dict[str, widgets.Widget]] = {}
        self.table = widgets.VBox()
        self.logs_title = widgets.HTML(value="")
        self.logs = widgets.Textarea(value="", disabled=True, layout=widgets.Layout(width="100%", height="12em",
                                                                                     display="none"))
        #: the time each log line arrived, in front of it (the server's ?timestamps=true); read again when changed
        self.timestamps = widgets.Checkbox(value=False, description="timestamps", indent=False,
                                           tooltip="show the time each line arrived (UTC)",
                                           layout=widgets.Layout(width="auto", display="none"))
        self.timestamps.observe(lambda _change: self._show_logs(), names="value")
        self._logs_of: Workload | None = None
        client = client or Client()
        project = None if all_projects else (project or client.project)
        super().__init__(client, project=project, live=live, **kwargs)
        header = widgets.HBox([widgets.HTML(f"<b>{c}</b>", layout=self._cell_layout(c)) for c in self.COLUMNS])
        self.children = (header, self.table, self.message, widgets.HBox([self.logs_title, self.timestamps]),
                         self.logs)

    @staticmethod
    def _cell_layout(column: str) -> widgets.Layout:
        width = {"name": "14em", "kind": "7em", "phase": "7em", "request": "9em", "why": "24em"}[column]
        return widgets.Layout(width=width, overflow="hidden")

    def _render(self) -> None:
        workloads = self.client.workloads(self.project, all_projects=self.all_projects)
        seen = []
        for w in workloads:
            key = f"{w.project}/{w.name}"
            seen.append(key)
            row = self.rows.get(key) or self._new_row(key)
            values = {"name": w.name, "kind": kind_text(w.data), "phase": w.phase or "", "request":
                      _request_text(w.spec), "why": w.pending_reason or w.message or ""}
            for column, value in values.items():
                if row[column].value != value:
                    row[column].value = value
            phase = w.phase or ""
            row["stop"].disabled = phase not in ("Pending", "Running")
            row["resume"].disabled = phase not in ("Stopped", "Succeeded", "Failed")
            row["delete"].disabled = phase == "Deleting"
        for key in [k for k in self.rows if k not in seen]:
            for widget in self.rows.pop(key).values():
                widget.close()
        boxes = tuple(self.rows[key]["box"] for key in seen)
        if self.table.children != boxes:
            self.table.children = boxes
        self.message.value = "" if workloads else "<i>No workloads.</i>"

    def _new_row(self, key: str) -> dict[str, widgets.Widget]:
        project, name = key.split("/", 1)
        row: dict[str, widgets.Widget] = {c: widgets.Label(value="", layout=self._cell_layout(c))
                                          for c in self.COLUMNS}
        for action, icon in (("stop", "stop"), ("resume", "play"), ("delete", "trash"), ("logs", "file-text")):
            button = widgets.Button(description=action, icon=icon, tooltip=f"{action} {name}",
                                    layout=widgets.Layout(width="auto", flex="0 0 auto"))
            button.on_click(lambda _button, action=action: self.act(action, name, project))
            row[action] = button
        row["box"] = widgets.HBox([row[c] for c in self.COLUMNS] + [row[a] for a in ("stop", "resume", "delete",
                                                                                      "logs")])
        self.rows[key] = row
        return row

    def act(self, action: str, name: str, project: str | None = None) -> None:
        """What a row's button does: ``stop``, ``resume``, ``delete`` or ``logs`` (the last 200
        lines, shown below the table as a terminal would show them: progress bars redrawn with
        ``\r`` show their last state, colour codes are taken out; ``timestamps`` puts each line's
        time in front). A refusal shows in the view's message."""
        workload = Workload(self.client, {"spec": {"name": name, "project": project or self.client.project}})
        try:
            if action == "logs":
                self.logs_title.value = f"<b>logs of {escape(workload.project)}/{escape(name)}</b> (last 200 lines)"
                self._logs_of = workload
                self._show_logs()
                self.logs.layout.display = self.timestamps.layout.display = ""
                return
            getattr(workload, action)()
        except RunaiError as error:
            self.message.value = _error_html(error)
            return
        self.refresh()

    def _show_logs(self) -> None:
        if self._logs_of is None:
            return
        stamped = self.timestamps.value
        try:
            text = self._logs_of.logs(tail=200, timestamps=stamped) or ""
        except RunaiError as error:
            self.message.value = _error_html(error)
            return
        self.logs.value = as_terminal(text, stamped=stamped)


# --------------------------------------------------------------------------- quotas and GPUs


def _gpu_amount(value: Any) -> float:
    if isinstance(value, dict):
        value = value.get("gpu")
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


class QuotaView(_LiveView):
    """Per project: GPUs allocated against deserved (a bar), fair share and limit. ``bars`` maps a
    project to its bar (value: allocated GPUs, max: the larger of deserved and allocated);
    ``labels`` to its line of text."""

    def __init__(self, client: Client | None = None, *, live: bool = True, **kwargs: Any) -> None:
        self.bars: dict[str, widgets.FloatProgress] = {}
        self.labels: dict[str, widgets.Label] = {}
        self.table = widgets.VBox()
        super().__init__(client, live=live, **kwargs)
        self.children = (widgets.HTML("<b>GPU quota per project</b>"), self.table, self.message)

    def _render(self) -> None:
        boxes = []
        for project in self.client.projects():
            data = project.data
            name = data.get("name", "")
            deserved, allocated = _gpu_amount(data.get("deserved")), _gpu_amount(data.get("allocated"))
            fair = data.get("fair_share")
            limit = (data.get("limit") or {}).get("gpu") if isinstance(data.get("limit"), dict) else data.get("limit")
            if name not in self.bars:
                self.bars[name] = widgets.FloatProgress(min=0.0, max=1.0, description=name,
                                                        layout=widgets.Layout(width="24em"))
                self.labels[name] = widgets.Label()
            bar = self.bars[name]
            bar.max = max(deserved, allocated, 1e-9)
            bar.value = allocated
            bar.bar_style = "warning" if allocated > deserved else "success"
            text = f"allocated {allocated:g} of deserved {deserved:g} GPU"
            if fair is not None:
                text += f", fair share {_gpu_amount(fair):g}"
            text += f", limit {limit:g}" if isinstance(limit, (int, float)) else ", no limit"
            self.labels[name].value = text
            boxes.append(widgets.HBox([bar, self.labels[name]]))
        self.table.children = tuple(boxes)
        self.message.value = "" if boxes else "<i>No projects.</i>"


class GpuView(_LiveView):
    """Each GPU device of each node: its allocated fraction (a bar from 0 to 1), its memory and
    utilization (where NVML reports them), and the pods on it. ``bars`` maps ``node/index`` to
    its bar, ``labels`` to its line of text."""

    def __init__(self, client: Client | None = None, *, live: bool = True, **kwargs: Any) -> None:
        self.bars: dict[str, widgets.FloatProgress] = {}
        self.labels: dict[str, widgets.Label] = {}
        self.table = widgets.VBox()
        super().__init__(client, live=live, **kwargs)
        self.children = (widgets.HTML("<b>GPUs</b>"), self.table, self.message)

    def _render(self) -> None:
        boxes = []
        try:
            nodes = self.client.nodes()
        except RunaiError as error:
            refusal = node_view_refusal(error)
            if refusal is None:
                raise
            self.table.children = ()
            self.message.value = f"<i>{escape(refusal)}</i>"
            return
        for node in nodes:
            for device in node.data.get("devices") or []:
                key = f"{node.data.get('name')}/{device.get('index')}"
                if key not in self.bars:
                    self.bars[key] = widgets.FloatProgress(min=0.0, max=1.0, description=key,
                                                           layout=widgets.Layout(width="24em"))
                    self.labels[key] = widgets.Label()
                fraction = float(device.get("allocated_fraction") or 0)
                self.bars[key].value = min(fraction, 1.0)
                self.bars[key].bar_style = "danger" if fraction >= 1 else "info"
                parts = [f"{fraction:g} allocated", f"{device.get('model', 'GPU')} {device.get('memory', '')}".strip()]
                if device.get("virtual"):
                    parts.append("virtual: utilization and memory use not measured")
                if device.get("utilization") is not None:
                    parts.append(f"utilization {device['utilization']}%")
                if device.get("used_memory") is not None:
                    parts.append(f"memory used {device['used_memory']}")
                pods = [p.get("pod") or p.get("name") or str(p) if isinstance(p, dict) else str(p)
                        for p in device.get("pods") or []]
                if pods:
                    parts.append("pods: " + ", ".join(map(str, pods)))
                self.labels[key].value = "; ".join(parts)
                boxes.append(widgets.HBox([self.bars[key], self.labels[key]]))
        self.table.children = tuple(boxes)
        self.message.value = "" if boxes else "<i>No GPUs.</i>"


# --------------------------------------------------------------------------- submit


class SubmitForm(widgets.VBox):
    """The submit form: the same fields, defaults and bounds as the sidebar's "New workload" form,
    read from the server's ``/info`` (``form``). ``submit()`` (the button) sends it; ``workload``
    is the last one submitted, ``message`` says what happened (the server's error, its field and
    what it allows, when refused). ``spec()`` is the ``WorkloadSpec`` the fields make."""

    def __init__(self, client: Client | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client or Client()
        info = self.client.info()
        form = info.get("form") or {}
        self.form = form
        defaults, bounds = form.get("defaults") or {}, form.get("bounds") or {}
        kinds = form.get("kinds") or [{"name": k, "label": k, "fields": []} for k in info.get("kinds", [])]
        self.kind_fields = {k["name"]: list(k.get("fields") or []) for k in kinds}
        self.commands = defaults.get("commands") or {}
        self.workload: Workload | None = None
        style = {"description_width": "9em"}
        wide = widgets.Layout(width="36em")

        def bounded_int(key: str, bound: str, description: str) -> widgets.BoundedIntText:
            b = bounds.get(bound) or {}
            return widgets.BoundedIntText(value=int(defaults.get(key) or b.get("min") or 0),
                                          min=int(b.get("min") or 0), max=int(b.get("max") or 1_000_000),
                                          description=description, style=style)

        self.kind = widgets.Dropdown(options=[(k.get("label") or k["name"], k["name"]) for k in kinds],
                                     value=defaults.get("kind", kinds[0]["name"] if kinds else None),
                                     description="kind", style=style, layout=wide)
        self.name = widgets.Text(value="", placeholder="(a name is made for you)", description="name", style=style)
        projects = info.get("projects") or [defaults.get("project", self.client.project)]
        self.project = widgets.Dropdown(options=projects, value=defaults.get("project", projects[0]),
                                        description="project", style=style)
        self.gpu_mode = widgets.ToggleButtons(options=[("whole GPUs", "whole"), ("fraction", "fraction"),
                                                       ("GPU memory", "memory")],
                                              value=defaults.get("gpu_mode", "whole"), description="GPU",
                                              style=style)
        self.gpu = bounded_int("gpu", "gpu", "GPUs")
        fraction = bounds.get("fraction") or {}
        self.fraction = widgets.BoundedFloatText(value=float(defaults.get("fraction") or 0.5),
                                                 min=float(fraction.get("min") or 0.01),
                                                 max=float(fraction.get("max") or 1.0), step=0.05,
                                                 description="fraction", style=style)
        self.gpu_memory = widgets.Text(value=defaults.get("gpu_memory") or "", description="GPU memory",
                                       placeholder=f"max {(bounds.get('gpu_memory') or {}).get('max')}", style=style)
        self.gpu_devices = bounded_int("gpu_devices", "gpu_devices", "devices")
        self.cpu = widgets.Text(value=str(defaults.get("cpu") or ""), description="CPU", style=style,
                                placeholder=f"max {(bounds.get('cpu') or {}).get('max')}")
        self.memory = widgets.Text(value=str(defaults.get("memory") or ""), description="memory", style=style,
                                   placeholder=f"max {(bounds.get('memory') or {}).get('max')}")
        self.image = widgets.Text(value=defaults.get("image") or "", description="image", style=style)
        self.command = widgets.Textarea(value=self.commands.get(self.kind.value, ""), description="command",
                                        style=style, layout=wide)
        self.workers = bounded_int("workers", "workers", "workers")
        self.min_replicas = bounded_int("min_replicas", "replicas", "min replicas")
        self.max_replicas = bounded_int("max_replicas", "replicas", "max replicas")
        self.backoff_limit = bounded_int("backoff_limit", "backoff_limit", "backoff limit")
        # "" (not None: a Dropdown's None is no selection, shown blank) is the kind's own class
        self.priority_class = widgets.Dropdown(options=[("(by kind)", "")] + [(c, c) for c in
                                                                               form.get("priority_classes") or []],
                                               value="", description="priority", style=style)
        self.button = widgets.Button(description="Submit", button_style="primary", icon="play")
        self.message = widgets.HTML(value="")
        self.button.on_click(lambda _button: self.submit())
        self.kind.observe(self._kind_changed, names="value")
        self.project.observe(lambda _change: self.apply_policy(), names="value")
        self.gpu_mode.observe(lambda _change: self._show_fields(), names="value")
        self.per_kind = {"workers": self.workers, "min_replicas": self.min_replicas,
                         "max_replicas": self.max_replicas, "backoff_limit": self.backoff_limit}
        self.children = (self.kind, self.name, self.project, self.gpu_mode, self.gpu, self.fraction,
                         self.gpu_memory, self.gpu_devices, self.cpu, self.memory, self.image, self.command,
                         self.workers, self.min_replicas, self.max_replicas, self.backoff_limit,
                         self.priority_class, self.button, self.message)
        self.policy: dict[str, Any] = {}
        self._shown = dict(defaults)  # the defaults the fields were last given (apply_policy)
        self.apply_policy()
        self._show_fields()

    def _kind_changed(self, change: dict[str, Any]) -> None:
        old, new = change["old"], change["new"]
        if self.command.value.strip() in ("", self.commands.get(old, "")):  # untouched: the new kind's
            self.command.value = self.commands.get(new, "")
        self.apply_policy()
        self._show_fields()

    def apply_policy(self) -> None:
        """Take the defaults and bounds of the effective policy of the chosen project and kind
        (``GET policies/effective``; the server narrows the form): a field still at the previous
        default gets the new one, what the user typed stays, and every bound follows."""
        try:
            self.policy = self.client.api.effective_policy(self.kind.value, self.project.value)
        except RunaiError:
            self.policy = {}  # an older server: the form's own defaults; the server checks at submit
        form = self.policy.get("form") or self.form
        defaults, bounds = form.get("defaults") or {}, form.get("bounds") or {}
        for key, widget in (("gpu_mode", self.gpu_mode), ("gpu", self.gpu), ("fraction", self.fraction),
                            ("gpu_memory", self.gpu_memory), ("cpu", self.cpu), ("memory", self.memory),
                            ("image", self.image), ("workers", self.workers), ("min_replicas", self.min_replicas),
                            ("max_replicas", self.max_replicas), ("backoff_limit", self.backoff_limit)):
            bound = bounds.get({"min_replicas": "replicas", "max_replicas": "replicas"}.get(key, key)) or {}
            if isinstance(widget, (widgets.BoundedIntText, widgets.BoundedFloatText)):
                kind = int if isinstance(widget, widgets.BoundedIntText) else float
                low, high = kind(bound.get("min", widget.min)), kind(bound.get("max", widget.max))
                if low > widget.max:  # min never above max, in between as after
                    widget.max, widget.min = high, low
                else:
                    widget.min, widget.max = low, high
            new = defaults.get(key)
            if key == "gpu_mode" and new == "none":
                new = None  # this form asks for a GPU in some form; "none" keeps the mode
            old = self._shown.get(key)
            if new is not None and new != old and widget.value in (old, str(old) if old is not None else ""):
                widget.value = new if not isinstance(widget, widgets.Text) else str(new)
            self._shown[key] = new if new is not None else old
        classes = form.get("priority_classes")
        if classes is not None:
            chosen = self.priority_class.value
            self.priority_class.options = [("(by kind)", "")] + [(c, c) for c in classes]
            self.priority_class.value = chosen if chosen in classes else ""
        for key in ("cpu", "memory", "gpu_memory"):
            most = (bounds.get(key) or {}).get("max")
            getattr(self, key).placeholder = f"max {most}" if most else ""

    def _show_fields(self) -> None:
        fields = self.kind_fields.get(self.kind.value, [])
        for key, widget in self.per_kind.items():
            widget.layout.display = "" if key in fields else "none"
        mode = self.gpu_mode.value
        self.gpu.layout.display = "" if mode == "whole" else "none"
        self.fraction.layout.display = "" if mode == "fraction" else "none"
        self.gpu_memory.layout.display = "" if mode == "memory" else "none"
        self.gpu_devices.layout.display = "" if mode != "whole" else "none"

    def spec(self) -> dict[str, Any]:
        """The ``WorkloadSpec`` the fields make (only what is set; the server checks everything)."""
        resources: dict[str, Any] = {}
        mode = self.gpu_mode.value
        if mode == "whole":
            resources["gpu"] = self.gpu.value
        elif mode == "fraction":
            resources["gpu"] = self.fraction.value
        else:
            resources["gpu_memory"] = self.gpu_memory.value.strip()
        if mode != "whole" and self.gpu_devices.value > 1:
            resources["gpu_devices"] = self.gpu_devices.value
        for key, widget in (("cpu", self.cpu), ("memory", self.memory)):
            if widget.value.strip():
                resources[key] = widget.value.strip()
        spec: dict[str, Any] = {"kind": self.kind.value, "project": self.project.value, "resources": resources}
        if self.name.value.strip():
            spec["name"] = self.name.value.strip()
        if self.image.value.strip():
            spec["image"] = self.image.value.strip()
        if self.command.value.strip():
            spec["command"] = self.command.value.strip()
        if self.priority_class.value:
            spec["priority_class"] = self.priority_class.value
        for key in self.kind_fields.get(self.kind.value, []):
            if key in self.per_kind:
                spec[key] = self.per_kind[key].value
        return spec

    def submit(self) -> Workload | None:
        """Send the form; returns the new workload (``None`` when refused: ``message`` says why)."""
        try:
            self.workload = self.client.submit(spec=self.spec())
        except RunaiError as error:
            self.message.value = _error_html(error)
            return None
        w = self.workload
        self.message.value = (f"Submitted {escape(w.kind)} <b>{escape(w.name)}</b> in project "
                              f"{escape(w.project)}: {escape(w.phase or '')}")
        return w
