"""etcd's data on a simulated control-plane node: the size its database has (it grows with the
lab's store) and the database file that shows it.

etcd's database file, /var/lib/etcd/member/snap/db (etcd-io/etcd
server/storage/datadir/datadir.go `ToBackendFileName`), has the `dbSize` that `etcdctl endpoint
status` reports; the data directory is 0700 root (kubernetes/kubernetes
cmd/kubeadm/app/cmd/phases/init/etcd.go). Shared by `etcdctl` and `stat` (`system`).
"""

from __future__ import annotations

from kubehop.lab.node.host import LabNode

EMPTY_DB = 20480  # an empty bolt database: five 4 KiB pages
BYTES_PER_OBJECT = 1024
DATA_DIR = "/var/lib/etcd"
DB_FILE = f"{DATA_DIR}/member/snap/db"


def db_stats(host: LabNode) -> tuple[int, int, int]:
    """(revision, keys, database bytes) of the lab's store now."""
    store = host.store
    keys = sum(store.count(r) for r in store.resources())
    return store.resource_version, keys, EMPTY_DB + BYTES_PER_OBJECT * keys


def sync_db_file(host: LabNode) -> None:
    """Give etcd's database file on a control plane the size etcd reports now (sparse: the
    size without the bytes, so a 5,000-node lab costs no disk)."""
    if not host.setup.control_plane:
        return
    path = host.fs.host(DB_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as f:
        f.truncate(db_stats(host)[2])
