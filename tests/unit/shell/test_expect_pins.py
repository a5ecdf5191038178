"""A package step's `aptPins` expectation reads the node's pin file: a step whose package is
installed but whose pin was not rewritten yet (a crash, a hand edit) is not done, so a resumed
run rewrites it (issue #17)."""

from kubehop.core.planner.make import plan_upgrade
from kubehop.model.plan import PlanOptions
from kubehop.shell.executor.cluster import NodeView
from kubehop.shell.executor.expect import ExpectChecker
from kubehop.shell.executor.fake import FakeCluster
from kubehop.shell.observe.nodes import MARK
from kubehop.shell.steps.facts import NodeFacts
from kubehop.shell.transports.fake import FakeTransport
from tests.unit.core.plan_strategies import release_data
from tests.unit.core.test_apt_pins import COURSE, PREF, pinned_state


async def test_an_installed_package_with_its_pin_not_yet_rewritten_is_not_done():
    plan = plan_upgrade(pinned_state(), "1.29", release_data(), PlanOptions())
    step = next(s for s in plan.steps if s.id == "1.29/w1/kubelet-install")
    lines = ["kubeadm 1.29.15-1.1", "kubelet 1.29.15-1.1", "kubectl 1.29.15-1.1", f"{MARK}prefs"]
    half = "Package: kubectl kubeadm\nPin: version 1.29.*\nPin-Priority: 1000\n\n" \
           "Package: kubelet\nPin: version 1.28.*\nPin-Priority: 1000\n"
    transport = FakeTransport()
    transport.on("dpkg-query*", stdout="\n".join(
        lines + [f"{PREF}:{line}" for line in half.splitlines()]) + "\n")
    cluster = FakeCluster([NodeView("w1", kubelet="v1.28.9", ready=True)])
    facts = NodeFacts(transport)
    checker = ExpectChecker(cluster, facts)
    (missing,) = await checker.mismatches(step)  # the kubelet is in, its stanza still 1.28
    assert missing.key == "aptPins"
    assert str(missing) == (
        f"aptPins is {PREF}: kubeadm kubectl=version 1.29.*@1000; kubelet=version 1.28.*@1000, "
        f"expected {PREF}: kubeadm kubelet kubectl=version 1.29.*@1000")
    done = FakeTransport()
    done.on("dpkg-query*", stdout="\n".join(
        lines + [f"{PREF}:{line}" for line in COURSE.replace("1.28", "1.29").splitlines()]))
    assert await ExpectChecker(cluster, NodeFacts(done)).mismatches(step) == []
