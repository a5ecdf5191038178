"""apt-get, apt and apt-mark on a Debian-family node (apt-cache and dpkg: `dpkg.py`).

Output and exit codes follow apt 2.x as observed with real apt against pkgs.k8s.io-shaped
repositories: `apt-get update` fetches the lists of
the sources configured *now* (switching `v1.28` to `v1.29` needs an update before 1.29 versions
are installable), `install` honours holds (`E: Held packages were changed and -y was used
without --allow-change-held-packages.`), downgrades, version globs (`kubeadm='1.29.15-*'`) and
apt preferences pins as apt 2.x applies them (`apt_pins`: /etc/apt/preferences and
preferences.d, version/release/origin pins, a pin of 1000 or more downgrading on `upgrade`),
and what the packages require (`repos.requires`: kubeadm 1.30 takes cri-tools 1.30 along, as
"additional packages"; a held or unavailable dependency is an unmet dependency, exit 100).
`apt` is `apt-get` with its CLI warning.

Fault `package-install-fails` (`NodeFleet.package_install_fails`): downloading that package's
archive times out (`Err:` / `E: Failed to fetch …`, exit 100) and nothing is installed. The
faults of `package_faults` (lock held, repository unreachable, broken vendor source) show as
apt 2.x shows them; `-o Dir::Etc::sourcelist=FILE -o Dir::Etc::sourceparts=-` limits an update
to one file, `-o APT::Get::List-Cleanup=0` keeps the other lists, `--error-on=any` (or
`-o APT::Update::Error-Mode=any`) turns fetch warnings into errors (apt-private/
private-update.cc), `-o DPkg::Lock::Timeout=S` waits for the dpkg lock (apt-pkg/deb/
debsystem.cc).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from kubehop.lab.node import apt_pins as pins
from kubehop.lab.node import package_faults as pf
from kubehop.lab.node.host import LabNode, Proc, Tool
from kubehop.lab.node.repos import (
    PACKAGE_SIZES,
    AptSource,
    Repo,
    apt_sources,
    repo_for,
    requires,
    satisfies,
    signed_by_conflict,
    sort_versions,
)
from kubehop.model.versions import parse_deb_version

HEADER = "Reading package lists...\nBuilding dependency tree...\nReading state information...\n"
LOCK = "/var/lib/dpkg/lock-frontend"
MIRROR_IP = "18.239.50.12"  # prod-cdn.packages.k8s.io, as a fault's messages show it
UNREACHABLE = (f"Could not connect to prod-cdn.packages.k8s.io:443 ({MIRROR_IP}), "
               "connection timed out")
DESCRIPTIONS = {
    "kubeadm": "Command-line utility for administering a Kubernetes cluster",
    "kubelet": "Node agent for Kubernetes clusters",
    "kubectl": "Command-line utility for interacting with a Kubernetes cluster",
    "cri-tools": "Command-line utility for interacting with a container runtime",
    "kubernetes-cni": "Binaries required to provision kubernetes container networking",
}


def _cmp(a: str, b: str) -> int:
    return parse_deb_version(a).compare(parse_deb_version(b))


def configured_sources(host: LabNode, conf: dict[str, str] | None = None) -> list[AptSource]:
    """The sources apt reads with configuration `conf` (lowercased `-o` keys)."""
    conf = conf or {}
    return apt_sources(host.fs, conf.get("dir::etc::sourcelist", "/etc/apt/sources.list"),
                       conf.get("dir::etc::sourceparts", "/etc/apt/sources.list.d"))


LISTS_FILE = "lab-fetched"  # in a `Dir::State::Lists` directory: the sources it holds lists of


def fetched_lists(host: LabNode, conf: dict[str, str] | None = None) -> list[str]:
    """The source URIs whose lists apt has: the node's own (the package database), or those in
    the `Dir::State::Lists` directory `conf` names."""
    lists = (conf or {}).get("dir::state::lists")
    if not lists:
        return list(host.db.state.apt_lists)
    path = f"{lists.rstrip('/')}/{LISTS_FILE}"
    return host.fs.read(path).split() if host.fs.is_file(path) else []


class AptView:
    """What apt sees on a node: fetched lists of the configured sources, pins, the dpkg db."""

    def __init__(self, host: LabNode, conf: dict[str, str] | None = None) -> None:
        self.host = host
        self.sources = configured_sources(host, conf)
        fetched = set(fetched_lists(host, conf))
        self.available: dict[str, list[tuple[str, Repo]]] = {}
        for src in self.sources:
            repo = repo_for(src.uri, "deb") if src.flat else None
            if repo is None or src.uri not in fetched:
                continue
            for name, versions in repo.packages().items():
                self.available.setdefault(name, []).extend((v, repo) for v in versions)
        conf = conf or {}
        self.pins = pins.read_stanzas(
            host.fs, conf.get("dir::etc::preferences", pins.PREFERENCES),
            conf.get("dir::etc::preferencesparts", pins.PREFERENCES_DIR))

    def known(self, name: str) -> bool:
        return name in self.available or self.host.db.version(name) is not None

    def versions(self, name: str) -> list[str]:
        return sort_versions(list({v for v, _ in self.available.get(name, [])}))

    def releases(self, name: str, version: str) -> list[dict[str, str]]:
        """The Release fields of the sources that offer `version` of `name`."""
        return [pins.release_of(r.uri, r.minor) for v, r in self.available.get(name, [])
                if v == version]

    def priority(self, name: str, version: str) -> int:
        """apt's priority of `version` (see `apt_pins`)."""
        return pins.priority(self.pins, name, version, self.releases(name, version),
                             self.host.db.version(name) == version)

    def pinned(self, name: str, version: str) -> bool:
        """Whether a preferences stanza decided `version`'s priority."""
        return pins.decided_by(self.pins, name, version, self.releases(name, version)) \
            is not None

    def candidate(self, name: str) -> str | None:
        """apt's candidate: the highest priority, then the newest version; an older version
        than the installed one only at priority 1000 or more; none below 0 (apt-pkg/policy.cc
        `GetCandidateVer`)."""
        installed = self.host.db.version(name)
        options = set(self.versions(name)) | ({installed} if installed else set())
        best: tuple[int, str] | None = None
        for v in options:
            prio = self.priority(name, v)
            if prio < 0 or (installed and _cmp(v, installed) < 0 and prio < 1000):
                continue
            if best is None or prio > best[0] or (prio == best[0] and _cmp(v, best[1]) > 0):
                best = (prio, v)
        return best[1] if best else None

    def repo_of(self, name: str, version: str) -> Repo | None:
        return next((r for v, r in self.available.get(name, []) if v == version), None)


