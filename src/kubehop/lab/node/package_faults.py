"""Package-manager hazards a scenario can inject on a node (issue #14), and `ps`.

- `package-lock-held` (`seconds`): unattended-upgrades (pid 2718) holds the dpkg frontend lock
  for that many lab seconds from the node's first package command;
- `package-repo-unreachable`: pkgs.k8s.io does not answer; `apt-get update` warns
  (`W: Failed to fetch`) and exits 0 unless `--error-on=any`; dnf fails every command that
  reads the repository's metadata (`Curl error (28)`, "Failed to download metadata", exit 1:
  `yum.py`);
- `apt-source-broken`: another vendor's source (`/etc/apt/sources.list.d/vendor.list`) whose
  key expired; a bare `apt-get update` exits 100;
- `apt-source-copy` (`minor`): a second Kubernetes source, `kubernetes-1.NN.list`;
- `dnf5`: dnf is dnf 5 (`--disableexcludes` is an unknown argument);
- `versionlock`: dnf versionlock entries on kubeadm, kubelet, kubectl at their versions;
- `repo-key` (`state`: expired | missing | expiring): the apt keyring the Kubernetes source
  names holds a key that expired a year ago, is absent, or expires in 10 days; apt then checks
  the repository's signature against it (`NO_PUBKEY`, `EXPKEYSIG`), as on a real node. On an
  rpm node the same holds for the key imported into rpm (`rpm_keys`): dnf fails an expired one
  ("GPG check FAILED") and imports a missing one from the repository's `gpgkey=`.

`provision_keyring` gives every Debian node the keyring the upstream guide installs (the key
pkgs.k8s.io serves, `gpg_curl.DEFAULT_KEY`), and imports that key into rpm on rpm nodes.

`seed` writes what a fault leaves on the node's disk (files, versionlock entries) when the lab
starts; it is idempotent, so a restarted lab finds the node as it left it.
"""

from __future__ import annotations

import dataclasses
import weakref
from datetime import UTC, date, datetime, timedelta

from kubehop.lab.node import rpm_keys
from kubehop.lab.node.gpg_curl import DEFAULT_KEY, LabKey, encode, read_key
from kubehop.lab.node.host import LabNode, Proc, Tool
from kubehop.lab.node.manifests import KEYRING

PACKAGE_FAULTS = frozenset({"package-lock-held", "package-repo-unreachable", "apt-source-broken",
                            "apt-source-copy", "dnf5", "versionlock", "repo-key"})
LOCK_HOLDER = (2718, "unattended-upgr")  # `ps -o comm=` cuts names at 15 characters
SEEDED_DIR = "/var/lib/lab-faults"  # which faults were laid on the node's disk already
VENDOR_LIST = "/etc/apt/sources.list.d/vendor.list"
VENDOR_URI = "https://download.vendor.example/apt"
VENDOR_KEY_ID = "8B48AD6246925553"
VENDOR_KEYRING = "/etc/apt/keyrings/vendor.gpg"
# When each node's lock holder took the lock (lab seconds), from its first package command.
_LOCKED_AT: weakref.WeakKeyDictionary[LabNode, float] = weakref.WeakKeyDictionary()


def _options(host: LabNode, kind: str) -> list[dict[str, str]] | None:
    return host.cluster.fault_options.get((kind, host.name))


def seed(host: LabNode, kind: str, options: dict[str, str]) -> None:
    """Leave on `host` what fault `kind` implies (files, versionlocks), once: a marker file
    remembers it, so a restarted lab does not undo what an upgrade changed."""
    fs = host.fs
    marker = f"{SEEDED_DIR}/{kind}"
    if kind not in PACKAGE_FAULTS or fs.exists(marker):
        return
    fs.mkdir(SEEDED_DIR, parents=True)
    fs.write(marker, "")
    if kind == "apt-source-broken":
        fs.write(VENDOR_LIST, f"deb [signed-by={VENDOR_KEYRING}] {VENDOR_URI} stable main\n")
        # The vendor's key expired a year ago: apt answers EXPKEYSIG for that source.
        expired = lab_today(host) - timedelta(days=365)
        fs.mkdir(VENDOR_KEYRING.rsplit("/", 1)[0], parents=True)
        fs.write_bytes(VENDOR_KEYRING, encode(LabKey(
            "0123456789ABCDEF01234567" + VENDOR_KEY_ID, "Vendor Packages "
            "<packages@vendor.example>", expired - timedelta(days=3 * 365), expired)))
    elif kind == "apt-source-copy":
        minor = options.get("minor") or host.setup.repo_minor or "1.28"
        path = f"/etc/apt/sources.list.d/kubernetes-{minor}.list"
        fs.write(path, "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
                           f"https://pkgs.k8s.io/core:/stable:/v{minor}/deb/ /\n")
    elif kind == "repo-key" and host.setup.rpm:
        state = options.get("state") or "expired"
        today = lab_today(host)
        rpm_keys.seed(host, state, today, today - timedelta(days=365) if state == "expired"
                      else today + timedelta(days=10))
    elif kind == "repo-key":
        state = options.get("state") or "expired"
        if state == "missing":
            if fs.exists(KEYRING):
                fs.remove(KEYRING)
        else:
            today = lab_today(host)
            expires = today - timedelta(days=365) if state == "expired" else \
                today + timedelta(days=10)
            key = dataclasses.replace(DEFAULT_KEY, created=expires - timedelta(days=3 * 365),
                                      expires=expires)
            fs.mkdir(KEYRING.rsplit("/", 1)[0], parents=True)
            fs.write_bytes(KEYRING, encode(key))
    elif kind == "versionlock":
        db = host.db
        for name in ("kubeadm", "kubelet", "kubectl"):
            version = db.version(name)
            if version and not any(e.startswith(f"{name}-0:") for e in db.state.versionlocks):
                db.state.versionlocks.append(f"{name}-0:{version}.*")
        db.save()


