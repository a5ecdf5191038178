"""Node facts over a node transport: Kubernetes package versions, the package repository and its
minor, holds, and the kubeadm binary's version.

One read-only command line per node (no root needed), its sections separated by marker lines, so
a node costs one round trip. Anything with `async run(node, command) -> (exit code, stdout,
stderr)` can carry it: the SSH transport, or the lab's node agents in tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shlex
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from kubehop.core import apt_preferences as ap
from kubehop.core import node_commands as nc
from kubehop.core.node_commands import APT_KEYRING, DEPENDENCIES
from kubehop.model.cluster import (
    AptPin,
    ClusterState,
    NodePackages,
    NodeState,
    OsFamily,
    RepoSource,
    RepoTrial,
)
from kubehop.model.errors import KubehopError
from kubehop.model.versions import MinorVersion, parse_deb_version
from kubehop.shell.observe.decode import kube_version_or_none
from kubehop.shell.observe.host import host_command_parts, parse_host
from kubehop.shell.transports import Transport

PACKAGES = ("kubeadm", "kubelet", "kubectl")
# Holds and versionlocks worth knowing: the packages, and what they require (a held cri-tools
# must be released for the next kubeadm).
KEPT = (*PACKAGES, *DEPENDENCIES)
MARK = "@@kubehop:"
CONCURRENCY = 50  # nodes asked at once
TIMEOUT = 30.0  # seconds per node
TRIAL_TIMEOUT = 120.0  # seconds per node for the trial refresh (a slow mirror)

_RHEL_WORDS = ("rocky", "red hat", "rhel", "centos", "alma", "fedora", "oracle", "amazon linux")
_PKGS_MINOR_RE = re.compile(r"pkgs\.k8s\.io/core:/stable:/v(\d+)\.(\d+)/")
_LEGACY_RE = re.compile(r"apt\.kubernetes\.io|yum\.kubernetes\.io|packages\.cloud\.google\.com/"
                        r"(?:apt|yum)")
_KUBE_RE = re.compile(_PKGS_MINOR_RE.pattern + "|" + _LEGACY_RE.pattern + r"|pkgs\.k8s\.io")
_LOCK_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9+._-]*?)-(?:\d+:)?\d")
_DNF5_LOCK_RE = re.compile(r"^Package name:\s*(\S+)")  # dnf5 `versionlock list`
APT_SOURCE_LIST = "/etc/apt/sources.list"
APT_SOURCE_PARTS = "/etc/apt/sources.list.d"
YUM_REPOS_DIR = "/etc/yum.repos.d"


class NodeRunner(Protocol):
    """Runs one shell command line on a node: (exit code, stdout, stderr)."""

    async def run(self, node: str, command: str) -> tuple[int, str, str]: ...


class TransportRunner:
    """A NodeRunner over a `kubehop.shell.transports.Transport` (SSH in practice)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def prepare(self, nodes: Iterable[NodeState]) -> list[tuple[str, str]]:
        """Reach nodes the inventory does not name at their InternalIP; returns those
        (node, InternalIP) pairs."""
        reach = getattr(self.transport, "reach_unlisted", None)
        return reach((n.name, n.internal_ip) for n in nodes) if callable(reach) else []

    async def run(self, node: str, command: str) -> tuple[int, str, str]:
        result = await self.transport.run(node, command, timeout=TIMEOUT)
        return result.exit_code, result.stdout, result.stderr


def os_family(os_image: str) -> OsFamily:
    """Debian-family unless the node's OS image names a RHEL-family distribution."""
    lowered = os_image.lower()
    return OsFamily.RHEL if any(w in lowered for w in _RHEL_WORDS) else OsFamily.DEBIAN


