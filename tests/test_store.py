"""The store: real SQLite files under tmp_path, reopened to stand for restarts and crashes."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from jupyter_runai import store as store_module
from jupyter_runai.models.access import RoleBinding
from jupyter_runai.models import (
    Credential,
    DataSource,
    Department,
    EventType,
    NodePool,
    Project,
    Workload,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadStatus,
)
from jupyter_runai.store import (SCHEMA_VERSION, AlreadyExists, InUse, NotFound, Store, StoreError, StoreFull,
                                 StoreWriteError)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
SECRET = "hf_Zq9xSECRETvalue"


def workload(name: str, project: str = "team-a", kind: str = "training",
             phase: WorkloadPhase = WorkloadPhase.PENDING) -> Workload:
    spec = {"name": name, "project": project, "kind": kind, "resources": {"gpu": 0.5, "memory": "2Gi"}}
    if kind == "distributed":
        spec["workers"] = 2
    return Workload(spec=WorkloadSpec.model_validate(spec), status=WorkloadStatus(phase=phase, submitted_at=T0),
                    submitted_by="ada")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "runai.db"


@pytest.fixture
def store(db_path: Path):
    opened = Store(db_path)
    yield opened
    opened.close()


def names(workloads) -> list[str]:
    return [w.spec.name for w in workloads]


# ------------------------------------------------------------------- queues


def test_departments_and_projects_round_trip_and_replace(store, db_path):
    store.put_department(Department(name="research", deserved={"gpu": 4}))
    store.put_project(Project(name="team-b", department="research", deserved={"gpu": 2}, limit={"gpu": 4}))
    store.put_project(Project(name="team-a", department="research", over_quota_weight=2))
    store.put_project(Project(name="team-a", department="research", over_quota_weight=3))  # replaces
    assert [p.name for p in store.projects()] == ["team-a", "team-b"]
    assert store.project("team-a").over_quota_weight == 3
    assert store.project("nope") is None
    store.close()
    again = Store(db_path)
    assert again.departments() == [Department(name="research", deserved={"gpu": 4})]
    assert again.project("team-b") == Project(name="team-b", department="research", deserved={"gpu": 2},
                                              limit={"gpu": 4})
    again.close()


def test_delete_project_refuses_while_it_has_workloads(store):
    store.put_project(Project(name="team-a"))
    w = workload("train-1")
    store.add_workload(w)
    with pytest.raises(InUse, match="team-a.*1 workload"):
        store.delete_project("team-a")
    assert store.project("team-a") is not None
    store.delete_workload(w.uid)
    store.delete_project("team-a")
    assert store.project("team-a") is None
    with pytest.raises(NotFound, match="team-a"):
        store.delete_project("team-a")


def test_delete_project_takes_its_data_sources_and_credentials(store):
    store.put_project(Project(name="team-a"))
    store.put_data_source("team-a", DataSource(name="imgs", kind="host_path", path="/d"))
    store.put_credential("team-a", Credential(name="hf", inject_as="env", data={"HF_TOKEN": SECRET}))
    store.delete_project("team-a")
    assert store.data_sources("team-a") == [] and store.credentials("team-a") == []
    assert not (store.secrets_dir / "team-a").exists()


# ---------------------------------------------------------------- workloads


def test_add_workload_assigns_increasing_sequence_numbers(store):
    seqs = [store.add_workload(workload(f"w{i}")) for i in range(5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    w = store.workloads()[2]
    assert store.workload_seq(w.uid) == seqs[2]
    assert store.workload_seq("missing") is None


def test_round_trip_by_name_and_uid(store):
    w = workload("dist", kind="distributed")
    store.add_workload(w)
    assert store.workload("team-a", "dist") == w
    assert store.workload_by_uid(w.uid) == w
    assert store.workload("team-b", "dist") is None
    assert store.workload_by_uid("nope") is None


def test_add_workload_refuses_a_name_taken_in_its_project(store):
    store.add_workload(workload("job"))
    with pytest.raises(AlreadyExists) as info:
        store.add_workload(workload("job"))
    assert "'job'" in str(info.value) and "'team-a'" in str(info.value)
    store.add_workload(workload("job", project="team-b"))  # another project: fine
    first = store.workload("team-a", "job")
    with pytest.raises(AlreadyExists, match="uid"):
        store.add_workload(first.model_copy(update={"spec": workload("other").spec}))
    assert len(store.workloads()) == 2


def test_save_workload_replaces_status_and_keeps_queue_position(store):
    ws = [workload(f"w{i}") for i in range(3)]
    seqs = [store.add_workload(w) for w in ws]
    first = ws[0].model_copy(deep=True)
    first.status.phase = WorkloadPhase.RUNNING
    first.status.started_at = T0 + timedelta(minutes=1)
    store.save_workload(first)
    assert names(store.workloads()) == ["w0", "w1", "w2"]
    assert store.workload_seq(first.uid) == seqs[0]
    assert store.workload_by_uid(first.uid).status.phase == WorkloadPhase.RUNNING
    with pytest.raises(NotFound, match="no workload") as info:
        store.save_workload(workload("ghost"))
    assert isinstance(info.value, KeyError)


def test_queue_order_survives_a_restart_and_sequence_numbers_are_never_reused(db_path):
    store = Store(db_path)
    ws = [workload(f"w{i}") for i in range(4)]
    for w in ws:
        store.add_workload(w)
    store.save_workload(ws[0])
    store.delete_workload(ws[3].uid)  # the newest: its number must not come back
    last = store.workload_seq(ws[2].uid)
    store.close()
    store = Store(db_path)
    assert names(store.workloads()) == ["w0", "w1", "w2"]
    seq = store.add_workload(workload("w3"))  # the same name again, after the delete
    assert seq > last + 1
    assert names(store.workloads()) == ["w0", "w1", "w2", "w3"]
    store.close()


def test_workload_filters(store):
    store.add_workload(workload("a1", phase=WorkloadPhase.RUNNING))
    store.add_workload(workload("b1", project="team-b", kind="workspace"))
    store.add_workload(workload("a2", kind="inference", phase=WorkloadPhase.FAILED))
    store.add_workload(workload("a3", kind="workspace"))
    assert names(store.workloads(project="team-a")) == ["a1", "a2", "a3"]
    assert names(store.workloads(phases=[WorkloadPhase.PENDING])) == ["b1", "a3"]
    assert names(store.workloads(phases={"Running", "Failed"})) == ["a1", "a2"]
    assert names(store.workloads(kind="workspace")) == ["b1", "a3"]
    assert names(store.workloads(project="team-a", kind="workspace", phases=["Pending"])) == ["a3"]
    assert store.workloads(phases=[]) == []


def test_a_failed_save_workloads_keeps_every_old_value(store):
    ws = [workload(f"w{i}") for i in range(3)]
    for w in ws:
        store.add_workload(w)
    changed = [w.model_copy(deep=True) for w in ws]
    for w in changed:
        w.status.phase = WorkloadPhase.RUNNING
    with pytest.raises(NotFound):
        store.save_workloads([changed[0], workload("ghost"), changed[2]])
    assert [w.status.phase for w in store.workloads()] == [WorkloadPhase.PENDING] * 3

    def generator():
        yield changed[0]
        raise RuntimeError("the caller failed half way")

    with pytest.raises(RuntimeError):
        store.save_workloads(generator())
    assert store.workloads() == ws
    renamed = changed[1].model_copy(update={"spec": ws[2].spec})  # renamed onto w2: a conflict
    with pytest.raises(AlreadyExists, match="'w2'"):
        store.save_workloads([changed[0], renamed])
    assert store.workloads() == ws
    store.save_workloads(changed)
    assert [w.status.phase for w in store.workloads()] == [WorkloadPhase.RUNNING] * 3


def test_delete_workload(store):
    w = workload("w")
    store.add_workload(w)
    store.delete_workload(w.uid)
    assert store.workload("team-a", "w") is None
    with pytest.raises(NotFound):
        store.delete_workload(w.uid)


# -------------------------------------------------------------- pod handles


def test_pod_handles_round_trip_and_go_with_their_workload(db_path):
    store = Store(db_path)
    a, b = workload("a"), workload("b")
    store.add_workload(a)
    store.add_workload(b)
    store.set_pod_handle(a.uid, "a-0", {"pid": 123, "pgid": 123, "started": 1.5})
    store.set_pod_handle(a.uid, "a-1", {"pid": 124})
    store.set_pod_handle(a.uid, "a-1", {"pid": 125})  # replaces
    store.set_pod_handle(b.uid, "b-0", {"pod": "b-0", "namespace": "runai-team-a"})
    store.set_pod_handle(b.uid, "b-9", None)  # forgetting an unknown handle is fine
    with pytest.raises(NotFound):
        store.set_pod_handle("nope", "x-0", {"pid": 1})
    store.close()
    store = Store(db_path)
    assert store.pod_handles() == {
        (a.uid, "a-0"): {"pid": 123, "pgid": 123, "started": 1.5},
        (a.uid, "a-1"): {"pid": 125},
        (b.uid, "b-0"): {"pod": "b-0", "namespace": "runai-team-a"},
    }
    store.set_pod_handle(a.uid, "a-1", None)
    store.delete_workload(b.uid)
    assert store.pod_handles() == {(a.uid, "a-0"): {"pid": 123, "pgid": 123, "started": 1.5}}
    store.close()


# ------------------------------------------------------------------- events


def test_events_ids_filters_and_pruning(db_path):
    store = Store(db_path)
    first = store.add_event(EventType.SUBMITTED, "submitted", at=T0, project="team-a", workload="w")
    assert first.id >= 1 and first.type is EventType.SUBMITTED and first.at == T0
    second = store.add_event("Scheduled", "on node-1", at=T0, project="team-a", workload="w", pod="w-0")
    store.add_event("Submitted", "x", at=T0, project="team-b", workload="w")
    store.add_event("Warning", "node gone", at=T0)
    assert second.id > first.id
    assert [e.message for e in store.events()] == ["submitted", "on node-1", "x", "node gone"]
    assert [e.id for e in store.events(project="team-a", workload="w")] == [first.id, second.id]
    assert store.events(project="team-a")[1].pod == "w-0"
    assert [e.message for e in store.events(since_id=second.id)] == ["x", "node gone"]
    assert [e.message for e in store.events(limit=2)] == ["submitted", "on node-1"]
    assert [e.message for e in store.events(limit=2, newest=True)] == ["x", "node gone"]
    assert [e.id for e in store.events(project="team-a", limit=1, newest=True)] == [second.id]
    assert store.events()[0] == first

    with pytest.raises(ValidationError):
        store.add_event("Exploded", "no", at=T0)
    with pytest.raises(ValidationError):
        store.add_event("Failed", "naive time", at=datetime(2025, 1, 1))
    assert len(store.events()) == 4

    assert store.prune_events(keep=2) == 2
    kept = store.events()
    assert [e.message for e in kept] == ["x", "node gone"]
    store.close()
    store = Store(db_path)  # ids keep growing after a prune and a restart (SSE Last-Event-ID stays valid)
    newer = store.add_event("Deleted", "gone", at=T0, project="team-a", workload="w")
    assert newer.id > kept[-1].id
    assert store.prune_events(keep=0) == 3 and store.events() == []
    store.close()


# ------------------------------------------------------------- data sources


def test_data_sources_per_project(store):
    imgs = DataSource(name="imgs", kind="host_path", path="/datasets/imgs")
    code = DataSource(name="code", kind="git", url="https://github.com/o/r.git", revision="main")
    store.put_data_source("team-a", imgs)
    store.put_data_source("team-a", code)
    store.put_data_source("team-b", imgs)
    assert store.data_sources("team-a") == [code, imgs]
    assert store.data_source("team-a", "imgs") == imgs
    assert store.data_source("team-c", "imgs") is None
    replaced = imgs.model_copy(update={"read_only": False})
    store.put_data_source("team-a", replaced)
    assert store.data_source("team-a", "imgs").read_only is False
    store.delete_data_source("team-a", "imgs")
    assert store.data_sources("team-a") == [code]
    assert store.data_source("team-b", "imgs") == imgs
    with pytest.raises(NotFound, match="imgs.*team-a"):
        store.delete_data_source("team-a", "imgs")


# -------------------------------------------------------------- credentials


def test_credentials_values_live_in_owner_only_files_not_in_the_database(store, db_path):
    store.put_credential("team-a", Credential(name="hf", inject_as="env", data={"HF_TOKEN": SECRET}))
    store.put_credential("team-a", Credential(name="reg", inject_as="file", data={"config.json": SECRET + "2"}))
    views = store.credentials("team-a")
    assert [v.model_dump(mode="json") for v in views] == [
        {"name": "hf", "inject_as": "env", "keys": ["HF_TOKEN"], "mount_path": None},
        {"name": "reg", "inject_as": "file", "keys": ["config.json"], "mount_path": ".credentials/reg"},
    ]
    assert SECRET not in repr(views)
    full = store.credential("team-a", "hf")
    assert full.secret_values() == {"HF_TOKEN": SECRET}
    assert store.credential("team-a", "reg").mount_path == ".credentials/reg"
    assert store.credential("team-b", "hf") is None

    secret_file = store.secrets_dir / "team-a" / "hf.json"
    assert mode(secret_file) == 0o600
    assert mode(store.secrets_dir) == 0o700 and mode(secret_file.parent) == 0o700
    assert json.loads(secret_file.read_text())["data"] == {"HF_TOKEN": SECRET}
    for path in db_path.parent.glob("runai.db*"):  # the database, its WAL and shared memory
        assert SECRET.encode() not in path.read_bytes(), path
    leftovers = [p.name for p in secret_file.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_replacing_and_deleting_a_credential(store):
    store.put_credential("team-a", Credential(name="hf", inject_as="env", data={"HF_TOKEN": "old"}))
    store.put_credential("team-a", Credential(name="hf", inject_as="file", data={"token": "new"}))
    assert store.credential("team-a", "hf").secret_values() == {"token": "new"}
    assert store.credentials("team-a")[0].keys == ["token"]
    store.delete_credential("team-a", "hf")
    assert store.credentials("team-a") == [] and store.credential("team-a", "hf") is None
    assert not (store.secrets_dir / "team-a" / "hf.json").exists()
    with pytest.raises(NotFound, match="hf.*team-a"):
        store.delete_credential("team-a", "hf")


def test_a_credential_project_must_be_a_name_not_a_path(store):
    with pytest.raises(ValueError, match="DNS-1123"):
        store.put_credential("../etc", Credential(name="hf", inject_as="env", data={"K": "v"}))


def test_a_failed_credential_write_keeps_the_old_one(store, monkeypatch):
    store.put_credential("team-a", Credential(name="hf", inject_as="env", data={"HF_TOKEN": "old"}))

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "_write_atomically", disk_full)
    with pytest.raises(StoreFull):  # the REST API answers 507
        store.put_credential("team-a", Credential(name="hf", inject_as="file", data={"token": "new"}))
    with pytest.raises(StoreFull):
        store.put_credential("team-a", Credential(name="gh", inject_as="env", data={"GH": "x"}))
    assert [v.keys for v in store.credentials("team-a")] == [["HF_TOKEN"]]
    assert store.credential("team-a", "hf").secret_values() == {"HF_TOKEN": "old"}


def test_a_failed_commit_puts_the_old_secret_file_back(store, monkeypatch):
    store.put_credential("team-a", Credential(name="hf", inject_as="env", data={"HF_TOKEN": "old"}))
    real = store_module._write_atomically
    calls = []

    def write_then_break_the_transaction(path, text):
        real(path, text)
        calls.append(path)
        if len(calls) == 1:  # the new file is in place; then the transaction fails
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store_module, "_write_atomically", write_then_break_the_transaction)
    with pytest.raises(StoreWriteError):  # the REST API answers 503
        store.put_credential("team-a", Credential(name="hf", inject_as="env", data={"HF_TOKEN": "new"}))
    assert store.credential("team-a", "hf").secret_values() == {"HF_TOKEN": "old"}
    calls.clear()
    with pytest.raises(StoreWriteError):
        store.put_credential("team-a", Credential(name="gh", inject_as="env", data={"GH": "x"}))
    assert not (store.secrets_dir / "team-a" / "gh.json").exists()
    assert [v.name for v in store.credentials("team-a")] == ["hf"]


def test_opening_reconciles_secret_files_left_by_a_crash(db_path):
    store = Store(db_path)
    store.put_credential("team-a", Credential(name="hf", inject_as="env", data={"HF_TOKEN": "v1"}))
    store.put_credential("team-a", Credential(name="gone", inject_as="env", data={"K": "v"}))
    store.close()
    folder = db_path.parent / "secrets" / "team-a"
    # A put that replaced the file but crashed before its commit: the file is newer than the row.
    (folder / "hf.json").write_text(json.dumps({"name": "hf", "inject_as": "file", "mount_path": None,
                                                "data": {"token": "v2"}}))
    # A put of a new credential that crashed before its commit, and a temp file of another.
    (folder / "new.json").write_text(json.dumps({"name": "new", "inject_as": "env", "data": {"K": "x"}}))
    (folder / ".hf.json.abc.tmp").write_text("half")
    # A delete that crashed after removing... the file (only: the row stayed).
    (folder / "gone.json").unlink()
    store = Store(db_path)
    assert [v.model_dump(mode="json") for v in store.credentials("team-a")] == [
        {"name": "hf", "inject_as": "file", "keys": ["token"], "mount_path": ".credentials/hf"}]
    assert sorted(p.name for p in folder.iterdir()) == ["hf.json"]
    store.close()


# ------------------------------------------------- permissions, crash, migration


def test_files_are_owner_only(db_path):
    store = Store(db_path)
    store.add_workload(workload("w"))
    assert mode(db_path) == 0o600
    assert mode(db_path.parent) == 0o700  # created by the store
    for suffix in ("-wal", "-shm"):
        assert mode(Path(f"{db_path}{suffix}")) == 0o600
    assert store._read("PRAGMA journal_mode")[0][0] == "wal"
    store.close()


def test_an_existing_database_with_loose_permissions_is_tightened(db_path):
    Store(db_path).close()
    os.chmod(db_path, 0o644)
    Store(db_path).close()
    assert mode(db_path) == 0o600


def test_a_second_store_finds_everything_the_first_committed(db_path):
    first = Store(db_path)  # never closed, as after a crash
    w = workload("w")
    first.add_workload(w)
    first.set_pod_handle(w.uid, "w-0", {"pid": 1})
    first.add_event("Submitted", "hi", at=T0, project="team-a", workload="w")
    second = Store(db_path)
    assert second.workloads() == [w]
    assert second.pod_handles() == {(w.uid, "w-0"): {"pid": 1}}
    assert [e.message for e in second.events()] == ["hi"]
    second.close()
    first.close()


def test_a_process_that_dies_without_closing_loses_nothing_committed(db_path):
    script = f"""
