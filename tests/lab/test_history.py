"""The lab history log and the safety-invariant checker that judges upgrades from it."""

import pytest

from kubehop.lab.history import History, HistoryViolation, check_history

OLD, NEW = "v1.28.9", "v1.29.4"


class World:
    """Writes lab history the way the lab would, with terse helpers."""

    def __init__(self) -> None:
        self.h = History()
        self.t = 0.0

    def tick(self, dt: float = 1.0) -> float:
        self.t += dt
        return self.t

    def node(self, name, roles=(), schedulable=True, ready=True):
        self.h.record(
            "node", self.tick(), node=name, ready=ready, schedulable=schedulable, roles=list(roles)
        )

    def comp(self, node, component, version, running=True):
        self.h.record(
            "component",
            self.tick(),
            node=node,
            component=component,
            version=version,
            running=running,
        )

    def pod(self, name, node, event, by=None, pdb="web/web", ns="web"):
        """A pod event; `pdb=...` leaves the covering PDB out of the event."""
        fields = {"by": by} if by else {}
        if pdb is not ...:
            fields["pdb"] = pdb
        self.h.record(
            "pod", self.tick(), namespace=ns, name=name, uid=f"uid-{name}", node=node,
            owner="ReplicaSet/web-1", event=event, **fields,
        )  # fmt: skip

    def pdb(self, current, desired=1, expected=2, name="web"):
        self.h.record(
            "pdb", self.tick(), namespace="web", name=name, expected=expected,
            desired_healthy=desired, current_healthy=current,
            disruptions_allowed=max(0, current - desired),
        )  # fmt: skip

    def restart(self, node, old, new, pods=()):
        self.h.record(
            "kubelet-restart",
            self.tick(),
            node=node,
            evictable_pods=list(pods),
            **{"from": old, "to": new},
        )

    def cluster(self, cps=("cp1",), workers=("w1", "w2"), version=OLD):
        for cp in cps:
            self.node(cp, roles=["control-plane"])
            for c in (
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "kubelet",
                "kube-proxy",
            ):
                self.comp(cp, c, version)
            self.comp(cp, "etcd", "3.5.12-0")
        for w in workers:
            self.node(w)
            self.comp(w, "kubelet", version)
            self.comp(w, "kube-proxy", version)

    def check(self, **kw):
        return check_history(self.h.since(0), **kw)


def numbers(violations):
    return [v.invariant for v in violations]


# --- the log ---------------------------------------------------------------------------------


def test_record_assigns_sequence_numbers_and_since_pages():
    h = History()
    first = h.record("node", 0.0, node="w1", ready=True, schedulable=True, roles=[])
    second = h.record(
        "command", 1.5, node="w1", argv=["systemctl", "restart", "kubelet"], exit_code=0
    )
    assert first == {
        "seq": 1,
        "t": 0.0,
        "type": "node",
        "node": "w1",
        "ready": True,
        "schedulable": True,
        "roles": [],
    }
    assert second["seq"] == 2
    assert [e["seq"] for e in h.since(0)] == [1, 2]
    assert [e["seq"] for e in h.since(1)] == [2]
    assert h.since(2) == []
    assert (len(h), h.last_seq) == (2, 2)
    h.since(0)[0]["node"] = "changed"
    assert h.since(0)[0]["node"] == "w1"  # callers get copies


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("reboot", {}, "unknown history event type"),
        ("node", {"node": "w1", "ready": True, "schedulable": True}, "missing \\['roles'\\]"),
        (
            "node",
            {"node": "w1", "ready": True, "schedulable": True, "roles": [], "zone": "a"},
            "unknown \\['zone'\\]",
        ),
        (
            "pod",
            {
                "namespace": "a",
                "name": "p",
                "uid": "u",
                "node": None,
                "owner": None,
                "event": "born",
            },
            "not one of",
        ),
        (
            "pod",
            {
                "namespace": "a",
                "name": "p",
                "uid": "u",
                "node": None,
                "owner": None,
                "event": "deleted",
            },
            "exactly",
        ),
        (
            "pod",
            {
                "namespace": "a",
                "name": "p",
                "uid": "u",
                "node": None,
                "owner": None,
                "event": "ready",
                "by": "x",
            },
            "exactly",
        ),
        (
            "pod",
            {
                "namespace": "a",
                "name": "p",
                "uid": "u",
                "node": None,
                "owner": None,
                "event": "deleted",
                "by": "gc",
            },
            "deleted by",
        ),
    ],
)
def test_record_validates_events(kind, fields, message):
    with pytest.raises(ValueError, match=message):
        History().record(kind, 0, **fields)