def facts_command(family: OsFamily) -> str:
    """The one command line that prints every section `parse_facts` reads."""
    names = " ".join(PACKAGES)
    tool: list[str] = []
    if family is OsFamily.RHEL:
        packages = f"rpm -q --qf '%{{NAME}} %{{VERSION}}-%{{RELEASE}}\\n' {names}"
        repo = f"grep -rHs '' {YUM_REPOS_DIR}"
        holds = "dnf versionlock list"
        tool = [f"echo {MARK}dnf", "dnf --version", *rpm_key_command_parts()]
    else:
        packages = f"dpkg-query -W -f '${{Package}} ${{Version}}\\n' {names}"
        repo = f"grep -rHs '' {APT_SOURCE_LIST} {APT_SOURCE_PARTS}"
        holds = "apt-mark showhold"
        # apt_preferences(5): /etc/apt/preferences, then preferences.d (blank lines kept:
        # they separate stanzas).
        tool += [f"echo {MARK}prefs", f"grep -rHs '' {ap.PREFERENCES} {ap.PREFERENCES_DIR}"]
        # The upstream guide's keyring (a node naming another one is read again, `node_facts`).
        tool += [f"echo {MARK}key", f"ls {shlex.quote(APT_KEYRING)}",
                 key_command(APT_KEYRING)]
    parts = [packages, f"echo {MARK}repo", repo, f"echo {MARK}holds", holds, *tool,
             f"echo {MARK}kubeadm", "kubeadm version -o short", *host_command_parts(MARK)]
    return "; ".join(f"{p} 2>/dev/null" if not p.startswith("echo") else p for p in parts)


# The Kubernetes repository key among rpm's imported keys: the pkgs.k8s.io key (OBS project
# isv:kubernetes, key id …234654DA9A296436) by its user id, which rpm stores as PACKAGER.
RPM_KEY_OWNER = "isv:kubernetes"
RPM_KEY_ID = "9a296436"
_RPM_PUBKEY_RE = re.compile(r"^gpg-pubkey-([0-9a-f]{8}|[0-9a-f]{40})-([0-9a-f]+)$")


def rpm_key_command_parts() -> list[str]:
    """The sections that read rpm's imported keys: each gpg-pubkey package with its user id,
    then every key's validity and expiry from `gpg --show-keys` of their armored copies (rpm
    keeps each key armored as the package's DESCRIPTION, lib/rpmts.c makePubkeyHeader)."""
    return [f"echo {MARK}rpmkeys",
            "rpm -q gpg-pubkey --qf '%{NAME}-%{VERSION}-%{RELEASE}\\t%{PACKAGER}\\n'",
            f"echo {MARK}rpmkeyinfo",
            "rpm -q gpg-pubkey --qf '%{DESCRIPTION}\\n' | gpg --show-keys --with-colons"]


def parse_rpm_keys(names: list[str], info: list[str]
                   ) -> tuple[tuple[str, ...], bool, bool, str | None]:
    """(the Kubernetes gpg-pubkey packages, found, expired, expiry date) from the `rpmkeys`
    lines (`NVR<TAB>PACKAGER`; "package gpg-pubkey is not installed" when none) and the
    `gpg --show-keys --with-colons` records of every imported key. A key is matched to its
    package by id and creation time (VERSION: the key id's last 8 hex digits, or the whole
    fingerprint in rpm 6; RELEASE: the creation time in hex)."""
    keys: list[tuple[str, str, str]] = []
    for line in names:
        nvr, _, packager = line.strip().partition("\t")
        m = _RPM_PUBKEY_RE.match(nvr)
        if m and (RPM_KEY_OWNER in packager or m.group(1).endswith(RPM_KEY_ID)):
            keys.append((nvr, m.group(1), m.group(2)))
    if not keys:
        return (), False, False, None
    expired, expires = False, None
    records = [ln.split(":") for ln in info]
    for i, fields in enumerate(records):
        if fields[0] != "pub" or len(fields) < 7 or not fields[5].isdigit():
            continue
        fpr = next((r[9].lower() for r in records[i + 1:i + 3]
                    if r[0] == "fpr" and len(r) > 9), "")
        created = f"{int(fields[5]):x}"
        if not any(rel == created and (fpr.endswith(ver) or fields[4].lower().endswith(ver))
                   for _n, ver, rel in keys):
            continue
        date_ = (datetime.fromtimestamp(int(fields[6]), UTC).date().isoformat()
                 if fields[6].isdigit() else None)
        expired = expired or fields[1] == "e"
        expires = min(filter(None, (expires, date_)), default=None)
    return tuple(n for n, _v, _r in keys), True, expired, expires


