"""`systemctl` (the kubelet unit) and the Kubernetes binaries that only report versions on a
node (`kubelet --version`, `kubectl version --client`, `crictl`). Messages and exit codes follow
systemd and the real binaries; kubectl on a node has no kubeconfig, as after a plain install."""

from __future__ import annotations

import fnmatch
import json

from kubehop.lab.node.config import kube_version_of
from kubehop.lab.node.host import Proc, Tool
from kubehop.lab.node.system import installed, not_found


def _version_info(version: str) -> dict[str, str]:
    core = version.lstrip("v").split(".")
    return {"major": core[0], "minor": core[1], "gitVersion": version,
            "gitCommit": "8a4a6f8a4b3e0b3a1c1b6e8f0e5d4c3b2a1f0e9d", "gitTreeState": "clean",
            "buildDate": "2024-04-16T15:03:34Z", "goVersion": "go1.22.2", "compiler": "gc",
            "platform": "linux/amd64"}


async def kubelet(p: Proc) -> int:
    if not installed(p, "kubelet"):
        return not_found(p)
    version = kube_version_of(p.host.db.version("kubelet"))
    if "--version" in p.argv or "version" in p.argv:
        p.out(f"Kubernetes {version}\n")
        return 0
    p.err("E0101 00:00:00.000000    4242 run.go:74] \"command failed\" err=\"failed to listen on "
          "0.0.0.0:10250: listen tcp 0.0.0.0:10250: bind: address already in use\"\n")
    return 1


async def kubectl(p: Proc) -> int:
    if not installed(p, "kubectl"):
        return not_found(p)
    version = kube_version_of(p.host.db.version("kubectl")) or "v0.0.0"
    args = p.argv[1:]
    if args[:1] == ["version"] and "--short" in args:
        p.err("error: unknown flag: --short\nSee 'kubectl version --help' for usage.\n")
        return 1
    if args[:1] == ["version"] and "--client" in args:
        output = next((a.split("=", 1)[1] for a in args if a.startswith(("-o=", "--output="))),
                      args[args.index("-o") + 1] if "-o" in args[:-1] else None)
        kustomize = "v5.0.4-0.20230601165947-6ce0bf390ce3"
        if output == "json":
            p.out(json.dumps({"clientVersion": _version_info(version),
                              "kustomizeVersion": kustomize}, indent=2) + "\n")
        elif output == "yaml":
            info = _version_info(version)
            p.out("clientVersion:\n" + "".join(f"  {k}: {v}\n" for k, v in sorted(info.items()))
                  + f"kustomizeVersion: {kustomize}\n")
        else:
            p.out(f"Client Version: {version}\nKustomize Version: {kustomize}\n")
        return 0
    if any(a.startswith("--kubeconfig") for a in args):
        ip = p.host.cluster.endpoint_ip(p.host.name)
        p.err(f"Unable to connect to the server: dial tcp {ip}:6443: i/o timeout\n")
        return 1
    p.err("The connection to the server localhost:8080 was refused - did you specify the right "
          "host or port?\n")
    return 1


async def crictl(p: Proc) -> int:
    if not installed(p, "crictl"):
        return not_found(p)
    args = p.argv[1:]
    if "--version" in args or args[:1] == ["-v"]:
        version = (p.host.db.version("cri-tools") or "1.28.0-1.1").split("-")[0]
        p.out(f"crictl version v{version}\n")
        return 0
    if not p.root:
        p.err('time="2024-01-01T00:00:00Z" level=fatal msg="validate service connection: '
              'validate CRI v1 runtime API for endpoint \\"unix:///var/run/containerd/'
              'containerd.sock\\": rpc error: code = Unavailable desc = connection error: '
              'desc = \\"transport: Error while dialing: dial unix /var/run/containerd/'
              'containerd.sock: connect: permission denied\\""\n')
        return 1
    if args[:1] in (["ps"], ["pods"]):
        p.out("CONTAINER           IMAGE               CREATED             STATE"
              "               NAME                      ATTEMPT             POD ID"
              "              POD\n")
        for comp, pod in sorted(p.host.kubelet.static.running.items()):
            if pod.running and (not args[1:] or any(fnmatch.fnmatch(comp, a) for a in args[1:]
                                                    if not a.startswith("-"))):
                cid = pod.hash[:13]
                p.out(f"{cid}       {pod.image.rsplit(':', 1)[-1]:<19} About a minute ago  "
                      f"Running             {comp:<25} 0                   {pod.hash[13:26]}"
                      f"       {comp}-{p.host.name}\n")
        return 0
    p.err(f"crictl: unknown command \"{args[0] if args else ''}\"\n")
    return 1


async def systemctl(p: Proc) -> int:
    args = [a for a in p.argv[1:] if not a.startswith("-")]
    quiet = "-q" in p.argv or "--quiet" in p.argv
    if not args:
        return 0
    verb, units = args[0], [u.removesuffix(".service") for u in args[1:]]
    kubelet = p.host.kubelet
    if verb in ("daemon-reload", "daemon-reexec"):
        if not p.root:
            p.err("Failed to reload daemon: Interactive authentication required.\n")
            return 1
        return 0
    known = {"kubelet", "containerd", "ssh", "sshd", "systemd-resolved"}
    for unit in units:
        if unit not in known:
            if verb in ("is-active", "is-enabled"):
                if not quiet:
                    p.out("inactive\n")
                return 3 if verb == "is-active" else 1
            p.err(f"Failed to {verb} {unit}.service: Unit {unit}.service not found.\n")
            return 5
    if verb in ("is-active", "status", "is-enabled", "show"):
        for unit in units:
            active = kubelet.active if unit == "kubelet" else True
            if verb == "is-active" and not quiet:
                p.out(("active" if active else "inactive") + "\n")
            elif verb == "is-enabled" and not quiet:
                p.out("enabled\n")
            elif verb == "status":
                p.out(f"● {unit}.service\n     Loaded: loaded (/lib/systemd/system/{unit}.service;"
                      f" enabled; vendor preset: enabled)\n     Active: "
                      + ("active (running)" if active else "inactive (dead)") + "\n")
            if not active:
                return 3
        return 0
    if verb in ("restart", "start", "stop", "reload", "try-restart", "reload-or-restart",
                "enable", "disable"):
        if not p.root:
            p.err(f"Failed to {verb} {' '.join(u + '.service' for u in units)}: Interactive "
                  "authentication required.\nSee system logs and 'systemctl status "
                  f"{units[0] if units else ''}.service' for details.\n")
            return 1
        if "kubelet" in units:
            if verb == "stop":
                kubelet.stop()
            elif verb in ("restart", "reload-or-restart") or (
                    verb in ("start", "try-restart") and (verb == "start") != kubelet.active):
                kubelet.restart()
        return 0
    p.err(f"Unknown command verb {verb}.\n")
    return 1


TOOLS_SERVICES: dict[str, Tool] = {
    "kubelet": kubelet, "kubectl": kubectl, "crictl": crictl, "systemctl": systemctl,
}
