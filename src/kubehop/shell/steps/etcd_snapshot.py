"""etcd-snapshot: a restore point on the first control plane before each
`kubeadm upgrade apply` (stacked etcd).

The plan's commands (`core.planner.nodes.etcd_snapshot_commands`) save the snapshot with
etcdctl, verify it with etcdutl and move it to its documented place. Before them this module
checks the free space beside etcd's data directory against etcd's database size, and finds
where the etcd tools are: on the host (`command -v`), else in the running etcd static pod's
container (`crictl exec`, as the kubeadm documentation's backup section suggests for stacked
etcd). With `--etcd-snapshot-dir` the snapshot is copied to the operator's machine.

`expect`: `etcdSnapshot`, the snapshot's path, holds when the file is there and not empty
(`test -s`, as root).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from kubehop.core.checks.host import ETCD_DATA_DIR as DATA_DIR
from kubehop.core.checks.host import etcd_snapshot_space
from kubehop.core.checks.host import format_bytes as _size
from kubehop.core.steps.etcd_snapshot import ETCDCTL_TLS
from kubehop.model.plan import Command, ExpectKey, ExpectValue, Step, StepKind
from kubehop.shell.executor.journal import tail
from kubehop.shell.steps.base import ExpectReader, Live, StepContext, StepFailed
from kubehop.shell.transports import CommandResult, Transport, TransportError

KIND = StepKind.ETCD_SNAPSHOT
ETCD_TOOLS = ("etcdctl", "etcdutl")


class SnapshotFailed(Exception):
    """The snapshot step cannot go on: `message` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


RunCommand = Callable[[str, Command], Awaitable[CommandResult]]


def _fail(what: str, result: CommandResult) -> SnapshotFailed:
    text = (result.stderr or result.stdout).strip().splitlines()
    return SnapshotFailed(f"{what} exited with {result.exit_code}: "
                          f"{text[-1] if text else 'no output'}")


def parse_db_size(stdout: str) -> int | None:
    """`dbSize` of `etcdctl endpoint status -w json` (a list of endpoints)."""
    try:
        data = json.loads(stdout)
        return int(data[0]["Status"]["dbSize"])
    except (ValueError, LookupError, TypeError):
        return None


def parse_avail(stdout: str) -> int | None:
    """Bytes available of `df --output=avail -B1 PATH` (a header line, then the number)."""
    lines = [x.strip() for x in stdout.strip().splitlines()]
    try:
        return int(lines[-1])
    except (ValueError, IndexError):
        return None


def parse_status(stdout: str) -> dict[str, int]:
    """hash, revision, totalKey, totalSize of `etcdutl snapshot status -w json`."""
    try:
        data = json.loads(stdout)
        return {k: int(data[k]) for k in ("hash", "revision", "totalKey", "totalSize")}
    except (ValueError, LookupError, TypeError) as e:
        raise SnapshotFailed(f"etcdutl snapshot status gave no hash, revision and key count "
                             f"({type(e).__name__}): the snapshot is not verified") from None


