"""Host facts a node's kubelet starts with (`KUBELET_EXTRA_ARGS`, the cgroup version) and the
space etcd's snapshot needs on a control plane.

Sections appended to the per-node facts command (`observe_nodes.facts_command`): the kubelet
package's environment file and the file system type of /sys/fs/cgroup, read without root; the
bytes free in etcd's data directory (`df`, no root needed) and the size of etcd's database
file, which needs root: etcd keeps its data directory 0700 (kubeadm creates it so, kubernetes/
kubernetes cmd/kubeadm/app/cmd/phases/init/etcd.go), so `stat` tries `sudo -n` (never
prompting) first. Workers and external-etcd control planes have neither: both stay None.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from kubehop.core.checks.host import ETCD_DATA_DIR, ETCD_DB_FILE
from kubehop.model.cluster import NodeHost

# The kubelet package installs its environment file here, read by the kubeadm drop-in as
# `EnvironmentFile=-...` (kubernetes/release cmd/krel/templates/latest/kubelet/kubelet.spec:
# /etc/default/kubelet for deb builds, /etc/sysconfig/kubelet for rpm).
EXTRA_ARGS_FILES = ("/etc/default/kubelet", "/etc/sysconfig/kubelet")
ENV_SECTION = "kubelet-env"
CGROUP_SECTION = "cgroup"
ETCD_FREE_SECTION = "etcd-free"
ETCD_DB_SECTION = "etcd-db"


def host_command_parts(mark: str) -> list[str]:
    """Commands for `facts_command`'s list: each file under its own marker (`==> FILE`), then
    `stat -fc %T /sys/fs/cgroup` (`cgroup2fs` on a cgroup v2 host), then the free bytes in
    etcd's data directory (`df --output=avail -B1`, GNU coreutils: a header, then the number)
    and the size of its database file (`stat -c %s`)."""
    parts = [f"echo {mark}{ENV_SECTION}"]
    for path in EXTRA_ARGS_FILES:
        parts.append(f"test -f {shlex.quote(path)} && echo '==> {path}' && cat {shlex.quote(path)}")
    parts += [f"echo {mark}{CGROUP_SECTION}", "stat -fc %T /sys/fs/cgroup"]
    data, db = shlex.quote(ETCD_DATA_DIR), shlex.quote(ETCD_DB_FILE)
    parts += [f"echo {mark}{ETCD_FREE_SECTION}", f"df --output=avail -B1 {data}",
              f"echo {mark}{ETCD_DB_SECTION}",
              f"sudo -n stat -c %s {db} 2>/dev/null || stat -c %s {db}"]
    return parts


def parse_host(sections: Mapping[str, Sequence[str]]) -> NodeHost | None:
    """The NodeHost that the sections describe; None when the node printed none of the first
    two (an older kubehop's command, or a shell that stopped early)."""
    if ENV_SECTION not in sections and CGROUP_SECTION not in sections:
        return None
    path, args = _extra_args(sections.get(ENV_SECTION, ()))
    cgroup = next((ln.strip() for ln in sections.get(CGROUP_SECTION, ()) if ln.strip()), None)
    return NodeHost(extra_args=args, extra_args_file=path, cgroup_fs=cgroup,
                    etcd_free=_last_number(sections.get(ETCD_FREE_SECTION, ())),
                    etcd_db=_last_number(sections.get(ETCD_DB_SECTION, ())))


def _last_number(lines: Sequence[str]) -> int | None:
    """The number on the last non-blank line (`df`'s `Avail` header comes first; an error went
    to /dev/null and left no line), None when there is none."""
    words = [ln.strip() for ln in lines if ln.strip()]
    return int(words[-1]) if words and words[-1].isascii() and words[-1].isdigit() else None


def _extra_args(lines: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """(the first environment file that exists, the words of its last KUBELET_EXTRA_ARGS=)."""
    files: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith("==> "):
            current = files.setdefault(line[4:].strip(), [])
        elif current is not None:
            current.append(line)
    for path in EXTRA_ARGS_FILES:
        if path in files:
            return path, env_value(files[path], "KUBELET_EXTRA_ARGS")
    return None, ()


def env_value(lines: Sequence[str], name: str) -> tuple[str, ...]:
    """The words of `name=...` in an environment file as systemd's `EnvironmentFile=` reads it
    (the last assignment wins; quotes group words; `#` starts a comment line), split as the
    unit's `$NAME` expands (on whitespace)."""
    value: str | None = None
    for raw in lines:
        line = raw.strip()
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, rest = line.partition("=")
        if sep and key.strip() == name and not line.startswith(("#", ";")):
            value = rest
    if value is None:
        return ()
    try:
        return tuple(shlex.split(value, comments=True))
    except ValueError:  # unbalanced quotes: systemd would refuse it; report the raw words
        return tuple(value.split())
