"""Pod placement and the FailedScheduling message, after kube-scheduler's default profile."""

from fractions import Fraction

import pytest

from kubehop.lab.controllers.scheduler import (
    DEFAULT_MEMORY,
    DEFAULT_MILLI_CPU,
    int_value,
    milli_value,
    node_taints,
    parse_quantity,
    pod_requests,
    schedule,
)

GI = 1024**3
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


def node(
    name,
    cpu="4",
    memory="8Gi",
    pods=110,
    ready="True",
    unschedulable=False,
    taints=None,
    labels=None,
):
    spec = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {
        "metadata": {"name": name, "labels": labels or {"kubernetes.io/hostname": name}},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": str(pods)},
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def pod(name="p", cpu=None, memory=None, node_name=None, phase="Pending", **spec):
    requests = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    container = {"name": "app", "resources": {"requests": requests} if requests else {}}
    body = {"containers": [container], **spec}
    if node_name:
        body["nodeName"] = node_name
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": body,
        "status": {"phase": phase},
    }


# --- quantities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Fraction(1, 10)),
        ("2", Fraction(2)),
        ("0.5", Fraction(1, 2)),
        (".5", Fraction(1, 2)),
        ("1.5Ki", Fraction(1536)),
        ("128Mi", Fraction(128 * 1024**2)),
        ("8Gi", Fraction(8 * GI)),
        ("1G", Fraction(10**9)),
        ("1000", Fraction(1000)),
        ("1e3", Fraction(1000)),
        ("5E-3", Fraction(5, 1000)),
        ("250u", Fraction(250, 10**6)),
        ("10n", Fraction(10, 10**9)),
        ("2k", Fraction(2000)),
        (" 3 ", Fraction(3)),
        (4, Fraction(4)),
        (0.25, Fraction(1, 4)),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "Mi", "10x", "1KiB", "1 Gi", True])
def test_parse_quantity_rejects_nonsense(text):
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("fn", "text", "value"),
    [
        (milli_value, "0.5", 500),
        (milli_value, "100m", 100),
        (milli_value, "2", 2000),
        (milli_value, "1u", 1),  # rounded up, as Quantity.MilliValue
        (int_value, "1.5", 2),
        (int_value, "128Mi", 134217728),
        (int_value, "1G", 1_000_000_000),
    ],
)
def test_scaled_integer_values(fn, text, value):
    assert fn(text) == value


def test_pod_requests_sum_containers_take_the_init_maximum_and_add_overhead():
    p = pod(cpu="100m", memory="128Mi")
    p["spec"]["containers"].append({"name": "side", "resources": {"requests": {"cpu": "50m"}}})
    p["spec"]["initContainers"] = [
        {"name": "init", "resources": {"requests": {"cpu": "1", "memory": "64Mi"}}}
    ]
    p["spec"]["overhead"] = {"cpu": "10m"}
    assert pod_requests(p) == (1010, 128 * 1024**2)
    # Scoring uses 100m / 200Mi for containers that request nothing.
    assert pod_requests(pod(), non_zero=True) == (DEFAULT_MILLI_CPU, DEFAULT_MEMORY)
    assert pod_requests(pod()) == (0, 0)


# --- placement -------------------------------------------------------------------------------


def test_least_allocated_node_wins():
    nodes = [node("a"), node("b"), node("c")]
    busy = [
        pod("x", cpu="3", node_name="a", phase="Running"),
        pod("y", cpu="1", node_name="b", phase="Running"),
    ]
    assert schedule(pod(cpu="100m"), nodes, busy).node == "c"


def test_ties_break_by_name():
    assert schedule(pod(cpu="1"), [node("w3"), node("w1"), node("w2")], []).node == "w1"


def test_terminal_pods_free_their_requests():
    nodes = [node("a", cpu="1")]
    done = [pod("old", cpu="1", node_name="a", phase="Succeeded")]
    assert schedule(pod(cpu="1"), nodes, done).node == "a"


def test_a_bound_pod_is_not_the_schedulers_to_place():
    assert schedule(pod(node_name="w9"), [node("a", unschedulable=True)], []).node == "w9"


def test_failed_scheduling_message_has_filter_and_preemption_histograms():
    nodes = [node("a", unschedulable=True), node("b", cpu="1"), node("c", cpu="1")]
    placed = schedule(pod(cpu="2"), nodes, [])
    assert placed.node is None
    assert placed.message == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu. "
        f"preemption: 0/3 nodes are available: 1 {NOT_HELPFUL}, 2 {NO_VICTIMS}.."
    )
    assert placed.reasons == {"node(s) were unschedulable": 1, "Insufficient cpu": 2}


