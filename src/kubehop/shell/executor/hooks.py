"""Running the operator's hooks (`--hook EVENT=COMMAND`) on this machine, journaled.

Each hook runs as `sh -c COMMAND` with the context in its environment — `KUBEHOP_EVENT`,
`KUBEHOP_RUN`, `KUBEHOP_FROM`, `KUBEHOP_TO`, `KUBEHOP_HOP`, `KUBEHOP_NODE`, `KUBEHOP_STEP` (the
step it runs before), `KUBECONFIG` — and no standard input, for at most `timeout` seconds (then
its process group is killed). A hook that exits non-zero (or times out) fails the step it runs
before: the run halts with exit 3 and a resume runs the hook again. Each run is journaled under
its `HookCall.id`; one that succeeded is not run again on resume. `halted` hooks run when a run
halts; their failure is only reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from kubehop.core.hooks import END, START, Hook, HookCall, halted_calls, place_hooks
from kubehop.model.journal import StepStatus
from kubehop.model.plan import Plan
from kubehop.shell.executor.journal import tail


class HookFailed(Exception):
    """A hook exited non-zero or timed out; `output` is the tail of what it printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.output = output


class JournalLike(Protocol):
    """What the runner needs of the executor: whether a hook run is recorded done, and to
    record one (`Executor` provides both)."""

    def hook_done(self, hook_id: str) -> bool: ...

    def hook_record(self, call: HookCall, status: StepStatus, message: str = "",
                    output: str = "") -> None: ...


class HookRunner:
    """The hooks of one run, placed on its plan (see `core.hooks`)."""

    def __init__(self, plan: Plan, hooks: Sequence[Hook], *, run_id: str = "",
                 timeout: float = 600.0, env: Mapping[str, str] | None = None,
                 on_run: Callable[[HookCall, str], None] | None = None) -> None:
        self.plan = plan
        self.hooks = tuple(hooks)
        self.placed = place_hooks(plan, self.hooks)
        self.halted = halted_calls(self.hooks)
        self.run_id = run_id
        self.timeout = timeout
        self.env = dict(os.environ if env is None else env)
        self.on_run = on_run  # (call, "started" | "succeeded" | "failed: …")

    def calls_before(self, step_id: str) -> tuple[HookCall, ...]:
        return self.placed.get(step_id, ())

    async def before(self, step_id: str, journal: JournalLike) -> None:
        """Run the hooks placed before `step_id` (START, END) not journaled done yet;
        HookFailed at the first failure."""
        for call in self.placed.get(step_id, ()):
            if journal.hook_done(call.id):
                continue
            journal.hook_record(call, StepStatus.STARTED, f"{call.event}: {call.command}")
            try:
                output = await self.run(call, step_id)
            except HookFailed as e:
                journal.hook_record(call, StepStatus.FAILED, e.message, e.output)
                raise
            journal.hook_record(call, StepStatus.SUCCEEDED, "", output)

    async def start(self, journal: JournalLike) -> None:
        await self.before(START, journal)

    async def finish(self, journal: JournalLike) -> None:
        await self.before(END, journal)

    async def on_halt(self, summary: str) -> list[str]:
        """Run the `halted` hooks (KUBEHOP_MESSAGE: the halt summary); their failures."""
        problems = []
        for call in self.halted:
            try:
                await self.run(call, None, {"KUBEHOP_MESSAGE": summary})
            except HookFailed as e:
                problems.append(e.message)
        return problems

    async def run(self, call: HookCall, step_id: str | None,
                  extra: Mapping[str, str] | None = None) -> str:
        """Run one hook; its output tail, or HookFailed."""
        env = dict(self.env)
        env.update({"KUBEHOP_EVENT": call.event, "KUBEHOP_RUN": self.run_id,
                    "KUBEHOP_FROM": self.plan.from_version, "KUBEHOP_TO": self.plan.to_version,
                    "KUBEHOP_HOP": call.hop or "", "KUBEHOP_NODE": call.node or "",
                    "KUBEHOP_STEP": step_id if step_id not in (None, START, END) else ""})
        env.update(extra or {})
        where = f" for node {call.node}" if call.node else (f" at {call.hop}" if call.hop
                                                             else "")
        if self.on_run is not None:
            self.on_run(call, "started")
        try:
            proc = await asyncio.create_subprocess_exec(
                "sh", "-c", call.command, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True)
        except OSError as e:
            raise HookFailed(f"hook {call.event}{where} `{call.command}` could not start: "
                             f"{e.strerror or e}") from None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            self._told(call, "failed: timed out")
            raise HookFailed(f"hook {call.event}{where} `{call.command}` did not finish within "
                             f"{self.timeout:g} s (killed)") from None
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        text = out.decode(errors="replace").strip()
        if proc.returncode != 0:
            last = text.splitlines()[-1] if text else "no output"
            self._told(call, f"failed: exit {proc.returncode}")
            raise HookFailed(f"hook {call.event}{where} `{call.command}` exited with "
                             f"{proc.returncode}: {last}", tail(text))
        self._told(call, "succeeded")
        return tail(text)

    def _told(self, call: HookCall, what: str) -> None:
        if self.on_run is not None:
            self.on_run(call, what)