def key_command(keyring: str) -> str:
    """`gpg --show-keys --with-colons KEYRING`: the key's validity and expiry, without root
    (the guide's keyring is world-readable) and without touching a gpg home."""
    return f"gpg --show-keys --with-colons {shlex.quote(keyring)}"


def parse_key(lines: list[str], keyring: str) -> tuple[bool, bool, str | None]:
    """(found, expired, expiry date) from `ls KEYRING` and `gpg --show-keys --with-colons`
    output: the file exists when `ls` named it; the `pub` record gives the validity (field 2,
    `e`: expired) and expiry (field 7, seconds since the epoch; gnupg doc/DETAILS). A file gpg
    cannot read counts as found with nothing known (apt may still read it)."""
    names = (keyring, keyring.rsplit("/", 1)[-1])
    found = any(line.strip() in names for line in lines)
    for line in lines:
        fields = line.split(":")
        if fields[0] == "pub" and len(fields) > 6:
            expires = None
            if fields[6].isdigit():
                expires = datetime.fromtimestamp(int(fields[6]), UTC).date().isoformat()
            return True, fields[1] == "e", expires
    return found, False, None


def _sections(stdout: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {"packages": []}
    current = "packages"
    for line in stdout.splitlines():
        if line.startswith(MARK):
            current = line[len(MARK):].strip()
            sections[current] = []
        else:
            sections.setdefault(current, []).append(line)
    return sections


def _files(lines: list[str]) -> dict[str, list[str]]:
    """`grep -rH` output (`FILE:LINE`) as file → lines, in apt's reading order: sources.list
    first, then the other files by name (apt reads `sources.list.d` sorted; grep walks a
    directory in readdir order)."""
    files: dict[str, list[str]] = {}
    for line in lines:
        path, sep, text = line.partition(":")
        if sep and path.startswith("/"):
            files.setdefault(path, []).append(text)
    return dict(sorted(files.items(), key=lambda kv: (kv[0] != APT_SOURCE_LIST, kv[0])))


def _apt_sources(path: str, lines: list[str]) -> list[RepoSource]:
    """The `deb` sources of one file: one-line format (`.list`, sources.list(5)) or deb822
    (`.sources`: `Types:`, `URIs:`, `Signed-By:`; `Enabled: no` skipped)."""
    out: list[RepoSource] = []
    if path.endswith(".sources"):
        for stanza in "\n".join(lines).split("\n\n"):
            fields: dict[str, str] = {}
            for raw in stanza.splitlines():
                if ":" in raw and not raw.startswith((" ", "\t", "#")):
                    key, _, value = raw.partition(":")
                    fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or \
                    fields.get("enabled", "yes").lower() == "no":
                continue
            out += [RepoSource(path, uri, fields.get("signed-by") or None)
                    for uri in fields.get("uris", "").split()]
        return out
    if not (path.endswith(".list") or path == APT_SOURCE_LIST):
        return out  # apt ignores other names in sources.list.d
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest, options = line[4:].strip(), ""
        if rest.startswith("["):
            options, _, rest = rest[1:].partition("]")
        words = rest.split()
        signed = next((o.partition("=")[2] for o in options.split()
                       if o.startswith("signed-by=")), None)
        if words:
            out.append(RepoSource(path, words[0], signed or None))
    return out


def _yum_sources(path: str, lines: list[str], held: set[str],
                 keys: list[str] | None = None) -> list[RepoSource]:
    """The Kubernetes `[id]` sections of one .repo file; their `exclude=` names go to `held`,
    their first `gpgkey=` URL (when `gpgcheck` is on) to `keys`."""
    out: list[RepoSource] = []
    if not path.endswith(".repo"):
        return out
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in lines:
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), {})
        elif current is not None and "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    for repo_id, fields in sections.items():
        uri = fields.get("baseurl", "").split()[0] if fields.get("baseurl") else ""
        if not _KUBE_RE.search(uri) or fields.get("enabled", "1") in ("0", "false", "no"):
            continue
        out.append(RepoSource(path, uri, None, repo_id))
        if keys is not None and fields.get("gpgcheck", "1") not in ("0", "false", "no"):
            keys.append(fields.get("gpgkey", "").replace(",", " ").split()[0]
                        if fields.get("gpgkey", "").strip() else "")
        for key in ("exclude", "excludepkgs"):
            held.update(w for w in fields.get(key, "").replace(",", " ").split()
                        if w in PACKAGES)
    return out


