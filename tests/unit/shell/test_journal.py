"""The journal: one run per (cluster, plan), append-only records, transitions enforced, replay
equals the states returned, and a SIGKILL at any instant leaves a consistent file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubehop.model.errors import OperationError
from kubehop.model.journal import RunStatus, StepStatus, allowed, plan_digest, run_id
from kubehop.model.plan import Command, Plan, PlanOptions, Step, StepKind
from kubehop.shell.executor.journal import FILE_NAME, Journal, state_dir

CLUSTER = "kube-system:1234"


def small_plan(n: int = 3, fingerprint: str = "sha256:abc", to: str = "v1.29.15") -> Plan:
    steps = []
    prev: tuple[str, ...] = ()
    for i in range(n):
        sid = f"1.29/w{i}/kubeadm-node"
        steps.append(Step(sid, StepKind.KUBEADM_NODE, f"w{i}", to, prev,
                          (Command(("kubeadm", "upgrade", "node")),), wave=0))
        prev = (sid,)
    steps.append(Step("1.29/done", StepKind.GATE, None, to, prev, wave=0))
    return Plan("v1.28.9", to, (to,), PlanOptions(), 1, tuple(steps), fingerprint=fingerprint)


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / FILE_NAME) as j:
        yield j


def test_state_dir_honours_the_override_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBEHOP_STATE_DIR", str(tmp_path / "x"))
    assert state_dir() == tmp_path / "x"
    monkeypatch.delenv("KUBEHOP_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "kubehop"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert state_dir() == Path("~/.local/state/kubehop").expanduser()


def test_one_run_per_cluster_and_plan(journal):
    plan = small_plan()
    first = journal.begin(CLUSTER, plan)
    again = journal.begin(CLUSTER, plan)
    assert first.run == again.run
    assert first.run.id == run_id(CLUSTER, plan.fingerprint, plan_digest(plan.to_dict()))
    other_cluster = journal.begin("kube-system:9999", plan)
    other_plan = journal.begin(CLUSTER, small_plan(4))
    assert len({first.run.id, other_cluster.run.id, other_plan.run.id}) == 3
    assert journal.plan_of(first.run.id) == plan


def test_records_replay_to_the_state_returned(journal):
    state = journal.begin(CLUSTER, small_plan())
    state = journal.record(state, "1.29/w0/kubeadm-node", StepStatus.STARTED, node="w0")
    state = journal.record(state, "1.29/w0/kubeadm-node", StepStatus.SUCCEEDED, node="w0")
    state = journal.record(state, "1.29/w1/kubeadm-node", StepStatus.STARTED, node="w1")
    state = journal.record(state, "1.29/w1/kubeadm-node", StepStatus.FAILED, node="w1",
                           message="exit 1", output="x" * 5000)
    state = journal.set_status(state, RunStatus.HALTED, "w1 failed")
    loaded = journal.find(state.run.id)
    assert loaded == state
    assert loaded.done == {"1.29/w0/kubeadm-node"}
    assert loaded.status is RunStatus.HALTED
    failed = loaded.steps["1.29/w1/kubeadm-node"]
    assert failed.message == "exit 1"
    assert len(failed.output) == 2000
    assert failed.output.startswith("…")
    # A retry counts its attempts.
    state = journal.record(loaded, "1.29/w1/kubeadm-node", StepStatus.STARTED, node="w1")
    assert state.steps["1.29/w1/kubeadm-node"].attempt == 2


def test_forbidden_transitions_write_nothing(journal):
    state = journal.begin(CLUSTER, small_plan())
    with pytest.raises(ValueError, match="cannot go from nothing to failed"):
        journal.record(state, "1.29/w0/kubeadm-node", StepStatus.FAILED)
    state = journal.record(state, "1.29/w0/kubeadm-node", StepStatus.SKIPPED)
    with pytest.raises(ValueError, match="skipped-already-done to started"):
        journal.record(state, "1.29/w0/kubeadm-node", StepStatus.STARTED)
    assert journal.find(state.run.id) == state


def test_records_are_immutable(journal, tmp_path):
    state = journal.begin(CLUSTER, small_plan())
    journal.record(state, "1.29/w0/kubeadm-node", StepStatus.STARTED)
    db = sqlite3.connect(str(tmp_path / FILE_NAME))
    with pytest.raises(sqlite3.DatabaseError, match="immutable"):
        db.execute("UPDATE records SET status='succeeded'")
    with pytest.raises(sqlite3.DatabaseError, match="immutable"):
        db.execute("UPDATE runs SET to_version='v9.9.9'")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_latest_and_unfinished_runs(journal):
    a = journal.begin(CLUSTER, small_plan(2))
    journal.set_status(a, RunStatus.SUCCEEDED)
    b = journal.begin(CLUSTER, small_plan(3))
    assert journal.latest(CLUSTER).run.id == b.run.id
    assert journal.latest(CLUSTER, unfinished=True).run.id == b.run.id
    journal.set_status(b, RunStatus.ABANDONED)
    assert journal.latest(CLUSTER, unfinished=True) is None
    assert journal.latest("kube-system:other") is None
    assert journal.runs(CLUSTER)[0] == b.run.id


def test_an_unwritable_place_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OperationError, match="cannot open the kubehop journal"):
        Journal(blocker / "sub" / FILE_NAME)


_STATUSES = list(StepStatus)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(_STATUSES)), max_size=40))
def test_any_allowed_sequence_replays_exactly(tmp_path_factory, moves):
    path = tmp_path_factory.mktemp("j") / FILE_NAME
    with Journal(path) as journal:
        state = journal.begin(CLUSTER, small_plan(4))
        for i, status in moves:
            step = f"1.29/w{i}/kubeadm-node"
            if allowed(state.status_of(step), status):
                state = journal.record(state, step, status)
            else:
                with pytest.raises(ValueError, match="cannot go from"):
                    journal.record(state, step, status)
        assert journal.find(state.run.id) == state


WRITER = """
import sys
from kubehop.model.journal import StepStatus
from kubehop.model.plan import Command, Plan, PlanOptions, Step, StepKind
from kubehop.shell.executor.journal import Journal
steps = tuple(Step(f"s{i}", StepKind.KUBEADM_NODE, "w", "v1.29.15",
                   commands=(Command(("true",)),)) for i in range(100000))
plan = Plan("v1.28.9", "v1.29.15", ("v1.29.15",), PlanOptions(), 1, steps[:3], fingerprint="f")
j = Journal.open()
state = j.begin("c", plan)
i = len(state.done)
if state.status_of(f"s{i}") is StepStatus.STARTED:
    state = j.record(state, f"s{i}", StepStatus.NEEDS_VERIFICATION)
print("ready", flush=True)
while True:
    state = j.record(state, f"s{i}", StepStatus.STARTED, output="y" * 3000)
    state = j.record(state, f"s{i}", StepStatus.SUCCEEDED)
    i += 1
"""


def test_sigkill_at_any_moment_leaves_a_consistent_journal(tmp_path):
    env = dict(os.environ, KUBEHOP_STATE_DIR=str(tmp_path))
    done_before = 0
    for delay in (0.05, 0.13, 0.21, 0.34, 0.5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER], env=env, stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        with Journal.open(tmp_path / FILE_NAME) as journal:
            (rid,) = journal.runs()
            state = journal.find(rid)  # replay validates every transition
            started = state.ids(StepStatus.STARTED)
            assert len(started) <= 1  # at most the one step in flight
            assert len(state.done) > done_before  # each writer went on where the last stopped
            done_before = len(state.done)
            assert proc.returncode == -signal.SIGKILL