import os, sys
from datetime import datetime, timezone
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_store import workload
from jupyter_runai.store import Store
from jupyter_runai.models import Project, Credential
store = Store({str(db_path)!r})
store.put_project(Project(name="team-a"))
for i in range(20):
    store.add_workload(workload(f"w{{i}}"))
store.put_credential("team-a", Credential(name="hf", inject_as="env", data={{"K": "v"}}))
store.add_event("Submitted", "last words", at=datetime.now(timezone.utc))
os._exit(0)  # no close, no cleanup
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    store = Store(db_path)
    assert names(store.workloads()) == [f"w{i}" for i in range(20)]
    assert store.project("team-a") is not None
    assert store.credential("team-a", "hf").secret_values() == {"K": "v"}
    assert store.events()[-1].message == "last words"
    store.close()


V1_SCHEMA = """
CREATE TABLE departments (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE projects (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE workloads (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL UNIQUE, project TEXT NOT NULL,
    name TEXT NOT NULL, kind TEXT NOT NULL, phase TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (project, name));
CREATE INDEX workloads_by_phase ON workloads (phase, seq);
CREATE INDEX workloads_by_kind ON workloads (kind, seq);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, type TEXT NOT NULL, project TEXT,
    workload TEXT, pod TEXT, message TEXT NOT NULL);
CREATE INDEX events_by_workload ON events (project, workload, id);
PRAGMA user_version = 1;
"""


