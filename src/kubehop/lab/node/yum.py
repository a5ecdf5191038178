"""dnf (and `yum`, its alias on RHEL 8/9) and rpm on a RHEL-family node.

The repository file's `exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni` hides the
Kubernetes packages unless `--disableexcludes=kubernetes` (or `all`) is given; `versionlock`
pins a package to its installed version. dnf reads the repository file at every run (its
metadata cache is keyed by baseurl), so editing `v1.28` to `v1.29` takes effect at once.
Messages follow dnf 4: `All matches were filtered out by exclude filtering for argument: …`,
`Error: Unable to find a match: …` (exit 1). Packages bring what they require
(`repos.requires`: kubeadm 1.30 upgrades cri-tools to 1.30) from what is visible: a dependency
behind `exclude=` or a versionlock is one that "nothing provides" (libsolv's words, exit 1).

`--repofrompath=ID,URL` adds a repository for one run, `--repo=ID` enables only the named ones,
`--setopt=cachedir=DIR` puts the fetched metadata in DIR, written as the user running dnf (a
login user may list packages; dnf 4 gives it a cache of its own, dnf/conf/config.py
`MainConf`). Fault `package-repo-unreachable` (`package_faults`): the repositories' metadata
download times out (`Curl error (28)`, exit 1), dnf 4's messages.

Fault `package-install-fails` (`NodeFleet.package_install_fails`): downloading that package's rpm
times out (`[FAILED] …: Curl error (28)`, `Error: Error downloading packages:`, exit 1) and
nothing is installed. Fault `dnf5` (`package_faults`): dnf is dnf 5, whose argument parser
has no `--disableexcludes` (dnf5 docs "Changes between DNF4 and DNF5": `--setopt=
disable_excludes=` instead) and whose `versionlock list` prints `Package name:` blocks.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from kubehop.lab.node import package_faults as pf
from kubehop.lab.node import rpm_keys
from kubehop.lab.node.fs import FsError
from kubehop.lab.node.host import Proc, Tool
from kubehop.lab.node.repos import (
    PACKAGE_SIZES,
    Repo,
    YumRepo,
    repo_for,
    requires,
    satisfies,
    sort_versions,
    yum_repos,
)
from kubehop.model.versions import parse_deb_version

ARCH = "x86_64"
RULE = "=" * 80
TIMED_OUT = "Connection timed out after 30000 milliseconds"


def _cmp(a: str, b: str) -> int:
    return parse_deb_version(a).compare(parse_deb_version(b))


@dataclass
class Options:
    yes: bool = False
    quiet: bool = False
    showduplicates: bool = False
    disable_excludes: tuple[str, ...] = ()
    no_versionlock: bool = False
    # `--repofrompath=ID,URL`: repositories of this run only; `--repo=ID`: the only ones enabled
    # (dnf 4 doc/command_ref.rst, dnf 5 doc/dnf5.8.rst).
    from_path: tuple[tuple[str, str], ...] = ()
    only_repos: tuple[str, ...] = ()
    cachedir: str = ""  # `--setopt=cachedir=DIR`


def _parse(args: list[str]) -> tuple[Options, list[str]]:
    o, words = Options(), []
    i = 0
    while i < len(args):
        a = args[i]
        value = a.split("=", 1)[1] if "=" in a else (args[i + 1] if i + 1 < len(args) else "")
        if a in ("-y", "--assumeyes"):
            o.yes = True
        elif a in ("-q", "--quiet"):
            o.quiet = True
        elif a == "--showduplicates":
            o.showduplicates = True
        elif a.startswith(("--disableexcludes", "--disableexcludepkgs")):
            o.disable_excludes += tuple(value.split(","))
            i += "=" not in a
        elif a.startswith("--setopt"):
            setting = value
            if setting.startswith("disable_excludes="):
                o.disable_excludes += tuple(setting.split("=", 1)[1].split(","))
            elif setting.startswith("cachedir="):
                o.cachedir = setting.split("=", 1)[1]
            i += "=" not in a or a == "--setopt"
        elif a.startswith("--repofrompath"):
            repo_id, _, url = value.partition(",")
            o.from_path += ((repo_id, url),)
            i += "=" not in a
        elif a.startswith(("--repo=", "--repoid=")) or a in ("--repo", "--repoid"):
            o.only_repos += tuple(value.split(","))
            i += "=" not in a
        elif a.startswith("--disableplugin"):
            o.no_versionlock = o.no_versionlock or "versionlock" in value
            i += "=" not in a
        elif a.startswith(("--enablerepo", "--disablerepo", "--repo")) and "=" not in a:
            i += 1
        elif not a.startswith("-"):
            words.append(a)
        i += 1
    return o, words


class DnfView:
    """Installed packages and what the enabled repositories offer after excludes/locks."""

    def __init__(self, p: Proc, o: Options) -> None:
        self.p = p
        self.db = p.host.db
        known = yum_repos(p.host.fs) + [YumRepo(i, i, url) for i, url in o.from_path]
        # `--repo=G` is `--disablerepo='*' --enablerepo=G`: it enables a disabled one too.
        self.repos = ([r for r in known if any(fnmatch.fnmatchcase(r.id, g)
                                               for g in o.only_repos)]
                      if o.only_repos else [r for r in known if r.enabled])
        self.dead: list[YumRepo] = [r for r in self.repos if repo_for(r.baseurl, "rpm") is None]
        # Fault `package-repo-unreachable`: pkgs.k8s.io does not answer (a timeout, not a 404).
        self.unreachable = [r for r in self.repos if r not in self.dead
                            and pf.repo_unreachable(p.host)]
        self.all: dict[str, list[tuple[str, YumRepo, Repo]]] = {}
        self.visible: dict[str, list[tuple[str, YumRepo, Repo]]] = {}
        locks = {e.split("-0:")[0]: e.split("-0:")[1].rsplit(".", 1)[0]
                 for e in self.db.state.versionlocks if "-0:" in e}
        for r in self.repos:
            live = repo_for(r.baseurl, "rpm")
            if live is None or r in self.unreachable:
                continue
            excluded = set() if {r.id, "all"} & set(o.disable_excludes) else set(r.exclude)
            for name, versions in live.packages().items():
                for v in versions:
                    self.all.setdefault(name, []).append((v, r, live))
                    locked = name in locks and locks[name] != v and not o.no_versionlock
                    if not any(fnmatch.fnmatchcase(name, x) for x in excluded) and not locked:
                        self.visible.setdefault(name, []).append((v, r, live))

    def match(self, arg: str, pool: dict[str, list[tuple[str, YumRepo, Repo]]]
              ) -> list[tuple[str, str]]:
        """(name, version) pairs matching a dnf package spec (`kubeadm-1.29.15-*`, `kubeadm`)."""
        out = []
        for name, entries in pool.items():
            for v, _, _ in entries:
                upstream = v.split("-")[0]
                forms = (name, f"{name}.{ARCH}", f"{name}-{upstream}", f"{name}-{v}",
                         f"{name}-{v}.{ARCH}", f"{name}-0:{v}", f"{name}-0:{v}.{ARCH}")
                if any(fnmatch.fnmatchcase(f, arg) for f in forms):
                    out.append((name, v))
        return out


def _dependencies(view: DnfView, chosen: dict[str, str]) -> list[str]:
    """Add to `chosen` the newest visible version of each dependency the installed or chosen
    version does not meet; libsolv's problem lines for those nothing visible provides."""
    problems = []
    for name, version in list(chosen.items()):
        for dep, minimum in requires(name, version):
            if satisfies(chosen.get(dep) or view.db.version(dep), minimum):
                continue
            offered = sort_versions([v for v, _, _ in view.visible.get(dep, [])])
            if offered and satisfies(offered[0], minimum):
                chosen[dep] = offered[0]
                continue
            problems.append(f"  - nothing provides {dep} >= {minimum} needed by "
                            f"{_nevra(name, version)} from {_repo_of(view, name, version)}\n")
    return problems


