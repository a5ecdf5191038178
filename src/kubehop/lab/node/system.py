"""Everyday node commands: files (`cat`, `tee`, `cp`, `mv`, `rm`, `mkdir`, `touch`, `ls`,
`test`), text (`echo`, `printf`, `grep`, `head`, `tail`, `wc`), identity (`uname`, `hostname`,
`id`, `whoami`, `which`), `stat`, `sleep`, `date`. Messages and exit codes follow GNU coreutils;
`which` finds only the commands the node's OS ships (`FAMILY_TOOLS`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from kubehop.lab.node.etcd_data import DATA_DIR, sync_db_file
from kubehop.lab.node.fs import FsError
from kubehop.lab.node.host import LabNode, Proc, Tool


def _split_flags(args: list[str]) -> tuple[set[str], list[str]]:
    flags, rest = set(), []
    for a in args:
        if a.startswith("-") and len(a) > 1 and not rest:
            flags.update(a[1:] if not a.startswith("--") else [a[2:]])
        else:
            rest.append(a)
    return flags, rest


async def echo(p: Proc) -> int:
    args, newline = p.argv[1:], True
    while args and args[0] in ("-n", "-e", "-E", "-ne", "-en"):
        newline = newline and "n" not in args[0]
        args = args[1:]
    p.out(" ".join(args) + ("\n" if newline else ""))
    return 0


async def printf(p: Proc) -> int:
    if len(p.argv) < 2:
        p.err("printf: usage: printf [-v var] format [arguments]\n")
        return 2
    fmt = p.argv[1].replace("\\n", "\n").replace("\\t", "\t")
    args = p.argv[2:]
    values = iter(args)
    wants = len([m for m in _PRINTF_SPEC.findall(fmt) if m != "%"])

    def one(m: re.Match[str]) -> str:
        if m.group(1) == "%":
            return "%"
        return next(values, "0" if m.group(1) == "d" else "")

    out = _PRINTF_SPEC.sub(one, fmt)
    used = wants
    while wants and used < len(args):  # bash reuses the format while arguments remain
        out += _PRINTF_SPEC.sub(one, fmt)
        used += wants
    p.out(out)
    return 0


_PRINTF_SPEC = re.compile(r"%([%sd])")


async def cat(p: Proc) -> int:
    _, files = _split_flags(p.argv[1:])
    if not files:
        p.out(await p.read_stdin())
        return 0
    status = 0
    for f in files:
        try:
            p.out(p.host.fs.read(p.path(f), root=p.root))
        except FsError as e:
            p.err(f"cat: {f}: {e.reason}\n")
            status = 1
    return status


async def tee(p: Proc) -> int:
    flags, files = _split_flags(p.argv[1:])
    text = await p.read_stdin()
    status = 0
    for f in files:
        try:
            p.host.fs.write(p.path(f), text, root=p.root, append="a" in flags or "append" in flags)
        except FsError as e:
            p.err(f"tee: {f}: {e.reason}\n")
            status = 1
    p.out(text)
    return status


async def cp(p: Proc) -> int:
    _, args = _split_flags(p.argv[1:])
    if len(args) < 2:
        p.err("cp: missing destination file operand\n")
        return 1
    fs, dst = p.host.fs, p.path(args[-1])
    status = 0
    for src in args[:-1]:
        if not fs.exists(p.path(src)):
            p.err(f"cp: cannot stat '{src}': No such file or directory\n")
            status = 1
            continue
        try:
            fs.copy(p.path(src), dst, root=p.root)
        except FsError as e:
            verb = "open" if e.reason == "Permission denied" and e.path == p.path(src) else "create"
            p.err(f"cp: cannot {verb} regular file '{args[-1]}': {e.reason}\n")
            status = 1
    return status


async def mv(p: Proc) -> int:
    _, args = _split_flags(p.argv[1:])
    if len(args) != 2:
        p.err("mv: missing destination file operand\n")
        return 1
    try:
        p.host.fs.move(p.path(args[0]), p.path(args[1]), root=p.root)
    except FsError as e:
        p.err(f"mv: cannot move '{args[0]}' to '{args[1]}': {e.reason}\n")
        return 1
    return 0


async def rm(p: Proc) -> int:
    flags, files = _split_flags(p.argv[1:])
    force = bool({"f", "rf", "fr", "force"} & flags) or any("f" in f for f in flags)
    recursive = any("r" in f or "R" in f for f in flags)
    status = 0
    for f in files:
        try:
            p.host.fs.remove(p.path(f), recursive=recursive, root=p.root)
        except FsError as e:
            if force and e.reason == "No such file or directory":
                continue
            p.err(f"rm: cannot remove '{f}': {e.reason}\n")
            status = 1
    return status


async def mkdir(p: Proc) -> int:
    flags, dirs = _split_flags(p.argv[1:])
    parents = any("p" in f for f in flags)
    status = 0
    for d in dirs:
        path = p.path(d)
        if p.host.fs.exists(path) and not parents:
            p.err(f"mkdir: cannot create directory '{d}': File exists\n")
            status = 1
            continue
        try:
            p.host.fs.mkdir(path, parents=parents, root=p.root)
        except FsError as e:
            p.err(f"mkdir: cannot create directory '{d}': {e.reason}\n")
            status = 1
    return status


async def touch(p: Proc) -> int:
    _, files = _split_flags(p.argv[1:])
    status = 0
    for f in files:
        path = p.path(f)
        try:
            if not p.host.fs.exists(path):
                p.host.fs.write(path, "", root=p.root)
        except FsError as e:
            p.err(f"touch: cannot touch '{f}': {e.reason}\n")
            status = 1
    return status


async def ls(p: Proc) -> int:
    _, paths = _split_flags(p.argv[1:])
    status = 0
    for path in paths or [p.cwd]:
        try:
            names = p.host.fs.listdir(p.path(path))
        except FsError:
            p.err(f"ls: cannot access '{path}': No such file or directory\n")
            status = 2
            continue
        if names:
            p.out("\n".join(names) + "\n")
    return status


async def test(p: Proc) -> int:
    args = p.argv[1:]
    if p.argv[0] == "[":
        if not args or args[-1] != "]":
            p.err("bash: line 1: [: missing `]'\n")
            return 2
        args = args[:-1]
    negate = bool(args) and args[0] == "!"
    if negate:
        args = args[1:]
    fs = p.host.fs
    if len(args) == 2 and args[0] in ("-f", "-d", "-e", "-s", "-r", "-w", "-n", "-z"):
        op, arg = args
        path = p.path(arg)
        result = {
            "-f": lambda: fs.is_file(path), "-d": lambda: fs.is_dir(path),
            "-e": lambda: fs.exists(path), "-r": lambda: fs.exists(path),
            "-w": lambda: fs.exists(path) and fs.may_write(path, p.root),
            "-s": lambda: fs.is_file(path) and bool(fs.read(path)),
            "-n": lambda: bool(arg), "-z": lambda: not arg,
        }[op]()
    elif len(args) == 3 and args[1] in ("=", "==", "!="):
        result = (args[0] == args[2]) != (args[1] == "!=")
    elif len(args) == 1:
        result = bool(args[0])
    else:
        result = False
    return 0 if result != negate else 1


async def grep(p: Proc) -> int:
    args = p.argv[1:]
    flags: set[str] = set()
    while args and args[0].startswith("-") and len(args[0]) > 1:
        flags.update(args.pop(0)[1:])
    if not args:
        p.err("Usage: grep [OPTION]... PATTERNS [FILE]...\n")
        return 2
    pattern, files = args[0], args[1:]
    rx = re.compile(re.escape(pattern) if "F" in flags else pattern,
                    re.IGNORECASE if "i" in flags else 0)
    texts: list[tuple[str, str]] = []
    status = 1
    if not files:
        texts.append(("", await p.read_stdin()))
    if "r" in flags:  # -r: the files under each directory argument (GNU grep)
        files = [w for f in files for w in _walk(p, f)]
    for f in files:
        try:
            texts.append((f, p.host.fs.read(p.path(f), root=p.root)))
        except FsError as e:
            if "s" not in flags:  # -s: no messages about unreadable files
                p.err(f"grep: {f}: {e.reason}\n")
            status = 2
    found = 0
    for name, text in texts:
        for line in text.splitlines():
            if bool(rx.search(line)) != ("v" in flags):
                found += 1
                if "q" not in flags and "c" not in flags:
                    p.out((f"{name}:" if len(files) > 1 or "H" in flags else "") + line + "\n")
    if "c" in flags:
        p.out(f"{found}\n")
    return 0 if found else status


def _walk(p: Proc, path: str) -> list[str]:
    """`path`, or the files under it when it is a directory (sorted: the lab's readdir order)."""
    fs = p.host.fs
    if not fs.is_dir(p.path(path)):
        return [path]
    try:
        names = sorted(fs.listdir(p.path(path)))
    except FsError:
        return [path]
    return [w for n in names for w in _walk(p, f"{path.rstrip('/')}/{n}")]


async def head_tail(p: Proc) -> int:
    args, n = p.argv[1:], 10
    files = []
    i = 0
    while i < len(args):
        if args[i] == "-n" and i + 1 < len(args):
            n = int(args[i + 1].lstrip("+"))
            i += 2
            continue
        if re.fullmatch(r"-\d+", args[i]):
            n = int(args[i][1:])
        else:
            files.append(args[i])
        i += 1
    text = p.host.fs.read(p.path(files[0]), root=p.root) if files else await p.read_stdin()
    lines = text.splitlines(keepends=True)
    p.out("".join(lines[:n] if p.argv[0] == "head" else lines[-n:] if n else []))
    return 0


async def wc(p: Proc) -> int:
    text = await p.read_stdin()
    p.out(f"{len(text.splitlines())}\n")
    return 0


async def uname(p: Proc) -> int:
    s = p.host.setup
    flags, _ = _split_flags(p.argv[1:])
    parts = {"s": "Linux", "n": s.name, "r": s.kernel, "m": "x86_64"}
    if "a" in flags:
        p.out(f"Linux {s.name} {s.kernel} #1 SMP x86_64 x86_64 x86_64 GNU/Linux\n")
    else:
        p.out(" ".join(parts[f] for f in "snrm" if f in flags or (not flags and f == "s")) + "\n")
    return 0


async def hostname(p: Proc) -> int:
    p.out(p.host.name + "\n")
    return 0


async def ident(p: Proc) -> int:
    name = "root" if p.root else p.host.user
    if p.argv[0] == "whoami" or "-un" in p.argv:
        p.out(name + "\n")
    elif "-u" in p.argv:
        p.out(("0" if p.root else "1000") + "\n")
    else:
        uid = 0 if p.root else 1000
        p.out(f"uid={uid}({name}) gid={uid}({name}) groups={uid}({name})\n")
    return 0


_BINARIES = {"kubeadm": "kubeadm", "kubelet": "kubelet", "kubectl": "kubectl",
             "crictl": "cri-tools"}


def installed(p: Proc, binary: str) -> bool:
    """Whether the package providing `binary` is installed (else: command not found)."""
    package = _BINARIES.get(binary)
    return package is None or p.host.db.version(package) is not None


# Commands only one OS family ships (Debian/Ubuntu: apt and dpkg; the RHEL family: dnf, yum and
# rpm): on the other family they are not found, so probing for them (`which dnf`,
# `command -v apt-get`) tells the families apart as on real nodes.
FAMILY_TOOLS: dict[str, str] = {
    "apt": "debian", "apt-get": "debian", "apt-cache": "debian", "apt-mark": "debian",
    "dpkg": "debian", "dpkg-query": "debian", "dnf": "rhel", "yum": "rhel", "rpm": "rhel",
}


def os_has(host: LabNode, name: str) -> bool:
    """Whether node `host`'s OS family ships command `name` (see FAMILY_TOOLS)."""
    family = FAMILY_TOOLS.get(name)
    return family is None or family == host.setup.os_family


def available(host: LabNode, name: str) -> bool:
    """Whether `name` is a command on node `host`: a lab tool its OS ships whose package (for
    the Kubernetes binaries) is installed."""
    package = _BINARIES.get(name)
    return (name in host.tools and os_has(host, name)
            and (package is None or host.db.version(package) is not None))


def not_found(p: Proc) -> int:
    p.err(f"bash: line 1: {p.argv[0]}: command not found\n")
    return 127


async def which(p: Proc) -> int:
    names = [a for a in p.argv[1:] if not a.startswith("-")]
    status = 0
    for name in names:
        if available(p.host, name):
            p.out(f"/usr/bin/{name}\n")
        else:
            status = 1
    return status


async def sleep(p: Proc) -> int:
    try:
        await p.host.sleep(float(p.argv[1].rstrip("s")))
    except (IndexError, ValueError):
        p.err("sleep: missing operand\n")
        return 1
    return 0


async def date(p: Proc) -> int:
    now = datetime.fromtimestamp(p.host.clock.wall(), UTC)
    p.out(now.strftime("%a %b %d %H:%M:%S UTC %Y") + "\n")
    return 0


# `stat -f`'s type names (GNU coreutils stat.c human_fstype) of the file systems a node mounts.
_FS_TYPES = {"cgroup2fs": "63677270", "tmpfs": "1021994", "cgroupfs": "27e0eb",
             "ext2/ext3": "ef53", "proc": "9fa0", "sysfs": "62656572"}
CGROUP_ROOT = "/sys/fs/cgroup"


def fs_type(host: LabNode, path: str) -> str:
    """The file system type `stat -fc %T` prints for node path `path`: /sys/fs/cgroup is a
    cgroup2 mount, or under the `cgroup-v1` fault a tmpfs holding one cgroup v1 mount per
    controller; /proc and /sys are proc and sysfs; the rest is the root file system."""
    if path == CGROUP_ROOT or path.startswith(CGROUP_ROOT + "/"):
        if ("cgroup-v1", host.name) not in host.cluster.faults:
            return "cgroup2fs"
        return "tmpfs" if path == CGROUP_ROOT else "cgroupfs"
    for mount, kind in (("/proc", "proc"), ("/sys", "sysfs"), ("/dev", "tmpfs"),
                        ("/run", "tmpfs")):
        if path == mount or path.startswith(mount + "/"):
            return kind
    return "ext2/ext3"


async def stat(p: Proc) -> int:
    """`stat [-f] [-c FORMAT] FILE...` (GNU coreutils): `%T`/`%t`/`%n` of a file system with
    `-f`; `%n %s %F %a %U %G %u %g` of a file; a short default form without `-c`."""
    args = p.argv[1:]
    filesystem, fmt, files = False, None, []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-c", "--format", "--printf") and i + 1 < len(args):
            fmt = args[i + 1] + ("\n" if a != "--printf" else "")
            i += 2
            continue
        if a.startswith(("--format=", "--printf=")):
            fmt = a.split("=", 1)[1] + ("\n" if a.startswith("--format=") else "")
        elif a in ("-f", "--file-system"):
            filesystem = True
        elif a.startswith("-") and len(a) > 1 and not a.startswith("--"):
            filesystem = filesystem or "f" in a
            if "c" in a:  # -fc FORMAT
                fmt = (args[i + 1] + "\n") if i + 1 < len(args) else None
                i += 1
        else:
            files.append(a)
        i += 1
    if not files:
        p.err("stat: missing operand\nTry 'stat --help' for more information.\n")
        return 1
    status = 0
    for f in files:
        path = p.path(f)
        what = "read file system information for" if filesystem else "stat"
        if path.startswith(DATA_DIR + "/"):
            sync_db_file(p.host)
            if not p.root and p.host.fs.exists(DATA_DIR):  # etcd's data directory is 0700
                p.err(f"stat: cannot {what} '{f}': Permission denied\n")
                status = 1
                continue
        if not p.host.fs.exists(path):
            p.err(f"stat: cannot {what} '{f}': No such file or directory\n")
            status = 1
            continue
        values = _stat_values(p, f, path, filesystem)
        if fmt is None:
            p.out(_stat_default(values, filesystem))
        else:
            p.out(re.sub(r"%(.)", lambda m, v=values: v.get(m.group(1), "?"), fmt)
                  .replace("\\n", "\n"))
    return status


def _stat_values(p: Proc, name: str, path: str, filesystem: bool) -> dict[str, str]:
    if filesystem:
        kind = fs_type(p.host, path)
        return {"n": name, "T": kind, "t": _FS_TYPES.get(kind, "0"), "%": "%"}
    fs = p.host.fs
    directory = fs.is_dir(path)
    private = path.startswith("/etc/kubernetes/") and not fs.may_read(path, False)
    size = 4096 if directory else fs.host(path).stat().st_size if fs.host(path).exists() else 0
    etcd = path == "/var/lib/etcd" or path.startswith("/var/lib/etcd/")  # kubeadm: 0700 dirs
    return {"n": name, "s": str(size), "F": "directory" if directory else "regular file",
            "a": ("700" if etcd else "755") if directory else "600" if private or etcd
            else "644", "U": "root",
            "G": "root", "u": "0", "g": "0", "%": "%"}


def _stat_default(v: dict[str, str], filesystem: bool) -> str:
    if filesystem:
        return (f'  File: "{v["n"]}"\n    ID: 0        Namelen: 255     '
                f'Type: {v["T"]}\n')
    mode = ("d" if v["F"] == "directory" else "-") + "".join(
        "rwx"[i % 3] if int(v["a"][i // 3]) & (4 >> (i % 3)) else "-" for i in range(9))
    return (f'  File: {v["n"]}\n  Size: {v["s"]:<15} {v["F"]}\n'
            f'Access: (0{v["a"]}/{mode})  Uid: (    0/    root)   Gid: (    0/    root)\n')


TOOLS_SYSTEM: dict[str, Tool] = {
    "echo": echo, "printf": printf, "cat": cat, "tee": tee, "cp": cp, "mv": mv, "rm": rm,
    "mkdir": mkdir, "touch": touch, "ls": ls, "test": test, "[": test, "grep": grep,
    "head": head_tail, "tail": head_tail, "wc": wc, "uname": uname, "hostname": hostname,
    "id": ident, "whoami": ident, "which": which, "sleep": sleep, "date": date, "stat": stat,
}