@pytest.mark.parametrize(
    ("the_node", "the_pod", "bound", "reasons"),
    [
        (node("n", unschedulable=True), pod(), [], ["node(s) were unschedulable"]),
        (
            node("n", ready="False"),
            pod(),
            [],
            ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"],
        ),
        (
            node("n", ready="Unknown"),
            pod(),
            [],
            ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"],
        ),
        (
            node(
                "n",
                taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
            ),
            pod(),
            [],
            ["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"],
        ),
        (
            node("n", taints=[{"key": "gpu", "value": "a100", "effect": "NoExecute"}]),
            pod(),
            [],
            ["node(s) had untolerated taint {gpu: a100}"],
        ),
        (
            node("n"),
            pod(nodeSelector={"disk": "ssd"}),
            [],
            ["node(s) didn't match Pod's node affinity/selector"],
        ),
        (node("n", memory="1Gi"), pod(memory="2Gi"), [], ["Insufficient memory"]),
        (
            node("n", cpu="1", memory="1Gi"),
            pod(cpu="2", memory="2Gi"),
            [],
            ["Insufficient cpu", "Insufficient memory"],
        ),
        (node("n", pods=1), pod(), [pod("x", node_name="n", phase="Running")], ["Too many pods"]),
    ],
)
def test_each_filter_names_its_reason(the_node, the_pod, bound, reasons):
    placed = schedule(the_pod, [the_node], bound)
    assert placed.node is None
    assert placed.reasons == dict.fromkeys(reasons, 1)
    assert placed.message.startswith(
        f"0/1 nodes are available: {', '.join('1 ' + r for r in sorted(reasons))}."
    )


def test_first_failing_filter_decides_a_nodes_reason():
    # Cordoned and too small: NodeUnschedulable runs first, NodeResourcesFit is never asked.
    placed = schedule(pod(cpu="8"), [node("n", cpu="1", unschedulable=True)], [])
    assert placed.reasons == {"node(s) were unschedulable": 1}
    assert placed.message.endswith(f"preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}..")


def test_histogram_sorts_as_strings():
    nodes = [node(f"small{i:02d}", cpu="1") for i in range(10)] + [
        node("c1", unschedulable=True),
        node("c2", unschedulable=True),
    ]
    placed = schedule(pod(cpu="2"), nodes, [])
    assert placed.message.startswith(
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable."
    )


def test_tolerations():
    cordoned = node("n", unschedulable=True)
    ds_pod = pod(
        tolerations=[
            {
                "key": "node.kubernetes.io/unschedulable",
                "operator": "Exists",
                "effect": "NoSchedule",
            }
        ]
    )
    assert schedule(ds_pod, [cordoned], []).node == "n"
    tainted = node("t", taints=[{"key": "gpu", "value": "a100", "effect": "NoSchedule"}])
    assert schedule(pod(tolerations=[{"key": "gpu", "value": "a100"}]), [tainted], []).node == "t"
    assert schedule(pod(tolerations=[{"key": "gpu", "value": "h100"}]), [tainted], []).node is None
    assert schedule(pod(tolerations=[{"operator": "Exists"}]), [tainted], []).node == "t"
    soft = node("s", taints=[{"key": "x", "effect": "PreferNoSchedule"}])
    assert schedule(pod(), [soft], []).node == "s"


def test_condition_taints_are_not_duplicated():
    n = node(
        "n", ready="False", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]
    )
    assert [t["key"] for t in node_taints(n)] == ["node.kubernetes.io/not-ready"]


def test_required_node_affinity():
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["w2"]}]},
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                ]
            }
        }
    }
    nodes = [
        node("w1", labels={"zone": "a"}),
        node("w2", labels={"zone": "a"}),
        node("w3", cpu="1", labels={"zone": "b"}),
    ]
    assert schedule(pod(affinity=affinity), nodes[:2], []).node == "w2"
    assert schedule(pod(affinity=affinity), [nodes[0], nodes[2]], []).node == "w3"
    gt = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["3"]}]}
                ]
            }
        }
    }
    assert (
        schedule(
            pod(affinity=gt),
            [node("old", labels={"gen": "3"}), node("new", labels={"gen": "4"})],
            [],
        ).node
        == "new"
    )


def test_preemption_policy_never_and_no_nodes():
    placed = schedule(pod(cpu="9", preemptionPolicy="Never"), [node("n")], [])
    assert placed.message == (
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: not eligible due to preemptionPolicy=Never.."
    )
    assert schedule(pod(), [], []).message == "no nodes available to schedule pods"
