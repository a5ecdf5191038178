"""repo-switch: point the node's package manager at the hop's minor.

pkgs.k8s.io serves one repository per minor (kubernetes.io blog, 2023-08-15): the source is
rewritten in the node's own file and format, with its own keyring (`core.node_commands`)."""

from __future__ import annotations

from functools import cache

from kubehop.core import node_commands as nc
from kubehop.core.steps.base import Estimate, Problem, SimNode, Simulation, minor_of, to_commands
from kubehop.model.plan import Command, ExpectKey, ExpectValue, Step, StepKind
from kubehop.model.versions import KubeVersion, MinorVersion

KIND = StepKind.REPO_SWITCH
EXPECT_KEYS = frozenset({ExpectKey.REPO_MINOR})
LOCAL = True


@cache
def commands(family: nc.Packaging | str, minor: MinorVersion) -> tuple[Command, ...]:
    """Rewrite the node's pkgs.k8s.io source for `minor`."""
    return to_commands(nc.repository_commands(family, minor))


def description(minor: MinorVersion) -> str:
    return f"point the package repository at Kubernetes {minor}"


def expect(minor: MinorVersion) -> dict[ExpectKey, ExpectValue]:
    return {ExpectKey.REPO_MINOR: str(minor)}


def simulate(sim: Simulation, step: Step, n: SimNode, hop: KubeVersion) -> list[Problem]:
    n.repo = minor_of(hop)
    return []


def cost(step: Step, est: Estimate) -> float:
    return est.costs.repo_switch