def test_a_version_1_database_is_migrated(db_path):
    """A file written by the first release (schema 1: no pod handles, data sources or credentials)."""
    db_path.parent.mkdir()
    old = sqlite3.connect(db_path)
    old.executescript(V1_SCHEMA)
    w = workload("old-job")
    old.execute("INSERT INTO workloads (seq, uid, project, name, kind, phase, body) VALUES (7, ?, ?, ?, ?, ?, ?)",
                (w.uid, "team-a", "old-job", "training", "Pending", w.model_dump_json()))
    old.execute("INSERT INTO projects VALUES ('team-a', ?)", (Project(name="team-a").model_dump_json(),))
    old.execute("INSERT INTO events (at, type, project, workload, message) VALUES (?, 'Submitted', 'team-a', "
                "'old-job', 'from v1')", (T0.isoformat(),))
    old.commit()
    old.close()

    store = Store(db_path)
    assert store.schema_version == SCHEMA_VERSION == 9
    assert store.workloads() == [w] and store.workload_seq(w.uid) == 7
    assert store.project("team-a") == Project(name="team-a")
    assert store.events()[0].message == "from v1"
    assert store.add_workload(workload("new-job")) == 8
    store.set_pod_handle(w.uid, "old-job-0", {"pid": 9})
    store.put_data_source("team-a", DataSource(name="d", kind="host_path", path="/d"))
    store.put_credential("team-a", Credential(name="c", inject_as="env", data={"K": "v"}))
    # version 4: node pools and the audit log, empty after the migration
    assert store.node_pools() == [] and store.audit() == []
    # version 5: workload policies, none after the migration
    assert store.policies() == []
    store.put_node_pool(NodePool(name="a100", label_selector={"gpu": "a100"}))
    store.add_audit(at=T0, user="ann", action="create", kind="node_pool", name="a100", before=None,
                    after={"name": "a100"})
    # version 5: role bindings, empty after the migration; one binding is stored once
    binding = RoleBinding(role="researcher", user="ann", project="team-a")
    assert store.role_bindings() == []
    assert store.project_departments() == {"team-a": "default"}  # what RBAC reads of the project tree
    first = store.add_role_binding(binding)
    assert first is not None and store.add_role_binding(binding) is None
    second = store.add_role_binding(RoleBinding(role="viewer", group="all"))
    store.delete_role_binding(second)
    # version 6: GPU accounting, empty after the migration
    assert store.usage("2020-01-01", "2030-12-31", None) == []
    store.close()
    again = Store(db_path)
    assert again.schema_version == SCHEMA_VERSION  # opening again migrates nothing
    assert [p.name for p in again.node_pools()] == ["a100"]
    assert [(e["user"], e["action"], e["after"]) for e in again.audit()] == [("ann", "create", {"name": "a100"})]
    assert again.role_bindings() == [(first, binding)]
    again.close()


