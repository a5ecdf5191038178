"""kubeadm upgrade run detached on a node (systemd-run), followed through its unit and log,
surviving dropped connections, found again on resume, never killed; the CreateJob retry."""

from __future__ import annotations

import re

import pytest

from kubehop.model.plan import Command
from kubehop.shell.steps.kubeadm_runner import SHOW, UNIT, KubeadmRunner
from kubehop.shell.transports import CommandTimeout, ConnectionLost, render_command
from kubehop.shell.transports.fake import Answer, Call, FakeTransport

APPLY = Command(("kubeadm", "upgrade", "apply", "-y", "v1.29.15"))
PLAN = Command(("kubeadm", "upgrade", "plan", "v1.29.15"))
CREATE_JOB = ('[upgrade/health] FATAL: [preflight] Some fatal errors occurred:\n'
              '\t[ERROR CreateJob]: Job "upgrade-health-check" in the namespace "kube-system" '
              'did not complete in 15s: no condition of type Complete\n')


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


class Node:
    """A node's systemd as seen through `systemctl show` and the journal: the unit runs for
    `polls` looks at its state, printing one line each, then exits with `exit_code`."""

    def __init__(self, polls: int = 3, exit_code: int = 0, running: bool = False,
                 systemd: bool = True) -> None:
        self.polls = polls
        self.exit_code = exit_code
        self.state = "running" if running else None
        self.systemd = systemd
        self.invocation = "0f1e2d" if running else ""
        self.log = "[upgrade] started earlier\n" if running else ""
        self.transport = FakeTransport(strict=True)
        show = re.escape(render_command(SHOW))
        self.transport.on(re.compile(f"^{show}$"), reply=self.show)
        self.transport.on(re.compile(r"^systemd-run "), reply=self.start)
        self.transport.on(re.compile(r"^journalctl --no-pager --quiet --output=cat "
                                     r"_SYSTEMD_INVOCATION_ID=\w+$"), reply=self.journal)
        self.transport.on(re.compile(r"^systemctl (stop|reset-failed) "), reply=self.unload)

    def props(self) -> str:
        if not self.systemd:
            return ""
        active, sub, result, status = {
            None: ("inactive", "dead", "success", 0),
            "running": ("active", "running", "success", 0),
            "exited": ("active", "exited", "success", 0),
            "failed": ("failed", "failed", "exit-code", self.exit_code),
        }[self.state]
        return (f"ActiveState={active}\nSubState={sub}\nResult={result}\n"
                f"ExecMainStatus={status}\nInvocationID={self.invocation}\n")

    def show(self, call: Call) -> Answer:
        assert call.sudo
        if self.state == "running":
            if self.polls > 0:
                self.polls -= 1
                self.log += f"[upgrade/staticpods] step {self.polls}\n"
            else:
                self.state = "exited" if self.exit_code == 0 else "failed"
                self.log += "[upgrade] SUCCESS!\n" if self.exit_code == 0 else CREATE_JOB
        return Answer(stdout=self.props())

    def start(self, call: Call) -> Answer:
        assert re.fullmatch(rf"systemd-run --unit={UNIT} --remain-after-exit "
                            r"'--description=kubehop: kubeadm upgrade [^']+' -- "
                            r"kubeadm upgrade (apply -y v1\.29\.15|node)", call.command)
        assert call.sudo
        self.state, self.log, self.invocation = "running", "", "a1b2c3"
        return Answer(stderr=f"Running as unit: {UNIT}.service\n")

    def journal(self, call: Call) -> Answer:
        assert call.command.endswith(f"={self.invocation}")
        return Answer(stdout=self.log)

    def unload(self, call: Call) -> Answer:
        self.state, self.invocation = None, ""
        return Answer()

    def commands(self) -> list[str]:
        return [c.command for c in self.transport.calls]


def runner(node: Node, clock: Clock, **kw) -> KubeadmRunner:
    return KubeadmRunner(node.transport, sleep=clock.sleep, monotonic=clock, **kw)


async def test_apply_runs_as_a_unit_and_is_followed_to_its_end():
    node, clock, said = Node(), Clock(), []
    result = await runner(node, clock).run("cp1", APPLY, said.append)
    assert result.ok
    assert result.stdout.endswith("[upgrade] SUCCESS!\n")
    assert result.command == "sudo kubeadm upgrade apply -y v1.29.15"
    starts = [c for c in node.commands() if "systemd-run" in c]
    assert len(starts) == 1
    assert "kubeadm upgrade apply" not in "".join(c for c in node.commands() if c not in starts)
    assert "kubeadm on cp1: [upgrade/staticpods] step 0" in said


