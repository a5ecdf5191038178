"""From an observed state to findings and a plan: the rules every command plans by.

Pure but for the `warn` callback (which the session routes to its front end); the target is
resolved once here and handed to the checks and the planner alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from kubehop.core.checks.run import run_checks
from kubehop.core.planner.make import plan_upgrade
from kubehop.core.planner.target import (
    check_installed_by_kubeadm,
    refuse_blocking_findings,
    resolve,
)
from kubehop.model.cluster import ClusterState
from kubehop.model.errors import FindingsError, OperationError, UsageError
from kubehop.model.findings import Finding, Severity
from kubehop.model.plan import Plan, PlanOptions
from kubehop.model.releases import ReleaseData
from kubehop.model.versions import KubeVersion, MinorVersion

Warn = Callable[[str], None]


def make_plan(state: ClusterState, to: str, options: PlanOptions, data: ReleaseData, day: date,
              warn: Warn) -> Plan:
    """Check the state (for blocking findings) and plan."""
    if state.node_errors:  # a plan on guessed packages and OS families is a wrong plan
        node, why = state.node_errors[0]
        others = len(state.node_errors) - 1
        raise OperationError(
            f"{why}" + (f" (and {others} more node{'s' * (others > 1)} unreadable)"
                        if others else "")
            + f"; kubehop plans only from every node's packages: fix SSH access to {node}")
    for node, address in state.address_fallbacks:  # said once per node (check: a finding)
        warn(f"node {node} is not in the SSH inventory: reaching it at its InternalIP "
             f"{address}")
    check_installed_by_kubeadm(state)
    target = resolve(state, to, data, options)  # once, for the checks and the planner
    findings = run_checks(state, data, day, target.final)
    refuse_findings(findings, options, warn)
    return plan_upgrade(state, target, data, options, findings)


def refuse_findings(findings: list[Finding], options: PlanOptions, warn: Warn) -> None:
    """Warn about `--ignore-finding` ids that match no blocking finding (nothing is ignored
    silently), then refuse (FindingsError, exit 1) while blocking findings remain."""
    blocking = sorted({f.id for f in findings if f.severity is Severity.BLOCKING})
    for finding_id in options.ignore_findings:
        if finding_id not in blocking:
            warn(f"--ignore-finding {finding_id}: no such blocking finding on this cluster, "
                 f"nothing ignored (blocking: {', '.join(blocking) or 'none'})")
    try:
        refuse_blocking_findings(findings, options)
    except UsageError as e:  # the core says why; the exit code says "the cluster", not "flags"
        raise FindingsError(str(e)) from None


def check_target(state: ClusterState, text: str | None, data: ReleaseData) -> KubeVersion | None:
    """`--to` resolved as `plan --to` resolves it (`1.29`, `v1.29.15`, `latest`, `next-minor`,
    `latest-patch`); a patch the release data does not know is a finding here, not an error."""
    if text is None:
        return None
    return resolve(state, text, data, PlanOptions(allow_unknown_version=True)).final


def target_minor(state: ClusterState, to: str, data: ReleaseData) -> MinorVersion | None:
    """The target's minor, for the nodes' trial refresh of its repository while observing;
    None when the target does not resolve (the plan says why, in one line, once it resolves
    it itself)."""
    try:
        target = resolve(state, to, data, PlanOptions(allow_unknown_version=True))
    except UsageError:
        return None
    return target.final.minor_version


def with_host_keys(findings: list[Finding], changed: dict[str, str]) -> list[Finding]:
    """`findings` with each node whose host key changed reported as blocking (`upgrade`
    refuses to connect to it) instead of as a node whose packages could not be read."""
    if not changed:
        return findings
    from kubehop.shell.observe.inventory import host_key_findings

    subjects = {f"node/{node}" for node in changed}
    kept = [f for f in findings if not (f.id == "packages.unreadable" and f.subject in subjects)]
    return host_key_findings(changed) + kept
