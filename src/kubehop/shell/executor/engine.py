"""The executor: apply a plan's steps in dependency order, journaling each before and after.

    executor = Executor(plan, journal, state, runner, on_event=print)
    state = await executor.run()            # RunHalted (exit 3) with a report on failure

A step starts once every step in its `after` is done; the steps ready at one time (a wave's
nodes) run in parallel, at most `options.parallel` at once, earliest in the plan first. Per step:

1. already done in the journal → nothing to do (a resumed run);
2. interrupted earlier (`started` with no outcome) → recorded `needs-verification`;
3. its `expect` already holds → recorded `skipped-already-done` (done before a crash, or by
   hand); gates are recorded as succeeded;
4. recorded `started`, performed (`shell.executor.steps`: the step kind's module in
   `shell.steps`), its `expect` and health gate waited for, recorded `succeeded` — or
   `failed` with the tail of its output.

Before a step changes anything (after its `expect` check, before `started`), the run confirms
with the apiserver that it still holds the upgrade lock (`Ownership.confirm`): the renewal loop
notices a takeover only at its next renewal, and a run whose renewals failed for longer than
the lease may have been overtaken meanwhile. A lost lock starts no new step; the unstarted
step is left for a resume.

On the first failure no new step starts; running ones finish (a drain elsewhere completes or
times out). `request_stop()` (first Ctrl-C, a lost lock) does the same; `abandon()` (second
Ctrl-C) cancels running steps, which are recorded `needs-verification` so that a resume checks
their `expect` before running them again. The run then raises `RunHalted` carrying a
`HaltReport`: what failed, which nodes kubehop left cordoned and why, how to resume (and, after
a failed control-plane step, kubeadm's backups and the recovery steps: `core.recovery`).

Operator hooks (`shell.hooks`) run before the steps `core.hooks` places them at, journaled under
their own ids; a failed hook fails that step. With maintenance windows (`shell.windows`) a step
that starts a node (its first in a wave), a cordon, or a new hop waits for, or halts outside,
a window (`window-closed`, exit 3); steps in the middle of a node's sequence go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from kubehop.core.drain.explain import DrainEvent
from kubehop.core.hooks import END, START, HookCall
from kubehop.core.recovery import rollback_guidance
from kubehop.model.errors import HaltedError, UsageError
from kubehop.model.journal import RunState, RunStatus, StepStatus
from kubehop.model.plan import Plan, Step, StepKind
from kubehop.shell.executor.events import FailedStep, HaltReport, OnEvent, ProgressEvent
from kubehop.shell.executor.hooks import HookFailed, HookRunner
from kubehop.shell.executor.journal import Journal
from kubehop.shell.executor.steps import StepRunner
from kubehop.shell.executor.windows import WindowClosed, WindowGuard
from kubehop.shell.kube.errors import ApiError
from kubehop.shell.steps.base import ExecutorOptions, StepFailed, describe
from kubehop.shell.transports import TransportError


class Ownership(Protocol):
    """The run's hold on the upgrade lock (a `kubehop.shell.executor.lock.LeaseLock`)."""

    lost: asyncio.Event  # set once the lock is gone
    lost_reason: str | None  # why, once it is gone

    async def confirm(self) -> str | None:
        """None while the lock is held; else why not (and `lost` is set)."""
        ...


class _LockLost(Exception):
    """A step found the lock gone before it started."""


class _WindowShut(Exception):
    """A step that starts a node found no maintenance window open (it did not start)."""


class RunHalted(HaltedError):
    """A run stopped before its end; `report` says what failed and what was left behind."""

    def __init__(self, report: HaltReport) -> None:
        super().__init__(report.summary())
        self.report = report


