"""The executor with a fake cluster and a recording transport: order and parallelism, the
journal before and after each step, skipping what is done, halting on failure with a report,
stopping and abandoning, a lost lock, progress events."""

from __future__ import annotations

import asyncio
import re

import pytest

from kubehop.model.errors import HaltedError
from kubehop.model.journal import RunStatus, StepStatus
from kubehop.model.plan import Command, Plan, PlanOptions, Step, StepKind, Wave
from kubehop.shell.executor.cluster import NodeView
from kubehop.shell.executor.engine import Executor, RunHalted
from kubehop.shell.executor.expect import ExpectChecker
from kubehop.shell.executor.fake import FakeCluster
from kubehop.shell.executor.gates import HealthGates
from kubehop.shell.executor.journal import FILE_NAME, Journal
from kubehop.shell.executor.steps import StepRunner
from kubehop.shell.steps.base import ExecutorOptions
from kubehop.shell.steps.facts import NodeFacts
from kubehop.shell.transports.fake import FakeTransport

HOP = "v1.29.15"
NODE_CMD = (Command(("kubeadm", "upgrade", "node")),)


class SlowTransport(FakeTransport):
    """A FakeTransport whose commands take `delay` seconds; records the peak concurrency."""

    def __init__(self, delay: float = 0.02, **per_node: float) -> None:
        super().__init__()
        self.delay = delay
        self.per_node = per_node
        self.running = 0
        self.peak = 0

    async def run(self, node, command, **kw):
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.per_node.get(node, self.delay))
            return await super().run(node, command, **kw)
        finally:
            self.running -= 1


def node_steps(wave: int, nodes: list[str], gate_before: str | None) -> list[Step]:
    """Per node: cordon → kubeadm upgrade node → uncordon; then a gate closing the wave."""
    steps, tails = [], []
    for n in nodes:
        first = (gate_before,) if gate_before else ()
        c = Step(f"w{wave}/{n}/cordon", StepKind.CORDON, n, HOP, first,
                 expect={"schedulable": False}, wave=wave)
        k = Step(f"w{wave}/{n}/kubeadm-node", StepKind.KUBEADM_NODE, n, HOP, (c.id,), NODE_CMD,
                 wave=wave)
        u = Step(f"w{wave}/{n}/uncordon", StepKind.UNCORDON, n, HOP, (k.id,),
                 expect={"schedulable": True}, wave=wave)
        steps += [c, k, u]
        tails.append(u.id)
    gate = Step(f"w{wave}/done", StepKind.GATE, None, HOP,
                tuple(([gate_before] if gate_before else []) + tails), wave=wave)
    return [*steps, gate]


def make_plan(node_waves: list[list[str]]) -> Plan:
    steps: list[Step] = []
    gate = None
    for i, nodes in enumerate(node_waves):
        steps += node_steps(i, nodes, gate)
        gate = steps[-1].id
    waves = tuple(Wave(i, HOP, "workers", tuple(nodes)) for i, nodes in enumerate(node_waves))
    return Plan("v1.28.9", HOP, (HOP,), PlanOptions(), 1, tuple(steps), waves,
                fingerprint="f")


def fake_cluster(nodes: list[str]) -> FakeCluster:
    return FakeCluster([NodeView(n, kubelet="v1.28.9", ready=True) for n in nodes])


class Harness:
    def __init__(self, tmp_path, plan, cluster, transport=None, **options):
        self.plan = plan
        self.cluster = cluster
        self.transport = transport or FakeTransport()
        self.journal = Journal(tmp_path / FILE_NAME)
        # kubeadm attached, as any command: its detached run is tested in test_kubeadm_runner.py
        self.options = ExecutorOptions(**{"kubeadm_detached": False, **options})
        self.events = []
        self.state = self.journal.begin("c", plan)

    def executor(self, lock=None) -> Executor:
        checker = ExpectChecker(self.cluster, NodeFacts(self.transport))
        runner = StepRunner(self.cluster, self.transport, checker, HealthGates(self.cluster),
                            self.options)
        return Executor(self.plan, self.journal, self.state, runner,
                        on_event=self.events.append, lock=lock,
                        resume="kubehop apply plan.json")

    async def run(self, **kw):
        executor = self.executor(**kw)
        try:
            self.state = await executor.run()
        finally:
            self.state = executor.state
        return self.state

    def statuses(self) -> dict[str, str]:
        saved = self.journal.find(self.state.run.id)
        return {i: str(r.status) for i, r in saved.steps.items()}


