"""The etcd snapshot step against the lab's nodes: through the etcd container's etcdctl, verified
with etcdutl, kept under /var/lib/kubehop/etcd-snapshots, copied back on request; a full disk
stops it before anything is written."""

from __future__ import annotations

import time

import pytest

from kubehop.core.steps.etcd_snapshot import commands as etcd_snapshot_commands
from kubehop.core.steps.etcd_snapshot import etcd_snapshot_path
from kubehop.lab.fixtures.specs import oldversion_spec
from kubehop.model.plan import Command, Step, StepKind
from kubehop.model.versions import parse_kube_version
from kubehop.shell.steps.etcd_snapshot import EtcdSnapshotter, SnapshotFailed
from kubehop.shell.transports import CommandResult, Transport, render_command
from tests.lab.node.conftest import make_lab

CP = "oldversion1"
V = parse_kube_version("v1.29.15")
PATH = etcd_snapshot_path(V)


class AgentsTransport(Transport):
    """Commands straight to the lab's node agents (as root when `sudo`)."""

    def __init__(self, lab) -> None:
        self.lab = lab
        self.lines: list[str] = []

    async def run(self, node: str, command: Command, *, sudo: bool = False,
                  timeout: float = 300.0, stdin: str | None = None) -> CommandResult:
        line = render_command(command)
        self.lines.append(line)
        started = time.monotonic()
        r = await self.lab.agents.run(node, line, stdin=stdin or "", root=sudo)
        return CommandResult(node, line, r.exit_code, r.stdout, r.stderr,
                             time.monotonic() - started)

    async def close(self) -> None:
        return None


def snapshot_step() -> Step:
    return Step(f"1.29/{CP}/etcd-snapshot", StepKind.ETCD_SNAPSHOT, CP, str(V),
                commands=etcd_snapshot_commands(V), expect={"etcdSnapshot": PATH})


def snapshotter(transport: AgentsTransport, copy_to: str | None = None) -> EtcdSnapshotter:
    async def run(node: str, command: Command) -> CommandResult:
        return await transport.run(node, command.argv, sudo=command.sudo, stdin=command.stdin)
    return EtcdSnapshotter(transport, run, copy_to=copy_to)


@pytest.fixture
async def lab(tmp_path):
    lab = await make_lab(tmp_path, oldversion_spec())
    yield lab
    await lab.agents.stop()


async def test_the_snapshot_is_saved_in_the_etcd_container_verified_and_kept(lab, tmp_path):
    transport = AgentsTransport(lab)
    note = await snapshotter(transport, copy_to=str(tmp_path / "backups")).take(snapshot_step())
    # The lab's host has no etcdctl: the tools ran in the etcd container.
    assert any(line.startswith("crictl exec ") and " etcdctl --endpoints=https://127.0.0.1:2379"
               in line and " snapshot save /var/lib/etcd/kubehop-snapshot.db.part" in line
               for line in transport.lines)
    size = (await lab.ok(CP, f"sudo stat -c %s {PATH}")).strip()
    assert note.startswith(f"etcd snapshot {PATH}: {size} bytes, revision ")
    assert " keys, hash " in note
    assert note.endswith(f"copied to {tmp_path / 'backups' / f'{CP}-etcd-before-v1.29.15.db'}")
    local = tmp_path / "backups" / f"{CP}-etcd-before-v1.29.15.db"
    assert local.stat().st_size == int(size)
    assert local.stat().st_mode & 0o777 == 0o600
    assert (await lab.sh(CP, "test -e /var/lib/etcd/kubehop-snapshot.db.part")).exit_code == 1


async def test_the_snapshot_grows_with_the_cluster_objects(lab):
    transport = AgentsTransport(lab)
    await snapshotter(transport).take(snapshot_step())
    before = int((await lab.ok(CP, f"sudo stat -c %s {PATH}")).strip())
    for i in range(50):
        lab.store.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": f"cm{i}", "namespace": "default"}, "data": {"k": "v"}})
    await snapshotter(transport).take(snapshot_step())
    after = int((await lab.ok(CP, f"sudo stat -c %s {PATH}")).strip())
    assert after >= before + 50 * 1024


async def test_a_full_disk_stops_the_snapshot_before_anything_is_written(lab):
    lab.agents.cluster.inject("disk-full", CP, {})
    transport = AgentsTransport(lab)
    with pytest.raises(SnapshotFailed) as e:
        await snapshotter(transport).take(snapshot_step())
    assert e.value.message.startswith(f"not enough free space on node {CP} for the etcd "
                                      f"snapshot: 4.0 MiB free in /var/lib/etcd, about ")
    assert not any("snapshot save" in line for line in transport.lines)
    assert (await lab.sh(CP, f"sudo test -e {PATH}")).exit_code == 1
