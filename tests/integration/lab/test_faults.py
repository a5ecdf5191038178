"""Injected faults of a scenario behave as described in the scenario format."""

from __future__ import annotations

import asyncio

from kubehop.lab.lab import Lab

SCENARIO = """apiVersion: kubehop.dev/v1
kind: LabScenario
name: broken-kubelet
nodes:
  - {name: cp1, roles: [control-plane]}
  - {name: w1}
  - {name: w2}
faults:
  - {kind: node-never-ready, node: w1, after: kubelet-restart}
"""


def ready(lab: Lab, node: str) -> bool:
    conds = lab.store.peek("nodes", "", node)["status"]["conditions"]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


async def test_node_never_ready_after_a_kubelet_restart(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(SCENARIO)
    async with Lab(str(path), time_scale=0.001, ssh=False, state_dir=tmp_path / "s") as lab:
        assert lab.unsimulated_faults == []
        assert ready(lab, "w1")  # the fault waits for a kubelet restart
        for node in ("w1", "w2"):
            result = await lab.agents.run(node, "systemctl restart kubelet", root=True)
            assert result.exit_code == 0
        await lab.agents.idle()
        await asyncio.sleep(0.05)
        assert ready(lab, "w2")
        assert not ready(lab, "w1")
        restarts = [e for e in lab.history.since(0) if e["type"] == "kubelet-restart"]
        assert {e["node"] for e in restarts} == {"w1", "w2"}