# --- a clean upgrade -------------------------------------------------------------------------


def test_a_careful_upgrade_breaks_nothing():
    w = World()
    w.cluster()
    w.pod("web-a", "w1", "created")
    w.pod("web-a", "w1", "ready")
    w.pod("web-b", "w2", "created")
    w.pod("web-b", "w2", "ready")
    w.pdb(current=2)
    # Control plane first, one component at a time.
    for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        w.comp("cp1", c, NEW, running=False)
        w.comp("cp1", c, NEW)
    w.node("cp1", roles=["control-plane"], schedulable=False)
    w.restart("cp1", OLD, NEW)
    w.comp("cp1", "kubelet", NEW)
    w.node("cp1", roles=["control-plane"])
    # Workers one at a time, drained through the Eviction API.
    moves = {
        "w1": [("web-a", "web-c", "w2")],
        "w2": [("web-b", "web-d", "w1"), ("web-c", "web-e", "w1")],
    }
    for worker, pods in moves.items():
        w.node(worker, schedulable=False)
        for old, new, dest in pods:
            w.pod(old, worker, "deleted", by="eviction")
            w.pdb(current=1)
            w.pod(new, dest, "created")
            w.pod(new, dest, "ready")
            w.pdb(current=2)
        w.restart(worker, OLD, NEW)
        w.comp(worker, "kubelet", NEW)
        w.node(worker)
    for n in ("cp1", "w1", "w2"):
        w.comp(n, "kube-proxy", NEW)
    assert w.check(max_unavailable=1) == []


# --- invariant 1: version skew ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [("w1", "kubelet", "v1.29.0")],
            "kubelet v1.29.0 on w1 is newer than kube-apiserver v1.28.9 (cp1)",
        ),
        (
            [("w1", "kube-proxy", "v1.29.0")],
            "kube-proxy v1.29.0 on w1 is newer than kube-apiserver",
        ),
        (
            [("cp1", "kube-apiserver", "v1.30.1")],
            "kube-apiservers v1.28.9 (cp2) and v1.30.1 (cp1) are more than one minor apart",
        ),
        (
            [("cp2", "kube-controller-manager", "v1.29.0")],
            "kube-controller-manager v1.29.0 on cp2 is newer than kube-apiserver v1.28.9 (cp2)",
        ),
        (
            [
                ("cp1", "kube-apiserver", "v1.29.0"),
                ("cp1", "kube-scheduler", "v1.30.0"),
            ],
            "kube-scheduler v1.30.0 on cp1 is newer than kube-apiserver v1.29.0 (cp1)",
        ),
        (
            [
                ("cp1", "kube-apiserver", "v1.29.0"),
                ("cp2", "kube-apiserver", "v1.29.0"),
                ("cp3", "kube-apiserver", "v1.29.0"),
            ]
            + [(cp, "kube-apiserver", "v1.30.0") for cp in ("cp1", "cp2", "cp3")]
            + [(cp, "kube-apiserver", "v1.31.0") for cp in ("cp1", "cp2", "cp3")]
            + [(cp, "kube-apiserver", "v1.32.0") for cp in ("cp1", "cp2", "cp3")],
            "kubelet v1.28.9 on w1 is 4 minors older than kube-apiserver v1.32.0 (cp1)",
        ),
    ],
)
def test_skew_violations(steps, message):
    w = World()
    w.cluster(cps=("cp1", "cp2", "cp3"), workers=("w1",))
    for node, component, version in steps:
        w.comp(node, component, version)
    found = w.check()
    assert 1 in numbers(found)
    assert any(message in v.message for v in found), found


def test_kcm_follows_its_local_apiserver_during_an_ha_upgrade():
    """kubeadm points KCM/scheduler at the local apiserver: cp1 may run 1.29 beside a 1.28 cp2."""
    w = World()
    w.cluster(cps=("cp1", "cp2"), workers=())
    for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        w.comp("cp1", c, NEW)
    assert w.check() == []


