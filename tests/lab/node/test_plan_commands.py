"""Every command of a plan, run by the lab's node shell: the simulator's assumptions checked by
the thing that executes them (issue #18 item 6).

A scenario is observed as `kubehop plan` observes it (the API, and each node's package facts
read through the node agents), planned over two minors, and then every command of every node
step runs on its node in plan order, as the executor sends it (`sudo -n ARGV`, stdin on the
channel) or as the plan's JSON writes it (`printf '%s' … | sudo tee …`); etcd's tools run in
the etcd container, as the executor and the runbook run them. After each step every command
exited 0 and the step's `expect` holds, read off the lab's own state (package database, source
files, preferences files, kubelet, mirror pods, kubeadm-config), not through kubehop's
readers; holds and versionlocks a node had survive each step, and a versionlock names the
installed version. API steps act on the lab store: cordon and uncordon set
`spec.unschedulable`; a drain has nothing to evict here (no workloads: `evictablePods` is the
API's business, not a node's) and is skipped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubehop.core.planner.make import plan_upgrade
from kubehop.data import load_release_data
from kubehop.lab.lab import Lab
from kubehop.lab.node import apt_pins, repos
from kubehop.lab.node.host import LabNode
from kubehop.lab.scenarios import parse_text
from kubehop.model.plan import Command, ExpectValue, Plan, PlanOptions, Step, StepKind
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.observe.cluster import observe

PKGS = "{kubeadm: 1.28.9, kubelet: 1.28.9, kubectl: 1.28.9}"
PIN_FILE = "/etc/apt/preferences.d/kubernetes"
# Debian/Ubuntu: an HA control plane (cp2 holds kubeadm and cri-tools, which kubeadm 1.30
# requires at 1.30, and keeps its source in deb822 form, `PREPARE`), a worker without holds
# whose repository key expired (the repository switch fetches the minor's Release.key), and one
# that keeps kubeadm and kubelet with an apt preferences pin and holds kubectl.
APT = f"""\
apiVersion: kubehop.dev/v1
kind: LabScenario
name: plan-apt
cluster: {{kubernetesVersion: v1.28.9}}
nodes:
  - {{name: cp1, roles: [control-plane], packages: {PKGS}}}
  - {{name: cp2, roles: [control-plane], packages: {PKGS}, holds: [kubeadm, cri-tools]}}
  - {{name: w1, packages: {PKGS}, holds: []}}
  - name: w2
    packages: {PKGS}
    holds: [kubectl]
    aptPreferences:
      {PIN_FILE}: "Package: kubeadm kubelet\\nPin: version 1.28.*\\nPin-Priority: 1000\\n"
faults:
  - {{kind: repo-key, node: w1, state: expired}}
"""
DEB822 = ("Types: deb\nURIs: https://pkgs.k8s.io/core:/stable:/v1.28/deb/\nSuites: /\n"
          "Signed-By: /etc/apt/keyrings/kubernetes-apt-keyring.gpg\n")
# Command lines run before the cluster is observed: node → lines.
PREPARE = {"cp2": [f"printf '{DEB822}' | sudo tee /etc/apt/sources.list.d/kubernetes.sources",
                   "sudo rm /etc/apt/sources.list.d/kubernetes.list",
                   "sudo apt-get update"]}
# RHEL family: the upstream `exclude=` line everywhere; w1 adds dnf versionlocks, w2 is dnf 5
# with versionlocks, w3's imported repository key expired.
RPM = f"""\
apiVersion: kubehop.dev/v1
kind: LabScenario
name: plan-rpm
cluster: {{kubernetesVersion: v1.28.9}}
nodes:
  - {{name: cp1, roles: [control-plane], os: {{family: rhel}}, packages: {PKGS}, holds: []}}
  - {{name: w1, os: {{family: rhel}}, packages: {PKGS}, holds: []}}
  - {{name: w2, os: {{family: rhel}}, packages: {PKGS}, holds: []}}
  - {{name: w3, os: {{family: rhel}}, packages: {PKGS}, holds: []}}