def provision_keyring(host: LabNode) -> None:
    """The guide's keyring on a Debian node whose source names it (kept when present); on an
    rpm node, the pkgs.k8s.io key imported into rpm (`rpm_keys.provision`)."""
    if host.setup.repo_legacy:
        return
    if host.setup.rpm:
        rpm_keys.provision(host)
        return
    if host.fs.exists(KEYRING):
        try:
            read_key(host.fs.read_bytes(KEYRING))
            return
        except ValueError:
            pass  # a placeholder from provisioning: replace it with the key
    host.fs.mkdir(KEYRING.rsplit("/", 1)[0], parents=True)
    host.fs.write_bytes(KEYRING, encode(DEFAULT_KEY))


def lab_today(host: LabNode) -> date:
    """The node's date (lab wall time), as gpg and apt judge expiry."""
    return datetime.fromtimestamp(host.clock.wall(), UTC).date()


def key_error(host: LabNode, keyring: str, describe: str) -> str | None:
    """apt's complaint about the Kubernetes repository's signature when fault `repo-key` is on
    `host` and its keyring is absent or expired (apt-pkg/acquire-item.cc, gpgv's NO_PUBKEY /
    EXPKEYSIG); None when the key verifies (or the fault is not injected)."""
    if not _options(host, "repo-key"):
        return None
    key: LabKey | None = None
    if keyring and host.fs.exists(keyring):
        try:
            key = read_key(host.fs.read_bytes(keyring))
        except ValueError:
            key = None
    key_id = DEFAULT_KEY.key_id
    if key is None:
        why = f"The following signatures couldn't be verified because the public key is not " \
              f"available: NO_PUBKEY {key_id}"
    elif key.expired(lab_today(host)):
        why = f"The following signatures were invalid: EXPKEYSIG {key_id} {key.uid}"
    else:
        return None
    return f"W: GPG error: {describe}: {why}\nE: The repository '{describe}' is not signed.\n"


def key_fault(host: LabNode) -> bool:
    """Fault `repo-key` is on `host`: its package manager checks the repository's key."""
    return bool(_options(host, "repo-key"))


def lock_holder(host: LabNode) -> tuple[int, str] | None:
    """(pid, name) of the process holding `host`'s dpkg lock now, or None. The first call
    starts the hold (a package command found the lock taken)."""
    options = _options(host, "package-lock-held")
    if not options:
        return None
    now = host.clock.now()
    since = _LOCKED_AT.setdefault(host, now)
    seconds = float(options[-1].get("seconds") or 60)
    return LOCK_HOLDER if now < since + seconds else None


async def wait_for_lock(host: LabNode, timeout: float) -> tuple[int, str] | None:
    """Wait up to `timeout` lab seconds for the holder to let go; the holder if it did not."""
    holder = lock_holder(host)
    if holder is None:
        return None
    since = _LOCKED_AT[host]
    options = _options(host, "package-lock-held") or [{}]
    left = since + float(options[-1].get("seconds") or 60) - host.clock.now()
    await host.sleep(min(left, timeout))
    return lock_holder(host)


def repo_unreachable(host: LabNode) -> bool:
    """Fault `package-repo-unreachable`: pkgs.k8s.io does not answer this node."""
    return bool(_options(host, "package-repo-unreachable"))


def dnf5(host: LabNode) -> bool:
    """Fault `dnf5`: this node's dnf is dnf 5."""
    return bool(_options(host, "dnf5"))


async def ps(p: Proc) -> int:
    """`ps -o comm= -p PID`: the lock holder's name (procps prints nothing, exit 1, for a pid
    that does not exist)."""
    args = p.argv[1:]
    pid = args[args.index("-p") + 1] if "-p" in args and args.index("-p") + 1 < len(args) else ""
    holder = lock_holder(p.host)
    if holder is not None and pid == str(holder[0]):
        header = "" if "comm=" in args else "COMMAND\n"
        p.out(f"{header}{holder[1]}\n")
        return 0
    return 1


TOOLS_PACKAGE_FAULTS: dict[str, Tool] = {"ps": ps}