@pytest.fixture
def harness(tmp_path):
    made = []

    def make(plan, cluster, transport=None, **options):
        h = Harness(tmp_path, plan, cluster, transport, **options)
        made.append(h)
        return h

    yield make
    for h in made:
        h.journal.close()


async def test_steps_run_in_dependency_order_waves_in_parallel_bounded(harness):
    nodes = [f"n{i}" for i in range(6)]
    transport = SlowTransport()
    h = harness(make_plan([nodes[:4], nodes[4:]]), fake_cluster(nodes), transport, parallel=3)
    state = await h.run()
    assert state.status is RunStatus.SUCCEEDED
    assert set(h.statuses().values()) == {"succeeded"}
    assert transport.peak == 3  # four nodes ready at once, three allowed
    actions = h.cluster.actions
    last_first_wave = max(i for i, (_, n) in enumerate(actions) if n in nodes[:4])
    first_second_wave = min(i for i, (_, n) in enumerate(actions) if n in nodes[4:])
    assert last_first_wave < first_second_wave  # the gate between the waves holds
    for n in nodes:
        mine = [a for a, node in actions if node == n]
        assert mine == ["cordon", "uncordon"]
    assert transport.commands("n0") == ["kubeadm upgrade node"]
    assert all(n.schedulable for n in await h.cluster.nodes())


async def test_every_step_is_journaled_before_and_after(harness):
    h = harness(make_plan([["n0"]]), fake_cluster(["n0"]))
    await h.run()
    saved = h.journal.find(h.state.run.id)
    kinds = [(r.step_id, str(r.status)) for r in sorted(saved.steps.values(),
                                                       key=lambda r: r.seq)]
    assert kinds == [("w0/n0/cordon", "succeeded"), ("w0/n0/kubeadm-node", "succeeded"),
                     ("w0/n0/uncordon", "succeeded"), ("w0/done", "succeeded")]
    events = [(e.kind, e.step) for e in h.events]
    assert events[:4] == [("run-started", None), ("wave-started", "w0/n0/cordon"),
                          ("step-started", "w0/n0/cordon"), ("step-succeeded", "w0/n0/cordon")]
    assert events[-1] == ("run-finished", None)
    assert h.events[-1].done == h.events[-1].total == 4


async def test_a_step_whose_expect_holds_is_skipped(harness):
    cluster = fake_cluster(["n0"])
    cluster.set_node("n0", schedulable=False)  # cordoned already (by a run that crashed)
    h = harness(make_plan([["n0"]]), cluster)
    await h.run()
    assert h.statuses()["w0/n0/cordon"] == "skipped-already-done"
    assert cluster.actions == [("uncordon", "n0")]
    skipped = next(e for e in h.events if e.kind == "step-skipped")
    assert skipped.message == "already done: schedulable=False"


