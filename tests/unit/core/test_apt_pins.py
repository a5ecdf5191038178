"""apt preferences pins (issue #17): read from a node's facts, judged by `check`, and kept by the
planner — rewritten to each package's minor around each install instead of holds."""

from dataclasses import replace

import pytest

from kubehop.core import apt_preferences as ap
from kubehop.core.checks.nodes import package_findings
from kubehop.core.checks.pins import pin_findings
from kubehop.core.node_commands import Packaging, apt_upgrade, pins_expect
from kubehop.core.planner.make import plan_upgrade
from kubehop.core.simulate.run import simulate
from kubehop.model.cluster import NodePackages, OsFamily
from kubehop.model.plan import PlanOptions, StepKind
from kubehop.model.versions import MinorVersion
from kubehop.model.versions import parse_kube_version as v
from kubehop.shell.observe.nodes import MARK, parse_facts
from tests.unit.core.plan_strategies import cluster, cp_node, release_data, worker

PREF = "/etc/apt/preferences.d/kubernetes"
COURSE = "Package: kubectl kubeadm kubelet\nPin: version 1.28.*\nPin-Priority: 1000\n"
V128 = v("v1.28.9")
M128 = MinorVersion(1, 28)


def pins(text: str, file: str = PREF) -> tuple:
    return tuple(ap.parse_stanzas(file, text))


def facts(kubelet: str = "1.28.9-1.1", text: str = COURSE, held: tuple[str, ...] = (),
          kubeadm: str = "1.28.9-1.1", repo: MinorVersion = M128
          ) -> NodePackages:
    return NodePackages(OsFamily.DEBIAN, kubeadm, kubelet, kubeadm, repo, held=held,
                        pins=pins(text))


def pinned_state(text: str = COURSE):
    nodes = [cp_node("cp1", V128), worker("w1", V128, V128), worker("w2", V128, V128)]
    nodes = [replace(n, packages=replace(n.packages, held=(), pins=pins(text))) for n in nodes]
    return cluster(nodes, V128)


# --- reading ------------------------------------------------------------------------------


def test_observe_reads_preferences_in_apts_order_and_skips_files_apt_ignores():
    out = "\n".join([
        "kubeadm 1.28.9-1.1", "kubelet 1.28.9-1.1", "kubectl 1.28.9-1.1", f"{MARK}holds",
        f"{MARK}prefs",
        f"{PREF}:Package: kubectl kubeadm kubelet", f"{PREF}:Pin: version 1.28.*",
        f"{PREF}:Pin-Priority: 1000", f"{PREF}:",
        f"{PREF}:Package: cri-tools", f"{PREF}:Pin: version 1.28.*", f"{PREF}:Pin-Priority: 900",
        "/etc/apt/preferences.d/old.bak:Package: kubelet",
        "/etc/apt/preferences.d/old.bak:Pin: version 1.27.*",
        "/etc/apt/preferences.d/old.bak:Pin-Priority: 1000",
        "/etc/apt/preferences:Package: /^kube(let|adm)$/",
        "/etc/apt/preferences:Pin: release l=isv:kubernetes:core:stable:v1.28",
        "/etc/apt/preferences:Pin-Priority: 990",
    ])
    p = parse_facts(OsFamily.DEBIAN, out)
    assert [(x.file, x.applies, x.pin, x.priority) for x in p.pins] == [
        ("/etc/apt/preferences", ("kubeadm", "kubelet"),
         "release l=isv:kubernetes:core:stable:v1.28", 990),
        (PREF, ("kubeadm", "kubelet", "kubectl"), "version 1.28.*", 1000)]
    assert p.pinned == ("kubeadm", "kubelet", "kubectl")
    assert p.pin_methods == ("preferences",)
    # kubehop rewrites the first file holding a package back; its other stanzas are kept.
    assert [x.file for x in ap.managed_pins(p.pins)] == ["/etc/apt/preferences"]
    assert p.pins_other == ""


