"""Chaos: the `ha` upgrade to 1.29 under a seeded random schedule of API faults (refused
connections, restarts, errors, slow answers, closed watches, 410 Gone; on one apiserver, the
load balancer or all), node faults (a package mirror down, a kube-apiserver static pod that
keeps crashing once kubeadm changed it) and SIGKILLs with resumes, plus one cordon and one
uncordon whose request fails. Every seed must converge (kubehop, resumed whenever it ends or is
killed, finishes once the faults end) with zero invariant violations in the lab's history.

KUBEHOP_CHAOS_SEEDS=N runs seeds 0..N-1 (default 20, the CI size: about 2.5 minutes on two
cores); KUBEHOP_CHAOS_FIRST=K starts at seed K. Seeds run two at a time (each lab and kubehop
mostly wait on lab time). A failing seed is reproduced alone with KUBEHOP_CHAOS_FIRST=K
KUBEHOP_CHAOS_SEEDS=1.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubehop.lab.history import check_history
from kubehop.lab.lab import Lab
from kubehop.lab.scenarios import load_scenario
from kubehop.lab.scenarios.schema import ApiFault
from tests.integration.upgrade.conftest import (
    TODAY,
    LabThread,
    Upgrade,
    assert_all_at,
    final_versions,
)

SCALE = 0.002  # real seconds per lab second: the fault-free upgrade takes about 6 s
FIRST = int(os.environ.get("KUBEHOP_CHAOS_FIRST", "0"))
SEEDS = range(FIRST, FIRST + int(os.environ.get("KUBEHOP_CHAOS_SEEDS", "20")))
PARALLEL = 2
BATCHES = [SEEDS[i:i + PARALLEL] for i in range(0, len(SEEDS), PARALLEL)]
WINDOW = 5.0  # real seconds over which the faults are spread
APISERVERS = ("cp-1", "cp-2", "cp-3", "loadbalancer", "all")
WORKERS = ("worker-1", "worker-2", "worker-3", "legacy-1", "legacy-2", "legacy-3")
# Cordons and uncordons only (they set spec.unschedulable; progress annotations also PATCH nodes).
CORDON = {"code": 500, "count": 1, "method": "PATCH", "resource": "nodes",
          "body": "unschedulable"}
# Every fourth seed the uncordon fails as often as kubehop tries (RetryPolicy.attempts), so the
# run halts with the node cordoned and the resume must uncordon it.
EXHAUST = 6


@dataclass(order=True)
class Action:
    """At `at` real seconds into the run: `what` (api, node, clear-node, kill) with `args`."""

    at: float
    what: str = field(compare=False)
    args: dict[str, Any] = field(compare=False, default_factory=dict)


def schedule(seed: int) -> list[Action]:
    """The seed's faults and kills, in time order."""
    rng = random.Random(seed)
    actions = []
    for _ in range(rng.randint(3, 5)):
        at = rng.uniform(0.2, WINDOW)
        kind = rng.choice(["api-refuse", "api-restart", "api-errors", "api-errors", "api-slow",
                           "api-close-watches", "api-gone"])
        options: dict[str, Any] = {}
        if kind in ("api-refuse", "api-restart"):
            options["seconds"] = rng.uniform(50, 500)  # 0.1 to 1 s
        elif kind == "api-errors":
            options.update(code=rng.choice([429, 500, 502, 503, 504]),
                           rate=rng.uniform(0.05, 0.3), seconds=rng.uniform(200, 1000))
        elif kind == "api-slow":
            options.update(delay=rng.uniform(10, 100), rate=0.5, seconds=rng.uniform(200, 1000))
        actions.append(Action(at, "api", {"kind": kind, "apiserver": rng.choice(APISERVERS),
                                          "options": options}))
    if rng.random() < 0.5:
        at = rng.uniform(0.5, WINDOW)
        node = rng.choice(WORKERS)
        fault = ("package-install-fails", node, {"package": rng.choice(["kubelet", "kubeadm"])})
        actions += [Action(at, "node", {"fault": fault}),
                    Action(at + rng.uniform(1, 3), "clear-node", {"fault": fault})]
    if rng.random() < 0.3:
        at = rng.uniform(0.5, WINDOW)
        fault = ("static-pod-never-ready", rng.choice(["cp-1", "cp-2", "cp-3"]),
                 {"component": "kube-apiserver"})
        actions += [Action(at, "node", {"fault": fault}),
                    Action(at + rng.uniform(1, 2), "clear-node", {"fault": fault})]
    actions += [Action(rng.uniform(0.5, WINDOW), "kill") for _ in range(rng.randint(1, 2))]
    return sorted(actions)


