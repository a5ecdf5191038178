"""`systemctl` (the kubelet unit and transient units), `systemd-run`, and the Kubernetes
binaries that only report versions on a node (`kubelet --version`, `kubectl version --client`,
`crictl`). Messages and exit codes follow systemd and the real binaries; kubectl on a node has
no kubeconfig, as after a plain install.

`systemd-run --unit=NAME [-r] -- CMD…` starts CMD as a transient service in the background,
detached from the session that asked (systemd/systemd src/run/run.c): it outlives a dropped SSH
connection, `systemctl show NAME` reports its state (ActiveState, SubState, Result,
ExecMainStatus, InvocationID), `systemctl stop NAME` kills it, and `systemctl reset-failed
NAME` forgets a failed one. Its output goes to the journal (services' default StandardOutput),
read with `journalctl -o cat _SYSTEMD_INVOCATION_ID=ID` or `journalctl -u NAME`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import shlex
import uuid
import weakref
from dataclasses import dataclass, field

from kubehop.lab.node.config import kube_version_of
from kubehop.lab.node.host import LabNode, Proc, TextStdin, Tool
from kubehop.lab.node.shell import Interpreter
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
    raw = p.argv[1:]
    args = [a for i, a in enumerate(raw)
            if not a.startswith("-") and (i == 0 or raw[i - 1] not in ("-p", "--property"))]
    quiet = "-q" in p.argv or "--quiet" in p.argv
    if not args:
        return 0
    verb, units = args[0], [u.removesuffix(".service") for u in args[1:]]
    kubelet = p.host.kubelet
    transient = _units(p.host)
    if units and all(u in transient or u.startswith(TRANSIENT_PREFIXES) for u in units):
        return _transient(p, verb, units, quiet)
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


# --- transient units (systemd-run) -------------------------------------------------------------

# Unit names kubehop gives its transient units: systemctl answers for them even once unloaded.
TRANSIENT_PREFIXES = ("kubehop-", "run-")


@dataclass(eq=False)
class Unit:
    """A transient service: its command, its output (the journal) and how it ended."""

    name: str
    argv: list[str]
    remain: bool  # RemainAfterExit=yes: stays loaded, "active (exited)", after success
    status: int | None = None  # exit status once it ended
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    invocation: str = field(default_factory=lambda: uuid.uuid4().hex)
    journal: list[str] = field(default_factory=list)  # stdout and stderr, as written

    def states(self) -> dict[str, str]:
        if self.status is None:
            active, sub, result = "active", "running", "success"
        elif self.status == 0:
            active, sub, result = "active", "exited", "success"
        else:
            active, sub, result = "failed", "failed", "exit-code"
        return {"Id": f"{self.name}.service", "LoadState": "loaded", "ActiveState": active,
                "SubState": sub, "Result": result,
                "ExecMainStatus": str(self.status or 0),
                "ExecMainCode": "0" if self.status is None else "1",
                "InvocationID": self.invocation}


_UNITS: weakref.WeakKeyDictionary[LabNode, dict[str, Unit]] = weakref.WeakKeyDictionary()
# Every unit ever started on a node, for journalctl (the journal outlives unloaded units).
_JOURNAL: weakref.WeakKeyDictionary[LabNode, list[Unit]] = weakref.WeakKeyDictionary()
_UNLOADED = {"LoadState": "not-found", "ActiveState": "inactive", "SubState": "dead",
             "Result": "success", "ExecMainStatus": "0", "ExecMainCode": "0",
             "InvocationID": ""}


def _units(host: LabNode) -> dict[str, Unit]:
    return _UNITS.setdefault(host, {})


def running_units(host: LabNode) -> list[str]:
    """The transient units whose process still runs on `host` (for tests and the lab)."""
    return sorted(n for n, u in _units(host).items() if u.status is None)


async def _run_unit(host: LabNode, unit: Unit) -> None:
    out = unit.journal.append
    try:
        code = await Interpreter(host, host.tools).run(shlex.join(unit.argv), stdin=TextStdin(),
                                                  out=out, err=out, root=True)
    except Exception as e:  # a crash of the simulated tool: the unit fails as a crashed process
        out(f"{unit.argv[0]}: {type(e).__name__}: {e}\n")
        code = 2
    unit.status = code
    if code == 0 and not unit.remain:
        _units(host).pop(unit.name, None)  # a finished transient unit is garbage-collected


async def systemd_run(p: Proc) -> int:
    """`systemd-run [--unit=N] [-p K=V]… [-r] [-q] [--] CMD…` (system manager, no --wait)."""
    args = p.argv[1:]
    name, remain, quiet = None, False, False
    props: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-"):
        a = args[i]
        if a == "--":
            i += 1
            break
        value = None
        if a in ("--unit", "-u", "-p", "--property", "--description", "--service-type",
                 "--setenv", "-E", "--uid", "--gid", "--nice", "--working-directory"):
            value = args[i + 1] if i + 1 < len(args) else ""
            i += 1
        elif "=" in a:
            a, value = a.split("=", 1)
        if a in ("--unit", "-u"):
            name = (value or "").removesuffix(".service")
        elif a in ("-p", "--property"):
            props.append(value or "")
        elif a in ("-r", "--remain-after-exit"):
            remain = True
        elif a in ("-q", "--quiet"):
            quiet = True
        elif a in ("--user", "--scope", "--wait", "-t", "--pty", "-P", "--pipe"):
            p.err(f"systemd-run: {a} is not simulated by the lab\n")
            return 1
        i += 1
    argv = args[i:]
    if not argv:
        p.err("Command line to execute required.\n")
        return 1
    for prop in props:
        key, _, value = prop.partition("=")
        if key == "RemainAfterExit":
            remain = value.lower() in ("yes", "true", "1", "on")
    if not p.root:
        p.err("Failed to start transient service unit: Interactive authentication required.\n")
        return 1
    units = _units(p.host)
    name = name or f"run-u{len(units) + 1}"
    if name in units:
        p.err(f"Failed to start transient service unit: Unit {name}.service was already loaded "
              "or has a fragment file.\n")
        return 1
    unit = Unit(name, argv, remain)
    units[name] = unit
    _JOURNAL.setdefault(p.host, []).append(unit)
    unit.task = p.host.cluster.spawn(_run_unit(p.host, unit))
    if not quiet:
        p.err(f"Running as unit: {name}.service\n")
    return 0


def _transient(p: Proc, verb: str, names: list[str], quiet: bool) -> int:
    """systemctl for transient units: show, is-active, status, stop, reset-failed."""
    units = _units(p.host)
    if verb in ("stop", "reset-failed", "kill") and not p.root:
        p.err(f"Failed to {verb} {names[0]}.service: Interactive authentication required.\n")
        return 1
    status = 0
    for name in names:
        unit = units.get(name)
        states = unit.states() if unit is not None else dict(_UNLOADED, Id=f"{name}.service")
        if verb == "show":
            wanted = [w for a in _property_args(p.argv[1:]) for w in a.split(",") if w]
            keys = wanted or list(states)
            values = "--value" in p.argv
            for key in keys:
                value = states.get(key, "")
                p.out(f"{value}\n" if values else f"{key}={value}\n")
        elif verb == "is-active":
            if not quiet:
                p.out(states["ActiveState"] + "\n")
            status = status or (0 if states["ActiveState"] == "active" else 3)
        elif verb == "status":
            if unit is None:
                p.err(f"Unit {name}.service could not be found.\n")
                return 4
            p.out(f"● {name}.service - /usr/bin/{shlex.join(unit.argv)}\n     Loaded: loaded "
                  f"(/run/systemd/transient/{name}.service; transient)\n     Active: "
                  f"{states['ActiveState']} ({states['SubState']})\n")
            status = status or (0 if states["ActiveState"] == "active" else 3)
        elif verb in ("stop", "kill"):
            if unit is not None and unit.task is not None and unit.status is None:
                unit.task.cancel()  # SIGTERM: the process dies where it is
                unit.status = 143
            if unit is not None and verb == "stop":
                units.pop(name, None)
        elif verb == "reset-failed":
            if unit is not None and unit.status not in (None, 0):
                units.pop(name, None)
        else:
            p.err(f"Unknown command verb {verb}.\n")
            return 1
    return status


def _property_args(args: list[str]) -> list[str]:
    out = []
    for i, a in enumerate(args):
        if a in ("-p", "--property") and i + 1 < len(args):
            out.append(args[i + 1])
        elif a.startswith("--property="):
            out.append(a.split("=", 1)[1])
        elif a.startswith("-p") and len(a) > 2:
            out.append(a[2:])
    return out


async def journalctl(p: Proc) -> int:
    """`journalctl [-u UNIT] [_SYSTEMD_INVOCATION_ID=ID] [-o cat] [--no-pager] [-q]`: the
    transient units' output (the lab keeps no other journal)."""
    args = p.argv[1:]
    units: set[str] = set()
    invocations: set[str] = set()
    for i, a in enumerate(args):
        if a in ("-u", "--unit") and i + 1 < len(args):
            units.add(args[i + 1].removesuffix(".service"))
        elif a.startswith("--unit="):
            units.add(a.split("=", 1)[1].removesuffix(".service"))
        elif a.startswith("_SYSTEMD_INVOCATION_ID="):
            invocations.add(a.split("=", 1)[1])
    quiet = "-q" in args or "--quiet" in args
    text = "".join("".join(u.journal) for u in _JOURNAL.get(p.host, [])
                   if (not units or u.name in units)
                   and (not invocations or u.invocation in invocations)) if p.root else ""
    if not p.root and not quiet:
        p.err("Hint: You are currently not seeing messages from other users and the system.\n"
              "      Users in groups 'adm', 'systemd-journal' can see all messages.\n"
              "      Pass -q to turn off this notice.\n")
    p.out(text or ("" if quiet else "-- No entries --\n"))
    return 0


TOOLS_SERVICES: dict[str, Tool] = {
    "kubelet": kubelet, "kubectl": kubectl, "crictl": crictl, "systemctl": systemctl,
    "systemd-run": systemd_run, "journalctl": journalctl,
}
