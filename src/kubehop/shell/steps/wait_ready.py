"""wait-ready: wait (up to `ready_timeout`) for the node to be Ready at its new kubelet.

Its `expect`: `kubelet` (read in `kubelet_restart`) and `ready`, the node's Ready condition.
The health gate after it waits for the node's kube-system pods (`shell.executor.gates`).
"""

from __future__ import annotations

from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.shell.steps.base import (
    ExpectReader,
    Live,
    StepContext,
    StepFailed,
    describe,
    node_of,
)

KIND = StepKind.WAIT_READY


async def execute(run: StepContext, step: Step) -> str:
    node = node_of(step)
    missing = await run.wait(step, run.options.ready_timeout)
    if missing:
        view = await run.cluster.node(node)
        why = f" ({view.ready_message})" if view is not None and view.ready_message else ""
        raise StepFailed(
            f"node {node} did not become Ready at {step.expect.get('kubelet', '?')} within "
            f"{run.options.ready_timeout:g} s after its kubelet restart: {describe(missing)}"
            f"{why}; check the kubelet on it (journalctl -u kubelet)")
    return ""


async def _ready(live: Live, want: ExpectValue) -> object:
    return live.view.ready if live.view is not None else None


READS = (ExpectReader(ExpectKey.READY, "node", _ready),)
