"""A Session owns one run of kubehop against one cluster: one API client, one node transport,
the options the user gave. Commands build one, call observe / check / plan / apply (or drain,
rehearse, snapshot) on it, and close it.

    async with Session(SessionOptions(kubeconfig=..., ssh_inventory=...), ui) as session:
        plan = session.plan(await session.observe_for_plan("1.30"), "1.30", PlanOptions())
        await session.apply(plan, ApplySettings(...), plan_path=None)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubehop.shell.session import apply as flows
from kubehop.shell.session.base import BaseSession

if TYPE_CHECKING:
    from kubehop.model.cluster import ClusterState
    from kubehop.model.plan import Plan, PlanOptions
    from kubehop.shell.session.runs import ApplySettings


class Session(BaseSession):
    """One run against one cluster: observe, check, plan (BaseSession) and apply."""

    async def apply(self, plan: Plan, settings: ApplySettings, *, plan_path: str | None,
                    observed: ClusterState | None = None) -> None:
        """Apply `plan` (new, or resumed from the journal)."""
        await flows.apply_plan(self, plan, settings, plan_path=plan_path, observed=observed)

    async def upgrade(self, to: str, options: PlanOptions, settings: ApplySettings) -> None:
        """Plan and apply, or resume the unfinished run towards the same target."""
        await flows.upgrade(self, to, options, settings)

    async def resume(self, settings: ApplySettings) -> None:
        """Resume this cluster's unfinished run."""
        await flows.resume(self, settings)

    async def abandon(self) -> None:
        """Give up this cluster's unfinished run."""
        await flows.abandon(self)
