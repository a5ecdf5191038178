"""End-to-end upgrades: a lab served from a background thread, kubehop run as a subprocess
against its kubeconfig and SSH inventory, judged from the lab's history."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubehop.lab.lab import Lab
from kubehop.lab.scenarios import load_scenario
from tests.release_pins import FRESH

T = TypeVar("T")
SCALE = 0.01
TODAY = str(FRESH)  # within 60 days of the shipped release data: no staleness warning
KUBEHOP = [str(Path(sys.executable).parent / "kubehop")]
COMPONENTS = ("kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
              "kube-proxy", "kubeadm", "kubectl")


class LabThread:
    """A Lab running on its own event loop in a daemon thread."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="lab", daemon=True)

    def __enter__(self) -> LabThread:
        self.thread.start()
        self.wait(self.lab.start(), timeout=300)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.wait(self.lab.stop(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()

    def wait(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def call(self, fn: Any) -> Any:
        """Run `fn()` on the lab's loop (the store is not thread-safe)."""
        async def call() -> Any:
            return fn()
        return self.wait(call())

    def events(self) -> list[dict[str, Any]]:
        return self.call(lambda: self.lab.history.since(0))

    def nodes(self) -> list[dict[str, Any]]:
        return self.call(lambda: [dict(n) for n in self.lab.store.iter("nodes")])


class Upgrade:
    """A lab and the environment to run kubehop against it."""

    def __init__(self, lt: LabThread, state_dir: Path) -> None:
        self.lt = lt
        self.lab = lt.lab
        self.state_dir = state_dir
        self.env = dict(os.environ, KUBECONFIG=str(self.lab.kubeconfig_path),
                        KUBEHOP_SSH_INVENTORY=str(self.lab.inventory_path),
                        KUBEHOP_STATE_DIR=str(state_dir), NO_COLOR="1",
                        PATH="/usr/bin:/bin", HOME=str(state_dir))
        self.env.pop("KUBEHOP_RELEASE_DATA", None)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*KUBEHOP, *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def kubehop(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*KUBEHOP, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def journal_records(self) -> int:
        """Step records in the journal so far (0 before it exists)."""
        path = self.state_dir / "journal.sqlite3"
        if not path.exists():
            return 0
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            (n,) = db.execute("SELECT COUNT(*) FROM records WHERE step_id IS NOT NULL").fetchone()
        except sqlite3.OperationalError:
            n = 0
        finally:
            db.close()
        return int(n)

    def plan_file(self) -> Path:
        (path,) = (self.state_dir / "plans").glob("run-*.json")
        return path


@pytest.fixture
def upgrade_lab(tmp_path: Path) -> Iterator[Any]:
    """`upgrade_lab(scenario)` starts a lab with SSH endpoints (stopped after the test)."""
    running: list[LabThread] = []

    def start(scenario: str) -> Upgrade:
        lt = LabThread(Lab(load_scenario(scenario), time_scale=SCALE,
                           state_dir=tmp_path / f"lab-{len(running)}"))
        lt.__enter__()
        running.append(lt)
        return Upgrade(lt, tmp_path / f"state-{len(running)}")

    yield start
    for lt in reversed(running):
        lt.__exit__(None, None, None)


def final_versions(events: list[dict[str, Any]]) -> dict[tuple[str | None, str], str]:
    """(node, component) → the version it ended at, replayed from the history."""
    out: dict[tuple[str | None, str], str] = {}
    for e in events:
        if e["type"] == "component" and e["version"]:
            out[(e["node"], e["component"])] = e["version"]
    return out


def assert_all_at(up: Upgrade, events: list[dict[str, Any]], target: str) -> None:
    """Every component of every node at `target` (control-plane components on control planes
    only), no node left cordoned, the upgrade lock released — judged from the lab."""
    versions = final_versions(events)
    for node in up.lt.nodes():
        name = node["metadata"]["name"]
        control_plane = "node-role.kubernetes.io/control-plane" in node["metadata"]["labels"]
        for component in COMPONENTS:
            if component.startswith("kube-") and component != "kube-proxy" and \
                    not control_plane:
                continue
            assert versions.get((name, component)) == target, (name, component)
        assert not node["spec"].get("unschedulable"), f"{name} left cordoned"
    assert up.lt.call(lambda: up.lab.store.peek(
        "leases.coordination.k8s.io", "kube-system", "kubehop-upgrade")) is None


@pytest.fixture
def lab(upgrade_lab: Any, monkeypatch: pytest.MonkeyPatch) -> Upgrade:
    """The oldversion lab, its kubeconfig, inventory and state directory in this process's
    environment, for `kubehop_cli`."""
    up = upgrade_lab("oldversion")
    for key in ("KUBECONFIG", "KUBEHOP_SSH_INVENTORY", "KUBEHOP_STATE_DIR", "NO_COLOR"):
        monkeypatch.setenv(key, up.env[key])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("KUBEHOP_RELEASE_DATA", raising=False)
    return up


def kubehop_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """kubehop in this process: (exit code, stdout, stderr)."""
    from kubehop.cli import app

    with pytest.raises(SystemExit) as exc:
        app.main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err
