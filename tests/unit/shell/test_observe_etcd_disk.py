"""The etcd disk facts of the per-node facts command: `df` of etcd's data directory and the size
of its database file, parsed into NodeHost (None where the node printed nothing)."""

from __future__ import annotations

from kubehop.model.cluster import OsFamily
from kubehop.shell.observe.host import parse_host
from kubehop.shell.observe.nodes import facts_command

BASE = {"kubelet-env": [], "cgroup": ["cgroup2fs"]}


def test_a_control_plane_reports_free_bytes_and_the_database_size():
    host = parse_host({**BASE, "etcd-free": ["        Avail", " 214748364800"],
                       "etcd-db": ["66560"]})
    assert host is not None
    assert (host.etcd_free, host.etcd_db) == (214748364800, 66560)


def test_a_worker_or_an_unreadable_database_leaves_them_unknown():
    # A worker has no /var/lib/etcd: df and stat printed only to stderr (/dev/null).
    worker = parse_host({**BASE, "etcd-free": [], "etcd-db": []})
    assert worker is not None
    assert (worker.etcd_free, worker.etcd_db) == (None, None)
    # stat without root: the data directory is 0700, only df answered.
    no_root = parse_host({**BASE, "etcd-free": ["Avail", "1048576"], "etcd-db": [""]})
    assert no_root is not None
    assert (no_root.etcd_free, no_root.etcd_db) == (1048576, None)
    header_only = parse_host({**BASE, "etcd-free": ["Avail"], "etcd-db": ["4.0K"]})
    assert header_only is not None
    assert (header_only.etcd_free, header_only.etcd_db) == (None, None)


def test_the_facts_command_asks_df_and_stat_the_database_as_root_without_prompting():
    for family in OsFamily:
        line = facts_command(family)
        assert "df --output=avail -B1 /var/lib/etcd" in line
        assert ("sudo -n stat -c %s /var/lib/etcd/member/snap/db 2>/dev/null || "
                "stat -c %s /var/lib/etcd/member/snap/db") in line