def _metadata_line(p: Proc) -> str:
    return "Last metadata expiration check: 0:00:12 ago on Mon 01 Jan 2024 12:00:00 PM UTC.\n"


def _dead_error(p: Proc, r: YumRepo) -> int:
    p.out(f"{r.name or r.id:<48} 0.0  B/s |   0  B     00:00\n")
    base = r.baseurl.replace("$basearch", ARCH).rstrip("/")
    p.err(f"Errors during downloading metadata for repository '{r.id}':\n  - Status code: 404 for "
          f"{base}/repodata/repomd.xml (IP: 142.250.80.46)\nError: Failed to download metadata for"
          f" repo '{r.id}': Cannot download repomd.xml: Cannot download repodata/repomd.xml: All "
          "mirrors were tried\n")
    return 1


def _unreachable_error(p: Proc, r: YumRepo) -> int:
    """dnf 4 when a repository's mirror does not answer: librepo's curl timeout, then
    "Failed to download metadata" (exit 1; `skip_if_unavailable` is off by default since
    RHEL 8)."""
    p.out(f"{r.name or r.id:<48} 0.0  B/s |   0  B     00:30\n")
    base = r.baseurl.replace("$basearch", ARCH).rstrip("/")
    p.err(f"Errors during downloading metadata for repository '{r.id}':\n  - Curl error (28): "
          f"Timeout was reached for {base}/repodata/repomd.xml [{TIMED_OUT}]\nError: Failed to "
          f"download metadata for repo '{r.id}': Cannot download repomd.xml: Cannot download "
          "repodata/repomd.xml: All mirrors were tried\n")
    return 1


