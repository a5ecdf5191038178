"""kubelet-restart: `systemctl daemon-reload` and restart the kubelet at its new version.

Its `expect`: `kubelet`, the version the node's status reports (`v1.29.15`), read here for
`wait-ready` and `uncordon` too.
"""

from __future__ import annotations

from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.shell.steps.base import ExpectReader, Live, StepContext

KIND = StepKind.KUBELET_RESTART


async def execute(run: StepContext, step: Step) -> str:
    await run.commands.run_step(step)
    return ""


async def _kubelet(live: Live, want: ExpectValue) -> object:
    return live.view.kubelet if live.view is not None else None


READS = (ExpectReader(ExpectKey.KUBELET, "node", _kubelet),)
