"""A lab, its snapshot, and a lab started from that snapshot: what kubehop reads of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from kubehop.cli.versions import versions_document
from kubehop.core.checks.run import run_checks
from kubehop.core.planner.make import plan_upgrade
from kubehop.core.planner.target import resolve
from kubehop.data import load_release_data
from kubehop.lab.lab import Lab
from kubehop.lab.scenarios import Scenario
from kubehop.model.cluster import ClusterState
from kubehop.model.plan import PlanOptions
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.observe.nodes import TransportRunner
from kubehop.shell.observe.snapshot import ClusterFacts, read_cluster
from tests.lab_transport import LabTransport

TODAY = date(2026, 12, 5)
TARGET = "1.30"


async def read_lab(scenario: str | Scenario) -> ClusterFacts:
    """Start `scenario` (no SSH: node commands go to the agents) and read it as a snapshot
    does, with every node's package facts."""
    async with Lab(scenario, time_scale=0.05, ssh=False, tls=False) as lab:
        client = await KubeClient.connect(str(lab.kubeconfig_path))
        try:
            return await read_cluster(client, TransportRunner(LabTransport(lab)))
        finally:
            await client.close()


@dataclass(frozen=True)
class Reading:
    """What `versions -o json` (apiserver endpoints aside), `check -o json` (ids and subjects)
    and `plan --to 1.30 -o json` (steps, waves, fingerprint) would print."""

    versions: dict[str, Any]
    findings: list[tuple[str, str]]
    steps: list[tuple[str, str, str | None, tuple[str, ...]]]
    waves: list[dict[str, Any]]
    fingerprint: str

    def shape(self) -> tuple[dict[str, int], int]:
        """Steps per kind and the number of waves: what survives renaming."""
        kinds: dict[str, int] = {}
        for _, kind, _, _ in self.steps:
            kinds[kind] = kinds.get(kind, 0) + 1
        return kinds, len(self.waves)


def reading(state: ClusterState) -> Reading:
    data = load_release_data()
    versions = versions_document(state)
    versions["apiservers"] = sorted((a["node"] or "", a["version"] or "")
                                    for a in versions["apiservers"])
    findings = sorted((f.id, f.subject) for f in run_checks(state, data, TODAY, None))
    target = resolve(state, TARGET, data, PlanOptions())
    plan = plan_upgrade(state, target, data, PlanOptions(),
                        run_checks(state, data, TODAY, target.final))
    doc = plan.to_dict()
    return Reading(versions, findings,
                   [(s["id"], s["kind"], s["node"], tuple(s["after"])) for s in doc["steps"]],
                   doc["waves"], doc["fingerprint"])
