"""How the executor runs package steps on a node (issue #14 items 2 and 6), with a scripted
transport: apt's own lock wait, dpkg's lock message from `apt-mark` waited out with the holder
named, a clear halt when the lock wait runs out, holds put back when an install fails, and an
`apt-get update` whose Kubernetes source could not be fetched (old apt: warnings, exit 0)."""

from __future__ import annotations

import re

import pytest

from kubehop.core.node_commands import Packaging, upgrade_packages
from kubehop.model.plan import Command, Step, StepKind
from kubehop.model.versions import MinorVersion
from kubehop.shell.executor.cluster import NodeView
from kubehop.shell.executor.expect import ExpectChecker
from kubehop.shell.executor.fake import FakeCluster
from kubehop.shell.executor.gates import HealthGates
from kubehop.shell.executor.steps import StepRunner
from kubehop.shell.steps.base import ExecutorOptions, StepFailed
from kubehop.shell.steps.facts import NodeFacts
from kubehop.shell.transports.fake import FakeTransport

NODE = "w1"
DPKG_LOCKED = ("dpkg: error: dpkg frontend lock was locked by another process with pid 2718\n"
               "Note: removing the lock file is always wrong, and can end up damaging the\n"
               "locked area and the entire system. See "
               "<https://wiki.debian.org/Teams/Dpkg/FAQ#db-lock>.\n"
               "E: Executing dpkg failed. Are you root?\n")
COMMANDS = tuple(Command(c.argv, c.stdin, c.sudo) for c in upgrade_packages(
    "debian", MinorVersion(1, 29), {"kubelet": "1.29.15-*", "kubectl": "1.29.15-*"},
    switch_repository=False))
STEP = Step(f"1.29/{NODE}/kubelet-install", StepKind.KUBELET_INSTALL, NODE, "v1.29.15", (),
            COMMANDS)


def runner(transport: FakeTransport, waits: list[str], **options: float) -> StepRunner:
    cluster = FakeCluster([NodeView(NODE, kubelet="v1.28.9", ready=True)])
    return StepRunner(cluster, transport, ExpectChecker(cluster, NodeFacts(transport)),
                      HealthGates(cluster), ExecutorOptions(**options),
                      on_wait=lambda _step, message: waits.append(message))


async def test_apt_mark_waits_out_dpkgs_lock_naming_its_holder():
    t = FakeTransport()
    t.on(re.compile(r"^ps -o comm= -p 2718$"), stdout="unattended-upgr\n")
    t.on(re.compile(r"apt-mark unhold"), stderr=DPKG_LOCKED, exit_code=100, times=2)
    waits: list[str] = []
    await runner(t, waits).perform(STEP)
    assert waits == ["waiting for the package manager lock on w1 (held by process 2718 "
                     "(unattended-upgr))"] * 2
    lines = [c for c in t.commands(NODE) if not c.startswith("ps ")]
    assert [c.split(" -o ")[0] for c in lines if c.startswith("apt-get")] == \
        ["apt-get", "apt-get"]
    # apt-get waits for the lock itself, for what is left of the lock wait (600 s).
    assert all(" -o DPkg::Lock::Timeout=" in c for c in lines if c.startswith("apt-get"))
    assert lines[0].startswith("apt-get -o DPkg::Lock::Timeout=59")  # 599 or 600
    assert lines.count("apt-mark unhold kubelet kubectl") == 3


async def test_a_lock_held_past_the_lock_wait_halts_clearly():
    t = FakeTransport()
    t.on(re.compile(r"^ps -o comm= -p 2718$"), stdout="unattended-upgr\n")
    t.on(re.compile(r"apt-mark unhold"), stderr=DPKG_LOCKED, exit_code=100)
    with pytest.raises(StepFailed) as failed:
        await runner(t, [], lock_wait=0.5).perform(STEP)
    assert failed.value.message.startswith(
        "the package manager lock on w1 is still held by process 2718 (unattended-upgr) after "
        "0.5 s (lock wait): let it finish")
    assert not any(c.startswith("apt-get install") or " install " in c for c in t.commands())


