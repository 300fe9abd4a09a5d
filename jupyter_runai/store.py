"""The scheduler service's persistent state: one SQLite file, plus a directory of secrets.

``Store(path)`` opens (or creates) the database at ``path`` in WAL mode, with
owner-only permissions, and brings its schema up to date by running the
migrations it lacks. Every write is one transaction: a write that fails leaves
what was stored before untouched, and whatever was committed survives a crash
of the process. Models are stored as their JSON; the columns next to it are
only what lists filter and order by.

Secret values of credentials never enter the database: each credential is a
file ``<state dir>/secrets/<project>/<name>.json`` (mode 0600, directories
0700, written atomically), where the state directory is the database's
directory. The database keeps only the public view (keys, never values).

One connection, guarded by a lock: safe to share between the threads of one
process (the service uses it from its event loop thread). See docs/store.md.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sqlite3
import tempfile
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from pydantic import ValidationError

from .errors import InsufficientStorage, Unavailable
from .models import (
    Credential,
    CredentialView,
    DataSource,
    Department,
    Event,
    EventType,
    NodePool,
    Project,
    Workload,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadStatus,
    is_dns_label,
)
from .models.access import RoleBinding
from .models.validation import format_validation_error
from .models.quantity import STORED
from .models.policy import Policy

__all__ = ["SCHEMA_VERSION", "AlreadyExists", "InUse", "NotFound", "Store", "StoreError", "StoreFull",
           "StoreWriteError"]

log = logging.getLogger(__name__)


class StoreError(Exception):
    """Base of the errors the store raises on purpose."""


class AlreadyExists(StoreError):
    """An object with that name is already stored (REST: 409)."""


class NotFound(StoreError, KeyError):
    """No such object (REST: 404). Also a ``KeyError``."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InUse(StoreError):
    """The object cannot be deleted while others refer to it (REST: 409)."""


class StoreWriteError(StoreError, Unavailable):
    """A write could not be committed (the database is locked, a disk I/O error): it was
    rolled back, nothing of it is stored (REST: 503, try again)."""


class StoreFull(StoreWriteError, InsufficientStorage):
    """The disk (or the database's size limit) is full: the write was rolled back, nothing
    of it is stored (REST: 507)."""

    status = 507


_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _write_error(exc: BaseException, path: Path) -> StoreWriteError | None:
    """The error to raise for a failed write, or None when ``exc`` is not about storage."""
    if isinstance(exc, StoreError):
        return None
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        full = True
    elif isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
            exc, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc).lower()
    else:
        return None
    if full:
        return StoreFull(f"the disk holding the scheduler's state ({path.parent}) is full; nothing was "
                         f"changed. Free some space and try again ({exc})")
    return StoreWriteError(f"the scheduler's state ({path}) could not be saved; nothing was changed. "
                           f"Try again ({exc})")


# ------------------------------------------------------------------ schema
#
# One function per schema version, in order: MIGRATIONS[i] takes a database at
# version i to version i + 1, inside one transaction with the version bump. A
# schema change is a new function appended here; never edit an old one.


def _v1_queues_workloads_events(db: sqlite3.Connection) -> None:
    """Version 1: departments, projects, workloads (queue order), events."""
    db.execute("CREATE TABLE departments (name TEXT PRIMARY KEY, body TEXT NOT NULL)")
    db.execute("CREATE TABLE projects (name TEXT PRIMARY KEY, body TEXT NOT NULL)")
    # seq: the queue order. AUTOINCREMENT: never reused, even after a delete.
    db.execute(
        """CREATE TABLE workloads (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            uid TEXT NOT NULL UNIQUE,
            project TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            phase TEXT NOT NULL,
            body TEXT NOT NULL,
            UNIQUE (project, name))"""
    )
    db.execute("CREATE INDEX workloads_by_phase ON workloads (phase, seq)")
    db.execute("CREATE INDEX workloads_by_kind ON workloads (kind, seq)")
    # (project, name) is already indexed by its UNIQUE constraint, and serves project filters.
    db.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            type TEXT NOT NULL,
            project TEXT,
            workload TEXT,
            pod TEXT,
            message TEXT NOT NULL)"""
    )
    db.execute("CREATE INDEX events_by_workload ON events (project, workload, id)")


def _v2_pod_handles_data_credentials(db: sqlite3.Connection) -> None:
    """Version 2: pod handles (re-adopting pods after a restart), data sources, credentials."""
    db.execute(
        """CREATE TABLE pod_handles (
            workload_uid TEXT NOT NULL,
            pod TEXT NOT NULL,
            handle TEXT NOT NULL,
            PRIMARY KEY (workload_uid, pod))"""
    )
    db.execute(
        "CREATE TABLE data_sources (project TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, "
        "PRIMARY KEY (project, name))"
    )
    # body: the credential's public view; values live in the secrets directory.
    db.execute(
        "CREATE TABLE credentials (project TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, "
        "PRIMARY KEY (project, name))"
    )


def _v3_quarantined_workloads(db: sqlite3.Connection) -> None:
    """Version 3: workloads whose stored row could not be loaded, kept aside (never dropped)."""
    db.execute(
        """CREATE TABLE quarantined_workloads (
            seq INTEGER PRIMARY KEY,
            uid TEXT NOT NULL,
            project TEXT NOT NULL,
            name TEXT NOT NULL,
            body TEXT NOT NULL,
            reason TEXT NOT NULL,
            at TEXT NOT NULL)"""
    )


def _v4_node_pools_audit_log(db: sqlite3.Connection) -> None:
    """Version 4: node pools (in the order nodes are matched against them) and the audit log of
    changes to departments, projects and node pools."""
    db.execute("CREATE TABLE node_pools (name TEXT PRIMARY KEY, position INTEGER NOT NULL, body TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            user TEXT NOT NULL,
            action TEXT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            before TEXT,
            after TEXT)"""
    )
    db.execute("CREATE INDEX audit_log_object ON audit_log (kind, name)")