def parse_facts(family: OsFamily, stdout: str) -> NodePackages:
    """The NodePackages that `facts_command(family)`'s output describes."""
    s = _sections(stdout)
    versions: dict[str, str] = {}
    for line in s.get("packages", []):
        words = line.split()
        if len(words) == 2 and words[0] in PACKAGES and words[1][:1].isdigit():
            versions[words[0]] = words[1]
    held: set[str] = set()
    sources: list[RepoSource] = []
    others: list[RepoSource] = []  # other vendors' apt sources with a keyring
    gpgkeys: list[str] = []  # rpm: the `gpgkey=` of each Kubernetes section checking signatures
    for path, lines in _files(s.get("repo", [])).items():
        found = (_yum_sources(path, lines, held, gpgkeys) if family is OsFamily.RHEL
                 else _apt_sources(path, lines))
        sources += [r for r in found if _KUBE_RE.search(r.uri)]
        others += [r for r in found if not _KUBE_RE.search(r.uri) and r.signed_by]
    repo_minor = None
    legacy = False
    if sources:
        m = _PKGS_MINOR_RE.search(sources[0].uri)
        repo_minor = MinorVersion(int(m.group(1)), int(m.group(2))) if m else None
        legacy = bool(_LEGACY_RE.search(sources[0].uri))
    locked: set[str] = set()
    for line in s.get("holds", []):
        name = line.strip()
        if family is OsFamily.RHEL:
            m = _DNF5_LOCK_RE.match(name) or _LOCK_RE.match(name)
            name = m.group(1) if m else ""
            if name in KEPT:
                locked.add(name)
        if name in KEPT:
            held.add(name)
    pins, pins_other = _pins(s.get("prefs", []))
    kubeadm_lines = [ln.strip() for ln in s.get("kubeadm", []) if ln.strip()]
    key = _key_facts(s, sources)
    rpm_keys: tuple[str, ...] = ()
    if family is OsFamily.RHEL and gpgkeys and not legacy and "rpmkeys" in s:
        rpm_keys, found, expired, expires = parse_rpm_keys(s["rpmkeys"], s.get("rpmkeyinfo", []))
        key = (found, expired, expires)
    return NodePackages(
        os_family=family,
        kubeadm=versions.get("kubeadm"),
        kubelet=versions.get("kubelet"),
        kubectl=versions.get("kubectl"),
        repo_minor=repo_minor,
        repo_legacy=legacy,
        held=tuple(sorted(held)),
        kubeadm_binary=kube_version_or_none(kubeadm_lines[0]) if kubeadm_lines else None,
        repo_sources=tuple(sources),
        # dnf 5 answers `dnf --version` with "dnf5 version 5.x" (dnf 4: "4.14.0").
        dnf5=any("dnf5" in line for line in s.get("dnf", [])),
        locked=tuple(sorted(locked)),
        host=parse_host(s),
        key_found=key[0], key_expired=key[1], key_expires=key[2],
        pins=pins, pins_other=pins_other,
        vendor_keys=tuple((r.file, r.uri, r.signed_by or "", "") for r in others),
        rpm_keys=rpm_keys, key_url=(gpgkeys[0] or None) if gpgkeys else None,
    )