def _refresh_failed(p: Proc, view: DnfView) -> int | None:
    """The exit code of a run whose repositories cannot be read (404 or no answer), or None
    (their metadata then lands in `--setopt=cachedir=`, which the caller must be able to
    write)."""
    if view.dead:
        return _dead_error(p, view.dead[0])
    if view.unreachable:
        return _unreachable_error(p, view.unreachable[0])
    return None


def _nevra(name: str, version: str) -> str:
    return f"{name}-{version}.{ARCH}"


async def install(p: Proc, o: Options, specs: list[str], verb: str) -> int:
    view = DnfView(p, o)
    failed = _refresh_failed(p, view)
    if failed is not None:
        return failed
    out = (lambda _s: None) if o.quiet else p.out
    out(_metadata_line(p))
    chosen: dict[str, str] = {}
    missing: list[str] = []
    for spec in specs:
        matches = view.match(spec, view.visible)
        installed = [(n, v) for n, v in ((n, view.db.version(n)) for n in view.db.state.installed)
                     if v and any(fnmatch.fnmatchcase(f, spec) for f in (n, f"{n}-{v}",
                                                                          f"{n}-{v.split('-')[0]}"))]
        if not matches and installed:
            for n, v in installed:
                out(f"Package {_nevra(n, v)} is already installed.\n")
            continue
        if not matches:
            if view.match(spec, view.all):
                out(f"All matches were filtered out by exclude filtering for argument: {spec}\n")
            else:
                out(f"No match for argument: {spec}\n")
            missing.append(spec)
            continue
        for name in dict.fromkeys(n for n, _ in matches):
            best = sort_versions([v for n, v in matches if n == name])[0]
            if verb in ("upgrade", "update") and view.db.version(name) and _cmp(
                    best, view.db.version(name) or "0") <= 0:
                continue
            if view.db.version(name) == best:
                out(f"Package {_nevra(name, best)} is already installed.\n")
                continue
            chosen[name] = best
    if missing:
        p.err(f"Error: Unable to find a match: {' '.join(missing)}\n")
        return 1
    if not chosen:
        out("Dependencies resolved.\nNothing to do.\nComplete!\n")
        return 0
    problems = _dependencies(view, chosen)
    if problems:  # dnf 4 (dnf/base.py `_raise_if_resolving_failed`) [U: wording approximated]
        p.err("Error: \n Problem: conflicting requests\n" + "".join(problems) + "(try to add "
              "'--skip-broken' to skip uninstallable packages or '--nobest' to use not only "
              "best candidate packages)\n")
        return 1
    groups: dict[str, list[str]] = {"Installing": [], "Upgrading": [], "Downgrading": []}
    for name, v in chosen.items():
        old = view.db.version(name)
        key = "Installing" if old is None else ("Upgrading" if _cmp(v, old) > 0 else "Downgrading")
        groups[key].append(name)
    lines = ["Dependencies resolved.", RULE,
             f" {'Package':<16} {'Architecture':<14} {'Version':<28} {'Repository':<14} Size", RULE]
    for key, names in groups.items():
        if names:
            lines.append(f"{key}:")
            for n in names:
                size = PACKAGE_SIZES.get(n, "1.0 MB").split()[0].split(".")[0] + " M"
                lines.append(f" {n:<16} {ARCH:<14} {chosen[n]:<28} {'kubernetes':<14} {size}")
    lines += ["", "Transaction Summary", RULE]
    for key, word in (("Installing", "Install"), ("Upgrading", "Upgrade"),
                      ("Downgrading", "Downgrade")):
        if groups[key]:
            count = len(groups[key])
            lines.append(f"{word:<9}{count} Package{'s' if count > 1 else ''}")
    lines += ["", "Total download size: 41 M"]
    out("\n".join(lines) + "\n")
    if not o.yes:
        out("Is this ok [y/N]: ")
        answer = (await p.read_stdin()).strip().lower()
        if answer not in ("y", "yes"):
            out("Operation aborted.\n")
            return 1
    out("Downloading Packages:\n")
    broken = [n for n in chosen if p.host.cluster.package_install_fails(p.host.name, n)]
    if broken:
        return await _download_fails(p, view, chosen, broken, out)
    for n, v in chosen.items():
        out(f"{_nevra(n, v)}.rpm{'':<10}19 MB/s |  10 MB     00:00\n")
    await p.host.sleep(p.host.timing.package_install)
    if pf.key_fault(p.host) and not rpm_keys.signature_check(
            p, [(_nevra(n, v), _repo_of(view, n, v)) for n, v in chosen.items()],
            pf.lab_today(p.host), out):
        return 1
    out("-" * 80 + "\nTotal                                            19 MB/s |  41 MB     00:00\n"
        "Running transaction check\nTransaction check succeeded.\nRunning transaction test\n"
        "Transaction test succeeded.\nRunning transaction\n")
    for n, v in chosen.items():
        old = view.db.version(n)
        verb_word = "Installing" if old is None else "Upgrading"
        out(f"  {verb_word:<17}: {_nevra(n, v)}\n")
        view.db.install(n, v)
        p.host.package_changed(n)
    done = {"Installing": "Installed", "Upgrading": "Upgraded", "Downgrading": "Downgraded"}
    for key, names in groups.items():
        if names:
            out(f"\n{done[key]}:\n" + "".join(f"  {_nevra(n, chosen[n])}\n" for n in names))
    out("\nComplete!\n")
    return 0


