"""rpm's imported signing keys on a RHEL-family node, and dnf's signature check against them.

rpm keeps each imported key as a `gpg-pubkey` package: VERSION the key id's last 8 hex digits,
RELEASE its creation time in hex, PACKAGER its user id, SUMMARY `<user id> public key`,
DESCRIPTION the key armored (rpm lib/rpmts.c makePubkeyHeader). The lab stores them as rpm's
file keyring does, one `<nvr>.key` file of armored text per key under `/var/lib/rpm/pubkeys`
(lib/rpmts.c rpmtsImportFSKey). `rpm --import` keeps the key it has when one with the same id
is imported already (lib/rpmkeyring.c rpmKeyringAddKey: "already have key"), so a re-issued key
whose expiry was extended replaces nothing until the old one is erased (kubernetes/release#3840).

dnf 4 (dnf/base.py `_get_key_for_package`, cli `gpgsigcheck`) checks each downloaded package of
a `gpgcheck=1` repository: with no key of that id it imports the repository's `gpgkey=` (asking,
or at once with `-y`); with an expired one (rpm-sequoia: "certificate is not alive") it finds
the `gpgkey=` key "already installed" and fails with "GPG check FAILED" (exit 1). As apt's
check in `package_faults.key_error`, the lab checks only on nodes with the `repo-key` fault.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime

from kubehop.lab.node.fs import FsError
from kubehop.lab.node.gpg_curl import DEFAULT_KEY, LabKey, armor, fetch, read_key
from kubehop.lab.node.host import LabNode, Proc

PUBKEY_DIR = "/var/lib/rpm/pubkeys"
REPOS_DIR = "/etc/yum.repos.d"


def nvr(key: LabKey) -> str:
    """The gpg-pubkey package rpm makes of `key` (`gpg-pubkey-9a296436-64d1c5d4`)."""
    created = int(datetime(key.created.year, key.created.month, key.created.day,
                           tzinfo=UTC).timestamp())
    return f"gpg-pubkey-{key.key_id[-8:].lower()}-{created:x}"


def imported(host: LabNode) -> dict[str, LabKey]:
    """NVR → key of every key imported into rpm on `host`."""
    fs = host.fs
    out: dict[str, LabKey] = {}
    try:
        names = sorted(fs.listdir(PUBKEY_DIR))
    except FsError:
        return out
    for name in names:
        if name.endswith(".key"):
            try:
                out[name[:-4]] = read_key(fs.read(f"{PUBKEY_DIR}/{name}"))
            except (FsError, ValueError):
                continue
    return out


def import_key(host: LabNode, key: LabKey) -> bool:
    """Import `key`; False (and nothing changed) when a key with its id is imported already."""
    if any(k.key_id == key.key_id for k in imported(host).values()):
        return False
    host.fs.mkdir(PUBKEY_DIR, parents=True)
    host.fs.write(f"{PUBKEY_DIR}/{nvr(key)}.key", armor(key))
    return True


def erase(host: LabNode, name: str) -> bool:
    """Erase gpg-pubkey `name`; False when it is not imported."""
    path = f"{PUBKEY_DIR}/{name}.key"
    if not host.fs.exists(path):
        return False
    host.fs.remove(path)
    return True


def provision(host: LabNode) -> None:
    """The pkgs.k8s.io key imported, as dnf imports it at a node's first Kubernetes install;
    once (the keyring directory is the marker), so a lab restart keeps what the node did."""
    if host.fs.exists(PUBKEY_DIR):
        return
    host.fs.mkdir(PUBKEY_DIR, parents=True)
    import_key(host, DEFAULT_KEY)


def seed(host: LabNode, state: str, today: date, expires: date) -> None:
    """Fault `repo-key` on an rpm node: the imported key removed (`missing`), or replaced by
    one expiring on `expires` (same id and creation time: a key whose expiry was moved)."""
    host.fs.mkdir(PUBKEY_DIR, parents=True)
    for name, key in imported(host).items():
        if key.key_id == DEFAULT_KEY.key_id:
            erase(host, name)
    if state != "missing":
        import_key(host, dataclasses.replace(DEFAULT_KEY, expires=expires))


# --- rpm -q gpg-pubkey / --import / -e -------------------------------------------------------


def _tags(name: str, key: LabKey) -> dict[str, str]:
    _, _, version, release = name.split("-", 3)
    return {"NAME": "gpg-pubkey", "VERSION": version, "RELEASE": release, "ARCH": "(none)",
            "PACKAGER": key.uid, "SUMMARY": f"{key.uid} public key",
            "DESCRIPTION": armor(key).rstrip("\n")}


def query(p: Proc, names: list[str], fmt: str | None, quiet: bool) -> int:
    """`rpm -q gpg-pubkey[-VER-REL] [--qf FMT]`: every matching imported key (rpm queries
    `gpg-pubkey` by name, each key by its NVR)."""
    keys = imported(p.host)
    status = 0
    for want in names:
        found = [(n, k) for n, k in keys.items() if want in ("gpg-pubkey", n)]
        if not found:
            if not quiet:
                p.out(f"package {want} is not installed\n")
            status = 1
            continue
        for name, key in found:
            if quiet:
                continue
            if fmt is None:
                p.out(name + "\n")
                continue
            text = fmt.replace("\\n", "\n").replace("\\t", "\t")
            for tag, value in _tags(name, key).items():
                text = text.replace(f"%{{{tag}}}", value)
            p.out(text)
    return status


def _not_root(p: Proc) -> int:
    p.err("error: can't create transaction lock on /var/lib/rpm/.rpm.lock (Permission denied)\n")
    return 1


def import_(p: Proc, sources: list[str]) -> int:
    """`rpm --import URL|FILE…`: rpm fetches a URL itself (with curl, its %_urlhelper)."""
    if not p.root:
        return _not_root(p)
    for src in sources:
        if "://" in src:
            data = fetch(p.host, src)
            if data is None:
                p.err(f"curl: (22) The requested URL returned error: 404\n"
                      f"error: {src}: import read failed(-1).\n")
                return 1
        else:
            try:
                data = p.host.fs.read_bytes(p.path(src))
            except FsError:
                p.err(f"error: {src}: import read failed(2).\n")
                return 1
        try:
            key = read_key(data)
        except ValueError:
            p.err(f"error: {src}: key 1 import failed.\n")
            return 1
        import_key(p.host, key)
    return 0


def erase_keys(p: Proc, names: list[str]) -> int:
    """`rpm -e NAME…`: imported keys (`gpg-pubkey-VER-REL`) and installed packages alike."""
    if not p.root:
        return _not_root(p)
    keys, db = imported(p.host), p.host.db
    missing = [n for n in names if n not in keys and db.version(n) is None]
    for name in missing:
        p.err(f"error: package {name} is not installed\n")
    if missing:
        return 1
    for name in names:
        if name in keys:
            erase(p.host, name)
        else:
            db.remove(name)
            p.host.package_changed(name)
    return 0


# --- dnf's signature check -------------------------------------------------------------------


def repo_gpg(host: LabNode, repo_id: str) -> tuple[bool, str, list[str]]:
    """(gpgcheck, name, gpgkey URLs) of repository `repo_id` (dnf's defaults: gpgcheck on in
    RHEL's dnf.conf; name the id)."""
    check, name, keys = True, repo_id, []
    try:
        files = sorted(host.fs.listdir(REPOS_DIR))
    except FsError:
        return check, name, keys
    for file in files:
        if not file.endswith(".repo"):
            continue
        current = None
        for raw in host.fs.read(posixpath.join(REPOS_DIR, file)).splitlines():
            line = raw.strip()
            if line.startswith("[") and line.endswith("]"):
                current = line[1:-1].strip()
            elif current == repo_id and "=" in line and not line.startswith(("#", ";")):
                k, _, v = (s.strip() for s in line.partition("="))
                if k == "gpgcheck":
                    check = v not in ("0", "false", "no")
                elif k == "name":
                    name = v
                elif k == "gpgkey":
                    keys = v.replace(",", " ").split()
    return check, name, keys


def _fingerprint(key: LabKey) -> str:
    f = key.fingerprint
    return " ".join(f[i:i + 4] for i in range(0, 20, 4)) + "  " + " ".join(
        f[i:i + 4] for i in range(20, 40, 4))


def signature_check(p: Proc, packages: Iterable[tuple[str, str]], today: date,
                    out: Callable[[str], None]) -> bool:
    """dnf's check of downloaded `packages` ((nevra, repository id), all signed with the
    pkgs.k8s.io key) before the transaction; False after printing dnf's error when it fails."""
    host = p.host
    errors: list[str] = []
    for nevra, repo_id in packages:
        check, name, urls = repo_gpg(host, repo_id)
        if not check:
            continue
        have = [k for k in imported(host).values() if k.key_id == DEFAULT_KEY.key_id]
        if have and not any(k.expired(today) for k in have):
            continue
        failing = f". Failing package is: {nevra}\n GPG Keys are configured as: {', '.join(urls)}"
        imported_now = False
        for url in urls:
            data = fetch(host, url)
            try:
                key = read_key(data) if data is not None else None
            except ValueError:
                key = None
            if key is None:
                errors.append(f"Curl error (22): HTTP response code said error for {url} "
                              f"[The requested URL returned error: 404]{failing}")
                break
            short = key.key_id[-8:].upper()
            if any(k.key_id == key.key_id for k in imported(host).values()):
                out(f"GPG key at {url} (0x{short}) is already installed\n")
                continue
            out(f"Importing GPG key 0x{short}:\n Userid     : \"{key.uid}\"\n Fingerprint: "
                f"{_fingerprint(key)}\n From       : {url}\n")
            import_key(host, key)
            imported_now = True
            out("Key imported successfully\n")
        else:
            have = [k for k in imported(host).values() if k.key_id == DEFAULT_KEY.key_id]
            if have and not any(k.expired(today) for k in have):
                continue
            if imported_now:
                out("Import of key(s) didn't help, wrong key(s)?\n")
                errors.append(f"Public key for {nevra}.rpm is not installed{failing}")
            else:
                errors.append(f"The GPG keys listed for the \"{name}\" repository are already "
                              f"installed but they are not correct for this package.\nCheck "
                              f"that the correct key URLs are configured for this "
                              f"repository.{failing}")
    if not errors:
        return True
    p.err("".join(e + "\n" for e in errors))
    out("The downloaded packages were saved in cache until the next successful transaction.\n"
        f"You can remove cached packages by executing '{p.argv[0]} clean packages'.\n")
    p.err("Error: GPG check FAILED\n")
    return False
