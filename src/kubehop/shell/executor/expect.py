"""Check a step's `expect` against the live cluster and node (model.plan lists the keys).

Before a step runs, an `expect` that already holds means the step happened (a resumed run, or
someone did it by hand): the executor records it as skipped. After a step ran, the executor
waits for its `expect` (a kubelet reports its new version a few seconds after its restart).

Each key is read by its step kind's module (`kubehop.shell.steps.READERS`): package keys on
the node over its transport with one read-only command, cached until a command runs on that
node (`shell.steps.facts`); everything else from the API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from kubehop.model.plan import ExpectValue, Step
from kubehop.shell.executor.cluster import Cluster
from kubehop.shell.kube.errors import ApiError
from kubehop.shell.steps import READERS
from kubehop.shell.steps.base import Live, Mismatch, describe
from kubehop.shell.steps.facts import NodeFacts

PROGRESS_EVERY = 30.0  # seconds: a waiting step tells `on_wait` at least this often
_WITH_NODE = ("node", "packages")  # sources that need the Node (packages: its OS image)
_WAKE_ON_CHANGE = ("node", "static-pods")  # sources the cluster's caches announce changes of


class ExpectChecker:
    """Evaluates `expect` mappings of plan steps (see the module docstring)."""

    def __init__(self, cluster: Cluster, facts: NodeFacts, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.cluster = cluster
        self.facts = facts
        self._monotonic = monotonic

    async def mismatches(self, step: Step, expect: Mapping[str, ExpectValue] | None = None
                         ) -> list[Mismatch]:
        """The expectations of `step` that do not hold now (empty: all hold)."""
        expect = step.expect if expect is None else expect
        live = Live(step, self.cluster, self.facts)
        if step.node is not None and any(_source(k) in _WITH_NODE for k in expect):
            live.view = await self.cluster.node(step.node)
        out: list[Mismatch] = []
        for key in sorted(expect):
            want = expect[key]
            reader = READERS.get(key)
            if reader is None:
                got: object = f"an expectation this kubehop cannot check ({key})"
                if got != want:
                    out.append(Mismatch(key, want, got))
                continue
            got = await reader.read(live, want)
            if not reader.matches(want, got):
                out.append(Mismatch(key, want, got))
        return out

    async def wait(self, step: Step, timeout: float,
                   expect: Mapping[str, ExpectValue] | None = None,
                   on_wait: Callable[[list[Mismatch]], None] | None = None) -> list[Mismatch]:
        """Wait until `step`'s expectations hold; the ones still unmet after `timeout`.

        `on_wait` hears what is still unmet when that changes, and again at least every
        PROGRESS_EVERY seconds while it does not (not on every poll: a few events per step)."""
        deadline = self._monotonic() + timeout
        delay = 0.05
        told: tuple[str, float] | None = None  # what on_wait heard last, and when
        while True:
            try:
                missing = await self.mismatches(step, expect)
            except ApiError as e:  # an apiserver restarting (kubeadm upgrade): not yet
                missing = [Mismatch("api", "reachable", f"unreachable ({e})")]
            now = self._monotonic()
            if not missing or now >= deadline:
                return missing
            if on_wait is not None:
                text = describe(missing)
                if told is None or told[0] != text or now - told[1] >= PROGRESS_EVERY:
                    told = (text, now)
                    on_wait(missing)
            source = _source(missing[0].key)
            if step.node and source == "packages":
                self.facts.invalidate(step.node)
            pause = min(delay, max(0.0, deadline - self._monotonic()))
            if source in _WAKE_ON_CHANGE:
                await self.cluster.changed(pause)  # cached: wake on the next change
            else:
                await asyncio.sleep(pause)
            delay = min(delay * 1.5, 2.0)


def _source(key: str) -> str | None:
    reader = READERS.get(key)
    return reader.source if reader is not None else None