def _pins(lines: list[str]) -> tuple[tuple[AptPin, ...], str]:
    """The Kubernetes stanzas of the preferences files apt reads, in its order
    (/etc/apt/preferences first, then preferences.d by name), and the other stanzas of the
    file kubehop would rewrite."""
    files: dict[str, list[str]] = {}
    for line in lines:
        path, sep, text = line.partition(":")
        if sep and (path == ap.PREFERENCES or (path.startswith(ap.PREFERENCES_DIR + "/") and
                                               ap.reads_part(path.rsplit("/", 1)[1]))):
            files.setdefault(path, []).append(text)
    texts = dict(sorted(((p, "\n".join(ls)) for p, ls in files.items()),
                        key=lambda kv: (kv[0] != ap.PREFERENCES, kv[0])))
    pins = tuple(pin for path, text in texts.items() for pin in ap.parse_stanzas(path, text))
    managed = ap.managed_pins(pins)
    other = ""
    if managed:
        path = managed[0].file
        other = "\n\n".join(st.strip() for st in re.split(r"\n[ \t]*\n", texts[path])
                            if st.strip() and not (
                                (found := ap.parse_stanzas(path, st))
                                and all(p in managed for p in found)))
    return pins, other


def _key_facts(s: dict[str, list[str]], sources: list[RepoSource]
               ) -> tuple[bool | None, bool, str | None]:
    """The key facts, when the section read the keyring the node's source names."""
    if "key" not in s or not sources or (sources[0].signed_by or APT_KEYRING) != APT_KEYRING:
        return None, False, None
    return parse_key(s["key"], APT_KEYRING)


async def node_facts(runner: NodeRunner, node: NodeState) -> NodePackages:
    """Ask one node; raises what the runner raises (or TimeoutError)."""
    family = os_family(node.os_image)
    _code, out, _err = await asyncio.wait_for(runner.run(node.name, facts_command(family)),
                                              TIMEOUT)
    # The exit code is that of the last command (kubeadm): the sections say what worked.
    facts = parse_facts(family, out)
    keyring = facts.keyring
    if keyring and facts.key_found is None and family is OsFamily.DEBIAN:
        _code, out, _err = await asyncio.wait_for(runner.run(
            node.name, f"ls {shlex.quote(keyring)} 2>/dev/null; {key_command(keyring)} "
                       f"2>/dev/null"), TIMEOUT)
        found, expired, expires = parse_key(out.splitlines(), keyring)
        facts = dataclasses.replace(facts, key_found=found, key_expired=expired,
                                    key_expires=expires)
    if facts.vendor_keys:
        facts = dataclasses.replace(facts, vendor_keys=await _vendor_keys(
            runner, node.name, facts.vendor_keys))
    return facts


async def _vendor_keys(runner: NodeRunner, node: str,
                       sources: tuple[tuple[str, str, str, str], ...]
                       ) -> tuple[tuple[str, str, str, str], ...]:
    """Of other vendors' sources, those whose keyring is missing or holds an expired key (apt
    then fails that source: NO_PUBKEY, EXPKEYSIG), read with gpg, no network. kubehop refreshes
    only the Kubernetes source, but a plain `apt-get update` there fails (exit 100)."""
    keyrings = sorted({keyring for _f, _u, keyring, _e in sources})
    line = "; ".join(f"echo {MARK}vk{i}; ls {shlex.quote(k)} 2>/dev/null; {key_command(k)} "
                     f"2>/dev/null" for i, k in enumerate(keyrings))
    _code, out, _err = await asyncio.wait_for(runner.run(node, line), TIMEOUT)
    s = _sections(out)
    broken: dict[str, str] = {}
    for i, keyring in enumerate(keyrings):
        found, expired, expires = parse_key(s.get(f"vk{i}", []), keyring)
        if not found or expired:
            broken[keyring] = (expires or "expired") if found else ""
    return tuple((f, u, k, broken[k]) for f, u, k, _e in sources if k in broken)