def test_old_kubelets_get_two_minors_before_1_25():
    w = World()
    w.cluster(workers=("w1",), version="v1.24.17")
    w.comp("w1", "kubelet", "v1.23.17")  # a 1.23 kubelet: 1 behind, fine
    for v in ("v1.25.16", "v1.26.15"):
        for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            w.comp("cp1", c, v)
    (v,) = w.check()
    assert v.invariant == 1
    assert (
        v.message == "kubelet v1.23.17 on w1 is 3 minors older than kube-apiserver v1.26.15 (cp1)"
    )


def test_kube_proxy_may_not_drift_too_far_from_its_kubelet():
    w = World()
    w.cluster(workers=("w1",), version="v1.30.0")
    w.comp("w1", "kubelet", "v1.27.0")
    w.comp("w1", "kube-proxy", "v1.26.0")  # 4 behind the apiserver and 1 behind the kubelet
    w.comp("w1", "kube-proxy", "v1.30.0")
    w.comp("w1", "kubelet", "v1.26.0")  # now the kubelet is the old one: 4 from its kube-proxy
    messages = [v.message for v in w.check()]
    assert (
        "kube-proxy v1.26.0 on w1 is 4 minors older than kube-apiserver v1.30.0 (cp1)" in messages
    )
    assert "kube-proxy v1.30.0 on w1 is 4 minors from kubelet v1.26.0" in messages


def test_a_breach_is_reported_once_until_it_heals():
    w = World()
    w.cluster(workers=("w1",))
    w.comp("w1", "kubelet", NEW)
    w.comp("w1", "kube-proxy", OLD)  # unrelated event: the breach goes on, no new report
    w.comp("w1", "kubelet", OLD)
    w.comp("w1", "kubelet", NEW)
    found = w.check()
    assert numbers(found) == [1, 1]
    assert found[0].seq < found[1].seq


def test_violations_carry_time_and_sequence():
    w = World()
    w.cluster(workers=("w1",))
    w.comp("w1", "kubelet", NEW)
    (v,) = w.check()
    assert v == HistoryViolation(1, w.t, w.h.last_seq, v.message)


# --- invariant 2: PodDisruptionBudgets -------------------------------------------------------


def test_plain_delete_of_a_covered_pod():
    w = World()
    w.cluster()
    w.pod("web-a", "w1", "created")
    w.pod("web-a", "w1", "deleted", by="delete", pdb=...)  # coverage remembered from before
    (v,) = w.check()
    assert v.invariant == 2
    assert (
        "pod web/web-a was deleted with a plain DELETE while PodDisruptionBudget web/web"
        in v.message
    )
    assert w.check(plain_delete_allowed=True) == []


def test_plain_delete_of_an_uncovered_pod_is_fine():
    w = World()
    w.cluster()
    w.pod("tmp", "w1", "created", pdb=None)
    w.pod("tmp", "w1", "deleted", by="delete", pdb=None)
    assert w.check() == []


def test_budget_falling_below_desired_right_after_an_eviction():
    w = World()
    w.cluster()
    w.pdb(current=2, desired=2, expected=3)
    w.pod("web-a", "w1", "deleted", by="eviction")
    w.pdb(current=1, desired=2, expected=3)
    (v,) = w.check()
    assert v.invariant == 2
    assert v.message == (
        "PodDisruptionBudget web/web fell to 1 healthy pods, below the 2 it needs, "
        "right after web/web-a was removed"
    )


@pytest.mark.parametrize(
    "steps",
    [
        # Below desired without any deletion of ours (a pod crashed): not kubehop's doing.
        [("pdb", 2, 2), ("pdb", 1, 2)],
        # Already below before the eviction (an unready pod evicted under the budget rules).
        [("pdb", 1, 2), ("evict", "web-a", "web/web"), ("pdb", 1, 2)],
        # The deleted pod belonged to another budget.
        [("pdb", 2, 2), ("evict", "api-a", "web/api"), ("pdb", 1, 2)],
        # Deleted by a controller or the kubelet, not by kubehop.
        [("pdb", 2, 2), ("gone", "web-a", "web/web"), ("pdb", 1, 2)],
        # Within budget after the eviction.
        [("pdb", 3, 2), ("evict", "web-a", "web/web"), ("pdb", 2, 2)],
    ],
)
def test_budget_drops_that_are_not_kubehops(steps):
    w = World()
    w.cluster()
    for step in steps:
        if step[0] == "pdb":
            w.pdb(current=step[1], desired=step[2])
        else:
            w.pod(step[1], "w1", "created", pdb=step[2])
            w.pod(
                step[1],
                "w1",
                "deleted",
                by="eviction" if step[0] == "evict" else "controller",
                pdb=step[2],
            )
    assert w.check() == []