def _root_check(p: Proc) -> bool:
    if p.root:
        return True
    p.err(f"E: Could not open lock file {LOCK} - open (13: Permission denied)\n"
          f"E: Unable to acquire the dpkg frontend lock ({LOCK}), are you root?\n")
    return False


def _lock_busy(p: Proc, holder: tuple[int, str] = (4242, "apt-get")) -> int:
    p.err(f"E: Could not get lock {LOCK}. It is held by process {holder[0]} ({holder[1]})\n"
          "N: Be aware that removing the lock file is not a solution and may break your system.\n"
          f"E: Unable to acquire the dpkg frontend lock ({LOCK}), is another process using it?\n")
    return 100


def _conflict(p: Proc, sources: list[AptSource]) -> bool:
    """apt refuses every source when one repository has two Signed-By values."""
    message = signed_by_conflict(sources)
    if message:
        p.err(message)
    return message is not None


async def update(p: Proc, quiet: int, conf: dict[str, str] | None = None) -> int:
    host = p.host
    conf = conf or {}
    sources = configured_sources(host, conf)
    if _conflict(p, sources):
        return 100
    fetched = set(fetched_lists(host, conf))
    strict = conf.get("apt::update::error-mode") == "any"
    cleanup = conf.get("apt::get::list-cleanup", "1").lower() not in ("0", "false", "no")
    lines, errors, warnings, live, got = [], [], [], [], 0
    n = 0
    for src in dict.fromkeys(sources):
        n += 1
        repo = repo_for(src.uri, "deb") if src.flat else None
        if repo is not None and pf.repo_unreachable(host):
            if src.uri in fetched:
                live.append(src.uri)  # "old ones used instead"
            lines.append(f"Err:{n} {repo.cdn}  InRelease\n  {UNREACHABLE}")
            warnings.append(f"Failed to fetch {repo.cdn}/InRelease  {UNREACHABLE} "
                            f"[IP: {MIRROR_IP} 443]")
            continue
        if src.uri.startswith(pf.VENDOR_URI):
            lines.append(f"Get:{n} {src.describe('InRelease')} [4052 B]\n"
                         f"Err:{n} {src.describe('InRelease')}\n  The following signatures "
                         f"were invalid: EXPKEYSIG {pf.VENDOR_KEY_ID} Vendor Packages "
                         "<packages@vendor.example>")
            errors.append(f"W: GPG error: {src.describe('InRelease')}: The following "
                          f"signatures were invalid: EXPKEYSIG {pf.VENDOR_KEY_ID} Vendor "
                          f"Packages <packages@vendor.example>\nE: The repository "
                          f"'{src.describe('InRelease')}' is not signed.\nN: Updating from such "
                          "a repository can't be done securely, and is therefore disabled by "
                          "default.\n")
            continue
        bad_key = pf.key_error(host, src.signed_by, src.describe("InRelease")) \
            if repo is not None else None
        if bad_key is not None:
            lines.append(f"Get:{n} {repo.cdn}  InRelease [1189 B]\nErr:{n} {repo.cdn}  InRelease"
                         if repo else "")
            errors.append(bad_key)
            continue
        if repo is not None:
            live.append(src.uri)
            if src.uri in fetched:
                lines.append(f"Hit:{n} {repo.cdn}  InRelease")
            else:
                lines.append(f"Get:{n} {repo.cdn}  InRelease [1189 B]")
                n += 1
                lines.append(f"Get:{n} {repo.cdn}  Packages [21.4 kB]")
                got += 22600
            continue
        shown = src
        if "apt.kubernetes.io" in src.uri:
            shown = type(src)("https://packages.cloud.google.com/apt/", src.suite, src.components,
                              src.file)
        lines.append(f"Ign:{n} {shown.describe('InRelease')}")
        n += 1
        lines.append(f"Err:{n} {shown.describe('Release')}\n"
                     "  404  Not Found [IP: 142.250.80.46 443]")
        errors.append(f"E: The repository '{src.describe('Release')}' does not have a Release "
                      "file.\nN: Updating from such a repository can't be done securely, and is "
                      "therefore disabled by default.\nN: See apt-secure(8) manpage for repository "
                      "creation and user configuration details.\n")
    if got:
        lines.append(f"Fetched {got / 1000:.1f} kB in 1s ({got / 1000:.1f} kB/s)")
    lines.append("Reading package lists...")
    if quiet < 2:
        p.out("\n".join(lines) + "\n")
    # List-Cleanup (default on) drops the lists of sources this run did not read.
    kept = live if cleanup else list(dict.fromkeys([*fetched, *live]))
    lists = conf.get("dir::state::lists")
    if lists:  # another lists directory (a trial): the node's own lists stay as they are
        if not host.fs.is_dir(lists):
            p.err(f"E: List directory {lists.rstrip('/')}/partial is missing. - Acquire "
                  "(2: No such file or directory)\n")
            return 100
        host.fs.write(f"{lists.rstrip('/')}/{LISTS_FILE}", "\n".join(kept) + "\n",
                      root=p.root)
    else:
        host.db.state.apt_lists = kept
        host.db.save()
    for e in errors:
        p.err(e)
    if warnings:
        level = "E" if strict else "W"
        p.err("".join(f"{level}: {w}\n" for w in warnings) + f"{level}: Some index files failed "
              "to download. They have been ignored, or old ones used instead.\n")
    return 100 if errors or (warnings and strict) else 0