faults:
  - {{kind: versionlock, node: w1}}
  - {{kind: dnf5, node: w2}}
  - {{kind: versionlock, node: w2}}
  - {{kind: repo-key, node: w3, state: expired}}
"""
TIME_SCALE = 0.001
SETTLE = 60.0  # lab seconds a step's expectations may take to hold (a kubelet restart: 10)
KUBE_PACKAGES = ("kubeadm", "kubelet", "kubectl")
PACKAGE_KEYS = {"kubeadm": "kubeadm", "kubeletPackage": "kubelet", "kubectl": "kubectl"}
ETCD_TOOLS = ("etcdctl", "etcdutl")
STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


class AgentsRunner:
    """`observe`'s node runner: the facts command through the node agents (as SSH would)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    async def run(self, node: str, command: str) -> tuple[int, str, str]:
        assert self.lab.agents is not None
        r = await self.lab.agents.run(node, command)
        return r.exit_code, r.stdout, r.stderr


def transport_line(command: Command) -> str:
    """What the SSH transport sends: `sudo -n ARGV` for a root command (stdin apart)."""
    return ("sudo -n " if command.sudo else "") + shlex.join(command.argv)


# --- the lab's own reading of an expectation ----------------------------------------------------


def repo_minor(host: LabNode) -> str | None:
    """The minor of the node's pkgs.k8s.io source, as apt or dnf would read its files (None
    when there is none; every Kubernetes source must agree)."""
    if host.setup.rpm:
        uris = [r.baseurl for r in repos.yum_repos(host.fs) if r.enabled]
        live = [repos.repo_for(u, "rpm") for u in uris]
    else:
        live = [repos.repo_for(s.uri, "deb") for s in repos.apt_sources(host.fs) if s.flat]
    minors = {r.minor for r in live if r is not None}
    assert len(minors) <= 1, f"{host.name}: Kubernetes sources of several minors: {minors}"
    return minors.pop() if minors else None


def pins_of(host: LabNode, path: str) -> dict[str, tuple[str, int]]:
    """Package → (pin, priority) of the stanzas in `path`, as apt reads them."""
    out: dict[str, tuple[str, int]] = {}
    for s in apt_pins.read_stanzas(host.fs):
        if s.file == path:
            for name in s.packages:
                out.setdefault(name, (f"{s.kind} {s.value}", s.priority))
    return out


def pins_wanted(want: str) -> tuple[str, dict[str, tuple[str, int]]]:
    """The file and package → (pin, priority) an `aptPins` expectation names
    (`FILE: kubeadm kubelet=version 1.29.*@1000; kubectl=…`, model.plan)."""
    path, _, body = want.partition(": ")
    out: dict[str, tuple[str, int]] = {}
    for part in filter(None, body.split("; ")):
        names, _, pin = part.partition("=")
        value, _, priority = pin.rpartition("@")
        for name in names.split():
            out[name] = (value, int(priority))
    return path, out


