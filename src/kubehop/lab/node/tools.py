"""The commands a simulated node knows, by name."""

from __future__ import annotations

from kubehop.lab.node.apt import TOOLS_APT
from kubehop.lab.node.dpkg import TOOLS_DPKG
from kubehop.lab.node.etcdctl import TOOLS_ETCD
from kubehop.lab.node.gpg_curl import TOOLS_GPG_CURL
from kubehop.lab.node.host import Tool
from kubehop.lab.node.kubeadm import TOOLS_KUBEADM
from kubehop.lab.node.package_faults import TOOLS_PACKAGE_FAULTS
from kubehop.lab.node.sed import sed
from kubehop.lab.node.services import TOOLS_SERVICES
from kubehop.lab.node.system import TOOLS_SYSTEM
from kubehop.lab.node.yum import TOOLS_YUM

TOOLS: dict[str, Tool] = {
    **TOOLS_SYSTEM, **TOOLS_APT, **TOOLS_DPKG, **TOOLS_YUM, **TOOLS_KUBEADM, **TOOLS_SERVICES,
    **TOOLS_GPG_CURL, **TOOLS_PACKAGE_FAULTS, "sed": sed,
    **TOOLS_ETCD,  # after TOOLS_SERVICES: its crictl adds `exec` and `ps -q` to theirs
}