@dataclass
class PackageChange:
    """One package an install changes: `old` (None: new) to `new`, from `repo`."""

    name: str
    old: str | None
    new: str
    repo: Repo | None

    @property
    def kind(self) -> str:
        if self.old is None:
            return "new"
        c = _cmp(self.new, self.old)
        return "same" if c == 0 else ("upgrade" if c > 0 else "downgrade")


def _dependencies(view: AptView, changes: list[PackageChange]
                  ) -> tuple[list[PackageChange], list[str]]:
    """The packages apt changes besides `changes` so that each has what it requires (a
    dependency moves to its candidate), and the unmet dependencies: apt's resolver keeps a held
    package where it is and installs no version older than the candidate (apt-pkg/depcache.cc,
    algorithms.cc `pkgProblemResolver`); the lines as apt-private/private-output.cc
    `ShowBroken` words them."""
    db = view.host.db
    planned = {c.name: c.new for c in changes}
    extra: list[PackageChange] = []
    unmet: list[str] = []
    for c in changes:
        for dep, minimum in requires(c.name, c.new):
            have = planned.get(dep) or db.version(dep)
            if satisfies(have, minimum):
                continue
            candidate = view.candidate(dep)
            if candidate is not None and satisfies(candidate, minimum) and not db.held(dep):
                extra.append(PackageChange(dep, db.version(dep), candidate,
                                           view.repo_of(dep, candidate)))
                planned[dep] = candidate
                continue
            why = f"but {have} is to be installed" if have else "but it is not installable"
            unmet.append(f" {c.name} : Depends: {dep} (>= {minimum}) {why}\n")
    return extra, unmet


