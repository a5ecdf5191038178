"""etcd's command-line tools as a kubeadm node has them: inside the etcd static pod's container,
reached with `crictl exec` (the host has no etcdctl); plus `df` and `base64` on the host.

- `crictl exec ID CMD…` runs CMD in the running static pod whose container id is ID (the
  first 13 characters of its hash, as `crictl ps` shows); the etcd image ships etcdctl and
  etcdutl and mounts /var/lib/etcd and /etc/kubernetes/pki/etcd (kubernetes/kubernetes
  cmd/kubeadm/app/phases/etcd/local.go). `crictl ps --name RE [-q] [--state running]`
  filters by name (cri-tools cmd/crictl/container.go); every other use goes to the
  services' crictl.
- `etcdctl --endpoints=… --cacert --cert --key snapshot save PATH` writes a snapshot whose size
  grows with the objects of the lab's store (a 20480-byte empty bolt database plus about
  1 KiB per object); `endpoint status -w json` reports that size as `dbSize` (etcd-io/etcd
  etcdctl/ctlv3/command/printer_json.go). Without the client certificate flags it fails as
  etcdctl does against a TLS-only etcd.
- `etcdutl snapshot status PATH -w json`: `{"hash","revision","totalKey","totalSize",
  "version"}` (etcd-io/etcd etcdutl/snapshot/v3_snapshot.go `Status`).
- `df --output=avail -B1 PATH` and `base64 [-w0] PATH` (GNU coreutils).
- etcd's database file, /var/lib/etcd/member/snap/db on a control plane (etcd-io/etcd
  server/storage/datadir/datadir.go `ToBackendFileName`), has the `dbSize` that `endpoint
  status` reports: `sync_db_file` sets it (a sparse file) before `stat` or etcdctl read it.
  The data directory is 0700 root (kubeadm creates it so, kubernetes/kubernetes
  cmd/kubeadm/app/cmd/phases/init/etcd.go): `stat` below it needs root.

Fault `disk-full` on a node: `df` shows 4 MiB available and `snapshot save` fails with etcd's
"no space left on device".
"""

from __future__ import annotations

import json
import re
import zlib

from kubehop.lab.node.etcd_data import db_stats, sync_db_file
from kubehop.lab.node.host import Proc, Tool
from kubehop.lab.node.services import crictl as services_crictl

DISK_FREE = 200 * 1024 ** 3  # bytes free on a healthy lab node
DISK_FULL_FREE = 4 * 1024 ** 2
ETCD_VERSION = "3.5.12"
_MAGIC = "lab-etcd-snapshot"
_CONTAINER_TOOLS = ("etcdctl", "etcdutl")


def _disk_full(p: Proc) -> bool:
    return ("disk-full", p.host.name) in p.host.cluster.faults