def _repo_of(view: DnfView, name: str, version: str) -> str:
    return next((r.id for v, r, _ in view.visible.get(name, []) if v == version), "kubernetes")


async def _download_fails(p: Proc, view: DnfView, chosen: dict[str, str], broken: list[str],
                          out: Callable[[str], None]) -> int:
    """Fault `package-install-fails`: the rpms of `broken` cannot be downloaded (the mirror
    does not answer). dnf downloads everything before the rpm transaction, so nothing is
    installed: the rpm database and versionlocks stay as they were (exit 1, as dnf's)."""
    errors = []
    for n, v in chosen.items():
        if n not in broken:
            out(f"{_nevra(n, v)}.rpm{'':<10}19 MB/s |  10 MB     00:00\n")
            continue
        repo = next((r for ver, r, _ in view.visible.get(n, []) if ver == v), None)
        base = (repo.baseurl if repo else "https://pkgs.k8s.io/").replace("$basearch", ARCH)
        url = f"{base.rstrip('/')}/{ARCH}/{_nevra(n, v)}.rpm"
        why = f"Curl error (28): Timeout was reached for {url} [{TIMED_OUT}]"
        p.err(f"[MIRROR] {_nevra(n, v)}.rpm: {why}\n[FAILED] {_nevra(n, v)}.rpm: {why}\n")
        errors.append(f"  {why}\n")
    await p.host.sleep(p.host.timing.package_install)  # until the downloads time out
    out("The downloaded packages were saved in cache until the next successful transaction.\n"
        f"You can remove cached packages by executing '{p.argv[0]} clean packages'.\n")
    p.err("Error: Error downloading packages:\n" + "".join(errors))
    return 1