class Executor:
    """Runs one plan against one cluster (see the module docstring)."""

    def __init__(self, plan: Plan, journal: Journal, state: RunState, runner: StepRunner, *,
                 on_event: OnEvent | None = None, lock: Ownership | None = None,
                 resume: str = "kubehop apply PLAN",
                 monotonic: Callable[[], float] = time.monotonic,
                 hooks: HookRunner | None = None,
                 windows: WindowGuard | None = None) -> None:
        self.plan = plan
        self.journal = journal
        self.state = state
        self.runner = runner
        self.options: ExecutorOptions = runner.options
        self.on_event = on_event
        self.lock = lock
        self.resume = resume
        self._monotonic = monotonic
        self._started = monotonic()
        self._index = {s.id: i for i, s in enumerate(plan.steps)}
        self._stop = asyncio.Event()
        self._halt: str | None = None  # failed | interrupted | lock-lost
        self._failures: list[FailedStep] = []
        self._running: dict[asyncio.Task[None], Step] = {}
        self._waves_started: set[int] = set()
        self._done = len(state.done & self._index.keys())
        self.hooks = hooks  # the operator's hooks (`shell.hooks`), run before their steps
        if hooks is not None:
            hooks.on_run = self._hook_event
        self.windows = windows  # maintenance windows (`shell.windows`): new nodes start inside
        self._gates = {s.id for s in plan.steps if s.kind is StepKind.GATE}
        self._window_closed: str | None = None
        runner.on_drain = self._drain_event
        runner.on_wait = self._wait_event

    # --- events ---------------------------------------------------------------------------------

    def _emit(self, kind: str, step: Step | None = None, message: str = "",
              seconds: float | None = None) -> None:
        if self.on_event is None:
            return
        self.on_event(ProgressEvent(
            kind, self.state.run.id, step=step.id if step else None,
            step_kind=str(step.kind) if step else None, node=step.node if step else None,
            wave=step.wave if step else None, hop=step.hop if step else None, message=message,
            done=self._done, total=len(self.plan.steps),
            elapsed=self._monotonic() - self._started, seconds=seconds))

    def _drain_event(self, step: Step, event: DrainEvent) -> None:
        if event.kind in ("evicted", "deleted", "blocked", "switchover", "drained", "warning",
                          "waiting", "cordoned"):
            what = f"{event.kind} {event.pod or ', '.join(event.pods)}".strip()
            self._emit("drain", step, f"{what}: {event.message}" if event.message else what)

    def _wait_event(self, step: Step, message: str) -> None:
        self._emit("step-waiting", step, message)

    def _hook_event(self, call: HookCall, what: str) -> None:
        if self.on_event is not None:
            where = f" {call.node}" if call.node else (f" {call.hop}" if call.hop else "")
            self.on_event(ProgressEvent(
                "hook", self.state.run.id, step=call.id, step_kind="hook", node=call.node,
                hop=call.hop, message=f"{call.event}{where} `{call.command}`: {what}",
                done=self._done, total=len(self.plan.steps),
                elapsed=self._monotonic() - self._started))

    # --- hooks (journaled under their own ids: `shell.hooks`) ----------------------------------

    def hook_done(self, hook_id: str) -> bool:
        return self.state.status_of(hook_id) is StepStatus.SUCCEEDED

    def hook_record(self, call: HookCall, status: StepStatus, message: str = "",
                    output: str = "") -> None:
        self.state = self.journal.record(self.state, call.id, status, node=call.node,
                                         message=message, output=output)

    async def _hooks_at(self, anchor: str) -> None:
        """The hooks placed before `anchor`; a failed one fails the step (StepFailed)."""
        if self.hooks is None:
            return
        try:
            await self.hooks.before(anchor, self)
        except HookFailed as e:
            raise StepFailed(e.message, e.output) from None

    async def _hooks_around_run(self, anchor: str) -> bool:
        """START or END hooks; False (the run halts, the failure reported) when one failed."""
        try:
            await self._hooks_at(anchor)
        except StepFailed as e:
            self._failures.append(FailedStep(e.message.split("`")[0].strip(), None, e.message,
                                             e.output))
            self._halt = "failed"
            self._stop.set()
            return False
        return True

    # --- control ----------------------------------------------------------------------------

    def request_stop(self, reason: str = "interrupted") -> None:
        """Start no new step; let the running ones finish (first Ctrl-C, a lost lock)."""
        if self._halt is None:
            self._halt = reason
        self._stop.set()

    def abandon(self) -> None:
        """Cancel the running steps too (second Ctrl-C): they are marked needs-verification."""
        self.request_stop()
        for task in self._running:
            task.cancel()

    # --- one step -------------------------------------------------------------------------------

    def _record(self, step: Step, status: StepStatus, message: str = "", output: str = "") -> None:
        self.state = self.journal.record(self.state, step.id, status, node=step.node,
                                         message=message, output=output)
        if status.done:
            self._done += 1

    def _starts_node(self, step: Step) -> bool:
        """Whether `step` is a node's first in its wave (`PlanBuilder._place` makes it wait
        for the gate, or for nothing at the start): a new node, or a new hop."""
        return step.kind is not StepKind.GATE and (
            not step.after or any(a in self._gates for a in step.after))

    def _opens_hop(self, anchor: str) -> bool:
        """Whether a `before-hop` hook runs before `anchor` (a new hop starts there)."""
        return self.hooks is not None and any(c.event == "before-hop"
                                              for c in self.hooks.calls_before(anchor))

    async def _admit(self, step: Step | None) -> None:
        """Start a new node only inside a maintenance window (or wait for one)."""
        assert self.windows is not None
        self.windows.on_wait = lambda message: self._emit("step-waiting", step, message)
        try:
            await self.windows.admit()
        except WindowClosed as e:
            self._window_closed = e.message
            raise _WindowShut from None

    async def _execute(self, step: Step) -> None:
        if self.windows is not None and (self._starts_node(step)
                                         or step.kind is StepKind.CORDON
                                         or self._opens_hop(step.id)):
            await self._admit(step)  # no node is cordoned outside a window either
        await self._hooks_at(step.id)
        if step.wave is not None and step.wave not in self._waves_started \
                and step.kind is not StepKind.GATE:
            self._waves_started.add(step.wave)
            self._emit("wave-started", step, f"wave {step.wave}")
        if self.state.status_of(step.id) is StepStatus.STARTED:
            self._record(step, StepStatus.NEEDS_VERIFICATION,
                         "interrupted while running: checking whether it took effect")
            self._emit("step-verifying", step, "interrupted earlier: checking its expect")
        if step.kind is StepKind.GATE:
            self._record(step, StepStatus.SUCCEEDED)
            self._emit("wave-finished", step, f"wave {step.wave} done")
            return
        try:
            missing = await self.runner.checker.mismatches(step) if step.expect else None
        except (ApiError, TransportError) as e:
            raise StepFailed(f"cannot check whether it is done: {e}") from None
        if missing == []:
            text = ", ".join(f"{k}={v}" for k, v in step.expect.items())
            self._record(step, StepStatus.SKIPPED, f"already done: {text}")
            self._emit("step-skipped", step, f"already done: {text}")
            return
        if self.lock is not None and await self.lock.confirm() is not None:
            raise _LockLost  # not started: a resume runs it
        self._record(step, StepStatus.STARTED,
                     f"before: {describe(missing)}" if missing else "")
        self._emit("step-started", step, step.description)
        began = self._monotonic()
        try:
            note = await self.runner.perform(step)
        except asyncio.CancelledError:
            self._record(step, StepStatus.NEEDS_VERIFICATION,
                         "interrupted: its expect is checked when the run resumes")
            raise
        except StepFailed as e:
            self._record(step, StepStatus.FAILED, e.message, e.output)
            self._emit("step-failed", step, e.message, self._monotonic() - began)
            raise
        except (ApiError, TransportError) as e:
            self._record(step, StepStatus.FAILED, str(e))
            self._emit("step-failed", step, str(e), self._monotonic() - began)
            raise StepFailed(str(e)) from None
        self._record(step, StepStatus.SUCCEEDED, note or "")
        self._emit("step-succeeded", step, seconds=self._monotonic() - began)

    # --- the run ----------------------------------------------------------------------------

    def _graph(self) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
        done = self.state.done
        waiting: dict[str, set[str]] = {}
        dependents: dict[str, list[str]] = {}
        for s in self.plan.steps:
            for a in s.after:
                if a not in self._index:
                    raise UsageError(f"bad plan: step {s.id} waits for {a}, which is not in "
                                     "the plan; plan again")
            if s.id in done:
                continue
            waiting[s.id] = {a for a in s.after if a not in done}
            for a in waiting[s.id]:
                dependents.setdefault(a, []).append(s.id)
        return waiting, dependents

    async def run(self) -> RunState:
        """Apply every step not done yet; the final state, or RunHalted."""
        waiting, dependents = self._graph()
        ready = [self._index[i] for i, deps in waiting.items() if not deps]
        heapq.heapify(ready)
        self._emit("run-started", message=f"{len(waiting)} of {len(self.plan.steps)} steps to go")
        # Finished tasks arrive on a queue: O(1) per step, whatever the number running.
        finished: asyncio.Queue[asyncio.Task[None]] = asyncio.Queue()
        watcher = asyncio.ensure_future(self._watch_lock(self.lock.lost)) \
            if self.lock is not None else None
        try:
            if self.windows is not None and self._opens_hop(START):
                try:
                    await self._admit(None)
                except _WindowShut:
                    self.request_stop("window-closed")
            if self.hooks is not None and not self._stop.is_set():
                await self._hooks_around_run(START)
            while True:
                while ready and len(self._running) < self.options.parallel and \
                        not self._stop.is_set():
                    step = self.plan.steps[heapq.heappop(ready)]
                    task = asyncio.create_task(self._execute(step), name=step.id)
                    task.add_done_callback(finished.put_nowait)
                    self._running[task] = step
                if not self._running:
                    break
                task = await finished.get()
                step = self._running.pop(task)
                self._collect(task, step)
                if task.cancelled() or task.exception() is not None:
                    continue
                for d in dependents.get(step.id, ()):
                    waiting[d].discard(step.id)
                    if not waiting[d]:
                        heapq.heappush(ready, self._index[d])
        except asyncio.CancelledError:
            self.abandon()
            await self._drain_running()
            self.state = self.journal.set_status(self.state, RunStatus.INTERRUPTED,
                                                 "cancelled")
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
        if self._halt is None and len(self.state.done & self._index.keys()) < len(self._index):
            self._halt = "failed"  # unreachable steps: a dependency never finished
        if self._halt is None and self.hooks is not None:
            await self._hooks_around_run(END)
        if self._halt is not None:
            report = await self.report()
            if self.hooks is not None:
                problems = await self.hooks.on_halt(report.summary())
                report = replace(report, notes=report.notes + tuple(problems))
            status = RunStatus.HALTED if self._halt == "failed" else RunStatus.INTERRUPTED
            self.state = self.journal.set_status(self.state, status, report.summary())
            self._emit("run-halted", message=report.summary())
            raise RunHalted(report)
        self.state = self.journal.set_status(self.state, RunStatus.SUCCEEDED)
        self._emit("run-finished", message=f"{len(self.plan.steps)} steps done")
        return self.state

    def _collect(self, task: asyncio.Task[None], step: Step) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        if isinstance(error, _LockLost):
            self.request_stop("lock-lost")
            return
        if isinstance(error, _WindowShut):
            self.request_stop("window-closed")
            return
        if isinstance(error, StepFailed):
            self._failures.append(FailedStep(step.id, step.node, error.message, error.output))
        else:  # a bug or an unexpected error: keep it in the report, do not lose the journal
            self._failures.append(FailedStep(step.id, step.node,
                                             f"{type(error).__name__}: {error}"))
        self._halt = "failed"
        self._stop.set()

    async def _watch_lock(self, lost: asyncio.Event) -> None:
        await lost.wait()
        self.request_stop("lock-lost")

    async def _drain_running(self) -> None:
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
            self._running.clear()

    # --- the report ---------------------------------------------------------------------------

    async def report(self) -> HaltReport:
        """What failed, which nodes kubehop left cordoned (and why), how to resume."""
        cordoned: list[tuple[str, str]] = []
        uncordon = {s.node: s for s in self.plan.steps if s.kind is StepKind.UNCORDON}
        touched: dict[str, Step] = {}
        for s in self.plan.steps:
            if s.kind in (StepKind.CORDON, StepKind.DRAIN) and s.node in uncordon and \
                    self.state.status_of(s.id) is not None:
                touched[s.node] = s
        failed_on = {f.node: f for f in self._failures}
        for node, s in sorted(touched.items()):
            if self.state.status_of(uncordon[node].id) in (StepStatus.SUCCEEDED,
                                                           StepStatus.SKIPPED):
                continue
            with contextlib.suppress(ApiError):
                view = await self.runner.cluster.node(node)
                if view is not None and view.schedulable:
                    continue
            why = f"for its upgrade to {s.hop}"
            if node in failed_on:
                why += f"; step {failed_on[node].step} failed"
            else:
                why += "; its remaining steps did not run"
            cordoned.append((node, why))
        notes = []
        if self._halt == "window-closed" and self._window_closed:
            notes.append(self._window_closed)
        notes += rollback_guidance(self.plan, [(f.step, f"{f.message}\n{f.output}")
                                               for f in self._failures], self.state.done)
        if self._halt == "lock-lost":
            notes.append((self.lock.lost_reason if self.lock else None)
                         or "another kubehop run took over the Lease kube-system/kubehop-upgrade")
        return HaltReport(
            run=self.state.run.id, reason=self._halt or "failed", failed=tuple(self._failures),
            cordoned=tuple(cordoned),
            unverified=tuple(sorted(self.state.interrupted & self._index.keys(),
                                    key=self._index.__getitem__)),
            done=len(self.state.done & self._index.keys()), total=len(self.plan.steps),
            resume=self.resume, notes=tuple(notes))