def _flag(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
        if a == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
    return None


def _positional(args: list[str]) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in ("-w", "--write-out", "--cacert", "--cert", "--key", "--endpoints"):
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


async def etcdctl(p: Proc) -> int:
    args = p.argv[1:]
    words = _positional(args)
    if not all(_flag(args, f) for f in ("cacert", "cert", "key")):
        # etcd serves clients over TLS only (kubeadm's --client-cert-auth=true).
        p.err('{"level":"warn","msg":"retrying of unary invoker failed","error":"rpc error: '
              'code = DeadlineExceeded desc = latest balancer error: last connection error: '
              'connection error: desc = \\"error reading server preface: EOF\\""}\n'
              "Error: context deadline exceeded\n")
        return 1
    revision, keys, size = db_stats(p.host)
    sync_db_file(p.host)
    if words[:2] == ["snapshot", "save"] and len(words) == 3:
        path = words[2]
        if _disk_full(p):
            p.err(f"Error: could not write snapshot to {path}.part: write {path}.part: no space "
                  f"left on device\n")
            return 5
        header = json.dumps({_MAGIC: 1, "revision": revision, "totalKey": keys,
                             "version": ETCD_VERSION}, sort_keys=True)
        body = header + "\n" + "." * max(0, size - len(header) - 2) + "\n"
        p.host.fs.write(p.path(path), body, root=p.root)
        p.out(f"Snapshot saved at {path}\n")
        return 0
    if words[:2] == ["endpoint", "status"]:
        endpoint = _flag(args, "endpoints") or "127.0.0.1:2379"
        p.out(json.dumps([{"Endpoint": endpoint, "Status": {
            "header": {"cluster_id": 1, "member_id": 1, "revision": revision, "raft_term": 2},
            "version": ETCD_VERSION, "dbSize": size, "leader": 1, "raftIndex": revision,
            "raftTerm": 2, "raftAppliedIndex": revision, "dbSizeInUse": size}}]) + "\n")
        return 0
    p.err(f"Error: unknown command {' '.join(words[:2])!r} for \"etcdctl\"\n")
    return 1


async def etcdutl(p: Proc) -> int:
    words = _positional(p.argv[1:])
    if words[:2] != ["snapshot", "status"] or len(words) != 3:
        p.err(f"Error: unknown command {' '.join(words[:2])!r} for \"etcdutl\"\n")
        return 1
    path = p.path(words[2])
    if not p.host.fs.is_file(path):
        p.err(f"Error: stat {words[2]}: no such file or directory\n")
        return 1
    text = p.host.fs.read(path, root=p.root)
    try:
        header = json.loads(text.split("\n", 1)[0])
        assert header[_MAGIC] == 1
    except (ValueError, KeyError, AssertionError):
        p.err("Error: snapshot file integrity check failed\n")
        return 1
    p.out(json.dumps({"hash": zlib.crc32(text.encode()), "revision": header["revision"],
                      "totalKey": header["totalKey"], "totalSize": len(text.encode()),
                      "version": header["version"]}) + "\n")
    return 0


async def crictl(p: Proc) -> int:
    args = p.argv[1:]
    if args[:1] == ["exec"] and p.root:
        rest = [a for a in args[1:] if a not in ("-i", "-t", "-it")]
        if len(rest) < 2:
            p.err('time="2024-01-01T00:00:00Z" level=fatal msg="ID cannot be empty"\n')
            return 1
        cid, argv = rest[0], rest[1:]
        pods = p.host.kubelet.static.running
        comp = next((c for c, pod in pods.items() if pod.running and pod.hash[:13] == cid),
                    None)
        if comp is None:
            p.err(f'time="2024-01-01T00:00:00Z" level=fatal msg="execing command in container: '
                  f'rpc error: code = NotFound desc = an error occurred when try to find '
                  f'container \\"{cid}\\": not found"\n')
            return 1
        if comp != "etcd" or argv[0] not in _CONTAINER_TOOLS:
            p.err(f'time="2024-01-01T00:00:00Z" level=fatal msg="execing command in container: '
                  f'OCI runtime exec failed: exec failed: unable to start container process: '
                  f'exec: \\"{argv[0]}\\": executable file not found in $PATH"\n')
            return 1
        inner = Proc(p.host, argv, p.stdin, p.write_out, p.write_err, True)
        return await TOOLS_ETCD_IN_CONTAINER[argv[0]](inner)
    if args[:1] == ["ps"] and p.root and ("-q" in args or "--name" in args):
        name = _flag(args, "name")
        for comp, pod in sorted(p.host.kubelet.static.running.items()):
            if pod.running and (name is None or re.search(name, comp)):
                p.out(f"{pod.hash[:13]}\n" if "-q" in args else f"{pod.hash[:13]} {comp}\n")
        return 0
    return await services_crictl(p)


async def df(p: Proc) -> int:
    args = p.argv[1:]
    paths = [a for a in args if not a.startswith("-")]
    if "--output=avail" not in args or "-B1" not in args:
        p.err("df: this lab node answers only `df --output=avail -B1 PATH`\n")
        return 1
    p.out("    Avail\n")
    for path in paths or ["/"]:
        if not p.host.fs.exists(p.path(path)):
            p.err(f"df: {path}: No such file or directory\n")
            return 1
        p.out(f"{DISK_FULL_FREE if _disk_full(p) else DISK_FREE}\n")
    return 0


async def base64_tool(p: Proc) -> int:
    import base64

    files = [a for a in p.argv[1:] if not a.startswith("-")]
    if len(files) != 1 or not p.host.fs.is_file(p.path(files[0])):
        p.err(f"base64: {files[0] if files else '-'}: No such file or directory\n")
        return 1
    data = base64.b64encode(p.host.fs.read_bytes(p.path(files[0]), root=p.root)).decode()
    p.out(data if "-w0" in p.argv else "\n".join(data[i:i + 76]
                                                for i in range(0, len(data), 76)) + "\n")
    return 0


TOOLS_ETCD_IN_CONTAINER: dict[str, Tool] = {"etcdctl": etcdctl, "etcdutl": etcdutl}
TOOLS_ETCD: dict[str, Tool] = {"crictl": crictl, "df": df, "base64": base64_tool}
