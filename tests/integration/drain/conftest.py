"""Labs, scenarios and kubectl for the drain tests (twin labs: one for kubectl, one for kubehop).

Both labs of a twin pair load the same scenario, so they hold the same pods under the same names
and can be compared after kubectl drains one and kubehop the other. Verdicts come from each lab's
history (who deleted what, and how), never from the tools' own reports.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from kubehop.cli.drain import drain as drain_command
from kubehop.cli.drain import drain_options
from kubehop.core.drain.explain import DrainEvent
from kubehop.core.drain.rules import DrainError, DrainResult
from kubehop.lab.lab import Lab
from kubehop.shell.drain.node import Drainer
from kubehop.shell.kube.client import KubeClient
from tests.integration import kubectl_bin

SCALE = 0.01  # real seconds per lab second
KUBECTL_MINOR = 30

NODE = """
  - name: {name}
    roles: {roles}
    os: {{family: debian, image: "Ubuntu 22.04.4 LTS", kernel: 5.15.0-105-generic}}
    packages: {{kubeadm: 1.28.9-1.1, kubelet: 1.28.9-1.1, kubectl: 1.28.9-1.1}}
    capacity: {{cpu: "{cpu}", memory: 8Gi, pods: {pods}}}
"""


def scenario(tmp_path: Path, name: str, workloads: str, *, workers: int = 3,
             cpu: dict[str, str] | None = None, pods: int = 110) -> Path:
    """A scenario file: control plane `cp1`, workers `w1`…, and `workloads` (YAML list items)."""
    cpu = cpu or {}
    nodes = NODE.format(name="cp1", roles="[control-plane]", cpu="4", pods=pods) + "".join(
        NODE.format(name=f"w{i}", roles="[]", cpu=cpu.get(f"w{i}", "4"), pods=pods)
        for i in range(1, workers + 1))
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"apiVersion: kubehop.dev/v1\nkind: LabScenario\nname: {name}\n"
                    f"cluster: {{kubernetesVersion: v1.28.9}}\nnodes:{nodes}\n"
                    f"workloads:\n{workloads}")
    return path


async def start_labs(stack: AsyncExitStack, path: Path | str, tmp_path: Path, count: int,
                     scale: float = SCALE) -> list[Lab]:
    labs = []
    for i in range(count):
        lab = await stack.enter_async_context(
            Lab(str(path), time_scale=scale, ssh=False, state_dir=tmp_path / f"lab{i}"))
        labs.append(lab)
    await asyncio.gather(*(lab.controllers.settle() for lab in labs))
    return labs


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


# --- looking at a lab ------------------------------------------------------------------------

def pods_on(lab: Lab, node: str) -> dict[str, str]:
    """`ns/name` → uid of every pod bound to `node`."""
    return {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["metadata"]["uid"]
            for p in lab.store.by_index("pods", "spec.nodeName", node)}


def removed(lab: Lab, before: dict[str, str]) -> dict[str, str]:
    """Of the pods in `before`, those the history saw deleted: `ns/name` → by whom."""
    uids = {uid: key for key, uid in before.items()}
    return {uids[e["uid"]]: e["by"] for e in lab.history.since(0)
            if e["type"] == "pod" and e["event"] == "deleted" and e["uid"] in uids}


def node_schedulable(lab: Lab, node: str) -> bool:
    return not (lab.store.peek("nodes", "", node) or {}).get("spec", {}).get("unschedulable")


_REFUSAL = re.compile(r"cannot delete (?:cannot delete )?(.+?): "
                      r"((?:[a-z0-9-]+/[a-z0-9.-]+)(?:, [a-z0-9-]+/[a-z0-9.-]+)*)")


def refusals(text: str) -> set[tuple[str, frozenset[str]]]:
    """kubectl's "cannot delete <why>: ns/a, ns/b" groups in `text`, as a set."""
    return {(m.group(1), frozenset(m.group(2).split(", "))) for m in _REFUSAL.finditer(text)}


# --- the two tools -----------------------------------------------------------------------------

async def kubectl(lab: Lab, home: Path, *args: str, timeout: float = 90) -> tuple[int, str]:
    binary = kubectl_bin.kubectl(KUBECTL_MINOR)
    if binary is None:
        pytest.skip(kubectl_bin.skip_reason(KUBECTL_MINOR))
    env = {"HOME": str(home), "KUBECONFIG": str(lab.kubeconfig_path), "PATH": "/usr/bin:/bin"}
    proc = await asyncio.create_subprocess_exec(
        str(binary), "--cache-dir", str(home / "cache"), *args, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


async def kubehop_drain(lab: Lab, node: str, *flags: str,
                        on_event: Callable[[DrainEvent], None] | None = None,
                        ) -> tuple[DrainResult | DrainError, list[DrainEvent]]:
    """`kubehop drain NODE FLAGS` in-process: flags parsed by the CLI, the drain library run."""
    options = drain_options(drain_command.make_context("drain", [node, *flags]).params)
    events: list[DrainEvent] = []

    def record(event: DrainEvent) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    async with await KubeClient.connect(str(lab.kubeconfig_path)) as client:
        try:
            return await Drainer(client, options, record).drain(node), events
        except DrainError as e:
            return e, events


def by_kind(events: list[DrainEvent], kind: str) -> list[DrainEvent]:
    return [e for e in events if e.kind == kind]


def history_of(lab: Lab) -> list[dict[str, Any]]:
    return lab.history.since(0)