async def test_a_failed_install_puts_the_holds_back_before_halting():
    t = FakeTransport()
    t.on(re.compile(r" install "), stderr="E: Unable to fetch some archives, maybe run apt-get "
                                          "update or try with --fix-missing?\n", exit_code=100)
    with pytest.raises(StepFailed) as failed:
        await runner(t, []).perform(STEP)
    assert t.commands(NODE)[-2:] == [
        t.commands(NODE)[-2], "apt-mark hold kubelet kubectl"]
    assert " install " in t.commands(NODE)[-2]
    assert failed.value.message.endswith(
        "; the packages' holds were put back (sudo apt-mark hold kubelet kubectl)")
    assert "E: Unable to fetch some archives" in failed.value.message


async def test_an_update_that_only_warns_about_the_kubernetes_source_fails_the_step():
    t = FakeTransport()
    t.on(re.compile(r" update "), stdout="Err:1 https://prod-cdn.packages.k8s.io/repositories/isv:/"
                             "kubernetes:/core:/stable:/v1.29/deb  InRelease\n",
         stderr="W: Failed to fetch https://prod-cdn.packages.k8s.io/repositories/isv:/"
                "kubernetes:/core:/stable:/v1.29/deb/InRelease  Could not connect\n"
                "W: Some index files failed to download. They have been ignored, or old ones "
                "used instead.\n")
    with pytest.raises(StepFailed) as failed:
        await runner(t, []).perform(STEP)
    assert failed.value.message.startswith("`sudo apt-get update -o Dir::Etc::sourcelist=")
    assert "could not fetch the Kubernetes package list: Failed to fetch https://prod-cdn" in \
        failed.value.message
    assert not any("unhold" in c for c in t.commands())  # nothing released, nothing to redo


async def test_any_build_of_the_patch_satisfies_the_step_and_the_build_is_noted():
    t = FakeTransport()
    t.on(re.compile(r"^dpkg-query -W"), stdout="kubeadm 1.28.9-1.1\nkubelet 1:1.29.15-2.1\n"
                                               "kubectl 1.29.15-1.1\n")
    step = Step(STEP.id, STEP.kind, NODE, STEP.hop, (), COMMANDS,
                expect={"kubeletPackage": "1.29.15-*", "kubectl": "1.29.15-*"})
    note = await runner(t, []).perform(step)
    assert note == "installed kubelet 1:1.29.15-2.1, kubectl 1.29.15-1.1"
    wrong = Step(STEP.id, STEP.kind, NODE, STEP.hop, (), COMMANDS,
                 expect={"kubeadm": "1.29.15-*"})
    with pytest.raises(StepFailed, match=r"afterwards kubeadm is 1\.28\.9-1\.1, expected "
                                         r"1\.29\.15-\*"):
        await runner(t, [], verify_timeout=0.1).perform(wrong)


async def test_a_failed_dnf_install_puts_the_versionlock_back():
    node = Packaging("rhel", dnf5=True, locked=("kubeadm",))
    commands = tuple(Command(c.argv, c.stdin, c.sudo) for c in upgrade_packages(
        node, MinorVersion(1, 29), {"kubeadm": "1.29.15-*"}, switch_repository=False))
    step = Step(f"1.29/{NODE}/kubeadm-install", StepKind.KUBEADM_INSTALL, NODE, "v1.29.15", (),
                commands)
    t = FakeTransport()
    t.on(re.compile(r"^dnf install "), stderr="Error: Error downloading packages:\n",
         exit_code=1)
    with pytest.raises(StepFailed) as failed:
        await runner(t, []).perform(step)
    assert t.commands(NODE) == ["dnf versionlock delete kubeadm",
                                t.commands(NODE)[1], "dnf versionlock add kubeadm"]
    assert failed.value.message.endswith(
        "the packages' holds were put back (sudo dnf versionlock add kubeadm)")