async def test_a_failure_halts_new_steps_and_reports_what_it_left(harness):
    nodes = ["n0", "n1", "n2", "n3"]
    transport = SlowTransport(0.1, n1=0.0)  # n1 fails while its neighbours still run
    transport.on("kubeadm upgrade node", node="n1", exit_code=1,
                 stderr="[upgrade] reading config\nerror: couldn't create a Kubernetes client")
    h = harness(make_plan([nodes[:3], nodes[3:]]), fake_cluster(nodes), transport)
    with pytest.raises(RunHalted) as exc:
        await h.run()
    assert isinstance(exc.value, HaltedError)
    assert exc.value.exit_code == 3
    report = exc.value.report
    (failed,) = report.failed
    assert failed.step == "w0/n1/kubeadm-node"
    assert failed.node == "n1"
    assert "exited with 1: [upgrade] reading config | error: couldn't create" in failed.message
    assert "$ sudo kubeadm upgrade node" in failed.output
    # No new step starts after a failure, not even the neighbours' uncordons: the report
    # names every node left cordoned, and why.
    assert report.cordoned == (
        ("n0", f"for its upgrade to {HOP}; its remaining steps did not run"),
        ("n1", f"for its upgrade to {HOP}; step w0/n1/kubeadm-node failed"),
        ("n2", f"for its upgrade to {HOP}; its remaining steps did not run"))
    statuses = h.statuses()
    assert statuses["w0/n1/kubeadm-node"] == "failed"
    assert statuses["w0/n0/kubeadm-node"] == "succeeded"  # running neighbours finished
    assert not any(k.startswith("w1/") for k in statuses)  # the next wave never started
    assert ("cordon", "n3") not in h.cluster.actions
    assert h.journal.find(h.state.run.id).status is RunStatus.HALTED
    assert "halted: step w0/n1/kubeadm-node on node n1 failed" in str(exc.value)
    assert str(exc.value).endswith("left cordoned: n0, n1, n2; fix the cause, then "
                                   "`kubehop apply plan.json` resumes")
    # Fixed, the same plan resumes where it stopped: n1's kubeadm runs again, nothing else.
    transport.on("kubeadm upgrade node", node="n1", exit_code=0)
    before = list(transport.commands())
    state = await h.run()
    assert state.status is RunStatus.SUCCEEDED
    assert transport.commands()[len(before):] == ["kubeadm upgrade node"] * 2  # n1, then n3
    assert all(n.schedulable for n in await h.cluster.nodes())
    assert h.statuses()["w0/n1/kubeadm-node"] == "succeeded"


async def test_an_interrupted_step_is_verified_before_it_runs_again(harness):
    cluster = fake_cluster(["n0"])
    plan = make_plan([["n0"]])
    h = harness(plan, cluster)
    # A previous process recorded the cordon as started, then died (after cordoning or not).
    h.state = h.journal.record(h.state, "w0/n0/cordon", StepStatus.STARTED, node="n0")
    cluster.set_node("n0", schedulable=False)
    await h.run()
    records = [r for r in h.journal.find(h.state.run.id).steps.values()]
    assert h.statuses()["w0/n0/cordon"] == "skipped-already-done"
    assert any(e.kind == "step-verifying" for e in h.events)
    assert cluster.actions == [("uncordon", "n0")]
    assert records  # replayed fine: started → needs-verification → skipped


async def test_stop_lets_running_steps_finish_and_starts_no_new_one(harness):
    cluster = fake_cluster(["n0", "n1"])
    release = asyncio.Event()
    cluster.hang[("cordon", "n0")] = release
    h = harness(make_plan([["n0"], ["n1"]]), cluster)
    executor = h.executor()
    task = asyncio.create_task(executor.run())
    while ("cordon", "n0") not in cluster.actions:
        await asyncio.sleep(0.01)
    executor.request_stop()
    release.set()
    with pytest.raises(RunHalted) as exc:
        await task
    assert exc.value.report.reason == "interrupted"
    assert h.journal.find(h.state.run.id).steps["w0/n0/cordon"].status is StepStatus.SUCCEEDED
    assert "w0/n0/kubeadm-node" not in h.journal.find(h.state.run.id).steps
    assert h.journal.find(h.state.run.id).status is RunStatus.INTERRUPTED
    assert exc.value.report.cordoned == (("n0", f"for its upgrade to {HOP}; its remaining "
                                                "steps did not run"),)


async def test_abandon_marks_running_steps_for_verification(harness):
    cluster = fake_cluster(["n0"])
    cluster.hang[("cordon", "n0")] = asyncio.Event()  # never released
    h = harness(make_plan([["n0"]]), cluster)
    executor = h.executor()
    task = asyncio.create_task(executor.run())
    while ("cordon", "n0") not in cluster.actions:
        await asyncio.sleep(0.01)
    executor.abandon()
    with pytest.raises(RunHalted) as exc:
        await task
    saved = h.journal.find(h.state.run.id)
    assert saved.steps["w0/n0/cordon"].status is StepStatus.NEEDS_VERIFICATION
    assert exc.value.report.unverified == ("w0/n0/cordon",)