async def gather_node_facts(
    runner: NodeRunner, nodes: Iterable[NodeState], concurrency: int = CONCURRENCY
) -> tuple[Mapping[str, NodePackages], Mapping[str, str]]:
    """(node → packages, node → why it could not be asked) for every node."""
    nodes = list(nodes)
    gate = asyncio.Semaphore(concurrency)
    facts: dict[str, NodePackages] = {}
    errors: dict[str, str] = {}

    async def one(node: NodeState) -> None:
        async with gate:
            try:
                facts[node.name] = await node_facts(runner, node)
            except Exception as e:  # one unreachable node must not hide the others
                # (kubehop's own errors are one clear line already; others get their type)
                errors[node.name] = (str(e) if isinstance(e, KubehopError) and str(e)
                                     else f"{type(e).__name__}: {e}" if str(e)
                                     else type(e).__name__)

    await asyncio.gather(*(one(n) for n in nodes))
    return facts, errors


# --- the trial refresh of the target minor's repository (`check --to`) -------------------------

TRIAL_DIR = "/tmp/kubehop-trial"
# apt's state kept out of the node's own: the lists (and no binary caches, which a login user
# may not write) live in TRIAL_DIR, so the node's package lists are never touched.
_TRIAL_STATE = (f"-o Dir::Etc::sourcelist={TRIAL_DIR}/kubernetes.list -o Dir::Etc::sourceparts=- "
                f"-o Dir::State::Lists={TRIAL_DIR}/lists -o Dir::Cache::pkgcache= "
                f"-o Dir::Cache::srcpkgcache=")


# dnf's trial: the target minor's repository added for this one run (`--repofrompath`), the
# only one enabled (`--repo`), tuned by `--setopt=ID.option=` (rpm-software-management/dnf
# doc/command_ref.rst and dnf/cli/cli.py `_configure_repos`; rpm-software-management/dnf5
# doc/dnf5.8.rst). Its metadata goes to TRIAL_DIR, never the node's own cache: dnf 4 gives a
# login user a cache of its own anyway (dnf/conf/config.py `MainConf`, `misc.getCacheDir()`),
# dnf 5 ~/.cache/libdnf5, moved by `cachedir` (dnf5 doc/misc/caching.7.rst). Versionlock is
# switched off (`--disableplugin`, both): it would hide every other kubeadm version.
TRIAL_REPO = "kubehop-trial"
_DNF_ROW_RE = re.compile(r"^kubeadm\.\S+\s+(?:\d+:)?(\d\S*)\s+(\S+)\s*$")


def trial_command(packages: NodePackages, minor: MinorVersion,
                  source: nc.PackageSource = nc.PKGS) -> str:
    """One command line, run as the login user, that refreshes `minor`'s repository (apt: with
    the node's own keyring, into a throwaway lists directory; dnf: as a repository of this run
    only, cached in a throwaway directory) and lists the kubeadm versions it offers."""
    if packages.os_family is OsFamily.RHEL:
        return _dnf_trial_command(minor, source)
    line = nc.apt_source_line(minor, source, packages.keyring).strip()
    return "; ".join([
        f"rm -rf {TRIAL_DIR}", f"mkdir -p {TRIAL_DIR}/lists/partial",
        f"printf '%s\\n' {shlex.quote(line)} > {TRIAL_DIR}/kubernetes.list",
        f"apt-get update -q {_TRIAL_STATE} -o APT::Get::List-Cleanup=0 "
        f"-o APT::Update::Error-Mode=any 2>&1 && echo {MARK}ok || echo {MARK}failed",
        f"echo {MARK}madison", f"apt-cache {_TRIAL_STATE} madison kubeadm 2>/dev/null",
        f"rm -rf {TRIAL_DIR}"])


