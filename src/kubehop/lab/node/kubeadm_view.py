"""What kubeadm reads from the cluster (through the apiserver its kubeconfig reaches), and
Go's text/tabwriter layout that its tables use."""

from __future__ import annotations

import re

import yaml

from kubehop.lab.node.host import LabNode
from kubehop.lab.node.kubelet import image_tag
from kubehop.model.errors import VersionError
from kubehop.model.versions import KubeVersion, parse_kube_version


class ApiserverUnreachable(Exception):
    """No apiserver answers the node's kubeconfig."""


class ClusterView:
    """The cluster as `kubeadm` on `host` sees it."""

    def __init__(self, host: LabNode) -> None:
        self.host = host
        self.store = host.store
        self.answering = host.cluster.answering(host.name)
        if self.answering is None:
            ip = host.cluster.endpoint_ip(host.name)
            raise ApiserverUnreachable(f'Get "https://{ip}:6443/api/v1/namespaces/kube-system/configmaps/'
                              f'kubeadm-config?timeout=10s": dial tcp {ip}:6443: connect: '
                              "connection refused")

    def cluster_version(self) -> str:
        """`gitVersion` of `/version` from the answering apiserver."""
        return self.host.cluster.apiserver_version(self.answering or "") or "v0.0.0"

    def cluster_config(self) -> str | None:
        cm = self.store.peek("configmaps", "kube-system", "kubeadm-config")
        return (cm or {}).get("data", {}).get("ClusterConfiguration")

    def config_version(self) -> str | None:
        text = self.cluster_config() or ""
        m = re.search(r"^kubernetesVersion:\s*(\S+)", text, re.M)
        return m.group(1).strip("\"'") if m else None

    def image_repository(self) -> str:
        try:
            doc = yaml.safe_load(self.cluster_config() or "") or {}
        except yaml.YAMLError:
            doc = {}
        return str(doc.get("imageRepository") or "registry.k8s.io")

    def nodes(self) -> list[dict]:
        return sorted(self.store.iter("nodes"), key=lambda n: n["metadata"]["name"])

    def kubelet_versions(self) -> dict[str, str]:
        """node → kubeletVersion, in name order."""
        return {n["metadata"]["name"]: n.get("status", {}).get("nodeInfo", {}).get(
            "kubeletVersion", "") for n in self.nodes()}

    def not_ready_control_planes(self) -> list[str]:
        out = []
        for n in self.nodes():
            labels = n["metadata"].get("labels") or {}
            if "node-role.kubernetes.io/control-plane" not in labels:
                continue
            ready = next((c for c in n.get("status", {}).get("conditions", [])
                          if c.get("type") == "Ready"), None)
            if not ready or ready.get("status") != "True":
                out.append(n["metadata"]["name"])
        return out

    def component_pods(self, component: str) -> list[dict]:
        pods = self.store.list("pods", "kube-system",
                               label_selector=f"component={component},tier=control-plane").items
        return sorted(pods, key=lambda p: p.get("spec", {}).get("nodeName") or "")

    def component_versions(self, component: str) -> dict[str, list[str]]:
        """image tag → nodes running it (kubeadm's ComponentVersions)."""
        out: dict[str, list[str]] = {}
        for pod in self.component_pods(component):
            tag = image_tag(pod["spec"]["containers"][0].get("image")) or ""
            out.setdefault(tag, []).append(pod["spec"].get("nodeName") or "")
        return out

    def dns_version(self) -> str:
        dep = self.store.peek("deployments.apps", "kube-system", "coredns")
        if not dep:
            return ""
        return image_tag(dep["spec"]["template"]["spec"]["containers"][0].get("image")) or ""

    def unupgraded_control_planes(self) -> list[str]:
        """kubeadm's UnupgradedControlPlaneInstances: apiserver pods on another image."""
        pods = self.component_pods("kube-apiserver")
        mine = next((p["spec"]["containers"][0].get("image") for p in pods
                     if p["spec"].get("nodeName") == self.host.name), None)
        return [p["spec"].get("nodeName") or "" for p in pods
                if p["spec"]["containers"][0].get("image") != mine]


def kube(text: str) -> KubeVersion | None:
    try:
        return parse_kube_version(text)
    except VersionError:
        return None


def tabwrite(rows: list[list[str]]) -> str:
    """Go's tabwriter.NewWriter(w, 10, 4, 3, ' ', 0): every cell but the last is padded to
    its column's widest cell + 3, at least 10 wide."""
    widths: dict[int, int] = {}
    for row in rows:
        for j, cell in enumerate(row[:-1]):
            widths[j] = max(widths.get(j, 10), len(cell) + 3)
    return "".join("".join(c.ljust(widths[j]) for j, c in enumerate(row[:-1]))
                   + (row[-1] if row else "") + "\n" for row in rows)
