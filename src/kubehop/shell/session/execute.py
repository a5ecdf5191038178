"""The executor's wiring for one run: the lock, the step runner, hooks, windows, progress
listeners and signals, over the session's one client and one transport."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubehop.model.plan import Plan
from kubehop.shell.session import fingerprint
from kubehop.shell.session.runs import ApplySettings, plan_run_id

if TYPE_CHECKING:
    from kubehop.model.cluster import ClusterState
    from kubehop.shell.executor.engine import Executor
    from kubehop.shell.executor.journal import Journal
    from kubehop.shell.session.base import BaseSession
    from kubehop.shell.session.ui import Ui


@contextlib.contextmanager
def stop_on_signals(executor: Executor, ui: Ui) -> Iterator[None]:
    """First Ctrl-C: no new steps, running ones finish; the second, or SIGTERM (a shutdown):
    abandon the running steps (recorded needs-verification, checked again on resume)."""
    loop = asyncio.get_running_loop()
    count = 0

    def interrupt() -> None:
        nonlocal count
        count += 1
        if count == 1:
            ui.echo("kubehop: stopping: no new step starts, running steps finish "
                    "(Ctrl-C again to abandon them)", err=True)
            executor.request_stop()
        else:
            terminate()

    def terminate() -> None:
        ui.echo("kubehop: abandoning running steps: a resume checks them again", err=True)
        executor.abandon()

    loop.add_signal_handler(signal.SIGINT, interrupt)
    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def execute(session: BaseSession, journal: Journal, cluster: str, plan: Plan,
                  settings: ApplySettings, *, resume: str,
                  baseline: ClusterState | None = None) -> None:
    """Take the lock and run the plan's steps with the executor (the session's client and
    transport), reporting progress to the session's front end."""
    from kubehop.shell.executor.annotations import ClusterProgress
    from kubehop.shell.executor.cluster import KubeCluster
    from kubehop.shell.executor.engine import Executor, RunHalted
    from kubehop.shell.executor.expect import ExpectChecker
    from kubehop.shell.executor.gates import HealthGates
    from kubehop.shell.executor.hooks import HookRunner
    from kubehop.shell.executor.lock import LeaseLock
    from kubehop.shell.executor.steps import StepRunner
    from kubehop.shell.steps.facts import NodeFacts

    ui = session.ui
    client = await session.client()
    transport = session.transport()
    rid = plan_run_id(cluster, plan)
    kube = KubeCluster(client)
    reporter: Any = ui.reporter()
    try:
        async with LeaseLock(client, rid) as lock:
            if lock.taken_over:
                ui.warn(f"took over the upgrade lock ({lock.taken_over})")
            if journal.find(rid) is None:
                # The checks ran before the lock was ours: another run may have changed the
                # cluster since. Look again, now that nobody else can.
                await fingerprint.check_fingerprint(session, plan, None)
            state = journal.begin(cluster, plan, baseline)
            await kube.start()
            nodes = await kube.nodes()
            reach = getattr(transport, "reach_unlisted", None)
            for node, address in (reach((n.name, n.internal_ip) for n in nodes)
                                  if callable(reach) else ()):
                ui.warn(f"node {node} is not in the SSH inventory: reaching it at its "
                        f"InternalIP {address}")
            checker = ExpectChecker(kube, NodeFacts(transport))
            runner = StepRunner(kube, transport, checker, HealthGates(kube), settings.executor)
            hooks = None
            if settings.hooks:
                env = dict(os.environ)
                kubeconfig = session.options.kubeconfig
                if kubeconfig:  # the hooks talk to the cluster kubehop upgrades
                    env["KUBECONFIG"] = str(Path(kubeconfig).resolve())
                hooks = HookRunner(plan, settings.hooks, run_id=rid,
                                   timeout=settings.hook_timeout, env=env)
            guard = None
            if settings.windows:
                from kubehop.shell.executor.windows import WindowGuard, cluster_clock

                guard = WindowGuard(settings.windows, await cluster_clock(client),
                                    wait=settings.wait_for_window, resume=resume)
            listeners: list[Any] = [reporter, ClusterProgress(client, rid, warn=ui.warn)]
            if settings.notify:
                from kubehop.shell.executor.notify import Notifier

                listeners.append(Notifier(settings.notify, plan, warn=ui.warn))

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
                with stop_on_signals(executor, ui), reporter:
                    await executor.run()
            except RunHalted as e:
                ui.halted(e.report)
                raise
            finally:
                for listener in listeners[1:]:
                    await listener.close()
    finally:
        await kube.close()