class Chaos:
    """One seed's run: the lab, the kubehop process, the schedule."""

    def __init__(self, lt: LabThread, up: Upgrade, seed: int) -> None:
        self.lt, self.up, self.lab = lt, up, lt.lab
        self.actions = schedule(seed)
        self.uncordon_failures = EXHAUST if seed % 4 == 0 else 1
        self.cordon_fault = self.add_api("api-errors", "all", CORDON)
        self.uncordon_fault: int | None = None
        self.exits: list[int] = []
        self.errors: list[str] = []  # the last line of each failed run's stderr
        self.kills = 0

    def add_api(self, kind: str, apiserver: str, options: dict[str, Any]) -> int:
        return self.lt.call(lambda: self.lab.faults.add(ApiFault(kind, apiserver, options)))

    def fault(self, fault_id: int) -> dict[str, Any]:
        return self.lt.call(lambda: self.lab.faults.get(fault_id))

    def set_node_fault(self, fault: tuple[str, str, dict[str, str]], on: bool) -> None:
        kind, node, options = fault
        cluster = self.lab.agents.cluster if self.lab.agents else None
        assert cluster is not None
        if on:
            self.lt.call(lambda: cluster.inject(kind, node, options))
        else:
            def clear() -> None:
                cluster.faults.discard((kind, node))
                cluster.fault_options.pop((kind, node), None)
            self.lt.call(clear)

    def start(self) -> subprocess.Popen[str]:
        """`kubehop upgrade`, or `kubehop apply` of its plan once there is one (a resume)."""
        plans = list((self.up.state_dir / "plans").glob("run-*.json"))
        if plans:
            return self.up.popen("apply", str(plans[0]), "--yes")
        return self.up.popen("upgrade", "--to", "1.29", "--yes", "--today", TODAY)

    def watch_for_uncordon(self) -> None:
        """Once the cordon failed and a node is cordoned, fail the next node PATCHes: with one
        node unavailable at a time, the uncordon of that node."""
        if self.uncordon_fault is not None or self.fault(self.cordon_fault)["state"] != "done":
            return
        cordoned = self.lt.call(lambda: [n for n in self.lab.store.iter("nodes")
                                         if n["spec"].get("unschedulable")])
        if cordoned:
            self.uncordon_fault = self.add_api("api-errors", "all", dict(
                CORDON, code=503, count=self.uncordon_failures))

    def run(self, deadline: float) -> None:
        """Play the schedule against kubehop, resuming it whenever it ends before success
        (converged: a run succeeded)."""
        start = time.monotonic()
        pending = list(self.actions)
        proc = self.start()
        while time.monotonic() < deadline:
            now = time.monotonic() - start
            while pending and pending[0].at <= now:
                action = pending.pop(0)
                if action.what == "api":
                    self.add_api(action.args["kind"], action.args["apiserver"],
                                 action.args["options"])
                elif action.what in ("node", "clear-node"):
                    self.set_node_fault(action.args["fault"], action.what == "node")
                elif proc.poll() is None:  # kill
                    proc.send_signal(signal.SIGKILL)
                    proc.communicate()
                    self.kills += 1
            self.watch_for_uncordon()
            code = proc.poll()
            if code is not None:
                _, err = proc.communicate()
                self.exits.append(code)
                if code > 0:
                    self.errors.append(err.strip().splitlines()[-1] if err.strip() else "")
                if code == 0:
                    return
                proc = self.start()
            time.sleep(0.02)
        raise AssertionError(f"no convergence in time; exits {self.exits[:20]}, last errors "
                             f"{self.errors[-3:]}")


def node_state_before(events: list[dict[str, Any]], node: str, t: float) -> bool:
    """Whether `node` was schedulable at lab time `t`, from the history."""
    schedulable = True
    for e in events:
        if e["type"] == "node" and e["node"] == node and e["t"] <= t:
            schedulable = e["schedulable"]
    return schedulable


def assert_converged(up: Upgrade, events: list[dict[str, Any]]) -> None:
    """Every component at the same 1.29 version, no node cordoned, the lock released."""
    target = final_versions(events)[("cp-1", "kube-apiserver")]
    assert target.startswith("v1.29."), target
    assert_all_at(up, events, target)


def run_seed(seed: int, tmp_path: Path) -> None:
    """One seed, start to end: AssertionError on a failure."""
    with LabThread(Lab(load_scenario("ha"), time_scale=SCALE,
                       state_dir=tmp_path / "lab")) as lt:
        up = Upgrade(lt, tmp_path / "state")
        chaos = Chaos(lt, up, seed)
        chaos.run(time.monotonic() + 150)
        events = lt.events()
        assert check_history(events, max_unavailable=1) == []
        assert_converged(up, events)
        # The first node PATCH failed while its node was schedulable (a cordon), the ones after
        # a cordon while their node was cordoned (its uncordon, retried or resumed).
        (cordon,) = chaos.fault(chaos.cordon_fault)["requests"]
        assert cordon["method"] == "PATCH"
        node = cordon["path"].rsplit("/", 1)[1]
        assert node_state_before(events, node, cordon["t"])
        assert chaos.uncordon_fault is not None
        uncordons = chaos.fault(chaos.uncordon_fault)["requests"]
        assert len(uncordons) == chaos.uncordon_failures
        for uncordon in uncordons:
            node = uncordon["path"].rsplit("/", 1)[1]
            assert not node_state_before(events, node, uncordon["t"]), uncordon


@pytest.mark.slow
@pytest.mark.parametrize("seeds", BATCHES, ids=lambda s: f"seeds-{s[0]}-{s[-1]}")
def test_ha_upgrade_converges_under_chaos(seeds: range, tmp_path: Path) -> None:
    def one(seed: int) -> str:
        try:
            run_seed(seed, tmp_path / f"seed-{seed}")
        except AssertionError as e:
            return f"seed {seed}: {e!r}"[:3000]
        return ""

    with ThreadPoolExecutor(len(seeds)) as pool:
        failures = [f for f in pool.map(one, seeds) if f]
    assert not failures, "\n".join(failures)