class EtcdSnapshotter:
    """Runs an etcd-snapshot step on its node (see the module docstring)."""

    def __init__(self, transport: Transport, run: RunCommand, *, copy_to: str | None = None,
                 timeout: float = 300.0) -> None:
        self.transport = transport
        self.run = run  # the step runner's command runner (journaled output, caches dropped)
        self.copy_to = Path(copy_to) if copy_to else None
        self.timeout = timeout

    async def take(self, step: Step) -> str:
        """Check the space, run the step's commands, verify; the journal note."""
        node = step.node
        if node is None:
            raise SnapshotFailed("an etcd-snapshot step names no node (plan bug)")
        prefix = await self._where(node)
        await self._check_space(node, prefix)
        status: dict[str, int] = {}
        for command in step.commands:
            argv = (*prefix, *command.argv) if command.argv[0] in ETCD_TOOLS else command.argv
            result = await self.run(node, Command(argv, command.stdin, command.sudo))
            if not result.ok:
                raise _fail(f"`{' '.join(command.argv[:3])} …`", result)
            if command.argv[:3] == ("etcdutl", "snapshot", "status"):
                status = parse_status(result.stdout)
        path = str(step.expect.get("etcdSnapshot", ""))
        note = (f"etcd snapshot {path}: {status.get('totalSize', 0)} bytes, revision "
                f"{status.get('revision')}, {status.get('totalKey')} keys, hash "
                f"{status.get('hash')}")
        if self.copy_to is not None and path:
            local = await self._copy(node, path, status.get("totalSize"))
            note += f"; copied to {local}"
        return note

    async def _where(self, node: str) -> tuple[str, ...]:
        """() when the node has etcdctl and etcdutl, else `crictl exec <etcd container>`."""
        found = await self.transport.run(node, ("sh", "-c", "command -v etcdctl etcdutl"),
                                         sudo=True, timeout=self.timeout)
        if found.ok and len(found.stdout.split()) == 2:
            return ()
        # crictl ps: --name is a regular expression, -q prints container ids only
        # (kubernetes-sigs/cri-tools cmd/crictl/container.go).
        ps = await self.transport.run(node, ("crictl", "ps", "--name", "^etcd$", "--state",
                                             "running", "-q"), sudo=True, timeout=self.timeout)
        ids = ps.stdout.split() if ps.ok else []
        if not ids:
            raise SnapshotFailed(
                f"node {node} has no etcdctl and no running etcd container (crictl ps --name "
                f"etcd): cannot take the etcd snapshot; start etcd, or install etcdctl and "
                f"etcdutl on the node, then resume")
        return ("crictl", "exec", ids[0])

    async def _check_space(self, node: str, prefix: tuple[str, ...]) -> None:
        status = await self.run(node, Command((*prefix, "etcdctl", *ETCDCTL_TLS, "endpoint",
                                               "status", "-w", "json")))
        if not status.ok:
            raise _fail("`etcdctl endpoint status`", status)
        db = parse_db_size(status.stdout)
        df = await self.run(node, Command(("df", "--output=avail", "-B1", DATA_DIR)))
        avail = parse_avail(df.stdout) if df.ok else None
        if db is None or avail is None:
            raise SnapshotFailed(f"cannot tell the free space on {node} (etcd's database size "
                                 f"{db}, free bytes in {DATA_DIR} {avail}): check `df` and "
                                 f"etcd, then resume")
        need = etcd_snapshot_space(db)  # the rule `check` judges with (node.disk-*)
        if avail < need:
            raise SnapshotFailed(
                f"not enough free space on node {node} for the etcd snapshot: {_size(avail)} "
                f"free in {DATA_DIR}, about {_size(need)} needed (etcd's database is "
                f"{_size(db)}); free some space (old snapshots in /var/lib/kubehop/etcd-"
                f"snapshots, /etc/kubernetes/tmp/kubeadm-backup-*), then resume")

    async def _copy(self, node: str, path: str, size: int | None) -> Path:
        """Copy the snapshot to `copy_to` (base64 over the transport: it carries text)."""
        assert self.copy_to is not None
        try:
            result = await self.transport.run(node, ("base64", "-w0", path), sudo=True,
                                              timeout=self.timeout)
        except TransportError as e:
            raise SnapshotFailed(f"copying {path} from {node}: {e}") from None
        if not result.ok:
            raise _fail(f"`base64 {path}` on {node}", result)
        try:
            data = base64.b64decode(result.stdout.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SnapshotFailed(f"copying {path} from {node}: not base64") from None
        if size is not None and len(data) != size:
            raise SnapshotFailed(f"copying {path} from {node}: got {len(data)} bytes, etcdutl "
                                 f"says the snapshot has {size}")
        self.copy_to.mkdir(parents=True, exist_ok=True)
        local = self.copy_to / f"{node}-{path.rsplit('/', 1)[-1]}"
        tmp = local.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.chmod(0o600)  # etcd holds every Secret of the cluster
        tmp.replace(local)
        return local


async def execute(run: StepContext, step: Step) -> str:
    """Free space, then the snapshot commands; its journal note."""
    outputs: list[str] = []

    async def command(node: str, c: Command) -> CommandResult:
        return await run.commands.run(step, node, c, outputs)

    snapshotter = EtcdSnapshotter(run.transport, command, copy_to=run.options.etcd_snapshot_dir,
                                  timeout=run.options.command_timeout)
    try:
        return await snapshotter.take(step)
    except SnapshotFailed as e:
        raise StepFailed(e.message, tail("\n".join(outputs))) from None


async def _snapshot_file(live: Live, want: ExpectValue) -> object:
    """`want` when that file on the node is not empty, else None."""
    name = live.step.node
    if name is None or not isinstance(want, str):
        return None
    try:
        result = await live.facts.transport.run(name, ("test", "-s", want), sudo=True,
                                                timeout=live.facts.timeout)
    except TransportError as e:
        return f"unreadable ({e})"
    return want if result.ok else None


READS = (ExpectReader(ExpectKey.ETCD_SNAPSHOT, "file", _snapshot_file),)