def _v5_role_bindings(db: sqlite3.Connection) -> None:
    """Version 5: role bindings granted at runtime (RBAC); ``body`` is the binding's JSON, ``key`` the
    binding itself in one text (one row per role, subject and scope)."""
    db.execute(
        """CREATE TABLE role_bindings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            body TEXT NOT NULL)"""
    )


def _v6_gpu_usage_accounting(db: sqlite3.Connection) -> None:
    """Version 6: GPU accounting per workload and UTC day (kept after the workload is deleted),
    and the time up to which it is accounted."""
    db.execute(
        """CREATE TABLE gpu_usage (
            day TEXT NOT NULL,
            workload_uid TEXT NOT NULL,
            project TEXT NOT NULL,
            department TEXT,
            user TEXT,
            workload TEXT NOT NULL,
            kind TEXT NOT NULL,
            allocated_gpu_seconds REAL NOT NULL DEFAULT 0,
            measured_gpu_seconds REAL NOT NULL DEFAULT 0,
            used_gpu_seconds REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (day, workload_uid))"""
    )
    db.execute("CREATE TABLE gpu_usage_clock (id INTEGER PRIMARY KEY CHECK (id = 1), accounted_until TEXT NOT NULL)")


def _v7_workload_policies(db: sqlite3.Connection) -> None:
    """Version 7: workload policies, one per scope (cluster, department, project) and kind; the
    cluster's name is ''."""
    db.execute(
        """CREATE TABLE policies (
            scope TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (scope, name, kind))"""
    )


def _v8_cluster_objects(db: sqlite3.Connection) -> None:
    """Version 8: the workloads whose custom resource the cluster was seen to hold (Kubernetes): one
    that is gone later was deleted there (``kubectl delete``), not merely never written."""
    db.execute("CREATE TABLE cluster_objects (uid TEXT PRIMARY KEY)")
def _v9_kai_queues(db: sqlite3.Connection) -> None:
    """Version 9: which departments and projects were read from KAI-Scheduler's Queue objects
    (kube_queues), so that a later sync updates or removes them and leaves the others alone.
    kind is 'department' or 'project'."""
    db.execute("CREATE TABLE kai_queues (kind TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (kind, name))")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _v1_queues_workloads_events,
    _v2_pod_handles_data_credentials,
    _v3_quarantined_workloads,
    _v4_node_pools_audit_log,
    _v5_role_bindings,
    _v6_gpu_usage_accounting,
    _v7_workload_policies,
    _v8_cluster_objects,
    _v9_kai_queues,
]
SCHEMA_VERSION = len(MIGRATIONS)


# ------------------------------------------------------------------- files


