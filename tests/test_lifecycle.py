"""The workload lifecycle on its own (``jupyter_runai.lifecycle``): no store, no cluster, no
clock. Each row starts a workload in a state (its phase and its pods' phases), applies one
thing that happens (a pod report, a request, an eviction) and states the phase the workload
ends in, its pods' phases, the events to record and the pods to stop."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from jupyter_runai.clusters.base import PodState
from jupyter_runai.errors import Conflict
from jupyter_runai.lifecycle import STARTING_REASON, Step
from jupyter_runai.models import PodStatus, Workload, WorkloadPhase, WorkloadSpec, WorkloadStatus

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(minutes=5)

SPECS = {
    "training": {"kind": "training", "command": "run"},
    "training-retry": {"kind": "training", "command": "run", "backoff_limit": 1},
    "distributed": {"kind": "distributed", "command": "run", "workers": 2},
    "distributed-retry": {"kind": "distributed", "command": "run", "workers": 1, "backoff_limit": 2},
    "inference": {"kind": "inference", "command": "serve", "min_replicas": 1, "max_replicas": 3},
    "workspace": {"kind": "workspace"},
}


def workload(spec: str, phase: str, pods: str, messages: dict[int, str] | None = None) -> Workload:
    """A workload of ``SPECS[spec]`` in ``phase`` whose pods have the phases in ``pods`` (one letter
    each: P pending, R running, T terminating, S succeeded, F failed)."""
    letters = {"P": "Pending", "R": "Running", "T": "Terminating", "S": "Succeeded", "F": "Failed"}
    model = WorkloadSpec.model_validate({"name": "w", **SPECS[spec]})
    status = WorkloadStatus(phase=phase, submitted_at=T0, started_at=T0 if phase != "Pending" else None)
    for index, letter in enumerate(pods):
        holds = letter in "RT"
        status.pods.append(PodStatus(name=model.pod_name(index), index=index, phase=letters[letter],
                                     node="n0" if holds else None, devices=[index] if holds else [],
                                     started_at=T0 if letter != "P" else None,
                                     message=(messages or {}).get(index)))
    return Workload(spec=model, status=status, submitted_by="ann")


def pods_of(w: Workload) -> str:
    return "".join(p.phase.value[0] for p in w.status.pods)


def event_types(step: Step) -> list[str]:
    return [e.type for e in step.events]


# (name, spec, phase, pods, outcome-in, what happens, phase after, pods after, events, stopped, outcome, removable)
REPORTS = [
    ("training succeeds", "training", "Running", "R", None,
     (0, PodState.SUCCEEDED), "Succeeded", "S", ["Succeeded", "Succeeded"], [], None, False),
    ("training fails", "training", "Running", "R", None,
     (0, PodState.FAILED), "Failed", "F", ["Failed", "Failed"], [], None, False),
    ("training lost", "training", "Running", "R", None,
     (0, PodState.LOST), "Failed", "F", ["Failed", "Failed"], [], None, False),
    ("training fails and restarts", "training-retry", "Running", "R", None,
     (0, PodState.FAILED), "Pending", "P", ["Failed", "Pending"], [], None, False),
    ("training evicted: back in the queue", "training", "Running", "T", None,
     (0, PodState.STOPPED), "Running", "P", [], [], None, False),
    ("gang member fails: the others are stopped", "distributed", "Running", "RRR", None,
     (1, PodState.FAILED), "Stopping", "TFT", ["Failed"], ["w-0", "w-2"],
     WorkloadPhase.FAILED, False),
    ("gang: the last stopped member ends: Failed", "distributed", "Stopping", "TF", WorkloadPhase.FAILED,
     (0, PodState.STOPPED), "Failed", "FF", ["Failed"], [], None, False),
    ("gang member fails, restarts left: all back in the queue", "distributed-retry", "Running", "RR", None,
     (1, PodState.FAILED), "Pending", "TP", ["Failed", "Pending"], ["w-0"], None, False),
    ("gang: all succeed", "distributed", "Running", "SSR", None,
     (2, PodState.SUCCEEDED), "Succeeded", "SSS", ["Succeeded", "Succeeded"], [], None, False),
    ("gang: one of three succeeds, the rest run on", "distributed", "Running", "RRR", None,
     (0, PodState.SUCCEEDED), "Running", "SRR", ["Succeeded"], [], None, False),
    ("inference replica fails: placed again", "inference", "Running", "R", None,
     (0, PodState.FAILED), "Running", "P", ["Failed"], [], None, False),
    ("inference replica exits: placed again", "inference", "Running", "R", None,
     (0, PodState.SUCCEEDED), "Running", "P", ["Succeeded"], [], None, False),
    ("stopping: the last pod ends: Stopped", "training", "Stopping", "T", None,
     (0, PodState.STOPPED), "Stopped", "", ["Stopped"], [], None, False),
    ("stopping: a pod succeeds meanwhile: still Stopped", "distributed", "Stopping", "TS", None,
     (0, PodState.SUCCEEDED), "Stopped", "", ["Succeeded", "Stopped"], [], None, False),
    ("stopping: one of two ends, one still runs", "distributed", "Stopping", "TT", None,
     (0, PodState.STOPPED), "Stopping", "PT", [], [], None, False),
    ("deleting: the last pod ends: removable", "training", "Deleting", "T", None,
     (0, PodState.STOPPED), "Deleting", "P", [], [], None, True),
    ("deleting: the pod exits non-zero on its way out: removable", "training", "Deleting", "T", None,
     (0, PodState.FAILED), "Deleting", "P", [], [], None, True),
    ("deleting: a pod fails on its own: removable", "training", "Deleting", "R", None,
     (0, PodState.FAILED), "Deleting", "F", ["Failed"], [], None, True),
]


@pytest.mark.parametrize(
    "spec, phase, pods, outcome, report, phase_after, pods_after, events, stopped, outcome_after, removable",
    [row[1:] for row in REPORTS], ids=[row[0] for row in REPORTS])
def test_pod_reports(spec, phase, pods, outcome, report, phase_after, pods_after, events, stopped,
                     outcome_after, removable):
    w = workload(spec, phase, pods)
    step = Step(w, NOW, outcome=outcome)
    index, state = report
    step.pod_ended(w.status.pods[index], state, None)
    assert (w.status.phase.value, pods_of(w)) == (phase_after, pods_after)
    assert event_types(step) == events
    assert step.stop == stopped
    assert step.outcome == outcome_after
    assert step.removable is removable
    assert step.changed


def test_a_finished_workload_ends_at_the_time_given_never_before_it_started():
    w = workload("training", "Running", "R")
    w.status.started_at = NOW + timedelta(seconds=3)  # the clock stepped back meanwhile
    step = Step(w, NOW)
    step.pod_ended(w.status.pods[0], PodState.SUCCEEDED, "exited with code 0")
    assert w.status.finished_at == NOW + timedelta(seconds=3)
    assert [e.message for e in step.events] == ["pod w-0 exited with code 0", "succeeded"]


def test_an_evicted_pod_says_why_while_it_waits():
    w = workload("training", "Running", "R")
    step = Step(w, NOW)
    step.evict(w.status.pods[0], "reclaimed by project b")
    assert (pods_of(w), step.stop, event_types(step)) == ("T", ["w-0"], ["Evicted"])
    step = Step(w, NOW)
    step.pod_ended(w.status.pods[0], PodState.STOPPED, "stopped")
    assert w.status.pods[0].message == "evicted: reclaimed by project b; waiting to be placed again"
    assert w.status.pods[0].node is None and w.status.pods[0].devices == []


def test_restarts_stop_at_the_backoff_limit():
    w = workload("training-retry", "Running", "R")
    Step(w, NOW).pod_ended(w.status.pods[0], PodState.FAILED, "exit 1")
    assert (w.status.phase, w.status.restarts) == (WorkloadPhase.PENDING, 1)
    w.status.pods[0].phase = "Running"
    step = Step(w, NOW)
    step.pod_ended(w.status.pods[0], PodState.FAILED, "exit 1 again")
    assert (w.status.phase, w.status.restarts) == (WorkloadPhase.FAILED, 1)
    assert w.status.message == "pod w-0: exit 1 again"


# (name, spec, phase, pods, unlaunched, phase after, pods after, events, stopped, cancelled)
STOPS = [
    ("stop a running workload", "training", "Running", "R", set(), "Stopping", "T", [], ["w-0"], []),
    ("stop a pending workload: Stopped at once", "training", "Pending", "P", set(), "Stopped", "", ["Stopped"], [], []),
    ("stop during start: placed pods never launch", "distributed", "Pending", "RRR", {"w-1", "w-2"},
     "Stopping", "T", [], ["w-0"], ["w-1", "w-2"]),
    ("stop before any pod launched: Stopped at once", "distributed", "Pending", "RRR", {"w-0", "w-1", "w-2"},
     "Stopped", "", ["Stopped"], [], ["w-0", "w-1", "w-2"]),
]


@pytest.mark.parametrize("spec, phase, pods, unlaunched, phase_after, pods_after, events, stopped, cancelled",
                         [row[1:] for row in STOPS], ids=[row[0] for row in STOPS])
def test_stop(spec, phase, pods, unlaunched, phase_after, pods_after, events, stopped, cancelled):
    w = workload(spec, phase, pods)
    step = Step(w, NOW, unlaunched=set(unlaunched))
    step.stop_request("ann")
    assert (w.status.phase.value, pods_of(w)) == (phase_after, pods_after)
    assert (event_types(step), step.stop, step.cancelled) == (events, stopped, cancelled)
    assert w.status.message == "stopped by ann"


@pytest.mark.parametrize("phase", ["Stopped", "Succeeded", "Failed", "Deleting"])
def test_stop_is_refused_and_changes_nothing_when_nothing_runs(phase):
    w = workload("training", phase, "")
    before = w.model_dump()
    step = Step(w, NOW)
    with pytest.raises(Conflict):
        step.stop_request("ann")
    assert w.model_dump() == before and step.events == [] and not step.changed


def test_stop_while_stopping_changes_nothing():
    w = workload("training", "Stopping", "T")
    step = Step(w, NOW)
    step.stop_request("ann")
    assert not step.changed and step.stop == [] and w.status.phase == WorkloadPhase.STOPPING


def test_delete_ends_pods_and_is_removable_once_none_holds_devices():
    w = workload("distributed", "Running", "RRF")
    step = Step(w, NOW, unlaunched={"w-1"})
    step.delete_request()
    assert (w.status.phase.value, pods_of(w), step.stop, step.cancelled, step.removable) == (
        "Deleting", "TF", ["w-0"], ["w-1"], False)
    w2 = workload("training", "Pending", "P")
    step = Step(w2, NOW)
    step.delete_request()
    assert step.removable and pods_of(w2) == ""


@pytest.mark.parametrize("phase", ["Stopped", "Succeeded", "Failed"])
def test_resume_puts_a_finished_workload_back_with_fresh_pods(phase):
    w = workload("distributed", phase, "FS")
    w.status.restarts = 2
    step = Step(w, NOW)
    step.resume_request("bob")
    assert (w.status.phase.value, pods_of(w), w.status.restarts, w.status.submitted_at) == ("Pending", "PPP", 0, T0)
    assert [(e.type, e.message) for e in step.events] == [("Resumed", "resumed by bob")]


@pytest.mark.parametrize("phase", ["Pending", "Running", "Stopping", "Deleting"])
def test_resume_is_refused_while_it_is_live(phase):
    w = workload("training", phase, "")
    with pytest.raises(Conflict):
        Step(w, NOW).resume_request("bob")
    assert w.status.phase.value == phase


def test_a_rule_stops_a_workload_and_says_so():
    w = workload("workspace", "Running", "R")
    step = Step(w, NOW)
    step.stop_workload("idle for 30m", "idle for 30m", event="RuleStopped")
    assert (event_types(step), step.stop, w.status.pods[0].message) == (["RuleStopped"], ["w-0"], "idle for 30m")


def test_fail_ends_the_pods_and_fails_once_they_are_gone():
    w = workload("distributed", "Running", "RRP")
    step = Step(w, NOW)
    step.fail("cannot be scheduled: bad value")
    assert (w.status.phase.value, step.outcome, step.stop) == ("Stopping", WorkloadPhase.FAILED, ["w-0", "w-1"])
    for index in (0, 1):
        step = Step(w, NOW, outcome=step.outcome)
        step.pod_ended(w.status.pods[index], PodState.STOPPED, None)
    assert (w.status.phase.value, w.status.message) == ("Failed", "cannot be scheduled: bad value")


def test_a_pod_that_could_not_start_fails_its_gang():
    w = workload("distributed", "Pending", "RR")
    step = Step(w, NOW, unlaunched={"w-1"})
    step.pod_not_started(w.status.pods[0], "no such command")
    assert (w.status.phase.value, step.cancelled, event_types(step)) == ("Failed", ["w-1"], ["Failed", "Failed"])
    assert w.status.message == "pod w-0: could not start: no such command"


# (name, spec, phase, pods, reason, ready, url, phase after, pending reason after, events)
PHASES = [
    ("placed and launched: Running", "training", "Pending", "R", None, 1, None, "Running", None, ["Started"]),
    ("waits: the engine's reason", "training", "Pending", "P", "not enough GPUs", 0, None, "Pending",
     "not enough GPUs", ["Pending"]),
    ("a workspace that does not answer yet stays Pending", "workspace", "Pending", "R", None, 0, "/p/w/",
     "Pending", STARTING_REASON, ["Pending"]),
    ("a workspace that answers is Running with its URL", "workspace", "Pending", "R", None, 1, "/p/w/",
     "Running", None, ["Started"]),
    ("a gang below its minimum goes back to the queue", "distributed", "Running", "RPP", None, 1, None,
     "Pending", None, ["Pending"]),
    ("evicted pods still ending: it says so", "training", "Pending", "T", None, 0, None, "Pending",
     "waiting for evicted pods to release their devices", ["Pending"]),
]


@pytest.mark.parametrize("spec, phase, pods, reason, ready, url, phase_after, reason_after, events",
                         [row[1:] for row in PHASES], ids=[row[0] for row in PHASES])
def test_update_phase(spec, phase, pods, reason, ready, url, phase_after, reason_after, events):
    w = workload(spec, phase, pods)
    step = Step(w, NOW)
    step.update_phase(reason, ready, url)
    assert (w.status.phase.value, w.status.pending_reason, event_types(step)) == (phase_after, reason_after, events)
    assert w.status.url == (url if phase_after == "Running" else None)


def test_a_reason_already_told_is_shown_but_not_told_again():
    w = workload("training", "Pending", "P")
    step = Step(w, NOW)
    step.update_phase("project a: 2 GPUs over its limit of 4", 0, None)
    told = step.told
    step = Step(w, NOW, told=told)
    step.update_phase("project a: 3 GPUs over its limit of 4", 0, None)
    assert w.status.pending_reason == "project a: 3 GPUs over its limit of 4"
    assert step.events == [] and not step.changed


def test_scale_down_stops_the_replicas_above_the_target():
    w = workload("inference", "Running", "RRR")
    step = Step(w, NOW, desired=1)
    step.scale_down(1, "0 requests in flight")
    assert (pods_of(w), step.stop) == ("RTT", ["w-1", "w-2"])
    step = Step(w, NOW, desired=1)
    step.pod_ended(w.status.pods[2], PodState.STOPPED, None)
    assert pods_of(w) == "RT"  # a replica scaled down is gone once it ended


@pytest.mark.parametrize("never_started, says", [
    (True, "it had not started when the server stopped; waiting to be placed again"),
    (False, "the process was gone after a restart; waiting to be placed again"),
])
def test_a_pod_gone_after_a_restart_waits_to_be_placed_again(never_started, says):
    w = workload("distributed", "Running", "RR")
    step = Step(w, NOW)
    step.pod_gone_after_restart(w.status.pods[1], never_started=never_started)
    assert (w.status.phase.value, pods_of(w), w.status.pods[1].message) == ("Running", "RP", says)
    assert [(e.type, e.message, e.pod) for e in step.events] == [("Warning", f"pod w-1: {says}", "w-1")]

