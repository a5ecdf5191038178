"""Doing one step: its node commands over the transport, or its API action, then its checks.

Node steps run their commands in order and stop at the first non-zero exit. API steps cordon,
drain (through the drain library: Eviction API, PodDisruptionBudgets honoured), uncordon, or
wait (CloudNativePG switchover, node Ready). Afterwards the step's `expect` must hold (waited
for up to `verify_timeout`) and its health gate must open (`gate_timeout`), else it failed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from kubehop.core.drain.explain import CNPG_CLUSTER_LABEL, DrainEvent
from kubehop.core.drain.rules import DrainError, DrainOptions
from kubehop.model.plan import Command, Step, StepKind
from kubehop.shell.executor.cluster import Cluster
from kubehop.shell.executor.etcd_snapshot import EtcdSnapshotter, SnapshotFailed
from kubehop.shell.executor.expect import ExpectChecker, Mismatch, describe
from kubehop.shell.executor.gates import HealthGates, gate_of
from kubehop.shell.executor.kubeadm_runner import KubeadmRunner, handles
from kubehop.shell.kube.errors import ApiError
from kubehop.shell.transports import CommandResult, Transport, TransportError
from kubehop.shell.transports.errors import short_command
from kubehop.shell.transports.errors import tail as one_line_tail

OUTPUT_TAIL = 2000
# Another package manager holds the lock (unattended-upgrades, or the command of a kubehop that
# was killed still running on the node): wait and run the command again. apt-get names the
# holder ("It is held by process 2718 (unattended-upgr)", apt-pkg/contrib/fileutl.cc
# GetLock); `apt-mark` runs dpkg, which names only its pid ("dpkg: error: dpkg frontend lock
# was locked by another process with pid 2718", dpkg src/main/archives.c / lib/dpkg/dbmodify.c)
# and exits 100 with "E: Executing dpkg failed. Are you root?".
_LOCKED = re.compile(r"Could not get lock|Unable to acquire the dpkg frontend lock|"
                     r"dpkg frontend lock (?:was|is) locked by another process|"
                     r"Existing lock /var/run/yum\.pid|Waiting for process with pid")
_HOLDER = re.compile(r"held by process (\d+)(?: \(([^)]*)\))?|"
                     r"locked by another process with pid (\d+)|"
                     r"Waiting for process with pid (\d+)")
# apt-get's own wait for the dpkg lock (apt 1.9.11+: `-o DPkg::Lock::Timeout=SECONDS`, see
# apt-pkg/deb/debsystem.cc); the executor passes what is left of `lock_wait`.
_APT_LOCK_TIMEOUT = "DPkg::Lock::Timeout"
# An `apt-get update` whose Kubernetes source could not be fetched: apt before 2.1.16 (no
# `--error-on=any`, see core.node_commands) says so in warnings and exits 0.
_UPDATE_FAILED = re.compile(r"^(?:W: (?=Failed to fetch|Some index files failed to download)|"
                            r"E: )(.*)$", re.MULTILINE)
# Package steps release a hold for the install and put it back after; when the install
# fails, the hold goes back before the step halts (a package left unheld is upgraded by the
# next routine `apt-get upgrade`).
_RELEASE_TO_HOLD = {("apt-mark", "unhold"): ("apt-mark", "hold"),
                    ("dnf", "versionlock", "delete"): ("dnf", "versionlock", "add")}
# An install interrupted half-way (a killed command): dpkg must finish configuring first.
_INTERRUPTED = re.compile(r"dpkg was interrupted, you must manually run '(?:sudo )?dpkg "
                          r"--configure -a'")
_CONFIGURE = Command(("dpkg", "--configure", "-a"))
# The step the current task performs (for progress messages from deep inside a command).
_STEP: ContextVar[Step | None] = ContextVar("kubehop_step", default=None)


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


def _tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


class StepRunner:
    """Performs steps against one cluster and its nodes."""

    def __init__(self, cluster: Cluster, transport: Transport, checker: ExpectChecker,
                 gates: HealthGates, options: ExecutorOptions,
                 on_drain: Callable[[Step, DrainEvent], None] | None = None,
                 on_wait: Callable[[Step, str], None] | None = None) -> None:
        self.cluster = cluster
        self.transport = transport
        self.checker = checker
        self.gates = gates
        self.options = options
        self.on_drain = on_drain
        self.on_wait = on_wait
        self.kubeadm = KubeadmRunner(transport, timeout=options.kubeadm_timeout,
                                     command_timeout=options.command_timeout,
                                     detached=options.kubeadm_detached)

    def _waiting(self, step: Step, message: str) -> None:
        if self.on_wait is not None:
            self.on_wait(step, message)

    async def perform(self, step: Step) -> str:
        """Do `step` and check what must hold after it; StepFailed says why not. Returns a
        note for the journal (the package builds a package step installed), or ""."""
        _STEP.set(step)
        note = ""
        try:
            if step.kind is StepKind.ETCD_SNAPSHOT:
                note = await self._etcd_snapshot(step)
            elif step.commands:
                await self._commands(step)
            else:
                await self._api(step)
        except ApiError as e:
            raise StepFailed(f"the API refused: {e}") from None
        missing = await self._wait(step, self.options.verify_timeout)
        if missing:
            raise StepFailed(f"it ran, but afterwards {describe(missing)} "
                             f"(waited {self.options.verify_timeout:g} s)")
        gate = gate_of(step)
        if gate is not None:
            problems = await self.gates.wait(step, self.options.gate_timeout,
                                             lambda p: self._waiting(step, "; ".join(p)))
            if problems:
                raise StepFailed(f"health gate \"{gate}\" still closed after "
                                 f"{self.options.gate_timeout:g} s: {'; '.join(problems)}")
        return note or await self._installed(step)

    async def _etcd_snapshot(self, step: Step) -> str:
        """Free space, then the snapshot commands (`shell.etcd_snapshot`); its journal note."""
        outputs: list[str] = []

        async def run(node: str, command: Command) -> CommandResult:
            return await self._run(node, command, outputs)

        snapshotter = EtcdSnapshotter(self.transport, run,
                                      copy_to=self.options.etcd_snapshot_dir,
                                      timeout=self.options.command_timeout)
        try:
            return await snapshotter.take(step)
        except SnapshotFailed as e:
            raise StepFailed(e.message, _tail("\n".join(outputs))) from None

    async def _installed(self, step: Step) -> str:
        """`installed kubeadm 1.29.15-1.1`: the builds a package step's globs resolved to
        (read from the node facts its `expect` was just checked with)."""
        keys = [k for k in ("kubeadm", "kubeletPackage", "kubectl") if k in step.expect]
        if not keys or step.node is None:
            return ""
        try:
            facts = await self.checker.facts.get(step.node, "")
        except TransportError:
            return ""
        got = {"kubeadm": facts.kubeadm, "kubeletPackage": facts.kubelet,
               "kubectl": facts.kubectl}
        shown = [f"{k.removesuffix('Package')} {got[k]}" for k in keys if got[k]]
        return f"installed {', '.join(shown)}" if shown else ""

    async def _commands(self, step: Step) -> None:
        node = step.node
        if node is None:
            raise StepFailed("a step with commands names no node (plan bug)")
        outputs: list[str] = []
        rehold: list[Command] = []  # holds this step released and has not put back yet
        for command in step.commands:
            try:
                await self._command(step, node, command, outputs)
            except StepFailed as failed:
                if rehold:
                    failed = await self._put_holds_back(node, rehold, outputs, failed)
                raise failed from None
            verb = _release_verb(command)
            if verb is not None:  # put back by a later command of the step, or on failure
                rehold.append(Command((*_RELEASE_TO_HOLD[verb], *command.argv[len(verb):])))
            elif rehold:
                rehold = [h for h in rehold if command.argv[:len(h.argv)] != h.argv]

    async def _put_holds_back(self, node: str, holds: list[Command], outputs: list[str],
                              failed: StepFailed) -> StepFailed:
        """Hold again what the failed step released; the failure says whether it worked."""
        undone = []
        for hold in holds:
            try:
                await self._command(None, node, hold, outputs)
            except StepFailed as e:
                undone.append(f"`{short_command(hold.line)}` failed too ({e.message}): run it "
                              f"on {node} by hand")
        note = "; ".join(undone) if undone else \
            f"the packages' holds were put back ({', '.join(h.line for h in holds)})"
        return StepFailed(f"{failed.message}; {note}", _tail("\n".join(outputs)))

    async def _command(self, step: Step | None, node: str, command: Command,
                       outputs: list[str]) -> None:
        """Run one command, waiting out another process's package manager lock (up to
        `lock_wait`) and finishing an interrupted dpkg run; StepFailed when it fails."""
        deadline = time.monotonic() + self.options.lock_wait
        delay, configured, holder = 1.0, False, ""
        while True:
            result = await self._run(node, _with_lock_timeout(command, deadline), outputs)
            text = result.stderr + result.stdout
            if result.ok:
                failed = _update_failure(command, text)
                if failed is None:
                    return
                raise StepFailed(f"`{short_command(command.line)}` could not fetch the "
                                 f"Kubernetes package list: {failed}", _tail("\n".join(outputs)))
            if _INTERRUPTED.search(text) and not configured:
                configured = True  # finish the interrupted install, then try again
                await self._run(node, _CONFIGURE, outputs)
                continue
            if _LOCKED.search(text):
                holder = await self._holder(node, text) or holder
                if time.monotonic() + delay < deadline:
                    if step is not None:
                        self._waiting(step, f"waiting for the package manager lock on {node}"
                                            f"{f' (held by {holder})' if holder else ''}")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 15.0)
                    continue
                raise StepFailed(
                    f"the package manager lock on {node} is still held"
                    f"{f' by {holder}' if holder else ''} after "
                    f"{self.options.lock_wait:g} s (lock wait): let it finish (unattended-"
                    f"upgrades: systemctl status unattended-upgrades) or stop it, then run "
                    f"kubehop apply again", _tail("\n".join(outputs)))
            brief = one_line_tail(result.stderr) or one_line_tail(result.stdout) or \
                "no output"
            raise StepFailed(f"`{short_command(command.line)}` exited with "
                             f"{result.exit_code}: {brief}", _tail("\n".join(outputs)))

    async def _holder(self, node: str, text: str) -> str:
        """`process PID (NAME)` of the lock holder the message names; the name from `ps`
        on the node when the message gives only the pid (dpkg's)."""
        m = _HOLDER.search(text)
        if m is None:
            return ""
        pid = next(g for g in (m.group(1), m.group(3), m.group(4)) if g)
        name = m.group(2) or ""
        if not name:
            try:
                result = await self.transport.run(node, ("ps", "-o", "comm=", "-p", pid),
                                                  sudo=False, timeout=30.0)
                name = result.stdout.strip() if result.ok else ""
            except TransportError:
                name = ""
        return f"process {pid} ({name})" if name else f"process {pid}"

    async def _run(self, node: str, command: Command, outputs: list[str]) -> CommandResult:
        self.checker.facts.invalidate(node)
        step = _STEP.get(None)
        try:
            if handles(command.argv):
                result = await self.kubeadm.run(
                    node, command, (lambda m: self._waiting(step, m)) if step else None)
            else:
                result = await self.transport.run(node, command.argv, sudo=command.sudo,
                                                  stdin=command.stdin,
                                                  timeout=self.options.command_timeout)
        except TransportError as e:
            raise StepFailed(str(e), _tail("\n".join(outputs))) from None
        finally:
            self.checker.facts.invalidate(node)
        outputs.append(f"$ {command.line}\n{result.stdout}{result.stderr}".rstrip())
        return result

    async def _api(self, step: Step) -> None:
        node = step.node
        kind = step.kind
        if kind is StepKind.GATE:
            return
        if node is None:
            raise StepFailed(f"a {kind} step names no node (plan bug)")
        if kind in (StepKind.CORDON, StepKind.UNCORDON):
            await self.cluster.set_schedulable(node, kind is StepKind.UNCORDON)
        elif kind is StepKind.DRAIN:
            await self._drain(step, node)
        elif kind is StepKind.SWITCHOVER:
            await self._switchover(step, node)
        elif kind is StepKind.WAIT_READY:
            missing = await self._wait(step, self.options.ready_timeout)
            if missing:
                view = await self.cluster.node(node)
                why = f" ({view.ready_message})" if view is not None and view.ready_message \
                    else ""
                raise StepFailed(
                    f"node {node} did not become Ready at {step.expect.get('kubelet', '?')} "
                    f"within {self.options.ready_timeout:g} s after its kubelet restart: "
                    f"{describe(missing)}{why}; check the kubelet on it "
                    f"(journalctl -u kubelet)")
        else:
            raise StepFailed(f"this kubehop does not know how to run a {kind} step without "
                             "commands")

    async def _wait(self, step: Step, timeout: float) -> list[Mismatch]:
        return await self.checker.wait(
            step, timeout, on_wait=lambda m: self._waiting(step, f"waiting: {describe(m)}"))

    async def _switchover(self, step: Step, node: str) -> None:
        """Move the databases' instances off the node, primary last: CloudNativePG promotes a
        replica on another node when this one is cordoned, but when every replica shares the
        node (a previous drain pushed them here) there is none to promote until the replicas
        move. The drain library evicts the replicas (their PodDisruptionBudget permitting) and
        evicts the primary only once the operator has switched over."""
        missing = await self.checker.mismatches(step)
        for db in _database_list(step):
            if not missing:
                break
            name = db.partition("/")[2]
            options = DrainOptions(ignore_daemonsets=True, delete_emptydir_data=True,
                                   pod_selector=f"{CNPG_CLUSTER_LABEL}={name}",
                                   timeout=self.options.switchover_timeout,
                                   switchover_timeout=self.options.switchover_timeout)
            try:
                await self.cluster.drain(node, options, self._forward(step))
            except DrainError as e:
                raise StepFailed(f"switchover of {db}: {e}") from None
            missing = await self.checker.mismatches(step)
        missing = await self._wait(step, self.options.switchover_timeout)
        if missing:
            raise StepFailed(
                f"CloudNativePG did not move the primary of {_databases(step)} off node "
                f"{node} within {self.options.switchover_timeout:g} s ({describe(missing)}); "
                f"check the operator (kubectl get clusters.postgresql.cnpg.io -A)")

    def _forward(self, step: Step) -> Callable[[DrainEvent], None]:
        def forward(event: DrainEvent) -> None:
            if self.on_drain is not None:
                self.on_drain(step, event)
        return forward

    async def _drain(self, step: Step, node: str) -> None:
        p = step.params
        options = DrainOptions(ignore_daemonsets=bool(p.get("ignoreDaemonsets", True)),
                               delete_emptydir_data=bool(p.get("deleteEmptydirData", False)),
                               force=bool(p.get("force", False)),
                               timeout=self.options.drain_timeout,
                               switchover_timeout=self.options.switchover_timeout)
        try:
            await self.cluster.drain(node, options, self._forward(step))
        except DrainError as e:
            raise StepFailed(str(e)) from None


def _release_verb(command: Command) -> tuple[str, ...] | None:
    """The hold-releasing verb `command` starts with (`apt-mark unhold`), if any."""
    return next((v for v in _RELEASE_TO_HOLD if command.argv[:len(v)] == v), None)


def _with_lock_timeout(command: Command, deadline: float) -> Command:
    """`apt-get` waits for the dpkg lock itself for what is left of the lock wait."""
    argv = command.argv
    if not argv or argv[0] != "apt-get" or any(_APT_LOCK_TIMEOUT in a for a in argv):
        return command
    left = max(0, int(deadline - time.monotonic()))
    return Command((argv[0], "-o", f"{_APT_LOCK_TIMEOUT}={left}", *argv[1:]), command.stdin,
                   command.sudo)


def _update_failure(command: Command, text: str) -> str | None:
    """Why an `apt-get update` that exited 0 did not fetch its source (old apt's warnings)."""
    if "update" not in command.argv[:4] or command.argv[0] != "apt-get":
        return None
    m = _UPDATE_FAILED.search(text)
    return m.group(1).strip()[:300] if m else None


def _database_list(step: Step) -> tuple[str, ...]:
    value = step.params.get("databases", ())
    return (value,) if isinstance(value, str) else tuple(map(str, value))  # type: ignore[arg-type]


def _databases(step: Step) -> str:
    return ", ".join(_database_list(step))
