"""The flows behind `apply` and `upgrade`: find the run, check the plan still fits, take the
lock, run the executor, report.

Which plans may run (the fingerprint rule):
- a plan with a run in the journal (same cluster, same plan) resumes it: the cluster has moved
  on through the plan's own steps, so its fingerprint is not compared again; every step's
  `expect` is checked against the live cluster before it runs, which is what makes a resume
  safe;
- a plan without a run must match the cluster: observed again, same fingerprint, else refused
  with the differences (from planning again and comparing the steps);
- while another run of the cluster is unfinished, a new plan is refused: that run's nodes may be
  cordoned, and a new plan would take them for cordoned by hand. Resume it, or abandon it
  (`kubehop apply --abandon`).

A plan file is not a root shell: before anything is recorded or run, and on every resume, the
plan is checked against what the planner gives this cluster (`core.plan_verify`: each step's
kind, commands, expect and dependencies, then a re-simulation on the observed state); any
difference is refused with exit 2 naming the first differing step and field. A new run records
the state it was checked against, so a resume checks the plan against the planner again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kubehop.cli.context import connect, global_options
from kubehop.cli.output import warn
from kubehop.model.errors import OperationError, UsageError
from kubehop.model.journal import RunState, RunStatus, StepStatus, plan_digest, run_id
from kubehop.model.plan import Plan

if TYPE_CHECKING:
    from kubehop.core.hooks import Hook
    from kubehop.core.windows import Window
    from kubehop.model.cluster import ClusterState
    from kubehop.shell.executor.engine import Executor
    from kubehop.shell.executor.journal import Journal
    from kubehop.shell.executor.steps import ExecutorOptions
    from kubehop.shell.kube.client import KubeClient


@dataclass(frozen=True)
class ApplySettings:
    """What the user asked of `apply`/`upgrade` beyond the plan."""

    yes: bool
    dry_run: bool
    accept_new_host_keys: bool
    executor: ExecutorOptions
    log_format: str = "text"
    release_data: str | None = None  # --release-data FILE: what a plan is verified against
    hooks: tuple[Hook, ...] = ()  # --hook / --hook-file: the operator's commands (core.hooks)
    hook_timeout: float = 600.0
    windows: tuple[Window, ...] = ()  # --window: maintenance windows (core.windows)
    wait_for_window: bool = False
    notify: tuple[str, ...] = ()  # --notify URL: webhooks for the run's milestones


async def cluster_identity(client: KubeClient) -> str:
    """The cluster's identity: the uid of its kube-system namespace (kubectl's cluster-info
    has none; this one survives apiserver address changes), else the API server's URL."""
    from kubehop.shell.kube.errors import ApiError

    try:
        ns = await client.get_json("/api/v1/namespaces/kube-system")
        uid = (ns.get("metadata") or {}).get("uid")
        if uid:
            return f"kube-system:{uid}"
    except ApiError as e:
        if e.status not in (403, 404):
            raise
    return f"server:{client.server}"


def saved_plan_path(rid: str) -> Path:
    from kubehop.shell.executor.journal import state_dir

    return state_dir() / "plans" / f"{rid}.json"


def save_plan(plan: Plan, rid: str) -> Path:
    """Keep a copy of the plan beside the journal, for `kubehop apply FILE` and people."""
    from kubehop.cli.output import format_json

    path = saved_plan_path(rid)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(format_json(plan.to_dict()))
    tmp.replace(path)
    return path


def plan_run_id(cluster: str, plan: Plan) -> str:
    return run_id(cluster, plan.fingerprint, plan_digest(plan.to_dict()))


# --- the fingerprint rule ----------------------------------------------------------------------