@dataclass
class LabReader:
    """Reads expectations off the lab (`model.plan` names the keys)."""

    lab: Lab

    def host(self, node: str) -> LabNode:
        assert self.lab.agents is not None
        return self.lab.agents.host(node)

    def node(self, name: str) -> dict[str, Any]:
        return self.lab.store.get("nodes", "", name)

    def value(self, node: str, key: str, want: ExpectValue) -> object:
        host = self.host(node)
        if key == "repoMinor":
            return repo_minor(host)
        if key in PACKAGE_KEYS:
            return host.db.version(PACKAGE_KEYS[key])
        if key == "aptPins":  # the stanzas of kubeadm, kubelet and kubectl
            path, wanted = pins_wanted(str(want))
            got = {n: pin for n, pin in pins_of(host, path).items()
                   if n in KUBE_PACKAGES or n in wanted}
            return want if got == wanted else f"{path}: {got}"
        if key == "kubelet":
            return self.node(node)["status"]["nodeInfo"]["kubeletVersion"]
        if key == "ready":
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for c in self.node(node)["status"]["conditions"])
        if key == "schedulable":
            return not self.node(node)["spec"].get("unschedulable", False)
        if key in STATIC_PODS:
            pod = self.lab.store.peek("pods", "kube-system", f"{key}-{node}")
            return pod["spec"]["containers"][0]["image"].rpartition(":")[2] if pod else None
        if key == "kubernetesVersion":
            cm = self.lab.store.get("configmaps", "kube-system", "kubeadm-config")
            text = cm["data"]["ClusterConfiguration"]
            m = re.search(r"^kubernetesVersion:\s*(\S+)", text, re.MULTILINE)
            return m.group(1) if m else None
        if key == "etcdSnapshot":
            path = str(want)
            return path if host.fs.is_file(path) and host.fs.read(path) else None
        raise AssertionError(f"an expectation this test cannot read: {key}")

    def mismatches(self, step: Step, skip: frozenset[str] = frozenset()) -> list[str]:
        out = []
        for key, want in sorted(step.expect.items()):
            if key in skip:
                continue
            got = self.value(step.node or "", key, want)
            ok = fnmatch.fnmatchcase(str(got), str(want)) if key in PACKAGE_KEYS else got == want
            if not ok:
                out.append(f"{key} is {got!r}, expected {want!r}")
        return out

    def keeps(self, node: str) -> tuple[frozenset[str], frozenset[str]]:
        """The node's apt holds and dnf versionlocked package names."""
        state = self.host(node).db.state
        return (frozenset(state.holds),
                frozenset(e.split("-0:")[0] for e in state.versionlocks))

    def stale_locks(self, node: str) -> list[str]:
        """Versionlock entries that name another version than the installed one (they would
        hide it from dnf)."""
        state = self.host(node).db.state
        return [e for e in state.versionlocks
                if f"{e.split('-0:')[0]}-0:{state.installed.get(e.split('-0:')[0])}.*" != e]


# --- running a plan -------------------------------------------------------------------------


@dataclass
class Run:
    """What running a plan on the lab did."""

    kinds: set[StepKind] = field(default_factory=set)
    commands: int = 0
    failures: list[str] = field(default_factory=list)


async def observe_and_plan(lab: Lab, target: str, options: PlanOptions) -> Plan:
    assert lab.agents is not None
    for node, lines in PREPARE.items() if lab.spec.name == "plan-apt" else ():
        for line in lines:
            r = await lab.agents.run(node, line)
            assert r.exit_code == 0, f"{node}$ {line}\n{r.stdout}{r.stderr}"
    async with await KubeClient.connect(str(lab.kubeconfig_path)) as client:
        state = await observe(client, workloads=True, node_runner=AgentsRunner(lab),
                              kubectl=False)
    return plan_upgrade(state, target, load_release_data(), options)


async def settle(lab: Lab, reader: LabReader, step: Step, skip: frozenset[str]) -> list[str]:
    """The step's unmet expectations once the lab is idle (kubelets report a restart a few lab
    seconds late, as the executor's wait allows)."""
    assert lab.agents is not None
    missing: list[str] = []
    for _ in range(int(SETTLE)):  # polls a lab second apart
        await lab.agents.idle()
        missing = reader.mismatches(step, skip)
        if not missing:
            break
        await asyncio.sleep(lab.clock.real_seconds(1.0))
    return missing


async def etcd_prefix(lab: Lab, node: str) -> tuple[str, ...]:
    """Where the etcd tools run, as the executor's etcd-snapshot step finds them: a kubeadm
    node has them only in the etcd static pod's container (`crictl exec ID`)."""
    assert lab.agents is not None
    r = await lab.agents.run(node, "sudo -n crictl ps --name '^etcd$' --state running -q")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split(), "no running etcd container"
    return ("crictl", "exec", r.stdout.split()[0])


