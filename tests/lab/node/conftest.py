"""A lab cluster with node agents (no SSH) for the node unit tests, on a virtual clock that
jumps to the next lab timer whenever every task waits (no test sleeps real time)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kubehop.lab.api.store import Store
from kubehop.lab.clock import VirtualClock
from kubehop.lab.fixtures.cluster import populate
from kubehop.lab.fixtures.specs import ClusterSpec, LabNodeSpec, oldversion_spec
from kubehop.lab.history import History
from kubehop.lab.node import NodeAgents, NodeSetup, Result

TIMING = {"kubeletRestart": 10, "staticPodRestart": 20, "packageInstall": 8}


@dataclass
class Lab:
    agents: NodeAgents
    store: Store
    history: History
    clock: VirtualClock

    async def stop(self) -> None:
        await self.agents.stop()
        self.clock.close()

    async def sh(self, node: str, line: str, *, stdin: str = "", root: bool = False) -> Result:
        return await self.agents.run(node, line, stdin=stdin, root=root)

    async def ok(self, node: str, line: str) -> str:
        r = await self.agents.run(node, line)
        assert r.exit_code == 0, f"{node}$ {line}\n{r.stdout}{r.stderr}"
        return r.stdout

    def events(self, kind: str) -> list[dict]:
        return [e for e in self.history.since() if e["type"] == kind]

    def node(self, name: str) -> dict:
        return self.store.get("nodes", "", name)

    def ready(self, name: str) -> bool:
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in self.node(name)["status"]["conditions"])


async def make_lab(tmp_path, spec: ClusterSpec, nodes: tuple[NodeSetup, ...] = ()) -> Lab:
    store = Store()
    populate(spec, store)
    history = History()
    clock = VirtualClock(auto=True)
    agents = NodeAgents(store, history, clock, TIMING, tmp_path / "lab", nodes=nodes)
    return Lab(agents, store, history, clock)


@pytest.fixture
async def lab(tmp_path):
    lab = await make_lab(tmp_path, oldversion_spec())
    yield lab
    await lab.stop()


@pytest.fixture
async def ha_lab(tmp_path):
    spec = ClusterSpec(nodes=(LabNodeSpec("cp1", roles=("control-plane",)),
                              LabNodeSpec("cp2", roles=("control-plane",)), LabNodeSpec("w1")))
    lab = await make_lab(tmp_path, spec)
    yield lab
    await lab.stop()


@pytest.fixture
async def rpm_lab(tmp_path):
    spec = ClusterSpec(nodes=(LabNodeSpec("cp1", roles=("control-plane",),
                                       os_image="Rocky Linux 9.3 (Blue Onyx)"),))
    lab = await make_lab(tmp_path, spec)
    yield lab
    await lab.stop()