def test_methods_per_node():
    assert facts(held=("kubelet",)).pin_methods == ("hold", "preferences")
    assert NodePackages(OsFamily.DEBIAN, held=("kubeadm",)).pin_methods == ("hold",)
    assert NodePackages(OsFamily.DEBIAN).pin_methods == ("none",)
    assert NodePackages(OsFamily.RHEL, held=("kubelet", "kubeadm"),
                        locked=("kubelet",)).pin_methods == ("versionlock", "exclude")
    # a priority a repository's 500 beats does not hold anything back
    assert facts(text=COURSE.replace("1000", "500")).pin_methods == ("none",)


# --- rewriting ----------------------------------------------------------------------------


def test_split_per_minor_then_merged_with_the_line_as_written():
    course = ap.managed_pins(pins(COURSE))
    split = ap.rewrite_pins(course, {"kubeadm": "1.29.15", "kubectl": "1.29.15"})
    assert split == ("Package: kubectl kubeadm\nPin: version 1.29.*\nPin-Priority: 1000\n\n"
                     "Package: kubelet\nPin: version 1.28.*\nPin-Priority: 1000\n")
    merged = ap.rewrite_pins(ap.managed_pins(pins(split)), {"kubelet": "1.29.15"})
    assert merged == COURSE.replace("1.28", "1.29")


def test_patch_release_and_glob_pins_keep_their_form():
    patch = pins("Package: kube*\nPin: version 1.28.9-1.1\nPin-Priority: 1001\n")
    assert ap.rewrite_pins(patch, dict.fromkeys(ap.KUBE_PACKAGES, "1.29.15")) == \
        "Package: kube*\nPin: version 1.29.15-*\nPin-Priority: 1001\n"
    release = pins("Package: kubelet\nPin: release l=isv:kubernetes:core:stable:v1.28\n"
                   "Pin-Priority: 990\n")
    assert ap.rewrite_pins(release, {"kubelet": "1.29.15"}) == (
        "Package: kubelet\nPin: release l=isv:kubernetes:core:stable:v1.29\n"
        "Pin-Priority: 990\n")


def test_pinned_nodes_get_their_file_rewritten_instead_of_holds():
    packaging = Packaging("debian", pins=tuple(ap.managed_pins(pins(COURSE))),
                          pins_other="Package: cri-tools\nPin: version 1.28.*\nPin-Priority: 900")
    cmds = apt_upgrade(MinorVersion(1, 29), {"kubeadm": "1.29.15-*"}, packaging=packaging,
                       switch_repository=False,
                       pinned={"kubeadm": "1.29.15-*", "kubelet": "1.28.9-*",
                               "kubectl": "1.28.9-*"})
    assert [c.argv[:2] for c in cmds] == [("apt-get", "update"), ("apt-get", "install"),
                                          ("tee", PREF)]
    assert cmds[2].stdin == ("Package: kubeadm\nPin: version 1.29.*\nPin-Priority: 1000\n\n"
                             "Package: kubectl kubelet\nPin: version 1.28.*\nPin-Priority: 1000\n"
                             "\nPackage: cri-tools\nPin: version 1.28.*\nPin-Priority: 900\n")
    held = apt_upgrade(MinorVersion(1, 29), {"kubelet": "1.29.15-*"},
                       packaging=replace(packaging, held=("kubelet",)), switch_repository=False)
    assert [c.argv[:2] for c in held] == [("apt-get", "update"), ("apt-mark", "unhold"),
                                          ("apt-get", "install"), ("tee", PREF),
                                          ("apt-mark", "hold")]


# --- checks -------------------------------------------------------------------------------


def test_a_pinned_package_is_not_reported_as_not_held():
    state = pinned_state()
    assert "packages.not-held" not in {f.id for f in package_findings(state)}
    (info,) = [f for f in pin_findings(state, v("v1.29.15")) if f.id == "node.apt-pin"]
    assert "pinned by /etc/apt/preferences.d/kubernetes (version 1.28.*, priority 1000)" \
        in info.message


@pytest.mark.parametrize(("repo", "tail"), [
    (MinorVersion(1, 28), "on the next apt-get upgrade"),
    (MinorVersion(1, 29), "as soon as that minor's repository is configured again")])
