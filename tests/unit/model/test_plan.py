"""The plan model: commands as quoted lines, the JSON shape and its round trip, options; the
cluster-state codec and its fingerprint."""

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubehop.core.planner.make import plan_upgrade
from kubehop.model.cluster import Resources
from kubehop.model.cluster_codec import (
    parse_quantity,
    state_fingerprint,
    state_from_dict,
    state_to_dict,
)
from kubehop.model.errors import UsageError
from kubehop.model.plan import Command, ExpectKey, Plan, PlanOptions, Step, StepKind
from kubehop.model.versions import parse_kube_version
from tests.unit.core.plan_strategies import clusters, oldversion_state, release_data

words = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)


@given(st.lists(words, min_size=1, max_size=5), st.none() | st.text(max_size=40), st.booleans())
def test_a_command_line_parses_back_to_the_same_command(argv, stdin, sudo):
    if argv[0] == "sudo":  # documented: argv never starts with sudo
        argv = ["env", *argv]
    command = Command(tuple(argv), stdin, sudo)
    assert Command.from_line(command.line) == command


def test_command_lines_quote_every_value():
    command = Command(("tee", "/etc/apt/sources.list.d/kubernetes.list"), "deb x /\n")
    assert command.line == ("printf '%s' 'deb x /\n' | sudo tee "
                            "/etc/apt/sources.list.d/kubernetes.list")
    assert Command(("apt-get", "install", "-y", "kubeadm=1.29.15-1.1")).line == (
        "sudo apt-get install -y kubeadm=1.29.15-1.1")
    assert Command(("echo", "a b; rm -rf /"), sudo=False).line == "echo 'a b; rm -rf /'"


def _oldversion_plan(**options):
    return plan_upgrade(oldversion_state(), "1.30", release_data(), PlanOptions(**options))


def test_the_json_shape_of_a_plan():
    doc = json.loads(json.dumps(_oldversion_plan().to_dict()))
    assert doc["version"] == 1
    assert (doc["from"], doc["to"], doc["hops"]) == ("v1.28.9", "v1.30.14",
                                                     ["v1.29.15", "v1.30.14"])
    assert doc["strategy"] == {"maxUnavailable": 1, "workerStrategy": "skip", "drain": "minor",
                               "allowUnknownVersion": False, "ignoreFindings": [],
                               "strictKubeadmSkew": False, "maxUnavailableNodes": 1}
    assert doc["fingerprint"].startswith("sha256:")
    assert doc["estimate_seconds"] > 0
    step = next(s for s in doc["steps"] if s["id"] == "1.30/oldversion3/uncordon")
    assert set(step) >= {"id", "kind", "node", "hop", "after", "commands", "expect"}
    assert step["expect"] == {"kubelet": "v1.30.14", "schedulable": True}
    assert step["after"] == ["1.30/oldversion3/wait-ready"]
    install = next(s for s in doc["steps"] if s["id"] == "1.29/oldversion1/kubeadm-install")
    assert install["expect"] == {"kubeadm": "1.29.15-*", "kubectl": "1.29.15-*"}
    assert "sudo apt-get install -y -o Dpkg::Options::=--force-confdef -o " \
           "Dpkg::Options::=--force-confold 'kubeadm=1.29.15-*' 'kubectl=1.29.15-*'" in \
           install["commands"]
    assert [w["kind"] for w in doc["waves"]] == [
        "control-plane", "control-plane-kubelet", "control-plane", "control-plane-kubelet",
        "workers", "workers"]


@pytest.mark.parametrize("options", [{}, {"worker_strategy": "every-minor", "drain_policy":
                                          "always", "max_unavailable": "50%"}])
def test_a_plan_survives_json_and_back(options):
    plan = _oldversion_plan(**options)
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan
    assert again.to_dict() == plan.to_dict()


def test_reading_a_plan_of_another_format_or_kind_is_a_usage_error():
    doc = _oldversion_plan().to_dict()
    with pytest.raises(UsageError, match="unsupported plan format version 2"):
        Plan.from_dict({**doc, "version": 2})
    with pytest.raises(UsageError, match="unknown kind 'reboot'"):
        Step.from_dict({"id": "x", "kind": "reboot"})
    with pytest.raises(UsageError, match="not a kubehop plan"):
        Plan.from_dict({"version": 1})
    with pytest.raises(UsageError, match="mapping"):
        Plan.from_dict([])


def test_expect_keys_are_an_enum_equal_to_their_strings():
    plan = _oldversion_plan()
    step = plan.step("1.30/oldversion3/uncordon")
    assert set(step.expect) == {ExpectKey.KUBELET, ExpectKey.SCHEDULABLE}
    assert step.expect["kubelet"] == "v1.30.14"  # members are their strings
    assert all(type(k) is str for s in plan.to_dict()["steps"] for k in s["expect"])
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert all(type(k) is ExpectKey for s in again.steps for k in s.expect)