UNMET = ("Some packages could not be installed. This may mean that you have\n"
         "requested an impossible situation or if you are using the unstable\n"
         "distribution that some required packages have not yet been created\n"
         "or been moved out of Incoming.\n"
         "The following information may help to resolve the situation:\n\n"
         "The following packages have unmet dependencies:\n")


def _section(title: str, names: list[str]) -> str:
    return f"The following {title}:\n  " + " ".join(sorted(names)) + "\n" if names else ""


async def install(p: Proc, targets: list[str], opts: set[str], quiet: int,
                  conf: dict[str, str] | None = None) -> int:
    if _conflict(p, configured_sources(p.host)):
        return 100
    view = AptView(p.host)
    db = p.host.db
    out = p.out if quiet < 2 else (lambda _s: None)
    out(HEADER)
    changes: list[PackageChange] = []
    errors: list[str] = []
    for target in targets:
        name, _, wanted = target.partition("=")
        name = name.split("/", 1)[0]
        if not view.known(name):
            errors.append(f"E: Unable to locate package {name}\n")
            continue
        if wanted:
            matches = [v for v in view.versions(name) if fnmatch.fnmatchcase(v, wanted)]
            installed = db.version(name)
            if not matches and installed and fnmatch.fnmatchcase(installed, wanted):
                matches = [installed]
            if not matches:
                out(f"Package {name} is not available, but is referred to by another package.\n"
                    "This may mean that the package is missing, has been obsoleted, or\n"
                    "is only available from another source\n\n")
                errors.append(f"E: Version '{wanted}' for '{name}' was not found\n")
                continue
            version = sort_versions(matches)[0]
        else:
            version = view.candidate(name)
            if version is None:
                errors.append(f"E: Package '{name}' has no installation candidate\n")
                continue
        changes.append(PackageChange(name, db.version(name), version, view.repo_of(name, version)))
    if errors:
        for e in errors:
            p.err(e)
        return 100
    extra, unmet = _dependencies(view, changes)
    if unmet:
        out(UNMET + "".join(unmet))
        p.err("E: Unable to correct problems, you have held broken packages.\n")
        return 100
    for c in changes:
        if c.kind == "same":
            out(f"{c.name} is already the newest version ({c.new}).\n")
    out(_section("additional packages will be installed", [c.name for c in extra]))
    changes += extra
    todo = [c for c in changes if c.kind != "same"]
    held = [c.name for c in todo if db.held(c.name)]
    by_kind = {k: [c.name for c in todo if c.kind == k] for k in ("new", "upgrade", "downgrade")}
    chosen = {c.name for c in changes}
    kept = sum(1 for n, v in db.state.installed.items()
               if n not in chosen and (cand := view.candidate(n)) and _cmp(cand, v) > 0)
    out(_section("NEW packages will be installed", by_kind["new"])
        + _section("held packages will be changed", held)
        + _section("packages will be upgraded", by_kind["upgrade"])
        + _section("packages will be DOWNGRADED", by_kind["downgrade"]))
    down = f"{len(by_kind['downgrade'])} downgraded, " if by_kind["downgrade"] else ""
    out(f"{len(by_kind['upgrade'])} upgraded, {len(by_kind['new'])} newly installed, {down}"
        f"0 to remove and {kept} not upgraded.\n")
    if not todo:
        return 0
    yes = "y" in opts
    if yes and by_kind["downgrade"] and "allow-downgrades" not in opts:
        p.err("E: Packages were downgraded and -y was used without --allow-downgrades.\n")
        return 100
    if yes and held and "allow-change-held-packages" not in opts:
        p.err("E: Held packages were changed and -y was used without "
              "--allow-change-held-packages.\n")
        return 100
    size = sum(float(PACKAGE_SIZES.get(c.name, "1.0 MB").split()[0]) for c in todo)
    out(f"Need to get {size:.1f} MB of archives.\n"
        "After this operation, 8192 B of additional disk space will be used.\n")
    if "s" in opts:
        for c in todo:
            old = f" [{c.old}]" if c.old else ""
            out(f"Inst {c.name}{old} ({c.new} kubernetes [amd64])\n")
        return 0
    if not yes and (held or by_kind["downgrade"]):
        out("Do you want to continue? [Y/n] ")
        answer = (await p.read_stdin()).strip().splitlines()
        if not answer or answer[0].lower() not in ("", "y", "yes"):
            out("Abort.\n")
            return 1
    holder = pf.lock_holder(p.host)
    if holder is not None:
        timeout = float((conf or {}).get("dpkg::lock::timeout", "0") or 0)
        if timeout > 0:  # as apt 2.6 does: progress lines, then only the last E: line
            p.err(f"Waiting for cache lock: Could not get lock {LOCK}. It is held by process "
                  f"{holder[0]} ({holder[1]})...\n")
            if await pf.wait_for_lock(p.host, timeout) is not None:
                p.err(f"E: Unable to acquire the dpkg frontend lock ({LOCK}), is another "
                      "process using it?\n")
                return 100
        elif holder is not None:
            return _lock_busy(p, holder)
    if p.host.dpkg_lock.locked():
        return _lock_busy(p)
    async with p.host.dpkg_lock:
        broken = {c.name for c in todo if p.host.cluster.package_install_fails(p.host.name, c.name)}
        if broken:
            return await _fetch_fails(p, todo, broken, out)
        for i, c in enumerate(todo, 1):
            cdn = c.repo.cdn if c.repo else "https://pkgs.k8s.io"
            out(f"Get:{i} {cdn}  {c.name} {c.new} [{PACKAGE_SIZES.get(c.name, '1.0 MB')}]\n")
        out(f"Fetched {size:.1f} MB in 2s ({size / 2:.1f} MB/s)\n")
        await p.host.sleep(p.host.timing.package_install)
        out("(Reading database ... 74132 files and directories currently installed.)\n")
        for c in todo:
            if c.kind == "downgrade":
                p.err(f"dpkg: warning: downgrading {c.name} from {c.old} to {c.new}\n")
            if c.old is None:
                out(f"Selecting previously unselected package {c.name}.\n")
            out(f"Preparing to unpack .../{c.name}_{c.new}_amd64.deb ...\n"
                f"Unpacking {c.name} ({c.new})" + (f" over ({c.old})" if c.old else "") + " ...\n")
            db.install(c.name, c.new)
        for c in todo:
            out(f"Setting up {c.name} ({c.new}) ...\n")
            p.host.package_changed(c.name)
    return 0