async def plan_differences(plan: Plan) -> list[str]:
    """How the plan the cluster calls for now differs from `plan` (plans again)."""
    from kubehop.cli.plan import make_plan
    from kubehop.cli.versions import observe_cluster
    from kubehop.core.plan_diff import diff_plans
    from kubehop.model.errors import UsageError

    state = await observe_cluster(workloads=True, node_facts=True)
    try:
        current = make_plan(state, plan.to_version, plan.strategy, None, None)
    except UsageError as e:
        return [f"planning again says: {e}"]
    return diff_plans(plan, current) or [
        "the steps are the same; the fingerprint also covers apiserver versions, "
        "schedulable nodes and (with --ssh-inventory) package facts: plan and apply with the "
        "same --ssh-inventory"]


async def check_fingerprint(plan: Plan, observed: ClusterState | None) -> None:
    """Refuse a new plan that no longer matches the cluster, listing the differences."""
    from kubehop.cli.versions import observe_cluster
    from kubehop.model.cluster_codec import state_fingerprint

    state = observed or await observe_cluster(workloads=False, node_facts=True)
    now = state_fingerprint(state)
    if now == plan.fingerprint:
        return
    differences = await plan_differences(plan)
    for line in differences:
        click.echo(f"  - {line}", err=True)
    raise OperationError(
        f"the cluster changed since this plan was made (fingerprint {plan.fingerprint}, now "
        f"{now}; {len(differences)} difference(s) above): plan again with `kubehop plan --to "
        f"{plan.to_version} -o json --out FILE`")


def verify_before_running(plan: Plan, observed: ClusterState, journal: Journal,
                          state: RunState | None,
                          release_data: str | None = None) -> ClusterState | None:
    """Refuse (exit 2) a plan that is not what kubehop plans for this cluster; the state to
    record with a new run (None on a resume)."""
    from kubehop.core.plan_verify import verify_plan
    from kubehop.data.loader import load_release_data

    data = load_release_data(release_data or os.environ.get("KUBEHOP_RELEASE_DATA") or None)
    if state is None:
        baseline: ClusterState | None = observed
    else:
        baseline = journal.baseline_of(state.run.id)
        if baseline is None:
            warn(f"run {state.run.id} was recorded without the state its plan was made from "
                 f"(an older kubehop): its steps are checked against the cluster only, not "
                 f"against the planner")
    begun = state.ids(*StepStatus) if state else set()
    mismatch = verify_plan(plan, observed, data, baseline=baseline,
                           done=state.done if state else (), started=begun)
    if mismatch is None:
        if state is not None:
            return None
        # Pods churn and the planner's steps do not depend on them (see `plan_verify`).
        return replace(observed, pods=(), pdbs=(), databases=(), manifests=(),
                       deprecated_api_uses=(), workloads_observed=False)
    if state is None:
        raise UsageError(f"refusing the plan: {mismatch}; it is not what kubehop plans for "
                         f"this cluster: plan again with `kubehop plan --to "
                         f"{plan.to_version} -o json --out FILE`")
    raise UsageError(f"refusing to resume run {state.run.id}: {mismatch}; give it up with "
                     f"`kubehop apply --abandon`, then plan again")


def refuse_other_run(journal: Journal, cluster: str, rid: str) -> None:
    other = journal.latest(cluster, unfinished=True)
    if other is not None and other.run.id != rid:
        raise OperationError(
            f"run {other.run.id} ({other.run.from_version} → {other.run.to_version}, "
            f"{other.status}) is unfinished on this cluster: resume it with `kubehop apply`, "
            "or give it up with `kubehop apply --abandon`, then plan again")


# --- signals -------------------------------------------------------------------------------------


@contextlib.contextmanager
def stop_on_signals(executor: Executor) -> Iterator[None]:
    """First Ctrl-C: no new steps, running ones finish; the second, or SIGTERM (a shutdown):
    abandon the running steps (recorded needs-verification, checked again on resume)."""
    loop = asyncio.get_running_loop()
    count = 0

    def interrupt() -> None:
        nonlocal count
        count += 1
        if count == 1:
            click.echo("kubehop: stopping: no new step starts, running steps finish "
                       "(Ctrl-C again to abandon them)", err=True)
            executor.request_stop()
        else:
            terminate()

    def terminate() -> None:
        click.echo("kubehop: abandoning running steps: a resume checks them again", err=True)
        executor.abandon()

    loop.add_signal_handler(signal.SIGINT, interrupt)
    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