async def test_a_failed_apply_reports_its_exit_status_and_log():
    node, clock = Node(exit_code=1), Clock()
    result = await runner(node, clock).run("cp1", Command(("kubeadm", "upgrade", "node")))
    assert result.exit_code == 1
    assert "[ERROR CreateJob]" in result.stdout  # `upgrade node` has no such retry


async def test_a_resumed_run_follows_the_kubeadm_still_running_instead_of_starting_another():
    node, clock, said = Node(running=True), Clock(), []
    result = await runner(node, clock).run("cp1", APPLY, said.append)
    assert result.ok
    assert not [c for c in node.commands() if "systemd-run" in c]
    assert said[0] == (f"a kubeadm started earlier still runs on cp1 (unit {UNIT}): following "
                       "it instead of starting another")
    assert result.stdout.startswith("[upgrade] started earlier\n")


async def test_a_finished_earlier_unit_is_unloaded_before_kubeadm_starts_again():
    node, clock = Node(), Clock()
    node.state = "failed"
    result = await runner(node, clock).run("cp1", APPLY)
    assert result.ok
    assert node.commands()[1] == f"systemctl reset-failed {UNIT}.service"


async def test_a_dropped_connection_does_not_stop_the_run():
    node, clock, said = Node(), Clock(), []
    node.transport.on(re.compile(r"^journalctl "), times=2,
                      raises=ConnectionLost("connection to node cp1 lost", node="cp1"))
    result = await runner(node, clock).run("cp1", APPLY, said.append)
    assert result.ok
    assert said.count("lost contact with cp1 (connection to node cp1 lost); kubeadm keeps "
                      "running there: trying again") == 2


async def test_after_its_timeout_kubeadm_is_left_running_not_killed():
    node, clock = Node(polls=10_000), Clock()
    with pytest.raises(CommandTimeout) as e:
        await runner(node, clock, timeout=1800).run("cp1", APPLY)
    assert "still runs on node cp1 after 1800 s; kubehop left it running" in str(e.value)
    assert 1800 <= clock.now < 1810
    assert not [c for c in node.commands() if re.search(r"systemctl (stop|kill)|kill ", c)]
    assert node.state == "running"


async def test_without_systemd_kubeadm_runs_attached_with_the_kubeadm_timeout():
    node, clock = Node(systemd=False), Clock()
    node.transport.on("kubeadm upgrade apply -y v1.29.15", stdout="done\n")
    result = await runner(node, clock, timeout=1800, command_timeout=900).run("cp1", APPLY)
    assert result.ok
    assert node.transport.calls[-1].timeout == 1800


async def test_plan_failing_only_on_createjob_is_retried_twice_and_says_so():
    transport, said = FakeTransport(), []
    transport.on("kubeadm upgrade plan v1.29.15", exit_code=2, stderr=CREATE_JOB, times=2)
    result = await KubeadmRunner(transport).run("cp1", PLAN, said.append)
    assert result.ok
    assert transport.commands() == ["kubeadm upgrade plan v1.29.15"] * 3
    assert said == [f"`sudo kubeadm upgrade plan v1.29.15` on cp1 failed only kubeadm's CreateJob "
                    f"health check (intermittent upstream: kubernetes/kubeadm#3282): running it "
                    f"again ({n} of 3)" for n in (2, 3)]


async def test_createjob_failing_every_time_fails_after_three_runs_naming_the_check():
    transport = FakeTransport()
    transport.on("kubeadm upgrade plan v1.29.15", exit_code=2, stderr=CREATE_JOB)
    result = await KubeadmRunner(transport).run("cp1", PLAN)
    assert result.exit_code == 2
    assert len(transport.calls) == 3
    assert result.stderr.rstrip().endswith(
        "kubehop ran it 3 times: kubeadm's CreateJob health check failed each time "
        "(intermittent upstream: kubernetes/kubeadm#3282; always on a drained single-node "
        "cluster: kubernetes/kubeadm#3050)")


async def test_other_preflight_errors_are_not_retried():
    transport = FakeTransport()
    transport.on("kubeadm upgrade plan v1.29.15", exit_code=2,
                 stderr=CREATE_JOB + "\t[ERROR ControlPlaneNodesReady]: there are NotReady "
                 "control-planes in the cluster: [cp2]\n")
    result = await KubeadmRunner(transport).run("cp1", PLAN)
    assert result.exit_code == 2
    assert len(transport.calls) == 1
