"""`kubehop drain/cordon/uncordon` as a user runs them against the lab: kubectl-like lines,
JSON events with --log-format json, exit codes 0 (drained) and 1 (refused, timed out)."""

from __future__ import annotations

import asyncio
import json
import sys

from kubehop_netguard import guarded_env

from kubehop.lab.history import check_history
from tests.integration.drain.conftest import node_schedulable, scenario, start_labs


async def kubehop(lab, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubehop", "--kubeconfig", str(lab.kubeconfig_path), *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=guarded_env({"PATH": "/usr/bin:/bin", "NO_COLOR": "1"}))
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_drain_cordon_uncordon_for_people_and_machines(stack, tmp_path):
    (lab,) = await start_labs(stack, "oldversion", tmp_path, 1)
    code, out, err = await kubehop(lab, "drain", "oldversion3", "--ignore-daemonsets",
                                   "--delete-emptydir-data", "--force")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "node/oldversion3 cordoned"
    assert "evicting pod default/scratch" in lines
    assert "pod/scratch evicted" in lines
    assert lines[-1] == "node/oldversion3 drained"
    assert "Warning: ignoring DaemonSet-managed Pods: " in err
    assert "Warning: deleting Pods that declare no controller: default/scratch" in err
    assert not node_schedulable(lab, "oldversion3")

    code, out, _ = await kubehop(lab, "--log-format", "json", "uncordon", "oldversion3")
    assert code == 0
    assert json.loads(out)["kind"] == "uncordoned"
    code, out, _ = await kubehop(lab, "uncordon", "oldversion3")
    assert (code, out) == (0, "node/oldversion3 already uncordoned\n")
    assert node_schedulable(lab, "oldversion3")

    code, out, err = await kubehop(lab, "drain", "oldversion2")
    assert code == 1
    assert err.startswith("kubehop: cannot drain node oldversion2: cannot delete ")
    assert err.rstrip().endswith("(node oldversion2 was left schedulable)")
    assert len(err.splitlines()) == 1
    assert check_history(lab.history.since(0)) == []


async def test_a_timed_out_drain_exits_1_and_names_the_node_left_cordoned(stack, tmp_path):
    workloads = """\
  - {kind: Deployment, namespace: web, name: frontend, replicas: 2, node: w1,
     requests: {cpu: "1500m", memory: 64Mi}, pdb: {maxUnavailable: 1}}
"""
    path = scenario(tmp_path, "stuck", workloads, workers=2, cpu={"w2": "1"})
    (lab,) = await start_labs(stack, path, tmp_path, 1)
    code, out, err = await kubehop(lab, "--log-format", "json", "drain", "w1",
                                   "--ignore-daemonsets", "--timeout", "2s")
    assert code == 1
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["kind"] == "cordoned"
    blocked = [e for e in events if e["kind"] == "blocked"]
    assert blocked[0]["pdb"] == "web/frontend"
    assert "1 replacement is Pending: 0/3 nodes are available" in blocked[0]["message"]
    assert events[-1]["kind"] == "failed"
    assert events[-1]["leftCordoned"] is True
    assert err.startswith("kubehop: drain of node w1 timed out after 2s with 1 pod left: ")
    assert "node w1 left cordoned" in err
    assert not node_schedulable(lab, "w1")
