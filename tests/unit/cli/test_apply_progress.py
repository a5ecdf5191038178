"""A step waiting for its `expect` is never silent for minutes: the checker tells its caller at
least every 30 s (and not on every poll), a step's check after its commands does too, and the
plain lines of a pipe show a step still waiting every 30 s."""

from __future__ import annotations

import io

import pytest

from kubehop.cli.apply_progress import PlainLines
from kubehop.model.plan import Command, Step, StepKind
from kubehop.shell.executor.cluster import NodeView
from kubehop.shell.executor.events import ProgressEvent
from kubehop.shell.executor.expect import PROGRESS_EVERY, ExpectChecker
from kubehop.shell.executor.fake import FakeCluster
from kubehop.shell.executor.gates import HealthGates
from kubehop.shell.executor.steps import StepRunner
from kubehop.shell.steps.base import ExecutorOptions, StepFailed
from kubehop.shell.steps.facts import NodeFacts
from kubehop.shell.transports.fake import FakeTransport

STEP = Step("1.29/w1/kubelet-restart", StepKind.KUBELET_RESTART, "w1", "v1.29.15",
            commands=(Command(("systemctl", "restart", "kubelet")),),
            expect={"kubelet": "v1.29.15"})


class InstantCluster(FakeCluster):
    """Never changes: `changed` returns at once (time is the test's clock)."""

    async def changed(self, timeout: float) -> None:
        return None


class Clock:
    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


async def test_the_checker_tells_a_waiting_step_at_least_every_30_s_not_every_poll():
    clock = Clock(step=2.0)
    cluster = InstantCluster([NodeView("w1", kubelet="v1.28.9", ready=True)])
    checker = ExpectChecker(cluster, NodeFacts(FakeTransport()), monotonic=clock)
    told: list[float] = []
    missing = await checker.wait(STEP, 300.0, on_wait=lambda m: told.append(clock.now))
    assert [str(m) for m in missing] == ["kubelet is v1.28.9, expected v1.29.15"]
    gaps = [b - a for a, b in zip([0.0, *told], [*told, clock.now], strict=True)]
    assert max(gaps) <= PROGRESS_EVERY + 2 * clock.step
    assert 9 <= len(told) <= 12  # about every 30 s of 300 s, not each of ~75 polls


async def test_the_check_after_a_steps_commands_reports_its_wait():
    """It waited up to 300 s without a word: the node line of the progress stayed still."""
    cluster = FakeCluster([NodeView("w1", kubelet="v1.28.9", ready=True)])
    checker = ExpectChecker(cluster, NodeFacts(FakeTransport()))
    heard: list[str] = []
    runner = StepRunner(cluster, FakeTransport(), checker, HealthGates(cluster),
                        ExecutorOptions(verify_timeout=0.2),
                        on_wait=lambda step, message: heard.append(f"{step.id}: {message}"))
    with pytest.raises(StepFailed, match=r"kubelet is v1\.28\.9, expected v1\.29\.15"):
        await runner.perform(STEP)
    assert heard[0] == "1.29/w1/kubelet-restart: waiting: kubelet is v1.28.9, expected v1.29.15"


def event(kind: str, elapsed: float, message: str = "") -> ProgressEvent:
    return ProgressEvent(kind, "run-1", step=STEP.id, step_kind="kubelet-restart", node="w1",
                         message=message, done=3, total=9, elapsed=elapsed)


def test_plain_lines_show_a_step_still_waiting_every_30_s():
    out = io.StringIO()
    lines = PlainLines(out)
    lines(event("step-started", 10.0))
    for t in range(12, 80, 2):
        lines(event("step-waiting", float(t), "waiting: kubelet is v1.28.9, expected v1.29.15"))
    lines(event("step-succeeded", 81.0))
    assert out.getvalue().splitlines() == [
        "[3/9] … 1.29/w1/kubelet-restart (30 s): waiting: kubelet is v1.28.9, expected v1.29.15",
        "[3/9] … 1.29/w1/kubelet-restart (60 s): waiting: kubelet is v1.28.9, expected v1.29.15",
        "[3/9] ✓ 1.29/w1/kubelet-restart",
    ]


def test_plain_lines_say_a_kubeadm_retry_at_once():
    out = io.StringIO()
    lines = PlainLines(out)
    lines(event("step-started", 10.0))
    lines(event("step-waiting", 12.0, "`sudo kubeadm upgrade plan v1.29.15` on w1 failed only "
                                      "kubeadm's CreateJob health check (intermittent upstream: "
                                      "kubernetes/kubeadm#3282): running it again (2 of 3)"))
    assert out.getvalue().splitlines() == [
        "[3/9] … 1.29/w1/kubelet-restart (2 s): `sudo kubeadm upgrade plan v1.29.15` on w1 "
        "failed only kubeadm's CreateJob health check (intermittent upstream: "
        "kubernetes/kubeadm#3282): running it again (2 of 3)"]