def test_node_pools_keep_their_order_and_the_audit_log_reads_newest_last(db_path):
    store = Store(db_path)
    for name in ("b", "a", "c"):
        store.put_node_pool(NodePool(name=name))
    store.put_node_pool(NodePool(name="a", gpu_placement="spread"))  # replaced in place
    assert [(p.name, p.gpu_placement) for p in store.node_pools()] == [
        ("b", "fragmentation-aware"), ("a", "spread"), ("c", "fragmentation-aware")]
    store.delete_node_pool("b")
    with pytest.raises(NotFound):
        store.delete_node_pool("b")
    assert [p.name for p in store.node_pools()] == ["a", "c"]
    for i in range(5):
        store.add_audit(at=T0, user="u", action="update", kind="project", name=f"p{i % 2}", before={"i": i - 1},
                        after={"i": i})
    assert [e["after"]["i"] for e in store.audit(limit=3)] == [2, 3, 4]
    assert [e["after"]["i"] for e in store.audit(kind="project", name="p1")] == [1, 3]
    assert store.audit(kind="department") == []
    store.close()


def test_a_department_with_projects_is_not_deleted(db_path):
    store = Store(db_path)
    store.put_department(Department(name="research"))
    store.put_project(Project(name="vision", department="research"))
    with pytest.raises(InUse, match="vision"):
        store.delete_department("research")
    store.delete_project("vision")
    store.delete_department("research")
    assert store.departments() == []
    with pytest.raises(NotFound):
        store.delete_department("research")
    store.close()


