"""Memoising is only speed: the planner and the simulator give the same plans and verdicts with
their memos on (workers in equal states share work) and off (every node on its own).

500 examples, 50 when `CI` is set."""

import os
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubehop.core.planner.make import plan_upgrade
from kubehop.core.simulate.run import simulate
from kubehop.model.errors import UsageError
from kubehop.model.plan import Plan, PlanOptions, Step, StepKind
from tests.unit.core.plan_strategies import clusters, release_data

EXAMPLES = 50 if os.environ.get("CI") else 500


def _plan(state, target, options, memo):
    try:
        return plan_upgrade(state, target, release_data(), options, memo=memo)
    except UsageError as e:
        return f"refused: {e}"


def _verdict(state, steps, limit, memo):
    r = simulate(state, steps, limit, memo=memo)
    return (r.violations, r.estimate_seconds, r.components, r.cluster_version,
            r.max_cordoned_workers, r.cordoned_at_end)


def _without(steps: tuple[Step, ...], index: int) -> list[Step]:
    """`steps` without the step at `index`; its dependents wait for what it waited for."""
    gone = steps[index]
    out = []
    for s in steps[:index] + steps[index + 1:]:
        if gone.id in s.after:
            after = [a for a in s.after if a != gone.id]
            after += [a for a in gone.after if a not in after]
            s = replace(s, after=tuple(after))
        out.append(s)
    return out


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(clusters(max_workers=40), st.sampled_from(["skip", "every-minor"]),
       st.sampled_from([1, 3, "20%"]), st.sampled_from(["minor", "always"]), st.booleans(),
       st.data())
def test_plans_and_verdicts_are_the_same_with_and_without_memo(case, strategy, max_unavailable,
                                                              drain, strict, data):
    state, target = case
    options = PlanOptions(max_unavailable=max_unavailable, worker_strategy=strategy,
                          drain_policy=drain, strict_kubeadm_skew=strict)
    plan = _plan(state, target, options, memo=True)
    assert _plan(state, target, options, memo=False) == plan
    if not isinstance(plan, Plan):
        return
    limit = plan.max_unavailable_nodes
    assert _verdict(state, plan.steps, limit, True) == _verdict(state, plan.steps, limit, False)
    # A plan broken by hand (a step left out): the same violations either way.
    candidates = [i for i, s in enumerate(plan.steps) if s.kind is not StepKind.GATE]
    broken = _without(plan.steps, data.draw(st.sampled_from(candidates)))
    assert _verdict(state, broken, limit, True) == _verdict(state, broken, limit, False)