def set_unschedulable(lab: Lab, node: str, value: bool) -> None:
    def patch(obj: dict[str, Any]) -> None:
        obj["spec"]["unschedulable"] = value
    lab.store.mutate("nodes", "", node, patch)


async def run_step(lab: Lab, step: Step, *, script: bool) -> list[str]:
    """Run `step` on the lab; what went wrong (a command's exit status), empty when nothing."""
    assert lab.agents is not None
    assert step.node is not None
    if step.kind in (StepKind.CORDON, StepKind.UNCORDON):
        set_unschedulable(lab, step.node, step.kind is StepKind.CORDON)
        return []
    prefix = await etcd_prefix(lab, step.node) if step.kind is StepKind.ETCD_SNAPSHOT else ()
    out = []
    for c in step.commands:
        if c.argv[0] in ETCD_TOOLS:
            c = Command((*prefix, *c.argv), c.stdin, c.sudo)
        if script:  # as the plan's JSON writes it: one self-contained line
            r = await lab.agents.run(step.node, c.line)
        else:  # as the executor's SSH transport sends it
            r = await lab.agents.run(step.node, transport_line(c), stdin=c.stdin or "")
        if r.exit_code != 0:
            out.append(f"{step.id}: `{c.line[:120]}` exited {r.exit_code}\n{r.stdout[-800:]}"
                       f"{r.stderr[-800:]}")
            break
    return out


async def run_plan(lab: Lab, plan: Plan, *, script: bool) -> Run:
    """Every step in plan order; stops at the first failure."""
    reader = LabReader(lab)
    run = Run()
    for step in plan.steps:
        if step.kind is StepKind.GATE or step.node is None:
            continue
        run.kinds.add(step.kind)
        before = reader.keeps(step.node)
        failed = await run_step(lab, step, script=script)
        run.commands += len(step.commands)
        skip = frozenset({"evictablePods"}) if step.kind is StepKind.DRAIN else frozenset()
        failed += [f"{step.id}: {m}" for m in await settle(lab, reader, step, skip)]
        holds, locks = reader.keeps(step.node)
        if not before[0] <= holds:
            failed.append(f"{step.id}: holds {sorted(before[0] - holds)} were lost")
        if locks != before[1]:
            failed.append(f"{step.id}: versionlocks {sorted(before[1])} became {sorted(locks)}")
        failed += [f"{step.id}: versionlock {e} hides the installed version"
                   for e in reader.stale_locks(step.node)]
        if failed:
            run.failures += failed
            break
    return run


async def start(tmp_path: Path, text: str) -> Lab:
    lab = Lab(parse_text(text, "test"), time_scale=TIME_SCALE, ssh=False, tls=False,
              state_dir=tmp_path / "lab")
    return await lab.start()


NODE_KINDS = {StepKind.REPO_SWITCH, StepKind.KUBEADM_INSTALL, StepKind.KUBEADM_PLAN,
              StepKind.ETCD_SNAPSHOT, StepKind.KUBEADM_APPLY, StepKind.KUBEADM_NODE,
              StepKind.KUBELET_INSTALL, StepKind.KUBELET_RESTART}


@pytest.mark.parametrize("script", [False, True], ids=["transport", "line"])
@pytest.mark.parametrize(("scenario", "strategy"), [(APT, "every-minor"), (RPM, "skip")],
                         ids=["apt", "rpm"])
