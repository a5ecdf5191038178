"""Host facts a node's kubelet starts with: `KUBELET_EXTRA_ARGS` and the cgroup version.

Two sections appended to the per-node facts command (`observe_nodes.facts_command`), read without
root: the kubelet package's environment file and the file system type of /sys/fs/cgroup.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from kubehop.model.cluster import NodeHost

# The kubelet package installs its environment file here, read by the kubeadm drop-in as
# `EnvironmentFile=-...` (kubernetes/release cmd/krel/templates/latest/kubelet/kubelet.spec:
# /etc/default/kubelet for deb builds, /etc/sysconfig/kubelet for rpm).
EXTRA_ARGS_FILES = ("/etc/default/kubelet", "/etc/sysconfig/kubelet")
ENV_SECTION = "kubelet-env"
CGROUP_SECTION = "cgroup"


def host_command_parts(mark: str) -> list[str]:
    """Commands for `facts_command`'s list: each file under its own marker (`==> FILE`), then
    `stat -fc %T /sys/fs/cgroup` (`cgroup2fs` on a cgroup v2 host)."""
    parts = [f"echo {mark}{ENV_SECTION}"]
    for path in EXTRA_ARGS_FILES:
        parts.append(f"test -f {shlex.quote(path)} && echo '==> {path}' && cat {shlex.quote(path)}")
    parts += [f"echo {mark}{CGROUP_SECTION}", "stat -fc %T /sys/fs/cgroup"]
    return parts


def parse_host(sections: Mapping[str, Sequence[str]]) -> NodeHost | None:
    """The NodeHost that the two sections describe; None when the node printed neither (an
    older kubehop's command, or a shell that stopped early)."""
    if ENV_SECTION not in sections and CGROUP_SECTION not in sections:
        return None
    path, args = _extra_args(sections.get(ENV_SECTION, ()))
    cgroup = next((ln.strip() for ln in sections.get(CGROUP_SECTION, ()) if ln.strip()), None)
    return NodeHost(extra_args=args, extra_args_file=path, cgroup_fs=cgroup)


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