# --- apply -------------------------------------------------------------------------------------


def _summary_line(plan: Plan, state: RunState | None) -> str:
    done = len(state.done & {s.id for s in plan.steps}) if state else 0
    how = f"resuming run {state.run.id} ({state.status})" if state else "new run"
    return (f"Applying {plan.from_version} → {plan.to_version}: {len(plan.steps)} steps, "
            f"{done} done earlier ({how})")


async def apply_plan(plan: Plan, settings: ApplySettings, *, plan_path: str | None,
                     observed: ClusterState | None = None,
                     confirm: Callable[[str], None] | None = None) -> None:
    """Apply `plan` to the cluster of the global options (see the module docstring)."""
    from kubehop.shell.executor.journal import Journal

    client = await connect()
    journal = Journal.open()
    try:
        cluster = await cluster_identity(client)
        rid = plan_run_id(cluster, plan)
        state = journal.find(rid)
        if state is not None and state.status is RunStatus.SUCCEEDED:
            click.echo(f"Plan already applied (run {rid}): nothing to do.")
            return
        if state is not None and state.status is RunStatus.ABANDONED:
            raise OperationError(f"run {rid} of this plan was abandoned; plan again")
        refuse_other_run(journal, cluster, rid)
        if observed is None or not observed.workloads_observed:
            from kubehop.cli.versions import observe_cluster

            observed = await observe_cluster(workloads=True, node_facts=True)
        if state is None:
            await check_fingerprint(plan, observed)
        baseline = verify_before_running(plan, observed, journal, state, settings.release_data)
        click.echo(_summary_line(plan, state), err=settings.log_format == "json")
        if settings.dry_run:
            from kubehop.cli.apply_dry import dry_run

            click.echo("Plan checked: its steps are the planner's for this cluster, and "
                       "replayed on the cluster as observed now they break no invariant.",
                       err=settings.log_format == "json")
            await dry_run(client, plan, state, settings)
            return
        if confirm is not None:
            confirm(f"Apply {len(plan.steps)} steps to the cluster?")
        if plan_path is None:
            plan_path = str(save_plan(plan, rid))
        await _execute(client, journal, cluster, plan, settings,
                       resume=f"kubehop apply {plan_path}", baseline=baseline)
    finally:
        journal.close()
        await client.close()
    await warn_node_kubectl()


async def warn_node_kubectl() -> None:
    """After a run: nodes whose kubectl is now outside the skew window of the apiservers (a
    node's kubectl plays no part in the upgrade, but whoever uses it there gets errors)."""
    if not global_options().ssh_inventory:
        return
    from kubehop.cli.versions import observe_cluster
    from kubehop.core.checks.host import node_kubectl_findings

    for f in node_kubectl_findings(await observe_cluster(workloads=False, node_facts=True)):
        warn(f"{f.message}; {f.fix}")