async def _fetch_fails(p: Proc, todo: list[PackageChange], broken: set[str],
                       out: Callable[[str], None]) -> int:
    """Fault `package-install-fails`: the archives of `broken` cannot be downloaded (the mirror
    does not answer). apt fetches every archive before dpkg runs, so nothing is installed: the
    dpkg database, holds included, stays as it was (exit 100, as apt's)."""
    fetched = 0.0
    errors = []
    for i, c in enumerate(todo, 1):
        cdn = c.repo.cdn if c.repo else "https://pkgs.k8s.io"
        if c.name not in broken:
            size = PACKAGE_SIZES.get(c.name, "1.0 MB")
            out(f"Get:{i} {cdn}  {c.name} {c.new} [{size}]\n")
            fetched += float(size.split()[0])
            continue
        out(f"Err:{i} {cdn}  {c.name} {c.new}\n  {UNREACHABLE}\n")
        errors.append(f"E: Failed to fetch {cdn}/amd64/{c.name}_{c.new}_amd64.deb  "
                      f"{UNREACHABLE} [IP: {MIRROR_IP} 443]\n")
    await p.host.sleep(p.host.timing.package_install)  # until the connection attempts time out
    if fetched:
        out(f"Fetched {fetched:.1f} MB in 2min 10s ({fetched * 1000 / 130:.0f} kB/s)\n")
    p.err("".join(errors) + "E: Unable to fetch some archives, maybe run apt-get update or try "
          "with --fix-missing?\n")
    return 100


