"""A node's file tree: a real directory under the lab state dir standing in for `/`.

Paths are node paths (`/etc/apt/sources.list.d/kubernetes.list`), resolved inside the node's
root and never outside it. Writes notify listeners (the kubelet watches its static pod
directory). A small permission model stands in for Unix modes: only root writes outside
`/tmp` and the login user's home, and kubeadm's 0600 files under `/etc/kubernetes` are root-only.
"""

from __future__ import annotations

import posixpath
import shutil
from collections.abc import Callable
from pathlib import Path

from kubehop.lab.node import manifests as mf
from kubehop.lab.node.config import NodeSetup


class FsError(Exception):
    """A failed file operation; `reason` is the strerror text (`No such file or directory`)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


NOENT = "No such file or directory"
ACCES = "Permission denied"
ISDIR = "Is a directory"


class NodeFS:
    """The file tree of one node, rooted at `root` on the host."""

    def __init__(self, root: Path, user: str) -> None:
        self.root = root
        self.user = user
        self.listeners: list[Callable[[str], None]] = []

    # --- paths and permissions -----------------------------------------------------------

    @staticmethod
    def normalize(path: str, cwd: str = "/") -> str:
        return posixpath.normpath(posixpath.join(cwd, path)).replace("//", "/")

    def host(self, path: str) -> Path:
        """The host path of node path `path` (absolute, normalized; `..` cannot escape)."""
        norm = self.normalize(path)
        return self.root / norm.lstrip("/")

    def may_write(self, path: str, root: bool) -> bool:
        norm = self.normalize(path)
        return root or norm.startswith(("/tmp/", f"/home/{self.user}/")) or norm == "/dev/null"

    def may_read(self, path: str, root: bool) -> bool:
        norm = self.normalize(path)
        if root or not norm.startswith("/etc/kubernetes/"):
            return True
        return norm.endswith(".crt") or self.is_dir(norm)

    # --- queries -------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        return path == "/dev/null" or self.host(path).exists()

    def is_dir(self, path: str) -> bool:
        return self.host(path).is_dir()

    def is_file(self, path: str) -> bool:
        return self.host(path).is_file()

    def listdir(self, path: str) -> list[str]:
        p = self.host(path)
        if not p.exists():
            raise FsError(path, NOENT)
        if not p.is_dir():
            return [posixpath.basename(path)]
        return sorted(c.name for c in p.iterdir())

    def read(self, path: str, *, root: bool = True) -> str:
        if path == "/dev/null":
            return ""
        if not self.may_read(path, root):
            raise FsError(path, ACCES)
        p = self.host(path)
        if p.is_dir():
            raise FsError(path, ISDIR)
        try:
            return p.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise FsError(path, NOENT) from None

    # --- changes -------------------------------------------------------------------------

    def _changed(self, path: str) -> None:
        norm = self.normalize(path)
        for listener in list(self.listeners):
            listener(norm)

    def _writable(self, path: str, root: bool) -> Path:
        """The host path of node file `path`, when it may be written (FsError otherwise)."""
        if not self.may_write(path, root):
            raise FsError(path, ACCES)
        p = self.host(path)
        if p.is_dir():
            raise FsError(path, ISDIR)
        if not p.parent.is_dir():
            raise FsError(path, NOENT)
        return p

    def write(self, path: str, text: str, *, root: bool = True, append: bool = False) -> None:
        if path == "/dev/null":
            return
        p = self._writable(path, root)
        with p.open("a" if append else "w", encoding="utf-8") as f:
            f.write(text)
        self._changed(path)

    def mkdir(self, path: str, *, parents: bool = False, root: bool = True) -> None:
        if not self.may_write(path, root):
            raise FsError(path, ACCES)
        p = self.host(path)
        if not parents and not p.parent.is_dir():
            raise FsError(path, NOENT)
        p.mkdir(parents=parents, exist_ok=parents)

    def remove(self, path: str, *, recursive: bool = False, root: bool = True) -> None:
        if not self.may_write(path, root):
            raise FsError(path, ACCES)
        p = self.host(path)
        if not p.exists():
            raise FsError(path, NOENT)
        if p.is_dir():
            if not recursive:
                raise FsError(path, ISDIR)
            shutil.rmtree(p)
        else:
            p.unlink()
        self._changed(path)

    def copy(self, src: str, dst: str, *, root: bool = True) -> None:
        text = self.read(src, root=root)
        if self.is_dir(dst):
            dst = posixpath.join(dst, posixpath.basename(src))
        self.write(dst, text, root=root)

    def move(self, src: str, dst: str, *, root: bool = True) -> None:
        self.copy(src, dst, root=root)
        self.remove(src, root=root)

    def read_bytes(self, path: str, *, root: bool = True) -> bytes:
        """`read` for binary files (a dearmored keyring)."""
        if not self.may_read(path, root):
            raise FsError(path, ACCES)
        p = self.host(path)
        if p.is_dir():
            raise FsError(path, ISDIR)
        try:
            return p.read_bytes()
        except FileNotFoundError:
            raise FsError(path, NOENT) from None

    def write_bytes(self, path: str, data: bytes, *, root: bool = True) -> None:
        """`write` for binary files."""
        self._writable(path, root).write_bytes(data)
        self._changed(path)

    def ensure(self, path: str, text: str) -> None:
        """Create `path` (and its parents) with `text`, as provisioning does."""
        p = self.host(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def kubelet_env_file(setup: NodeSetup) -> str:
    """The environment file the kubelet package installs (`KUBELET_EXTRA_ARGS=`), read by the
    kubeadm drop-in (kubernetes/release cmd/krel/templates/latest/kubelet/kubelet.spec:
    /etc/default/kubelet in deb builds, /etc/sysconfig/kubelet in rpm builds)."""
    return "/etc/sysconfig/kubelet" if setup.rpm else "/etc/default/kubelet"


def set_kubelet_extra_args(fs: NodeFS, setup: NodeSetup, args: str) -> None:
    """Write `KUBELET_EXTRA_ARGS=args` into the kubelet package's environment file, as an
    operator who passes flags to the kubelet does (fault `kubelet-extra-args`)."""
    fs.ensure(kubelet_env_file(setup), f"KUBELET_EXTRA_ARGS={args}\n")


def provision(fs: NodeFS, setup: NodeSetup, images: dict[str, str], server: str) -> None:
    """Lay out what a kubeadm-installed node holds (`images`: control-plane component → image;
    `server`: the API endpoint the node's kubeconfigs name)."""
    for d in ("/tmp", f"/home/{fs.user}", "/root", "/etc/apt/preferences.d",
              "/etc/apt/apt.conf.d", "/etc/yum.repos.d", "/etc/kubernetes/pki/etcd",
              "/etc/kubernetes/tmp", "/var/lib/kubelet", "/var/lib/etcd", "/usr/bin",
              "/etc/systemd/system/kubelet.service.d", "/sys/fs/cgroup"):
        fs.host(d).mkdir(parents=True, exist_ok=True)
    env_file = kubelet_env_file(setup)
    fs.ensure(env_file, "KUBELET_EXTRA_ARGS=\n")
    fs.ensure("/etc/os-release", mf.os_release(setup.os_image, setup.os_family))
    fs.ensure("/etc/hostname", setup.name + "\n")
    if setup.rpm:
        fs.ensure(mf.YUM_REPO_FILE, mf.yum_repo(setup.repo_minor, setup.repo_legacy))
    else:
        fs.ensure(mf.SOURCES_FILE, mf.apt_source_line(setup.repo_minor, setup.repo_legacy))
        fs.ensure(mf.KEYRING, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n(lab keyring)\n"
                              "-----END PGP PUBLIC KEY BLOCK-----\n")
        for path, text in setup.apt_preferences.items():  # scenario `aptPreferences`
            fs.ensure(path, text if text.endswith("\n") else text + "\n")
    fs.ensure("/etc/kubernetes/pki/ca.crt", mf.ca_cert())
    fs.ensure("/etc/kubernetes/kubelet.conf",
              mf.kubeconfig(f"system:node:{setup.name}", server, setup.name))
    fs.ensure(mf.KUBELET_CONFIG, mf.kubelet_config())
    fs.ensure("/var/lib/kubelet/kubeadm-flags.env", mf.kubeadm_flags())
    fs.ensure("/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
              "[Service]\nEnvironment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig="
              "/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"\n"
              "Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n"
              "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n"
              f"EnvironmentFile=-{env_file}\nExecStart=\nExecStart="
              "/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS "
              "$KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n")
    fs.host(mf.MANIFEST_DIR).mkdir(parents=True, exist_ok=True)
    if not setup.control_plane:
        return
    local = f"https://{setup.internal_ip}:6443"
    for name, user in (("admin", "kubernetes-admin"),
                       ("controller-manager", "system:kube-controller-manager"),
                       ("scheduler", "system:kube-scheduler")):
        fs.ensure(f"/etc/kubernetes/{name}.conf", mf.kubeconfig(user, local, name + setup.name))
    for component, image in images.items():
        fs.ensure(mf.manifest_path(component),
                  mf.render_static_pod(component, image, setup.name, setup.internal_ip))