class FakeLock:
    """An Ownership that is lost after `keep` confirmations (or when `lose()` is called)."""

    def __init__(self, keep: int | None = None,
                 reason: str = "another kubehop run took over the upgrade lock "
                               "(Lease kube-system/kubehop-upgrade): ann@laptop/77 run-b") -> None:
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        self.keep = keep
        self.reason = reason
        self.confirms = 0

    def lose(self) -> None:
        self.lost_reason = self.reason
        self.lost.set()

    async def confirm(self) -> str | None:
        self.confirms += 1
        if self.keep is not None and self.confirms > self.keep:
            self.lose()
        return self.lost_reason


async def test_a_lost_lock_halts_the_run(harness):
    cluster = fake_cluster(["n0", "n1"])
    lock = FakeLock()
    cluster.on_action = lambda action, node: lock.lose() if node == "n0" else None
    h = harness(make_plan([["n0"], ["n1"]]), cluster)
    with pytest.raises(RunHalted) as exc:
        await h.run(lock=lock)
    assert exc.value.report.reason == "lock-lost"
    assert str(exc.value).startswith("halted: another kubehop run took over the upgrade lock "
                                     "(Lease kube-system/kubehop-upgrade): ann@laptop/77 run-b; "
                                     "left cordoned: n0; ")
    assert not [a for a in cluster.actions if a[1] == "n1"]


async def test_ownership_is_confirmed_before_each_mutating_step(harness):
    """A takeover the renewal loop has not seen yet still stops the very next step."""
    cluster = fake_cluster(["n0", "n1"])
    lock = FakeLock(keep=2, reason="could not renew the upgrade lock (Lease kube-system/"
                                   "kubehop-upgrade) for 45 s, longer than its 30 s lease")
    h = harness(make_plan([["n0"], ["n1"]]), cluster)
    with pytest.raises(RunHalted) as exc:
        await h.run(lock=lock)
    assert exc.value.exit_code == 3
    assert cluster.actions == [("cordon", "n0")]  # kubeadm upgrade node ran; uncordon did not
    assert h.statuses() == {"w0/n0/cordon": "succeeded", "w0/n0/kubeadm-node": "succeeded"}
    report = exc.value.report
    assert report.reason == "lock-lost"
    assert report.notes == (lock.reason,)
    assert report.cordoned == (("n0", f"for its upgrade to {HOP}; its remaining steps did not "
                                      "run"),)
    assert lock.confirms == 3


async def test_a_node_that_never_becomes_ready_fails_its_wait_naming_it(harness):
    cluster = fake_cluster(["n0"])
    cluster.set_node("n0", ready=False, ready_message="KubeletNotReady: PLEG is not healthy")
    step = Step("w0/n0/wait-ready", StepKind.WAIT_READY, "n0", HOP,
                expect={"kubelet": "v1.28.9", "ready": True}, wave=0)
    plan = Plan("v1.28.9", HOP, (HOP,), PlanOptions(), 1, (step,), fingerprint="f")
    h = harness(plan, cluster, ready_timeout=0.3)
    with pytest.raises(RunHalted) as exc:
        await h.run()
    (failed,) = exc.value.report.failed
    assert failed.message.startswith("node n0 did not become Ready at v1.28.9 within 0.3 s")
    assert "PLEG is not healthy" in failed.message
    assert any(e.kind == "step-waiting" for e in h.events)