def _dnf_trial_command(minor: MinorVersion, source: nc.PackageSource) -> str:
    """`dnf list --showduplicates kubeadm` of `minor`'s repository alone, defined as the
    upstream guide's .repo file defines it (gpgcheck with the minor's repomd.xml.key; `list`
    reads metadata only, so rpm's imported key is judged by the node.repo-key-* checks), and
    failing when the repository does not answer (`skip_if_unavailable=0`)."""
    url = source.minor_url(minor, "rpm")
    opts = [f"--repofrompath={TRIAL_REPO},{url}", f"--repo={TRIAL_REPO}",
            f"--setopt=cachedir={TRIAL_DIR}/dnf", f"--setopt={TRIAL_REPO}.skip_if_unavailable=0",
            f"--setopt={TRIAL_REPO}.gpgcheck={int(source.gpgcheck)}"]
    if source.gpgcheck:
        opts.append(f"--setopt={TRIAL_REPO}.gpgkey={nc.yum_key_url(minor, source)}")
    opts.append("--disableplugin=versionlock")
    dnf = " ".join(["dnf", *(shlex.quote(o) for o in opts), "list", "--showduplicates",
                    "kubeadm"])
    return "; ".join([f"rm -rf {TRIAL_DIR}", f"mkdir -p {TRIAL_DIR}",
                      f"{dnf} 2>&1 && echo {MARK}ok || echo {MARK}failed",
                      f"rm -rf {TRIAL_DIR}"])


def parse_trial(minor: MinorVersion, stdout: str) -> RepoTrial:
    """The RepoTrial that `trial_command`'s output describes: apt-cache madison's rows
    (`kubeadm | VERSION | SOURCE`), or dnf 4/5 list rows (`kubeadm.ARCH  VERSION-RELEASE
    REPO`) of the trial repository, newest first."""
    s = _sections(stdout)
    offered = tuple(words[2] for line in s.get("madison", [])
                    if len(words := line.split()) >= 3 and words[0] == "kubeadm")
    listed: set[str] = set()
    installed = False  # under dnf's "Installed Packages" (dnf 5: "packages") heading
    for line in s.get("packages", []):
        if line.lower().startswith(("installed packages", "available packages")):
            installed = line.lower().startswith("installed")
        # An installed kubeadm of that minor needs nothing from the repository; dnf lists it
        # under "Installed" only, whatever repository still offers it.
        elif (m := _DNF_ROW_RE.match(line.strip())) and (
                m.group(2) == TRIAL_REPO or (installed and m.group(1).startswith(f"{minor}."))):
            listed.add(m.group(1))
    if listed:
        offered = tuple(sorted(listed, key=parse_deb_version, reverse=True))
    if "ok" in s:
        return RepoTrial(minor, True, offered)
    # apt's `E:`/`W:` lines; dnf 4's `Error:` and librepo's `  - Curl error …` detail lines,
    # dnf 5's `>>> ` ones [U].
    errors = [ln.strip().removeprefix("- ").removeprefix(">>> ") for ln in s.get("packages", [])
              if ln.startswith(("E:", "W:", "Error:", "  - ", ">>> "))]
    return RepoTrial(minor, False, offered,
                     "; ".join(errors[:3]) or "the package manager's refresh failed")


async def gather_trials(runner: NodeRunner, state: ClusterState, minor: MinorVersion,
                        concurrency: int = CONCURRENCY) -> ClusterState:
    """`state` with each node's trial of `minor`'s repository (`check --to`): a node
    whose refresh fails is found before the control plane moves, not on its own turn."""
    gate = asyncio.Semaphore(concurrency)
    trials: dict[str, RepoTrial] = {}

    async def one(node: NodeState) -> None:
        if node.packages is None:
            return
        command = trial_command(node.packages, minor)
        async with gate:
            try:
                _code, out, _err = await asyncio.wait_for(runner.run(node.name, command),
                                                          TRIAL_TIMEOUT)
            except Exception as e:  # reported as the trial's failure, node by node
                trials[node.name] = RepoTrial(minor, False, (), f"{type(e).__name__}: {e}")
                return
            trials[node.name] = parse_trial(minor, out)

    await asyncio.gather(*(one(n) for n in state.nodes))
    nodes = tuple(dataclasses.replace(n, packages=dataclasses.replace(
        n.packages, trial=trials[n.name])) if n.name in trials and n.packages else n
        for n in state.nodes)
    return dataclasses.replace(state, nodes=nodes)
