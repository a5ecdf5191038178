"""Differences between a saved plan and the plan the cluster calls for now, one line each."""

from dataclasses import replace

from kubehop.core.plan_diff import diff_plans
from kubehop.core.progress import summarize
from kubehop.model.journal import RunInfo, RunState, StepRecord, StepStatus
from kubehop.model.plan import Command
from tests.unit.shell.test_executor import make_plan


def test_the_same_plan_has_no_difference():
    plan = make_plan([["n0", "n1"]])
    assert diff_plans(plan, plan) == []


def test_steps_and_nodes_that_appear_vanish_or_change():
    saved = make_plan([["n0", "n1"]])
    now = make_plan([["n1", "n2"]])
    changed = tuple(replace(s, commands=(Command(("kubeadm", "upgrade", "node", "-v5")),))
                    if s.id == "w0/n1/kubeadm-node" else s for s in now.steps)
    now = replace(now, steps=changed, from_version="v1.28.10")
    assert diff_plans(saved, now) == [
        "the cluster now runs v1.28.10, the plan starts from v1.28.9",
        "node n2 is not in the plan",
        "node n0 of the plan needs nothing now (or is gone)",
        "step w0/n1/kubeadm-node changed: now kubeadm-node",
    ]
    assert diff_plans(saved, now, limit=2)[-1] == "… and 2 more"


def test_progress_summary_counts_waves_and_cordoned_nodes():
    plan = make_plan([["n0"], ["n1"]])
    run = RunInfo("run-1", "c", "f", "d", "v1.28.9", "v1.29.15", len(plan.steps), 0.0)
    state = RunState(run)
    for seq, (step, status) in enumerate([("w0/n0/cordon", StepStatus.SUCCEEDED),
                                          ("w0/n0/kubeadm-node", StepStatus.STARTED)], 1):
        state = state.with_record(StepRecord(seq, step, status, float(seq), "n0"))
    s = summarize(plan, state)
    assert (s.done, s.total) == (1, 8)
    assert s.current.index == 0
    assert (s.current.done, s.current.total) == (1, 4)
    assert s.in_flight == ("w0/n0/kubeadm-node",)
    assert s.cordoned == (("n0", "cordoned for its upgrade to v1.29.15"),)
    assert s.counts["not-started"] == 6