async def upgrade(p: Proc, opts: set[str], quiet: int) -> int:
    view = AptView(p.host)
    db = p.host.db
    kept = sorted(n for n, v in db.state.installed.items()
                  if db.held(n) and (c := view.candidate(n)) and _cmp(c, v) > 0)
    # A candidate older than the installed version (a pin at 1000 or more) is a downgrade.
    targets = [f"{n}={c}" for n, v in sorted(db.state.installed.items())
               if not db.held(n) and (c := view.candidate(n)) and _cmp(c, v) != 0]
    if not targets:
        if quiet < 2:
            p.out("Reading package lists...\nBuilding dependency tree...\nReading state "
                  "information...\nCalculating upgrade...\n" + _section(
                      "packages have been kept back", kept)
                  + f"0 upgraded, 0 newly installed, 0 to remove and {len(kept)} not upgraded.\n")
        return 0
    return await install(p, targets, opts, quiet)


async def apt_get(p: Proc) -> int:
    args = p.argv[1:]
    opts: set[str] = set()
    conf: dict[str, str] = {}  # `-o Key=Value`, keys lowercased (apt's are case-insensitive)
    quiet = 0
    words: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-o" and i + 1 < len(args):
            key, _, value = args[i + 1].partition("=")
            conf[key.strip().lower()] = value.strip()
            i += 2
            continue
        if a.startswith("--error-on="):  # apt 2.1.16+: APT::Update::Error-Mode
            conf["apt::update::error-mode"] = a.partition("=")[2]
        if a.startswith("--"):
            name = a[2:].split("=", 1)[0]
            opts.add({"yes": "y", "assume-yes": "y", "simulate": "s", "dry-run": "s",
                      "just-print": "s", "quiet": "q"}.get(name, name))
            quiet += name == "quiet"
        elif a.startswith("-") and len(a) > 1:
            for ch in a[1:]:
                opts.add(ch)
                quiet += ch == "q"
        else:
            words.append(a)
        i += 1
    if not words:
        p.err("E: No command given\n" if p.argv[0] == "apt-get" else "")
        return 100 if p.argv[0] == "apt-get" else 1
    verb, targets = words[0], words[1:]
    if p.argv[0] == "apt":
        p.err("\nWARNING: apt does not have a stable CLI interface. Use with caution in "
              "scripts.\n\n")
    # A login user may refresh into a lists directory of their own (`Dir::State::Lists`).
    own_lists = verb == "update" and "dir::state::lists" in conf
    if verb in ("update", "install", "upgrade", "dist-upgrade", "full-upgrade", "remove",
                "purge") and "s" not in opts and not own_lists and not _root_check(p):
        return 100
    if verb == "update":
        return await update(p, quiet, conf)
    if verb == "install":
        if not targets:
            if quiet < 2:
                p.out(HEADER + "0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n")
            return 0
        return await install(p, targets, opts, quiet, conf)
    if verb in ("upgrade", "dist-upgrade", "full-upgrade"):
        return await upgrade(p, opts, quiet)
    if verb in ("remove", "purge"):
        for name in targets:
            if p.host.db.version(name) is not None:
                p.host.db.remove(name)
                p.host.package_changed(name)
        return 0
    p.err(f"E: Invalid operation {verb}\n")
    return 100