async def list_(p: Proc, o: Options, args: list[str]) -> int:
    view = DnfView(p, o)
    failed = _refresh_failed(p, view)
    if failed is not None:
        return failed
    if o.cachedir:  # the fetched metadata goes there, written as the user running dnf
        try:
            p.host.fs.mkdir(o.cachedir, parents=True, root=p.root)
        except FsError as e:
            p.err(f"Error: Cannot create directory {o.cachedir}: {e}\n")  # [U] wording
            return 1
    scope = args[0] if args and args[0] in ("installed", "available", "all", "updates") else "all"
    specs = [a for a in args if a not in ("installed", "available", "all", "updates")] or ["*"]
    installed = sorted((n, v) for n, v in view.db.state.installed.items()
                       if any(fnmatch.fnmatchcase(n, s) for s in specs))
    available = sorted({m for s in specs for m in view.match(s, view.visible)},
                       key=lambda nv: (nv[0], parse_deb_version(nv[1])))
    if not o.showduplicates:
        newest: dict[str, str] = {}
        for n, v in available:
            newest[n] = v
        available = [(n, v) for n, v in newest.items()
                     if not view.db.version(n) or _cmp(v, view.db.version(n) or "0") > 0]
    else:
        available = [(n, v) for n, v in available if view.db.version(n) != v]
    # dnf 5 (dnf5 commands/list): lowercase headings, the repository loading on stderr.
    dnf5 = pf.dnf5(p.host)
    rows: list[str] = []
    if installed and scope in ("installed", "all"):
        rows.append("Installed packages" if dnf5 else "Installed Packages")
        rows += [f"{n + '.' + ARCH:<33}{v:<35}@kubernetes" for n, v in installed]
    if available and scope in ("available", "all", "updates"):
        rows.append("Available packages" if dnf5 else "Available Packages")
        rows += [f"{n + '.' + ARCH:<33}{v:<35}{_repo_of(view, n, v)}" for n, v in available]
    if not rows:
        p.err("No matching packages to list\n" if dnf5 else
              "Error: No matching Packages to list\n")
        return 1
    if dnf5:
        p.err("Updating and loading repositories:\nRepositories loaded.\n")
    # dnf 4 logs each --repofrompath repository (dnf/cli/cli.py `_configure_repos`).
    added = "".join(f"Added {i} repo from {u}\n" for i, u in o.from_path)
    p.out(("" if dnf5 else added + _metadata_line(p)) + "\n".join(rows) + "\n")
    return 0


async def versionlock(p: Proc, args: list[str]) -> int:
    db = p.host.db
    verb, names = (args[0], args[1:]) if args else ("list", [])
    if verb == "list":
        if pf.dnf5(p.host):  # dnf5 plugins/versionlock: one block per entry
            p.out("".join(f"# Added by 'versionlock add' command\nPackage name: "
                          f"{e.split('-0:')[0]}\nevr = {e.split('-0:')[-1].rstrip('.*')}\n\n"
                          for e in db.state.versionlocks))
            return 0
        p.out(_metadata_line(p) + "".join(f"{e}\n" for e in db.state.versionlocks))
        return 0
    if not p.root:
        return _not_root(p)
    if verb == "clear":
        db.state.versionlocks = []
        db.save()
        return 0
    out = [_metadata_line(p)]
    for name in names:
        v = db.version(name)
        if v is None:
            p.err(f"Error: No package found for: {name}\n")
            return 1
        entry = f"{name}-0:{v}.*"
        if verb in ("add", "exclude"):
            if entry not in db.state.versionlocks:
                db.state.versionlocks.append(entry)
            out.append(f"Adding versionlock on: {entry}\n")
        elif verb in ("delete", "del"):
            db.state.versionlocks = [e for e in db.state.versionlocks
                                     if not e.startswith(f"{name}-0:")]
            out.append(f"Deleting versionlock for: {entry}\n")
    db.save()
    p.out("".join(out))
    return 0