def test_a_failing_migration_changes_nothing(db_path, monkeypatch):
    Store(db_path).close()

    def v3(db):
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, v3])
    with pytest.raises(RuntimeError, match="migration bug"):
        Store(db_path)
    monkeypatch.undo()
    store = Store(db_path)
    assert store.schema_version == SCHEMA_VERSION
    assert not store._read("SELECT name FROM sqlite_master WHERE name = 'half_done'")
    store.close()


def test_a_newer_database_is_refused(db_path):
    Store(db_path).close()
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        Store(db_path)


def test_a_file_that_is_not_a_database_is_refused(db_path):
    db_path.parent.mkdir()
    db_path.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        Store(db_path)


# ------------------------------------------------------------ threads, speed


def test_threads_share_one_store(store):
    errors = []

    def add(prefix):
        try:
            for i in range(25):
                store.add_workload(workload(f"{prefix}-{i}"))
                store.add_event("Submitted", f"{prefix}-{i}", at=T0)
                store.workloads(phases=["Pending"])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seqs = [store.workload_seq(w.uid) for w in store.workloads()]
    assert len(seqs) == 100 and seqs == sorted(set(seqs))
    assert len(store.events()) == 100


def test_listing_five_thousand_workloads_is_fast(store, capsys):
    batch = [workload(f"w{i}", project=f"p{i % 10}", phase=WorkloadPhase.RUNNING if i % 3 else
                      WorkloadPhase.PENDING) for i in range(5000)]
    for w in batch:
        store.add_workload(w)
    start = time.perf_counter()
    listed = store.workloads()
    elapsed = time.perf_counter() - start
    assert len(listed) == 5000 and listed[0].spec.name == "w0" and listed[-1].spec.name == "w4999"
    start = time.perf_counter()
    pending = store.workloads(project="p3", phases=["Pending"])
    filtered = time.perf_counter() - start
    assert len(pending) == 167
    with capsys.disabled():
        print(f"\n[store] list 5,000 workloads: {elapsed * 1000:.0f} ms; one project's pending: "
              f"{filtered * 1000:.1f} ms")
    assert elapsed < 5.0  # generous for slow CI; the figure above is what matters


def test_batch_commits_together_and_a_failed_write_inside_keeps_the_rest(tmp_path):
    from jupyter_runai.models import Department

    store = Store(tmp_path / "runai.db")
    with store.batch():
        store.put_department(Department(name="a"))
        with pytest.raises(Exception):
            with store._tx() as db:  # one write fails half-way: only it is undone
                db.execute("INSERT INTO departments (name, body) VALUES ('b', '{}')")
                raise RuntimeError("boom")
        store.put_department(Department(name="c"))
    assert sorted(d.name for d in Store(tmp_path / "runai.db").departments()) == ["a", "c"]
    with pytest.raises(RuntimeError):
        with store.batch():
            store.put_department(Department(name="d"))
            raise RuntimeError("the whole batch fails")
    assert sorted(d.name for d in store.departments()) == ["a", "c"]