async def test_every_command_of_a_two_minor_plan_does_what_its_step_expects(
        tmp_path: Path, scenario: str, strategy: str, script: bool) -> None:
    lab = await start(tmp_path, scenario)
    try:
        plan = await observe_and_plan(lab, "1.30", PlanOptions(worker_strategy=strategy))
        assert plan.hops == ("v1.29.15", "v1.30.14")
        run = await run_plan(lab, plan, script=script)
        assert run.failures == []
        assert run.kinds >= NODE_KINDS
        assert run.commands == sum(len(s.commands) for s in plan.steps)
        reader = LabReader(lab)
        for node in sorted({s.node for s in plan.steps if s.node}):
            assert reader.value(node, "kubelet", "") == "v1.30.14"
            assert repo_minor(reader.host(node)) == "1.30"
            # kubeadm 1.30 requires cri-tools >= 1.30.0: the install moved it along
            assert (reader.host(node).db.version("cri-tools") or "").startswith("1.30.0-")
        if scenario is APT:  # the deb822 source was rewritten in its own form
            assert reader.host("cp2").fs.read("/etc/apt/sources.list.d/kubernetes.sources") \
                == DEB822.replace("1.28", "1.30")
    finally:
        await lab.stop()


async def test_the_pinned_node_keeps_its_minor_against_a_routine_upgrade(
        tmp_path: Path) -> None:
    """The pin rewritten after each install is what keeps `apt-get upgrade` from moving the
    package's minor: with the 1.30 repository configured, kubelet stays at 1.29 on w2."""
    lab = await start(tmp_path, APT)
    try:
        plan = await observe_and_plan(lab, "1.30", PlanOptions(worker_strategy="every-minor"))
        last = next(s for s in plan.steps if s.id == "1.30/w2/kubeadm-install")
        upto = plan.steps[:plan.steps.index(last) + 1]
        run = await run_plan(lab, dataclasses.replace(plan, steps=upto), script=False)
        assert run.failures == []
        assert lab.agents is not None
        r = await lab.agents.run("w2", "sudo apt-get upgrade -y")
        assert r.exit_code == 0, r.stderr
        host = lab.agents.host("w2")
        assert host.db.version("kubelet") == "1.29.15-1.1"
        assert host.db.version("kubeadm") == "1.30.14-1.1"
    finally:
        await lab.stop()


def edit(plan: Plan, step_id: str, keep: Callable[[Command], Command | None]) -> Plan:
    """`plan` with step `step_id`'s commands passed through `keep` (None drops one)."""
    def commands(step: Step) -> tuple[Command, ...]:
        return tuple(c for c in map(keep, step.commands) if c is not None)
    return dataclasses.replace(plan, steps=tuple(
        dataclasses.replace(s, commands=commands(s)) if s.id == step_id else s
        for s in plan.steps))


def older_patch(c: Command) -> Command:
    return dataclasses.replace(c, argv=tuple(a.replace("1.29.15-*", "1.29.14-*")
                                             for a in c.argv))


def no_relock(c: Command) -> Command | None:
    return None if c.argv[:3] == ("dnf", "versionlock", "add") else c


@pytest.mark.parametrize(("scenario", "strategy", "step_id", "keep", "failure"), [
    (APT, "every-minor", "1.29/cp1/kubelet-install", older_patch,
     "1.29/cp1/kubelet-install: kubeletPackage is '1.29.14-1.1', expected '1.29.15-*'"),
    (RPM, "skip", "1.30/w1/kubelet-install", no_relock,
     "1.30/w1/kubelet-install: versionlocks ['kubeadm', 'kubectl', 'kubelet'] became "
     "['kubeadm', 'kubectl']"),
], ids=["apt-wrong-patch", "rpm-lock-lost"])
async def test_a_command_whose_effect_differs_from_the_plan_fails_the_run(
        tmp_path: Path, scenario: str, strategy: str, step_id: str,
        keep: Callable[[Command], Command | None], failure: str) -> None:
    """The check is live: a step whose commands do something else than its expectation and
    the node's holds say is caught at that step."""
    lab = await start(tmp_path, scenario)
    try:
        plan = await observe_and_plan(lab, "1.30", PlanOptions(worker_strategy=strategy))
        run = await run_plan(lab, edit(plan, step_id, keep), script=False)
        assert run.failures == [failure]
    finally:
        await lab.stop()