def _not_root(p: Proc) -> int:
    p.err("Error: This command has to be run with superuser privileges (under the root user on "
          "most systems).\n")
    return 1


async def dnf(p: Proc) -> int:
    dnf5 = pf.dnf5(p.host)
    if "--version" in p.argv[1:]:
        p.out("dnf5 version 5.2.8.1\ndnf5 plugin API version 2.0\nlibdnf5 version 5.2.8.1\n"
              if dnf5 else "4.14.0\n  Installed: dnf-0:4.14.0-9.el9.noarch at Mon 01 Jan 2024\n")
        return 0
    old = next((a for a in p.argv[1:] if a.startswith(("--disableexcludes",
                                                        "--disableexcludepkgs"))), None)
    if dnf5 and old is not None:
        words = [a for a in p.argv[1:] if not a.startswith("-")]
        p.err(f'Unknown argument "{old}" for command "{words[0] if words else "dnf5"}". Add '
              '"--help" for more information about the arguments.\n')
        return 2
    o, words = _parse(p.argv[1:])
    if not words:
        p.err("usage: dnf [options] COMMAND\n")
        return 1
    verb, args = words[0], words[1:]
    if verb in ("install", "upgrade", "update", "reinstall", "downgrade", "remove", "erase"):
        if not p.root:
            return _not_root(p)
        if verb in ("remove", "erase"):
            for n in args:
                if p.host.db.version(n):
                    p.host.db.remove(n)
                    p.host.package_changed(n)
            p.out("Complete!\n")
            return 0
        if not args and verb in ("upgrade", "update"):
            args = sorted(p.host.db.state.installed)
        return await install(p, o, args, verb)
    if verb == "list":
        return await list_(p, o, args)
    if verb == "versionlock":
        return await versionlock(p, args)
    if verb in ("makecache", "check-update", "clean", "repolist"):
        view = DnfView(p, o)
        failed = _refresh_failed(p, view) if verb != "clean" else None
        if failed is not None:
            return failed
        if verb == "makecache":
            p.out("Kubernetes                                       52 kB/s |  21 kB     00:00\n"
                  "Metadata cache created.\n")
        return 0
    p.err(f"No such command: {verb}. Please use /usr/bin/{p.argv[0]} --help\n")
    return 1


async def rpm(p: Proc) -> int:
    """`rpm -q [--qf FMT] NAME…` of packages and imported keys (`gpg-pubkey`), `rpm --import`,
    `rpm -e gpg-pubkey-…` (`rpm_keys`)."""
    args = p.argv[1:]
    fmt = None
    names = []
    i = 0
    while i < len(args):
        if args[i] in ("--qf", "--queryformat") and i + 1 < len(args):
            fmt = args[i + 1]
            i += 2
            continue
        if not args[i].startswith("-"):
            names.append(args[i])
        i += 1
    if "--import" in args:
        return rpm_keys.import_(p, names)
    if any(a in ("-e", "--erase") for a in args):
        return rpm_keys.erase_keys(p, names)
    keys = [n for n in names if n.startswith("gpg-pubkey")]
    if keys and any(a.startswith("-q") for a in args):
        return rpm_keys.query(p, keys, fmt, "--quiet" in args)
    if not any(a.startswith("-q") for a in args):
        p.err("rpm: no operation specified\n")
        return 1
    status = 0
    for n in names:
        v = p.host.db.version(n)
        if v is None:
            p.out(f"package {n} is not installed\n")
            status = 1
            continue
        version, _, release = v.partition("-")
        if fmt:
            p.out(fmt.replace("%{NAME}", n).replace("%{VERSION}", version)
                  .replace("%{RELEASE}", release).replace("%{ARCH}", ARCH).replace("\\n", "\n"))
        else:
            p.out(_nevra(n, v) + "\n")
    return status


TOOLS_YUM: dict[str, Tool] = {"dnf": dnf, "yum": dnf, "rpm": rpm}