async def apt_mark(p: Proc) -> int:
    args = [a for a in p.argv[1:] if not a.startswith("-")]
    if not args:
        p.err("apt 2.4.11 (amd64)\nUsage: apt-mark [options] {auto|manual} pkg1 [pkg2 ...]\n")
        return 100
    verb, names = args[0], args[1:]
    db = p.host.db
    if verb in ("showhold", "showholds"):
        held = sorted(db.state.holds if not names else [n for n in names if db.held(n)])
        p.out("".join(f"{n}\n" for n in held))
        return 0
    if verb not in ("hold", "unhold"):
        if verb in ("manual", "auto", "showmanual", "showauto", "minimize-manual"):
            return 0
        p.err(f"E: Invalid operation {verb}\n")
        return 100
    view = AptView(p.host)
    for n in names:
        if not view.known(n):
            p.err(f"E: Unable to locate package {n}\n")
            return 100
    if not p.root:
        p.err("dpkg: error: requested operation requires superuser privilege\n"
              "E: Executing dpkg failed. Are you root?\n")
        return 100
    holder = pf.lock_holder(p.host)
    if holder is not None:  # apt-mark runs `dpkg --set-selections`, which does not wait
        p.err(f"dpkg: error: dpkg frontend lock was locked by another process with pid "
              f"{holder[0]}\nNote: removing the lock file is always wrong, can damage the "
              "locked area\nand the entire system. See "
              "<https://wiki.debian.org/Teams/Dpkg/FAQ#db-lock>.\n"
              "E: Sub-process dpkg --set-selections returned an error code (2)\n"
              "E: Executing dpkg failed. Are you root?\n")
        return 100
    for n in names:
        on = verb == "hold"
        changed = db.set_hold(n, on)
        if on:
            p.out(f"{n} set on hold.\n" if changed else f"{n} was already set on hold.\n")
        else:
            p.out(f"Canceled hold on {n}.\n" if changed else f"{n} was already not on hold.\n")
    return 0


TOOLS_APT: dict[str, Tool] = {"apt-get": apt_get, "apt": apt_get, "apt-mark": apt_mark}
