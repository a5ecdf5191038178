"""Two `kubehop apply` runs of one plan under one hostname, each in its own PID namespace (as
in two containers of one host, where both are PID 1): the second is refused while the first
holds the upgrade lock, and the lab's history shows each kubeadm step once. A run whose lease
is taken over mid-way starts no further step and halts (exit 3) saying who took it."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from kubehop.lab.history import check_history
from kubehop.shell.executor.lock import micro_time
from tests.integration.upgrade.conftest import KUBEHOP, TODAY, Upgrade, final_versions

# Each run is PID 1 of a new PID namespace with its own /proc, as in a container.
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]


@pytest.fixture(scope="module")
def pid_namespaces() -> None:
    """Skip unless this user may create PID namespaces (root, or user namespaces allowed)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed (util-linux)")
    done = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True, timeout=60,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot create a PID namespace here (`{' '.join(UNSHARE)}` needs root "
                    f"or CAP_SYS_ADMIN): {done.stderr.strip()}")


class Run:
    """`kubehop apply PLAN` as PID 1 of a new PID namespace, its standard input a terminal so
    that it stops at the confirmation prompt, after its checks and before the lock."""

    PROMPT = "to the cluster? [y/N]: "

    def __init__(self, up: Upgrade, state: Path, plan: Path) -> None:
        self.terminal, tty = pty.openpty()
        env = dict(up.env, KUBEHOP_STATE_DIR=str(state), HOME=str(state))
        self.proc = subprocess.Popen([*UNSHARE, *KUBEHOP, "apply", str(plan)], env=env,
                                     stdin=tty, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(tty)
        self.err = b""

    def wait_for_prompt(self, deadline: float) -> None:
        assert self.proc.stderr is not None
        while self.PROMPT.encode() not in self.err:
            assert time.monotonic() < deadline, self.err.decode()
            ready, _, _ = select.select([self.proc.stderr], [], [], 0.5)
            if ready:
                chunk = os.read(self.proc.stderr.fileno(), 65536)
                assert chunk, f"exited before asking: {self.err.decode()}"
                self.err += chunk

    def answer_yes(self) -> None:
        os.write(self.terminal, b"y\n")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=600)
        os.close(self.terminal)
        return self.proc.returncode, out.decode(), (self.err + err).decode()


def kubeadm_steps(events: list[dict]) -> Counter[tuple[str, str]]:
    """(node, `apply`|`node`) → how many times a `kubeadm upgrade …` process ran there (under
    sudo, or in a transient unit, which the lab records as its own command)."""
    out: Counter[tuple[str, str]] = Counter()
    for e in events:
        argv = e["argv"] if e["type"] == "command" else []
        if argv[:2] == ["sudo", "-n"]:
            argv = argv[2:]
        if argv[:2] == ["kubeadm", "upgrade"] and argv[2] in ("apply", "node"):
            out[(e["node"], argv[2])] += 1
    return out


@pytest.mark.slow
def test_a_second_run_in_another_pid_namespace_is_refused(upgrade_lab, tmp_path,
                                                           pid_namespaces):
    up = upgrade_lab("oldversion")
    plan = tmp_path / "plan.json"
    done = up.kubehop("plan", "--to", "1.29", "--today", TODAY, "-o", "json", "--out", str(plan))
    assert done.returncode == 0, done.stderr
    # Two containers of one host, each with its own state: the same hostname, both PID 1,
    # both past their checks (the cluster is as planned) when they are told to go.
    runs = [Run(up, tmp_path / f"state-{i}", plan) for i in range(2)]
    deadline = time.monotonic() + 120
    for run in runs:
        run.wait_for_prompt(deadline)
    for run in runs:
        run.answer_yes()
    results = [run.finish() for run in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], "\n=====\n".join(f"{c}\n{o}\n{e}" for c, o, e in results)
    (_, out, err), = [r for r in results if r[0] == 1]
    # Refused, naming the other run: PID 1 of its own namespace, told apart by its namespace.
    assert re.search(r"kubehop: another kubehop run holds the upgrade lock \(Lease kube-system/"
                     r"kubehop-upgrade\): \S+@\S+/1 run-\S+ boot=\S+ pidns=\d+ start=\d+ ",
                     err), err
    assert "started:" not in out, out
    events = up.lt.events()
    assert check_history(events, max_unavailable=1) == []
    kubelets = {n: v for (n, c), v in final_versions(events).items() if c == "kubelet"}
    assert set(kubelets.values()) == {"v1.29.15"}, kubelets
    steps = kubeadm_steps(events)
    assert steps[("oldversion1", "apply")] == 1, steps
    assert set(steps.values()) == {1}, steps
    assert up.lt.call(lambda: up.lab.store.peek(
        "leases.coordination.k8s.io", "kube-system", "kubehop-upgrade")) is None


def test_a_run_whose_lease_is_taken_over_starts_no_further_step(upgrade_lab, tmp_path):
    up = upgrade_lab("oldversion")
    plan = tmp_path / "plan.json"
    done = up.kubehop("plan", "--to", "1.29", "--today", TODAY, "-o", "json", "--out", str(plan))
    assert done.returncode == 0, done.stderr
    proc = up.popen("apply", str(plan), "--yes")
    deadline = time.monotonic() + 120
    while up.journal_records() < 6:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "kubehop made no progress"
        time.sleep(0.005)

    def take_over() -> None:  # what a second run (or `kubectl apply` of a Lease) would write
        def change(lease: dict) -> None:
            lease["spec"].update(holderIdentity="ann@laptop/77 run-other",
                                 renewTime=micro_time(time.time()), leaseDurationSeconds=3600)
        up.lab.store.mutate("leases.coordination.k8s.io", "kube-system", "kubehop-upgrade",
                            change)

    up.lt.call(take_over)
    taken = time.time()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, out[-3000:] + err[-3000:]
    assert "kubehop: halted: another kubehop run took over the upgrade lock (Lease " \
           "kube-system/kubehop-upgrade): ann@laptop/77 run-other" in err
    db = sqlite3.connect(f"file:{up.state_dir / 'journal.sqlite3'}?mode=ro", uri=True)
    try:
        late = db.execute("SELECT step_id, at - ? FROM records WHERE status = 'started' "
                          "AND at > ?", (taken, taken + 2.0)).fetchall()
        (left,) = db.execute("SELECT COUNT(*) FROM records WHERE status = 'started'").fetchone()
    finally:
        db.close()
    # The renewal loop would notice only at its next renewal (10 s); each step asks first.
    assert late == [], late
    assert left < 33  # it stopped before its end
    lease = up.lt.call(lambda: up.lab.store.peek(
        "leases.coordination.k8s.io", "kube-system", "kubehop-upgrade"))
    assert lease["spec"]["holderIdentity"] == "ann@laptop/77 run-other"  # left to its holder
