"""Where hooks run in a plan (core.hooks): parsing `--hook` and hook files, placement on the
steps the executor performs anyway, and the plan text that shows it."""

from __future__ import annotations

import pytest

from kubehop.cli.plan_render import format_hooks
from kubehop.core.hooks import (
    END,
    START,
    Hook,
    hooks_from_config,
    parse_hook,
    place_hooks,
)
from kubehop.core.planner.make import plan_upgrade
from kubehop.model.errors import UsageError
from kubehop.model.plan import PlanOptions, StepKind
from tests.unit.core.plan_strategies import oldversion_state, release_data

PLAN = plan_upgrade(oldversion_state(), "1.30", release_data(), PlanOptions())
ALL = tuple(Hook(e, f"echo {e}") for e in ("before-hop", "after-control-plane", "before-drain",
                                           "after-uncordon", "after-hop", "finished", "halted"))


def test_a_hook_flag_is_event_equals_command():
    assert parse_hook("before-drain=./silence.sh --node x") == Hook("before-drain",
                                                                    "./silence.sh --node x")


@pytest.mark.parametrize("text", ["before-drain", "drain=x", "before-drain=  ", "=x"])
def test_bad_hook_flags_name_the_events(text):
    with pytest.raises(UsageError, match="expected EVENT=COMMAND with EVENT one of before-hop, "
                                         "after-control-plane, before-drain"):
        parse_hook(text)


def test_a_hook_file_maps_events_to_one_command_or_several():
    data = {"hooks": {"after-hop": "./smoke.sh", "before-drain": ["a", "b"]}}
    assert hooks_from_config(data, "h.yaml") == (
        Hook("after-hop", "./smoke.sh"), Hook("before-drain", "a"), Hook("before-drain", "b"))
    with pytest.raises(UsageError, match=r"^h.yaml: hooks.after-drain: unknown event"):
        hooks_from_config({"hooks": {"after-drain": "x"}}, "h.yaml")


def test_hooks_are_placed_before_steps_that_run_anyway():
    placed = place_hooks(PLAN, ALL)
    ids = {s.id for s in PLAN.steps}
    assert set(placed) - ids == {START, END}
    # The first hop starts the run; the second waits behind the first one's final gate,
    # after that hop's after-hop.
    assert [c.event for c in placed[START]] == ["before-hop"]
    assert placed[START][0].hop == "v1.29.15"
    final = [s.id for s in PLAN.steps if s.kind is StepKind.GATE and s.hop == "v1.29.15"][-1]
    assert [c.event for c in placed[final]][-2:] == ["after-hop", "before-hop"]
    assert [c.hop for c in placed[final]][-2:] == ["v1.29.15", "v1.30.14"]
    # before-drain: right before the node's cordon, once per node and hop.
    drains = [(c.node, anchor) for anchor, calls in placed.items() for c in calls
              if c.event == "before-drain"]
    assert sorted(drains) == [("oldversion1", "1.29/oldversion1/cordon"),
                              ("oldversion1", "1.30/oldversion1/cordon"),
                              ("oldversion2", "1.30/oldversion2/cordon"),
                              ("oldversion3", "1.30/oldversion3/cordon")]
    assert [c.id for c in placed[END]] == ["hook/finished/run/0"]
    # every call has its own journal id
    calls = [c.id for cs in placed.values() for c in cs]
    assert len(calls) == len(set(calls))


def test_after_control_plane_waits_for_every_control_plane_before_any_kubelet():
    placed = place_hooks(PLAN, [Hook("after-control-plane", "./cni.sh")])
    anchor = next(a for a, calls in placed.items() if calls[0].hop == "v1.29.15")
    position = [s.id for s in PLAN.steps].index
    applied = position("1.29/oldversion1/kubeadm-apply")
    kubelet = position("1.29/oldversion1/kubelet-install")
    assert applied < position(anchor) < kubelet


def test_the_plan_text_says_where_hooks_run():
    text = format_hooks(PLAN, [Hook("after-hop", "./smoke.sh"), Hook("halted", "./page.sh")])
    assert text == ("Hooks (on this machine; a failure halts the run):\n"
                    "  after-hop: ./smoke.sh — 2× (before 1.29/wave1/done, "
                    "before 1.30/wave5/done)\n"
                    "  halted: ./page.sh — 1× (when a run halts)\n")
    assert format_hooks(PLAN, []) == ""