def test_a_stale_pin_at_1000_is_a_downgrade_risk(repo, tail):
    nodes = [replace(cp_node("cp1", V128), packages=facts(
        kubelet="1.29.15-1.1", kubeadm="1.29.15-1.1", repo=repo))]
    found = pin_findings(cluster(nodes, V128), None)
    (risk,) = [f for f in found if f.id == "packages.pin-downgrade-risk"]
    assert "no longer matches the installed kubeadm 1.29.15-1.1, kubelet 1.29.15-1.1, " \
           "kubectl 1.29.15-1.1;" in risk.message
    assert tail in risk.message


def test_a_stale_pin_below_1000_only_warns_and_a_negative_pin_blocks_the_target():
    low = facts(text=COURSE.replace("1000", "900"), kubelet="1.29.15-1.1")
    found = pin_findings(cluster([replace(cp_node("cp1", V128), packages=low)], V128), None)
    assert [f.id for f in found if f.id.startswith("packages.")] == ["packages.pin-stale"]
    never = facts(text=COURSE + "\nPackage: kubelet\nPin: version 1.29.*\nPin-Priority: -1\n")
    state = cluster([replace(cp_node("cp1", V128), packages=never)], V128)
    (block,) = [f for f in pin_findings(state, v("v1.29.15"))
                if f.id == "packages.pin-blocks-target"]
    assert block.message == ("an apt pin on node cp1 forbids the target: version 1.29.* "
                             "(priority -1 in /etc/apt/preferences.d/kubernetes) matches "
                             "kubelet 1.29.15-1.1")
    assert pin_findings(state, v("v1.28.15")) == [
        f for f in pin_findings(state, v("v1.28.15")) if f.id != "packages.pin-blocks-target"]


# --- planning -----------------------------------------------------------------------------


def test_the_plan_keeps_the_pin_splits_it_while_minors_differ_and_adds_no_holds():
    plan = plan_upgrade(pinned_state(), "1.30", release_data(), PlanOptions())
    result = simulate(pinned_state(), plan, 1)
    assert result.ok, result
    lines = [c.line for s in plan.steps for c in s.commands]
    assert not [line for line in lines if line.startswith("apt-mark")]
    writes = [(s.id, c.stdin) for s in plan.steps if s.node == "w1" for c in s.commands
              if c.argv[:2] == ("tee", PREF)]
    # Workers skip 1.29 (kubeadm jumps): the kubelet stays pinned at 1.28 until its drain.
    assert writes == [
        ("1.30/w1/kubeadm-install", "Package: kubectl kubeadm\nPin: version 1.30.*\n"
         "Pin-Priority: 1000\n\nPackage: kubelet\nPin: version 1.28.*\nPin-Priority: 1000\n"),
        ("1.30/w1/kubelet-install", COURSE.replace("1.28", "1.30"))]
    cp = [c.stdin for s in plan.steps if s.node == "cp1" for c in s.commands
          if c.argv[:2] == ("tee", PREF)]
    assert cp[:2] == ["Package: kubectl kubeadm\nPin: version 1.29.*\nPin-Priority: 1000\n\n"
                      "Package: kubelet\nPin: version 1.28.*\nPin-Priority: 1000\n",
                      COURSE.replace("1.28", "1.29")]
    step = next(s for s in plan.steps if s.id == "1.30/w1/kubelet-install")
    assert step.expect["aptPins"] == (f"{PREF}: kubeadm kubelet kubectl=version 1.30.*@1000")
    assert "(pinned in /etc/apt/preferences.d/kubernetes)" in step.description
    assert not [s for s in plan.steps if s.kind is StepKind.KUBELET_INSTALL
                and "(held)" in s.description]


def test_the_expectation_reads_what_the_rewrite_writes():
    packaging = Packaging("debian", pins=tuple(ap.managed_pins(pins(COURSE))))
    assert pins_expect(packaging, {"kubelet": "1.29.15-*"}) == (
        f"{PREF}: kubeadm kubectl=version 1.28.*@1000; kubelet=version 1.29.*@1000")

