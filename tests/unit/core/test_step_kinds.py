"""Step kinds in one place: each `StepKind` has its module in `core.steps` (named after it), the
planner sets only the `expect` keys a kind declares, the simulator reads every key, and a plan
file with an unknown key is refused when it is loaded (exit 2), not halfway through a run."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubehop.cli import app
from kubehop.core.planner.make import plan_upgrade
from kubehop.core.simulate.state import OBSERVE
from kubehop.core.steps import REGISTRY, module_of
from kubehop.model.errors import UsageError
from kubehop.model.plan import ExpectKey, PlanOptions, StepKind
from tests.unit.core.plan_strategies import clusters, oldversion_state, release_data


def test_every_step_kind_has_one_core_module_named_after_it():
    assert set(REGISTRY) == set(StepKind)
    for kind, module in REGISTRY.items():
        assert module.__name__ == f"kubehop.core.steps.{kind.value.replace('-', '_')}"
        assert module.KIND is kind
        assert module_of(kind) is module
        assert set(ExpectKey) >= module.EXPECT_KEYS
        assert callable(module.simulate)
        assert callable(module.cost)


def test_the_simulator_reads_every_expect_key():
    assert set(OBSERVE) == set(ExpectKey)


def _check_keys(plan_steps):
    for step in plan_steps:
        assert set(step.expect) <= REGISTRY[step.kind].EXPECT_KEYS, step.id
        assert all(type(k) is ExpectKey for k in step.expect), step.id


def test_the_planner_sets_only_the_keys_a_kind_declares_oldversion():
    plan = plan_upgrade(oldversion_state(), "1.30", release_data(), PlanOptions())
    assert {s.kind for s in plan.steps} >= {StepKind.KUBEADM_APPLY, StepKind.DRAIN,
                                             StepKind.SWITCHOVER, StepKind.ETCD_SNAPSHOT}
    _check_keys(plan.steps)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(clusters(max_workers=12), st.sampled_from(["skip", "every-minor"]), st.booleans())
def test_the_planner_sets_only_the_keys_a_kind_declares(case, strategy, strict):
    state, target = case
    try:
        plan = plan_upgrade(state, target, release_data(),
                            PlanOptions(worker_strategy=strategy, strict_kubeadm_skew=strict))
    except UsageError:
        return
    _check_keys(plan.steps)


def test_apply_refuses_a_plan_file_with_an_unknown_expect_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KUBEHOP_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("NO_COLOR", "1")
    doc = plan_upgrade(oldversion_state(), "1.30", release_data(), PlanOptions()).to_dict()
    step = next(s for s in doc["steps"] if s["id"] == "1.30/oldversion2/drain")
    step["expect"]["evictablePod"] = 0
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SystemExit) as exc:
        app.main(["apply", str(path), "--yes"])
    _, err = capsys.readouterr()
    assert exc.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "'1.30/oldversion2/drain'" in lines[0]
    assert "unknown expect key 'evictablePod'" in lines[0]