async def test_switchover_moves_the_databases_pods_off_the_node_primary_last(harness):
    cluster = fake_cluster(["n0"])
    cluster.primaries["db/pg"] = "n0"
    step = Step("w0/n0/switchover", StepKind.SWITCHOVER, "n0", HOP,
                expect={"primaryNotOnNode": True}, params={"databases": ("db/pg",)}, wave=0)
    plan = Plan("v1.28.9", HOP, (HOP,), PlanOptions(), 1, (step,), fingerprint="f")
    h = harness(plan, cluster)
    await h.run()
    assert cluster.actions == [("drain", "n0")]
    assert cluster.primaries["db/pg"] == "elsewhere"


async def test_a_drain_error_is_the_steps_failure(harness):
    cluster = fake_cluster(["n0"])
    cluster.pods["n0"] = ["web/a"]
    cluster.drain_error["n0"] = ("drain of node n0 timed out after 5s with 1 pod left: web/a "
                                 "(pdb web/a: 2 of 2 must stay Ready)")
    step = Step("w0/n0/drain", StepKind.DRAIN, "n0", HOP,
                expect={"schedulable": False, "evictablePods": 0}, wave=0)
    plan = Plan("v1.28.9", HOP, (HOP,), PlanOptions(), 1, (step,), fingerprint="f")
    h = harness(plan, cluster)
    with pytest.raises(RunHalted) as exc:
        await h.run()
    assert "pdb web/a: 2 of 2 must stay Ready" in exc.value.report.failed[0].message
    failed = h.journal.find(h.state.run.id).steps["w0/n0/drain"]
    assert failed.status is StepStatus.FAILED
    assert failed.message.startswith("drain of node n0")
    started = next(e for e in h.events if e.kind == "step-started")
    assert started.step == "w0/n0/drain"


async def test_a_busy_package_lock_is_waited_for_and_an_interrupted_dpkg_finished(harness):
    step = Step("w0/n0/kubeadm-install", StepKind.KUBEADM_INSTALL, "n0", HOP,
                commands=(Command(("apt-get", "install", "-y", "kubeadm=1.29.15-1.1")),),
                wave=0)
    plan = Plan("v1.28.9", HOP, (HOP,), PlanOptions(), 1, (step,), fingerprint="f")
    transport = FakeTransport()
    transport.on("apt-get * install*", times=1, exit_code=100, stderr=(
        "E: dpkg was interrupted, you must manually run 'sudo dpkg --configure -a' to correct "
        "the problem."))
    transport.on("apt-get * install*", times=1, exit_code=100, stderr=(
        "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242"))
    h = harness(plan, fake_cluster(["n0"]), transport)
    await h.run()
    # apt-get also waits itself (`-o DPkg::Lock::Timeout=` what is left of the lock wait);
    # the holder's name is asked with ps.
    sent = [re.sub(r" -o DPkg::Lock::Timeout=\d+", "", c) for c in transport.commands("n0")]
    assert sent == ["apt-get install -y kubeadm=1.29.15-1.1", "ps -o comm= -p 4242",
                    "apt-get install -y kubeadm=1.29.15-1.1", "dpkg --configure -a",
                    "apt-get install -y kubeadm=1.29.15-1.1"]
    assert any("package manager lock" in e.message for e in h.events if e.kind == "step-waiting")


async def test_an_apiserver_restarting_after_the_step_is_waited_for(harness):
    from kubehop.shell.kube.errors import ApiError

    class Restarting(FakeCluster):
        calls = 0

        async def kubernetes_version(self):
            self.calls += 1
            if self.calls <= 2:  # the pre-check, then the first look after the command
                if self.calls == 2:
                    raise ApiError("cannot reach the Kubernetes API: connection refused")
                return "v1.28.9"
            return HOP

    cluster = Restarting([NodeView("cp1", kubelet="v1.28.9", ready=True)])
    step = Step("w0/cp1/kubeadm-config", StepKind.KUBEADM_NODE, "cp1", HOP, commands=NODE_CMD,
                expect={"kubernetesVersion": HOP}, wave=0)
    plan = Plan("v1.28.9", HOP, (HOP,), PlanOptions(), 1, (step,), fingerprint="f")
    h = harness(plan, cluster)
    state = await h.run()
    assert state.status is RunStatus.SUCCEEDED
    assert cluster.calls == 3