async def _execute(client: KubeClient, journal: Journal, cluster: str, plan: Plan,
                   settings: ApplySettings, *, resume: str,
                   baseline: ClusterState | None = None) -> None:
    from kubehop.cli.apply_progress import make_reporter
    from kubehop.shell.executor.cluster import KubeCluster
    from kubehop.shell.executor.engine import Executor, RunHalted
    from kubehop.shell.executor.expect import ExpectChecker, NodeFacts
    from kubehop.shell.executor.gates import HealthGates
    from kubehop.shell.executor.hooks import HookRunner
    from kubehop.shell.executor.lock import LeaseLock
    from kubehop.shell.executor.steps import StepRunner
    from kubehop.shell.transports.ssh import SSHTransport

    rid = plan_run_id(cluster, plan)
    transport = SSHTransport.from_file(global_options().ssh_inventory,
                                       accept_new_host_keys=settings.accept_new_host_keys)
    kube = KubeCluster(client)
    reporter: Any = make_reporter(settings.log_format)
    try:
        async with LeaseLock(client, rid) as lock:
            if lock.taken_over:
                warn(f"took over the upgrade lock ({lock.taken_over})")
            if journal.find(rid) is None:
                # The checks ran before the lock was ours: another run may have changed the
                # cluster since. Look again, now that nobody else can.
                await check_fingerprint(plan, None)
            state = journal.begin(cluster, plan, baseline)
            await kube.start()
            nodes = await kube.nodes()
            for node, address in transport.reach_unlisted((n.name, n.internal_ip)
                                                          for n in nodes):
                warn(f"node {node} is not in the SSH inventory: reaching it at its "
                     f"InternalIP {address}")
            checker = ExpectChecker(kube, NodeFacts(transport))
            runner = StepRunner(kube, transport, checker, HealthGates(kube), settings.executor)
            hooks = None
            if settings.hooks:
                env = dict(os.environ)
                kubeconfig = global_options().kubeconfig
                if kubeconfig:  # the hooks talk to the cluster kubehop upgrades
                    env["KUBECONFIG"] = str(Path(kubeconfig).resolve())
                hooks = HookRunner(plan, settings.hooks, run_id=rid,
                                   timeout=settings.hook_timeout, env=env)
            guard = None
            if settings.windows:
                from kubehop.shell.executor.windows import WindowGuard, cluster_clock

                guard = WindowGuard(settings.windows, await cluster_clock(client),
                                    wait=settings.wait_for_window, resume=resume)
            from kubehop.shell.executor.annotations import ClusterProgress

            listeners: list[Any] = [reporter, ClusterProgress(client, rid, warn=warn)]
            if settings.notify:
                from kubehop.shell.executor.notify import Notifier

                listeners.append(Notifier(settings.notify, plan, warn=warn))

            def on_event(event: Any) -> None:
                for listener in listeners:
                    listener(event)
            executor = Executor(plan, journal, state, runner, on_event=on_event,
                                lock=lock, resume=resume, hooks=hooks, windows=guard)
            if hasattr(reporter, "wave_sizes"):
                sizes: dict[int, int] = {}
                for s in plan.steps:
                    if s.wave is not None:
                        sizes[s.wave] = sizes.get(s.wave, 0) + 1
                reporter.wave_sizes(sizes)
            try:
                with stop_on_signals(executor), reporter:
                    await executor.run()
            except RunHalted as e:
                _print_report(e, settings.log_format)
                raise
            finally:
                for listener in listeners[1:]:
                    await listener.close()
    finally:
        await kube.close()
        await transport.close()


def _print_report(halted: Any, log_format: str) -> None:
    import json

    from kubehop.cli.output import machine_stdout

    if log_format == "json":
        click.echo(json.dumps({"event": "halt-report", **halted.report.to_dict()},
                              ensure_ascii=False), file=machine_stdout())
    else:
        for line in halted.report.lines():
            click.echo(line, err=True)


async def abandon_run(settings: ApplySettings) -> None:
    """Give up the cluster's unfinished run (it will not be resumed), saying what it left."""
    from kubehop.core.progress import summarize
    from kubehop.shell.executor.journal import Journal

    client = await connect()
    journal = Journal.open()
    try:
        cluster = await cluster_identity(client)
        state = journal.latest(cluster, unfinished=True)
        if state is None:
            click.echo("No unfinished run on this cluster: nothing to abandon.")
            return
        summary = summarize(journal.plan_of(state.run.id), state)
        journal.set_status(state, RunStatus.ABANDONED, "abandoned by the user")
        click.echo(f"Run {state.run.id} abandoned after {summary.done} of {summary.total} "
                   "steps.")
        for node, why in summary.cordoned:
            click.echo(f"  node {node} may still be cordoned ({why}): `kubehop uncordon {node}`")
    finally:
        journal.close()
        await client.close()
