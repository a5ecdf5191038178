"""etcd's database file on the lab's control planes, as `stat` and `df` show it: the size etcd
reports (growing with the cluster's objects), root-only like kubeadm's 0700 data directory, and
what kubehop's facts command reads from it, full disk included."""

from __future__ import annotations

import json

from kubehop.lab.node.etcdctl import DISK_FREE, DISK_FULL_FREE
from kubehop.model.cluster import NodeState
from kubehop.shell.observe.nodes import node_facts

CP, WORKER = "oldversion1", "oldversion2"
DB = "/var/lib/etcd/member/snap/db"
TLS = ("--endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
       "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt "
       "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key")


class _Runner:
    """The facts command as kubehop sends it: as the login user, not root."""

    def __init__(self, lab) -> None:
        self.lab = lab

    async def run(self, node: str, command: str) -> tuple[int, str, str]:
        r = await self.lab.sh(node, command)
        return r.exit_code, r.stdout, r.stderr


async def db_size_reported(lab) -> int:
    cid = (await lab.ok(CP, "sudo crictl ps --name '^etcd$' -q")).split()[0]
    out = await lab.ok(CP, f"sudo crictl exec {cid} etcdctl {TLS} endpoint status -w json")
    return int(json.loads(out)[0]["Status"]["dbSize"])


async def test_the_database_file_has_the_size_etcd_reports_and_grows_with_objects(lab):
    before = int(await lab.ok(CP, f"sudo stat -c %s {DB}"))
    assert before == await db_size_reported(lab)
    for i in range(20):
        lab.store.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": f"cm{i}", "namespace": "default"}, "data": {"k": "v"}})
    after = int(await lab.ok(CP, f"sudo stat -c %s {DB}"))
    assert after == await db_size_reported(lab)
    assert after >= before + 20 * 1024


async def test_the_data_directory_is_root_only_and_workers_have_no_database(lab):
    denied = await lab.sh(CP, f"stat -c %s {DB}")
    assert (denied.exit_code, denied.stdout) == (1, "")
    assert denied.stderr == f"stat: cannot stat '{DB}': Permission denied\n"
    assert await lab.ok(CP, "stat -c '%a %U' /var/lib/etcd") == "700 root\n"
    missing = await lab.sh(WORKER, f"sudo stat -c %s {DB}")
    assert missing.exit_code == 1
    assert missing.stderr == f"stat: cannot stat '{DB}': No such file or directory\n"


async def test_the_facts_command_reads_free_space_and_database_size_of_control_planes(lab):
    facts = await node_facts(_Runner(lab), NodeState(CP, os_image="Ubuntu 22.04.4 LTS"))
    assert facts.host is not None
    assert facts.host.etcd_free == DISK_FREE
    assert facts.host.etcd_db == await db_size_reported(lab)
    worker = await node_facts(_Runner(lab), NodeState(WORKER, os_image="Ubuntu 22.04.4 LTS"))
    assert worker.host is not None
    assert worker.host.etcd_db is None
    lab.agents.cluster.inject("disk-full", CP, {})
    full = await node_facts(_Runner(lab), NodeState(CP, os_image="Ubuntu 22.04.4 LTS"))
    assert full.host is not None
    assert full.host.etcd_free == DISK_FULL_FREE
