"""What every step kind module is given and gives back.

A step kind module (`kubehop.shell.steps.<kind>`) has:

- `KIND`: its `StepKind`;
- `READS`: the `expect` keys this module reads live (the keys a kind carries are declared once,
  by its core module's `EXPECT_KEYS`) (`ExpectReader`): a key several kinds carry is read in
  the module of the kind that first sets it (`schedulable` in `cordon`, `kubelet` in
  `kubelet_restart`, the static pods in `kubeadm_apply`, `aptPins` in `kubeadm_install`);
- `execute(run, step)`: does the step through a `StepContext`; a note for the journal, or "".

The executor (`shell.executor.steps.StepRunner`) dispatches through the registry
(`kubehop.shell.steps.KINDS`), then waits for the step's `expect` and its health gate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from kubehop.core.drain.explain import DrainEvent
from kubehop.model.cluster import NodePackages
from kubehop.model.plan import Command, ExpectKey, ExpectValue, Step, StepKind
from kubehop.shell.executor.cluster import Cluster, NodeView
from kubehop.shell.steps.facts import NodeFacts
from kubehop.shell.transports import CommandResult, Transport, TransportError


@dataclass(frozen=True, slots=True)
class ExecutorOptions:
    """How the executor runs a plan; timeouts in seconds."""

    parallel: int = 256
    """Steps running at once (a wave's nodes go in parallel up to this)."""
    command_timeout: float = 900.0
    """One node command (kubeadm upgrade apply pulls images: minutes)."""
    verify_timeout: float = 300.0
    """For a step's `expect` to hold after it ran (a kubelet reports its version late)."""
    ready_timeout: float = 600.0
    """For a node to be Ready at its new kubelet version after the restart."""
    drain_timeout: float = 1800.0
    """For one drain (PodDisruptionBudgets may make it wait); 0: forever."""
    switchover_timeout: float = 600.0
    """For CloudNativePG to move a primary off a cordoned node."""
    lock_wait: float = 600.0
    """For another process's package manager lock on a node (unattended-upgrades)."""
    gate_timeout: float = 600.0
    """For the health gate after a step."""
    kubeadm_timeout: float = 1800.0
    """For `kubeadm upgrade apply|node` (5 min per static pod plus etcd's rollback wait);
    kubehop stops waiting then but never kills kubeadm."""
    kubeadm_detached: bool = True
    """Run `kubeadm upgrade apply|node` as a systemd unit that outlives the SSH session."""
    etcd_snapshot_dir: str | None = None
    """Copy each etcd snapshot here, on the operator's machine (`--etcd-snapshot-dir`)."""


class StepFailed(Exception):
    """A step did not do what it should; `output` is the tail of what its command printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.output = output


def node_of(step: Step) -> str:
    """The node an API step acts on; StepFailed when the plan names none."""
    if step.node is None:
        raise StepFailed(f"a {step.kind} step names no node (plan bug)")
    return step.node


# --- reading `expect` live ---------------------------------------------------------------------

Source = Literal["node", "packages", "static-pods", "cluster", "file"]
"""Where a key's value comes from: the Node object, the node's package facts (over the
transport, cached until a command runs there), kube-system mirror pods, other API objects, or
a file on the node. The checker reads the Node once per check for `node` and `packages` keys
and, while waiting, wakes on cluster changes for `node` and `static-pods` keys."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One expectation that does not hold: `key` wants `want`, the cluster shows `got`."""

    key: str
    want: ExpectValue
    got: object

    def __str__(self) -> str:
        return f"{self.key} is {_show(self.got)}, expected {_show(self.want)}"


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        shown = ", ".join(map(str, value[:5])) + (" …" if len(value) > 5 else "")
        return f"{len(value)} ({shown})"
    return "unknown" if value is None else str(value)


def describe(mismatches: list[Mismatch]) -> str:
    """`key is got, expected want; …`"""
    return "; ".join(map(str, mismatches))


@dataclass(slots=True)
class Live:
    """What one check of a step's `expect` reads: the cluster, the node's facts, and the
    node's API view (read once per check, when a `node` or `packages` key needs it)."""

    step: Step
    cluster: Cluster
    facts: NodeFacts
    view: NodeView | None = None

    async def packages(self) -> NodePackages | str:
        """The node's package facts, or `unreadable (why)` when the node did not answer."""
        assert self.step.node is not None
        try:
            return await self.facts.get(self.step.node,
                                        self.view.os_image if self.view else "")
        except TransportError as e:
            return f"unreadable ({e})"


def equal(want: ExpectValue, got: object) -> bool:
    return got == want


@dataclass(frozen=True, slots=True)
class ExpectReader:
    """How one `expect` key is read live (`read`) and judged against the plan's value."""

    key: ExpectKey
    source: Source
    read: Callable[[Live, ExpectValue], Awaitable[object]]
    matches: Callable[[ExpectValue, object], bool] = equal


# --- executing ---------------------------------------------------------------------------------

class Checker(Protocol):
    """The expectation checker a step kind may consult (`shell.executor.expect`)."""

    facts: NodeFacts

    async def mismatches(self, step: Step, expect: Mapping[str, ExpectValue] | None = None
                         ) -> list[Mismatch]: ...


class Commands(Protocol):
    """Runs steps' commands on their nodes (`shell.steps.node_commands.NodeCommands`)."""

    async def run_step(self, step: Step) -> None:
        """Run `step`'s commands in order; StepFailed at the first that fails."""
        ...

    async def run(self, step: Step, node: str, command: Command,
                  outputs: list[str]) -> CommandResult:
        """Run one command as it is, its output kept in `outputs`."""
        ...


class StepContext(Protocol):
    """What a step kind's `execute` works with (the executor's `StepRunner`)."""

    cluster: Cluster
    transport: Transport
    options: ExecutorOptions
    checker: Checker
    commands: Commands

    def waiting(self, step: Step, message: str) -> None:
        """Tell the progress reporter what `step` waits for."""
        ...

    async def wait(self, step: Step, timeout: float) -> list[Mismatch]:
        """Wait up to `timeout` for `step`'s expect; what still does not hold."""
        ...

    def forward(self, step: Step) -> Callable[[DrainEvent], None]:
        """A drain's progress, passed on as `step`'s."""
        ...


class StepModule(Protocol):
    """A step kind module (see the module docstring)."""

    KIND: StepKind
    READS: tuple[ExpectReader, ...]

    async def execute(self, run: StepContext, step: Step) -> str: ...
