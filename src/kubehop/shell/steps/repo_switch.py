"""repo-switch: point the node's apt source or yum repository at the hop's minor
(pkgs.k8s.io has one repository per minor).

Its `expect`: `repoMinor`, the minor of the node's pkgs.k8s.io source (`1.29`), from the
node's package facts.
"""

from __future__ import annotations

from kubehop.model.plan import ExpectKey, ExpectValue, Step, StepKind
from kubehop.shell.steps.base import ExpectReader, Live, StepContext

KIND = StepKind.REPO_SWITCH


async def execute(run: StepContext, step: Step) -> str:
    await run.commands.run_step(step)
    return ""


async def _repo_minor(live: Live, want: ExpectValue) -> object:
    if live.step.node is None:
        return None
    facts = await live.packages()
    if isinstance(facts, str):
        return facts
    return str(facts.repo_minor) if facts.repo_minor else None


READS = (ExpectReader(ExpectKey.REPO_MINOR, "packages", _repo_minor),)