# --- invariant 3: control plane one node at a time -------------------------------------------


def test_two_control_plane_nodes_restarting_at_once():
    w = World()
    w.cluster(cps=("cp1", "cp2", "cp3"), workers=())
    w.comp("cp1", "etcd", "3.5.12-0", running=False)
    w.comp("cp2", "kube-apiserver", OLD, running=False)
    w.comp("cp2", "kubelet", OLD, running=False)  # still the same breach
    found = w.check()
    assert numbers(found) == [3]
    assert (
        found[0].message == "control-plane nodes restart at once (cp1: etcd; cp2: kube-apiserver)"
    )


def test_control_plane_nodes_one_after_another():
    w = World()
    w.cluster(cps=("cp1", "cp2"), workers=("w1",))
    for cp in ("cp1", "cp2"):
        w.comp(cp, "kube-apiserver", OLD, running=False)
        w.comp("w1", "kubelet", OLD, running=False)  # workers do not count
        w.comp(cp, "kube-apiserver", OLD)
        w.comp("w1", "kubelet", OLD)
    assert w.check() == []


# --- invariant 4: drain before a kubelet changes minor ---------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "pods", "broken"),
    [
        (OLD, NEW, ["web/web-a"], True),
        (OLD, NEW, [], False),
        ("v1.28.8", OLD, ["web/web-a"], False),  # a patch restart in place is fine
        (OLD, OLD, ["web/web-a"], False),  # a plain restart
    ],
)
def test_kubelet_minor_change_on_an_undrained_node(old, new, pods, broken):
    w = World()
    w.cluster()
    w.restart("w1", old, new, pods)
    found = w.check()
    assert numbers(found) == ([4] if broken else [])
    if broken:
        assert found[0].message == (
            f"kubelet on w1 went from {old} to {new} while it still ran web/web-a (drain first)"
        )


# --- invariant 5: at most --max-unavailable workers cordoned ---------------------------------


def test_too_many_workers_cordoned():
    w = World()
    w.cluster(workers=("w1", "w2", "w3"))
    w.node("w1", schedulable=False)
    w.node("cp1", roles=["control-plane"], schedulable=False)  # control planes do not count
    assert w.check(max_unavailable=1) == []
    w.node("w2", schedulable=False)
    w.node("w3", schedulable=False)
    found = w.check(max_unavailable=1)
    assert numbers(found) == [5, 5]
    assert (
        found[0].message
        == "2 worker nodes cordoned at once (w1, w2), more than --max-unavailable 1"
    )
    assert w.check(max_unavailable=3) == []
    assert w.check() == []  # invariant 5 needs the limit


def test_nodes_cordoned_before_the_upgrade_do_not_count_until_released():
    w = World()
    w.node("w0", schedulable=False)  # cordoned in the initial state
    w.cluster(workers=("w1",))
    w.node("w1", schedulable=False)
    assert w.check(max_unavailable=1) == []
    w.node("w0")
    w.node("w1")
    w.node("w0", schedulable=False)
    w.node("w1", schedulable=False)
    assert numbers(w.check(max_unavailable=1)) == [5]


def test_a_deletion_event_saying_no_pdb_overrides_earlier_coverage():
    w = World()
    w.cluster()
    w.pod("web-a", "w1", "created")
    w.pod("web-a", "w1", "deleted", by="delete", pdb=None)  # its labels changed: no longer covered
    assert w.check() == []


def test_without_coverage_in_the_history_namespace_deletions_are_suspects():
    w = World()
    w.cluster()
    w.pdb(current=2, desired=2)
    w.pod("web-a", "w1", "created", pdb=...)
    w.pod("web-a", "w1", "deleted", by="eviction", pdb=...)
    w.pdb(current=1, desired=2)
    assert numbers(w.check()) == [2]