def test_an_unknown_expect_key_fails_when_the_plan_is_loaded():
    doc = _oldversion_plan().to_dict()
    bad = next(s for s in doc["steps"] if s["id"] == "1.30/oldversion3/uncordon")
    bad["expect"] = {**bad["expect"], "kubelett": "v1.30.14"}
    with pytest.raises(UsageError) as e:
        Plan.from_dict(doc)
    message = str(e.value)
    assert "\n" not in message
    assert "'1.30/oldversion3/uncordon'" in message
    assert "unknown expect key 'kubelett'" in message


def test_steps_tell_where_they_run():
    assert StepKind.KUBEADM_APPLY.on_node
    assert StepKind.REPO_SWITCH.on_node
    assert not StepKind.DRAIN.on_node
    assert not StepKind.GATE.on_node


@pytest.mark.parametrize(("value", "workers", "nodes"), [
    (1, 10, 1), ("3", 10, 3), ("10%", 45, 4), ("10%", 5, 1), ("100%", 7, 7), (2, 0, 2)])
def test_max_unavailable_as_nodes(value, workers, nodes):
    assert PlanOptions(max_unavailable=value).max_unavailable_nodes(workers) == nodes


@pytest.mark.parametrize("value", [0, -1, "0", "0%", "101%", "x", "1.5", True, "%"])
def test_bad_max_unavailable_is_a_usage_error(value):
    with pytest.raises(UsageError, match="max-unavailable"):
        PlanOptions(max_unavailable=value)


def test_bad_strategy_names_are_usage_errors():
    with pytest.raises(UsageError, match="worker strategy"):
        PlanOptions(worker_strategy="all")
    with pytest.raises(UsageError, match="drain policy"):
        PlanOptions(drain_policy="never")


# --- cluster state codec ---------------------------------------------------------------------


def test_the_state_round_trips_through_json():
    state = oldversion_state()
    doc = json.loads(json.dumps(state_to_dict(state)))
    assert doc["kind"] == "ClusterState"
    assert doc["nodes"][0]["controlPlaneImages"]["kube-apiserver"] == (
        "registry.k8s.io/kube-apiserver:v1.28.9")
    assert doc["nodes"][0]["packages"]["repoMinor"] == "1.28"
    assert state_from_dict(doc) == state


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(clusters(max_workers=20))
def test_random_states_round_trip(case):
    state, _ = case
    assert state_from_dict(json.loads(json.dumps(state_to_dict(state)))) == state


def test_state_files_may_be_short_and_use_quantities():
    state = state_from_dict({
        "kubeadmKubernetesVersion": "v1.28.9",
        "nodes": [{"name": "cp1", "roles": ["control-plane"], "kubelet": "v1.28.9",
                   "allocatable": {"cpu": "4", "memory": "8Gi", "pods": 110}}],
        "pods": [{"name": "a", "namespace": "web", "node": "cp1",
                  "requests": {"cpu": "100m", "memory": "128Mi"}}],
    })
    assert state.nodes[0].allocatable == Resources(4000, 8 * 2**30, 110)
    assert state.pods[0].requests == Resources(100, 128 * 2**20, 0)
    assert state.workloads_observed


@pytest.mark.parametrize(("doc", "message"), [
    ({"nodes": [{"roles": []}]}, "nodes\\[0\\]: name is required"),
    ({"nodes": [{"name": "a", "kubelet": "1.x"}]}, "nodes\\[0\\].kubelet: not a Kubernetes"),
    ({"nodes": [{"name": "a", "colour": "red"}]}, "unknown field 'colour'"),
    ({"nodes": [{"name": "a", "packages": {"osFamily": "arch"}}]}, "not one of debian, rhel"),
    ({"kind": "Plan"}, "kind 'Plan'"),
    ([], "mapping"),
])
def test_bad_state_files_name_the_field(doc, message):
    with pytest.raises(UsageError, match=message):
        state_from_dict(doc)


@pytest.mark.parametrize(("text", "milli", "value"), [
    ("100m", True, 100), ("2", True, 2000), ("0.5", True, 500), ("1Gi", False, 2**30),
    ("1k", False, 1000), (3, False, 3), ("250m", False, 0)])
def test_quantities(text, milli, value):
    assert parse_quantity(text, "x", milli=milli) == value


def test_the_fingerprint_follows_versions_not_pods():
    state = oldversion_state()
    same = replace(state, pods=state.pods[:2])
    node = replace(state.nodes[1], kubelet=parse_kube_version("v1.28.10"))
    other = replace(state, nodes=(state.nodes[0], node, state.nodes[2]))
    assert state_fingerprint(state) == state_fingerprint(same)
    assert state_fingerprint(state) != state_fingerprint(other)