def _owner_only_dir(path: Path) -> None:
    """Create ``path`` (and parents) as 0700 where missing; an existing directory keeps its mode."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0600) so that a reader sees the old file or the new, never half."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_workload(body: str) -> Workload:
    """A stored workload. Its quantities may be above today's maxima (an older version
    accepted them; the scheduler fails such a workload alone). Raises ``ValueError`` for a
    row that does not load: :meth:`Store.workloads` repairs or quarantines those."""
    return Workload.model_validate_json(body, context={STORED: True})


_TIMES = ("submitted_at", "started_at", "finished_at")


def _repair_times(data: Any) -> list[str]:
    """Put a stored workload's times back in order (a clock that stepped back saved an end
    before its start): each time is at least the one before it, in the workload's status
    and in each pod. Returns what was changed, in words; changes ``data`` in place."""
    changed: list[str] = []

    def order(where: str, item: Any, names: tuple[str, ...]) -> None:
        if not isinstance(item, dict):
            return
        latest: tuple[datetime, str] | None = None
        for name in names:
            value = item.get(name)
            if not isinstance(value, str):
                continue
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if latest is not None and when.tzinfo is not None and latest[0].tzinfo is not None \
                    and when < latest[0]:
                item[name] = latest[0].isoformat()
                changed.append(f"{where}{name} {value} was before {latest[1]}; set to {item[name]}")
                continue
            latest = (when, name)

    status = data.get("status") if isinstance(data, dict) else None
    order("", status, _TIMES)
    for pod in (status or {}).get("pods") or []:
        if isinstance(pod, dict):
            order(f"pod {pod.get('name')}: ", pod, ("started_at", "finished_at"))
    return changed


def _check_name(what: str, name: str) -> None:
    """Names become file names under the secrets directory: only DNS labels get there."""
    if not is_dns_label(name):
        raise ValueError(f"{what}: must be a DNS-1123 label; got {name!r}")


# ------------------------------------------------------------------- store


class Store:
    """The service's state on disk: queues, workloads in queue order, pod handles, events,
    data sources and credentials.

    ``path`` is the SQLite file; its directory is the state directory (created
    0700 if missing) that also holds ``secrets/``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.secrets_dir = self.path.parent / "secrets"
        _owner_only_dir(self.path.parent)
        # Create the file ourselves so it is never readable by others, not even briefly.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        for own in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(own, 0o600)  # SQLite creates -wal and -shm with the database's mode
        self._lock = threading.RLock()
        self.load_problems: list[dict[str, Any]] = []  # rows repaired or quarantined while loading
        self._rollback_callbacks: list[Callable[[], None]] = []
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) in _tx.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")  # a committed write survives a power cut too
            self._migrate()
            self._reconcile_secrets()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path}: cannot open the jupyter-runai database: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: commits at the end, rolls back on any exception.

        Inside :meth:`batch` it is a savepoint instead: the write stays atomic on its own
        and is committed with the batch."""
        with self._lock:
            if self._db.in_transaction:
                self._db.execute("SAVEPOINT write")
                try:
                    yield self._db
                    self._db.execute("RELEASE write")
                except BaseException:
                    if self._db.in_transaction:  # SQLite may have rolled back the whole transaction
                        with contextlib.suppress(sqlite3.Error):
                            self._db.execute("ROLLBACK TO write")
                            self._db.execute("RELEASE write")
                    raise
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._db.execute("ROLLBACK")
                    for callback in list(self._rollback_callbacks):
                        callback()
                    raise
            except BaseException as exc:
                translated = _write_error(exc, self.path)
                if translated is None:
                    raise
                raise translated from exc

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after a transaction was rolled back (what it wrote, events
        included, is not in the store: their ids will be given again)."""
        self._rollback_callbacks.append(callback)

    def batch(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """Group several writes into one transaction (one sync to disk): everything inside
        is committed together at the end, or nothing if the block raises. The service
        runs each request and each scheduling cycle in one batch."""
        return self._tx()

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    @property
    def schema_version(self) -> int:
        """The database's schema version (``PRAGMA user_version``)."""
        return self._read("PRAGMA user_version")[0][0]

    def _migrate(self) -> None:
        """Run the migrations the file lacks, each in one transaction with its version bump."""
        version, latest = self.schema_version, len(MIGRATIONS)
        if version > latest:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this jupyter-runai knows "
                f"({latest}); upgrade jupyter-runai to open it"
            )
        for target in range(version + 1, latest + 1):
            with self._tx() as db:
                MIGRATIONS[target - 1](db)
                db.execute(f"PRAGMA user_version = {target}")  # part of the same transaction

    def close(self) -> None:
        """Close the database. Everything committed is already on disk."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- queues

    def put_department(self, department: Department) -> None:
        """Store a department, replacing one of the same name."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO departments (name, body) VALUES (?, ?)",
                       (department.name, department.model_dump_json()))

    def departments(self) -> list[Department]:
        """All departments, by name."""
        return [Department.model_validate_json(body)
                for (body,) in self._read("SELECT body FROM departments ORDER BY name")]

    def put_project(self, project: Project) -> None:
        """Store a project, replacing one of the same name."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO projects (name, body) VALUES (?, ?)",
                       (project.name, project.model_dump_json()))

    def projects(self) -> list[Project]:
        """All projects, by name."""
        return [Project.model_validate_json(body) for (body,) in self._read("SELECT body FROM projects ORDER BY name")]

    def project(self, name: str) -> Project | None:
        """The project called ``name``, or None."""
        rows = self._read("SELECT body FROM projects WHERE name = ?", (name,))
        return Project.model_validate_json(rows[0][0]) if rows else None

    def delete_project(self, name: str) -> None:
        """Delete a project with its data sources and credentials (secret files included).

        Raises ``InUse`` while any workload of the project is stored, ``NotFound``
        if there is no such project.
        """
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM projects WHERE name = ?", (name,)).fetchone():
                raise NotFound(f"project {name!r} not found")
            (count,) = db.execute("SELECT count(*) FROM workloads WHERE project = ?", (name,)).fetchone()
            if count:
                raise InUse(f"project {name!r} still has {count} workload(s); delete them first")
            credentials = [n for (n,) in db.execute("SELECT name FROM credentials WHERE project = ?", (name,))]
            db.execute("DELETE FROM data_sources WHERE project = ?", (name,))
            db.execute("DELETE FROM credentials WHERE project = ?", (name,))
            db.execute("DELETE FROM projects WHERE name = ?", (name,))
            db.execute("DELETE FROM policies WHERE scope = 'project' AND name = ?", (name,))
        for credential in credentials:  # after the commit: a failed delete keeps them
            self._remove_secret_file(name, credential)
        with contextlib.suppress(OSError):
            (self.secrets_dir / name).rmdir()

    def delete_department(self, name: str) -> None:
        """Delete a department. Raises ``InUse`` while a project belongs to it, ``NotFound``
        if there is no such department."""
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM departments WHERE name = ?", (name,)).fetchone():
                raise NotFound(f"department {name!r} not found")
            members = [p.name for p in self.projects() if p.department == name]
            if members:
                raise InUse(f"department {name!r} still has project(s) {', '.join(members)}")
            db.execute("DELETE FROM departments WHERE name = ?", (name,))
            db.execute("DELETE FROM policies WHERE scope = 'department' AND name = ?", (name,))

    def kai_queue_names(self) -> dict[str, set[str]]:
        """The departments and projects read from KAI's Queue objects: {'department': names, 'project': names}."""
        out: dict[str, set[str]] = {"department": set(), "project": set()}
        for kind, name in self._read("SELECT kind, name FROM kai_queues"):
            out.setdefault(kind, set()).add(name)
        return out

    def mark_kai_queue(self, kind: str, name: str, read_from_kai: bool) -> None:
        """Say whether the department or project ``name`` is one read from KAI's Queue objects."""
        with self._tx() as db:
            if read_from_kai:
                db.execute("INSERT OR IGNORE INTO kai_queues (kind, name) VALUES (?, ?)", (kind, name))
            else:
                db.execute("DELETE FROM kai_queues WHERE kind = ? AND name = ?", (kind, name))

    # ---------------------------------------------------------- node pools

    def put_node_pool(self, pool: NodePool) -> None:
        """Store a node pool, replacing one of the same name (which keeps its place in the
        order); a new pool goes last."""
        with self._tx() as db:
            row = db.execute("SELECT position FROM node_pools WHERE name = ?", (pool.name,)).fetchone()
            if row is None:
                (last,) = db.execute("SELECT coalesce(max(position), -1) FROM node_pools").fetchone()
                position = last + 1
            else:
                position = row[0]
            db.execute("INSERT OR REPLACE INTO node_pools (name, position, body) VALUES (?, ?, ?)",
                       (pool.name, position, pool.model_dump_json()))

    def node_pools(self) -> list[NodePool]:
        """All node pools, in the order nodes are matched against them."""
        return [NodePool.model_validate_json(body)
                for (body,) in self._read("SELECT body FROM node_pools ORDER BY position")]

    def delete_node_pool(self, name: str) -> None:
        """Delete a node pool; ``NotFound`` if there is none of that name."""
        with self._tx() as db:
            if not db.execute("DELETE FROM node_pools WHERE name = ?", (name,)).rowcount:
                raise NotFound(f"node pool {name!r} not found")

    def project_departments(self) -> dict[str, str]:
        """Each project's department, by project name in order (read without building the
        projects: every RBAC check asks)."""
        return dict(self._read("SELECT name, coalesce(json_extract(body, '$.department'), 'default') FROM projects "
                               "ORDER BY name"))

    # ---------------------------------------------------------- role bindings

    def role_bindings(self) -> list[tuple[int, RoleBinding]]:
        """Stored role bindings with their ids, oldest first."""
        return [(id_, RoleBinding.model_validate_json(body))
                for id_, body in self._read("SELECT id, body FROM role_bindings ORDER BY id")]

    def add_role_binding(self, binding: RoleBinding) -> int | None:
        """Store a binding; its id, or None when the same binding is stored already."""
        with self._tx() as db:
            cursor = db.execute("INSERT OR IGNORE INTO role_bindings (key, body) VALUES (?, ?)",
                                (binding.describe(), binding.model_dump_json(exclude_none=True)))
            return int(cursor.lastrowid) if cursor.rowcount else None

    def delete_role_binding(self, id_: int) -> None:
        """Delete a binding; ``NotFound`` if there is none with this id."""
        with self._tx() as db:
            if not db.execute("DELETE FROM role_bindings WHERE id = ?", (id_,)).rowcount:
                raise NotFound(f"role binding {id_} not found")


    # ----------------------------------------------------------- policies

    def put_policy(self, policy: Policy) -> None:
        """Store a workload policy, replacing the one of the same scope, name and kind."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO policies (scope, name, kind, body) VALUES (?, ?, ?, ?)",
                       (policy.scope.value, policy.name or "", policy.kind.value, policy.model_dump_json()))

    def policies(self) -> list[Policy]:
        """All workload policies, by scope, name and kind."""
        return [Policy.model_validate_json(body)
                for (body,) in self._read("SELECT body FROM policies ORDER BY scope, name, kind")]

    def delete_policy(self, scope: str, name: str | None, kind: str) -> None:
        """Delete a workload policy; ``NotFound`` if there is none."""
        with self._tx() as db:
            if not db.execute("DELETE FROM policies WHERE scope = ? AND name = ? AND kind = ?",
                              (scope, name or "", kind)).rowcount:
                raise NotFound(f"no {kind} policy for {scope} {name or ''}".rstrip())

    # ----------------------------------------------------------- audit log

    def add_audit(self, *, at: datetime, user: str, action: str, kind: str, name: str,
                  before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
        """Record one administrative change (``before``/``after``: the object's JSON, None where it
        did not exist); returns the entry with its id."""
        entry = {"at": at.isoformat(), "user": user, "action": action, "kind": kind, "name": name,
                 "before": before, "after": after}
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO audit_log (at, user, action, kind, name, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (entry["at"], user, action, kind, name,
                 None if before is None else json.dumps(before), None if after is None else json.dumps(after)))
        return {"id": int(cursor.lastrowid), **entry}

    def audit(self, kind: str | None = None, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` audit entries (oldest first), optionally of one kind and name."""
        where, params = [], []
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if name:
            where.append("name = ?")
            params.append(name)
        sql = ("SELECT id, at, user, action, kind, name, before, after FROM audit_log"
               + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC LIMIT ?")
        rows = self._read(sql, [*params, limit])
        return [{"id": id_, "at": at, "user": user, "action": action, "kind": kind_, "name": name_,
                 "before": None if before is None else json.loads(before),
                 "after": None if after is None else json.loads(after)}
                for id_, at, user, action, kind_, name_, before, after in reversed(rows)]

    # ----------------------------------------------------------- workloads

    @staticmethod
    def _workload_columns(workload: Workload) -> tuple[str, str, str, str, str]:
        spec = workload.spec
        return (spec.project, spec.name, spec.kind.value, workload.status.phase.value, workload.model_dump_json())

    def add_workload(self, workload: Workload) -> int:
        """Store a new workload at the end of the queue; return its sequence number.

        Sequence numbers only grow (never reused after a delete): they are the
        queue order. Raises ``AlreadyExists`` if the project already has a
        workload of that name (or one with that uid).
        """
        project, name, kind, phase, body = self._workload_columns(workload)
        with self._tx() as db:
            try:
                cursor = db.execute(
                    "INSERT INTO workloads (uid, project, name, kind, phase, body) VALUES (?, ?, ?, ?, ?, ?)",
                    (workload.uid, project, name, kind, phase, body),
                )
            except sqlite3.IntegrityError:
                raise self._conflict(db, workload) from None
            return int(cursor.lastrowid)

    @staticmethod
    def _conflict(db: sqlite3.Connection, workload: Workload) -> AlreadyExists:
        spec = workload.spec
        if db.execute("SELECT 1 FROM workloads WHERE project = ? AND name = ? AND uid != ?",
                      (spec.project, spec.name, workload.uid)).fetchone():
            return AlreadyExists(f"a workload named {spec.name!r} already exists in project {spec.project!r}")
        return AlreadyExists(f"a workload with uid {workload.uid!r} already exists")

    def save_workload(self, workload: Workload) -> None:
        """Replace a stored workload's spec and status (found by uid); its queue position stays.

        Raises ``NotFound`` if no workload has that uid, ``AlreadyExists`` if it
        was renamed onto another workload's name.
        """
        self.save_workloads([workload])

    def save_workloads(self, workloads: Iterable[Workload]) -> None:
        """``save_workload`` for each, in one transaction: all are saved, or none."""
        with self._tx() as db:
            for workload in workloads:
                project, name, kind, phase, body = self._workload_columns(workload)
                try:
                    cursor = db.execute(
                        "UPDATE workloads SET project = ?, name = ?, kind = ?, phase = ?, body = ? WHERE uid = ?",
                        (project, name, kind, phase, body, workload.uid),
                    )
                except sqlite3.IntegrityError:
                    raise self._conflict(db, workload) from None
                if cursor.rowcount == 0:
                    raise NotFound(f"no workload with uid {workload.uid!r} ({workload.key})")

    def workload(self, project: str, name: str) -> Workload | None:
        """The workload ``project/name``, or None."""
        rows = self._read("SELECT body FROM workloads WHERE project = ? AND name = ?", (project, name))
        return load_workload(rows[0][0]) if rows else None

    def workload_by_uid(self, uid: str) -> Workload | None:
        """The workload with this uid, or None."""
        rows = self._read("SELECT body FROM workloads WHERE uid = ?", (uid,))
        return load_workload(rows[0][0]) if rows else None

    def workloads(self, project: str | None = None, phases: Iterable[str] | None = None,
                  kind: str | None = None) -> list[Workload]:
        """Stored workloads in queue order, optionally only one project's, some phases, one kind."""
        where, params = [], []
        if project is not None:
            where.append("project = ?")
            params.append(project)
        if phases is not None:
            phases = [str(phase) for phase in phases]
            if not phases:
                return []
            where.append(f"phase IN ({', '.join('?' * len(phases))})")
            params.extend(phases)
        if kind is not None:
            where.append("kind = ?")
            params.append(str(kind))
        sql = ("SELECT seq, body FROM workloads" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY seq")
        out = []
        for seq, body in self._read(sql, params):
            try:
                out.append(load_workload(body))
            except ValueError as exc:  # one odd row never stops the others from loading
                repaired = self._repair_or_quarantine(seq, body, exc)
                if repaired is not None:
                    out.append(repaired)
        return out

    def _repair_or_quarantine(self, seq: int, body: str, error: Exception) -> Workload | None:
        """A stored workload that does not load: repair its times if that is all that is wrong
        (and save it so), else move it to ``quarantined_workloads`` with the reason. Either
        way it is logged and listed in ``load_problems``; nothing is dropped."""
        row = self._read("SELECT uid, project, name FROM workloads WHERE seq = ?", (seq,))
        if not row:
            return None
        uid, project, name = row[0]
        problem: dict[str, Any] = {"uid": uid, "project": project, "name": name}
        try:
            data = json.loads(body)
            changes = _repair_times(data)
            workload = Workload.model_validate(data, context={STORED: True}) if changes else None
        except ValueError:
            workload, changes = None, []
        if workload is not None:
            with self._tx() as db:
                db.execute("UPDATE workloads SET body = ?, phase = ? WHERE seq = ?",
                           (workload.model_dump_json(), workload.status.phase.value, seq))
            problem.update(action="repaired", message="; ".join(changes))
            log.warning("workload %s/%s: its stored times were out of order (did the clock step back?); "
                        "repaired: %s", project, name, problem["message"])
        else:
            reason = " ".join(str(error).split())[:2000]
            with self._tx() as db:
                db.execute("INSERT OR REPLACE INTO quarantined_workloads (seq, uid, project, name, body, reason, at) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (seq, uid, project, name, body, reason, datetime.now().astimezone().isoformat()))
                db.execute("DELETE FROM workloads WHERE seq = ?", (seq,))
                db.execute("DELETE FROM pod_handles WHERE workload_uid = ?", (uid,))
            problem.update(action="quarantined",
                           message=f"could not be loaded and was moved to the table quarantined_workloads of "
                                   f"{self.path}: {reason}")
            log.error("workload %s/%s %s", project, name, problem["message"])
        self.load_problems.append(problem)
        return workload

    def quarantined_workloads(self) -> list[dict[str, Any]]:
        """Workloads set aside because their stored row could not be loaded: seq, uid, project,
        name, body (the stored JSON, as it was), reason, at."""
        keys = ("seq", "uid", "project", "name", "body", "reason", "at")
        return [dict(zip(keys, row)) for row in
                self._read(f"SELECT {', '.join(keys)} FROM quarantined_workloads ORDER BY seq")]

    def workload_seq(self, uid: str) -> int | None:
        """The workload's queue sequence number, or None if there is no such workload."""
        rows = self._read("SELECT seq FROM workloads WHERE uid = ?", (uid,))
        return rows[0][0] if rows else None

    def delete_workload(self, uid: str) -> None:
        """Delete a workload and its pod handles. Raises ``NotFound`` if there is no such workload."""
        with self._tx() as db:
            if db.execute("DELETE FROM workloads WHERE uid = ?", (uid,)).rowcount == 0:
                raise NotFound(f"no workload with uid {uid!r}")
            db.execute("DELETE FROM pod_handles WHERE workload_uid = ?", (uid,))
            db.execute("DELETE FROM cluster_objects WHERE uid = ?", (uid,))

    # --------------------------------------------------------- pod handles

    def set_pod_handle(self, workload_uid: str, pod_name: str, handle: dict[str, Any] | None) -> None:
        """Remember how to find a running pod again after a restart (``None`` forgets it).

        ``handle`` is the small JSON-able dict the cluster backend returned when it
        started the pod. Raises ``NotFound`` if the workload is not stored.
        """
        with self._tx() as db:
            if handle is None:
                db.execute("DELETE FROM pod_handles WHERE workload_uid = ? AND pod = ?", (workload_uid, pod_name))
                return
            if not db.execute("SELECT 1 FROM workloads WHERE uid = ?", (workload_uid,)).fetchone():
                raise NotFound(f"no workload with uid {workload_uid!r}")
            db.execute("INSERT OR REPLACE INTO pod_handles (workload_uid, pod, handle) VALUES (?, ?, ?)",
                       (workload_uid, pod_name, json.dumps(handle, sort_keys=True)))

    def pod_handles(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every stored handle, keyed by ``(workload_uid, pod_name)``."""
        return {(uid, pod): json.loads(handle)
                for uid, pod, handle in self._read("SELECT workload_uid, pod, handle FROM pod_handles")}

    # ----------------------------------------------------------- custom resources (Kubernetes)

    def mark_cluster_objects(self, uids: Iterable[str]) -> None:
        """Remember that the cluster holds these workloads' custom resources (stored workloads only)."""
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO cluster_objects (uid) SELECT uid FROM workloads WHERE uid = ?",
                           [(uid,) for uid in uids])

    def cluster_object_uids(self) -> set[str]:
        """The workloads whose custom resource the cluster was seen to hold."""
        return {uid for (uid,) in self._read("SELECT uid FROM cluster_objects")}

    # ----------------------------------------------------------- accounting

    USAGE_COLUMNS = ("day", "workload_uid", "project", "department", "user", "workload", "kind",
                     "allocated_gpu_seconds", "measured_gpu_seconds", "used_gpu_seconds")

    def add_usage(self, rows: Iterable[dict[str, Any]], accounted_until: datetime, keep_days: int) -> None:
        """Add GPU-seconds to the per-day rows (one per workload and UTC day), move the accounting
        clock to ``accounted_until`` and drop days older than ``keep_days`` before it, in one
        transaction."""
        columns = self.USAGE_COLUMNS
        with self._tx() as db:
            db.executemany(
                f"INSERT INTO gpu_usage ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                "ON CONFLICT (day, workload_uid) DO UPDATE SET "
                "allocated_gpu_seconds = allocated_gpu_seconds + excluded.allocated_gpu_seconds, "
                "measured_gpu_seconds = measured_gpu_seconds + excluded.measured_gpu_seconds, "
                "used_gpu_seconds = used_gpu_seconds + excluded.used_gpu_seconds",
                [tuple(row[c] for c in columns) for row in rows])
            db.execute("INSERT OR REPLACE INTO gpu_usage_clock (id, accounted_until) VALUES (1, ?)",
                       (accounted_until.isoformat(),))
            oldest = (accounted_until - timedelta(days=keep_days)).date().isoformat()
            db.execute("DELETE FROM gpu_usage WHERE day < ?", (oldest,))

    def accounted_until(self) -> datetime | None:
        """The time up to which GPU use is accounted in ``gpu_usage`` (None before the first time)."""
        rows = self._read("SELECT accounted_until FROM gpu_usage_clock WHERE id = 1")
        return datetime.fromisoformat(rows[0][0]) if rows else None

    def usage(self, first_day: str, last_day: str, user: str | None = None) -> list[dict[str, Any]]:
        """The per-workload, per-day rows from ``first_day`` to ``last_day`` (ISO dates, both
        included), optionally of one user's workloads, by day then project and workload."""
        sql = (f"SELECT {', '.join(self.USAGE_COLUMNS)} FROM gpu_usage WHERE day >= ? AND day <= ?"
               + (" AND user = ?" if user is not None else "") + " ORDER BY day, project, workload, workload_uid")
        params = [first_day, last_day, *([user] if user is not None else [])]
        return [dict(zip(self.USAGE_COLUMNS, row)) for row in self._read(sql, params)]

    # -------------------------------------------------------------- events

    def add_event(self, type: EventType | str, message: str, *, at: datetime, project: str | None = None,
                  workload: str | None = None, pod: str | None = None) -> Event:
        """Record an event and return it with its id (ids only grow, even after pruning)."""
        # Validate before writing: a bad event raises and stores nothing.
        draft = Event(id=1, at=at, type=type, project=project, workload=workload, pod=pod, message=message)
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO events (at, type, project, workload, pod, message) VALUES (?, ?, ?, ?, ?, ?)",
                (draft.at.isoformat(), draft.type.value, project, workload, pod, message),
            )
        return draft.model_copy(update={"id": int(cursor.lastrowid)})

    def events(self, since_id: int = 0, project: str | None = None, workload: str | None = None,
               limit: int = 1000, *, newest: bool = False, projects: list[str] | None = None,
               type: str | None = None) -> list[Event]:
        """Events with ``id > since_id``, oldest first, at most ``limit``; optionally of one project / workload
        / type, or of the ``projects`` listed (an event of no project is then left out).

        ``newest=True`` takes the newest ``limit`` events instead of the oldest
        (still returned oldest first): a workload's latest events.
        """
        where, params = ["id > ?"], [since_id]
        if project is not None:
            where.append("project = ?")
            params.append(project)
        if workload is not None:
            where.append("workload = ?")
            params.append(workload)
        if projects is not None:  # SQLite takes 32,766 parameters; a caller sees fewer projects
            where.append(f"project IN ({', '.join('?' * len(projects))})")
            params.extend(projects)
        if type is not None:
            where.append("type = ?")
            params.append(type)
        rows = self._read(
            "SELECT id, at, type, project, workload, pod, message FROM events WHERE "
            + " AND ".join(where) + f" ORDER BY id {'DESC' if newest else ''} LIMIT ?",
            [*params, limit],
        )
        if newest:
            rows.reverse()
        keys = ("id", "at", "type", "project", "workload", "pod", "message")
        return [Event.model_validate(dict(zip(keys, row))) for row in rows]

    def event_ids(self) -> tuple[int | None, int]:
        """``(oldest, newest)``: the id of the oldest event still stored (None when there is
        none) and the newest id ever given (0 before the first event, kept by pruning).
        Ids are consecutive, so events after ``n`` are all still here exactly when
        ``n >= newest`` or ``oldest <= n + 1``."""
        with self._lock:
            oldest = self._db.execute("SELECT min(id) FROM events").fetchone()[0]
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return oldest, int(row[0]) if row else 0

    def prune_events(self, keep: int) -> int:
        """Delete all but the newest ``keep`` events; return how many went."""
        with self._tx() as db:
            if keep <= 0:
                return db.execute("DELETE FROM events").rowcount
            return db.execute(
                "DELETE FROM events WHERE id < (SELECT min(id) FROM (SELECT id FROM events ORDER BY id DESC LIMIT ?))",
                (keep,),
            ).rowcount

    # -------------------------------------------------------- data sources

    def put_data_source(self, project: str, data_source: DataSource) -> None:
        """Store a project's data source, replacing one of the same name."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO data_sources (project, name, body) VALUES (?, ?, ?)",
                       (project, data_source.name, data_source.model_dump_json()))

    def data_sources(self, project: str) -> list[DataSource]:
        """A project's data sources, by name."""
        return [DataSource.model_validate_json(body) for (body,) in
                self._read("SELECT body FROM data_sources WHERE project = ? ORDER BY name", (project,))]

    def data_source(self, project: str, name: str) -> DataSource | None:
        """One data source, or None."""
        rows = self._read("SELECT body FROM data_sources WHERE project = ? AND name = ?", (project, name))
        return DataSource.model_validate_json(rows[0][0]) if rows else None

    def delete_data_source(self, project: str, name: str) -> None:
        """Delete a data source. Raises ``NotFound`` if there is none."""
        with self._tx() as db:
            if db.execute("DELETE FROM data_sources WHERE project = ? AND name = ?", (project, name)).rowcount == 0:
                raise NotFound(f"data source {name!r} not found in project {project!r}")

    # --------------------------------------------------------- credentials

    def _secret_file(self, project: str, name: str) -> Path:
        _check_name("project", project)
        _check_name("credential", name)
        return self.secrets_dir / project / f"{name}.json"

    def _remove_secret_file(self, project: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._secret_file(project, name).unlink()

    def put_credential(self, project: str, credential: Credential) -> None:
        """Store a project's credential, replacing one of the same name.

        The values go to the credential's own file in the secrets directory
        (written atomically, mode 0600), the public view to the database, both
        inside one transaction: if either write fails, the credential stored
        before (if any) is kept as it was.
        """
        path = self._secret_file(project, credential.name)
        view = credential.describe()
        text = json.dumps({"name": view.name, "inject_as": view.inject_as.value, "mount_path": view.mount_path,
                           "data": credential.secret_values()})
        with self._lock:
            for directory in (self.secrets_dir, path.parent):
                _owner_only_dir(directory)
                os.chmod(directory, 0o700)
            old = path.read_text(encoding="utf-8") if path.exists() else None
            try:
                with self._tx() as db:
                    db.execute("INSERT OR REPLACE INTO credentials (project, name, body) VALUES (?, ?, ?)",
                               (project, credential.name, view.model_dump_json()))
                    _write_atomically(path, text)
            except BaseException:
                # The row was rolled back; the file may already be the new one (a failed
                # commit, or a failure after the rename): put the old one back.
                if old is None:
                    path.unlink(missing_ok=True)
                elif path.read_text(encoding="utf-8") != old:
                    _write_atomically(path, old)
                raise

    def credentials(self, project: str) -> list[CredentialView]:
        """A project's credentials as public views (keys, never values), by name."""
        return [CredentialView.model_validate_json(body) for (body,) in
                self._read("SELECT body FROM credentials WHERE project = ? ORDER BY name", (project,))]

    def credential(self, project: str, name: str) -> Credential | None:
        """One credential with its values, for the service to inject; None if there is none.

        Never return this through an API or a view: use ``describe()``.
        """
        if not self._read("SELECT 1 FROM credentials WHERE project = ? AND name = ?", (project, name)):
            return None
        return self._load_secret_file(self._secret_file(project, name))

    @staticmethod
    def _load_secret_file(path: Path) -> Credential | None:
        try:
            return Credential.model_validate_json(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValidationError, ValueError):
            return None

    def delete_credential(self, project: str, name: str) -> None:
        """Delete a credential and its secret file. Raises ``NotFound`` if there is none."""
        with self._tx() as db:
            if db.execute("DELETE FROM credentials WHERE project = ? AND name = ?", (project, name)).rowcount == 0:
                raise NotFound(f"credential {name!r} not found in project {project!r}")
        self._remove_secret_file(project, name)

    def _reconcile_secrets(self) -> None:
        """Make the secret files and the database rows agree again after a crash.

        ``put_credential`` replaces the file before it commits the row and
        ``delete_credential`` commits before it removes the file, so a crash
        in between leaves a file whose row is missing (a write never
        acknowledged, or a delete: the file goes) or older (the file wins: it
        holds the values). A row whose file is gone has nothing to inject: it goes.
        """
        if not self.secrets_dir.is_dir():
            rows = self._read("SELECT project, name FROM credentials")
        else:
            rows = self._read("SELECT project, name, body FROM credentials")
            stored = {(project, name): body for project, name, body in rows}
            for path in self.secrets_dir.glob("*/*"):
                project, name = path.parent.name, path.name.removesuffix(".json")
                if path.name.startswith(".") or (project, name) not in stored:
                    path.unlink(missing_ok=True)  # a temp file, or a file without a row
                    continue
                credential = self._load_secret_file(path)
                if credential is not None and credential.describe().model_dump_json() != stored[(project, name)]:
                    with self._tx() as db:
                        db.execute("UPDATE credentials SET body = ? WHERE project = ? AND name = ?",
                                   (credential.describe().model_dump_json(), project, name))
        for project, name, *_ in rows:
            if not (self.secrets_dir / project / f"{name}.json").exists():
                with self._tx() as db:
                    db.execute("DELETE FROM credentials WHERE project = ? AND name = ?", (project, name))
