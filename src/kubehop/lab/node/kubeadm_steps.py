"""The steps `kubeadm upgrade apply` and `kubeadm upgrade node` share: rewriting this node's
static pod manifests one component at a time, uploading the cluster configuration, writing the
kubelet configuration, and upgrading the CoreDNS and kube-proxy addons."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from kubehop.lab.node import manifests as mf
from kubehop.lab.node.host import NodeHost, Proc
from kubehop.lab.node.kubeadm_view import ClusterView
from kubehop.lab.node.kubelet import image_tag
from kubehop.lab.status import NotFound
from kubehop.model.versions import KubeVersion, parse_deb_version

WAIT_TIMEOUT = 300.0  # lab seconds kubeadm waits for each static pod
CERTS = {
    "etcd": ["etcd-server", "etcd-peer", "etcd-healthcheck-client"],
    "kube-apiserver": ["apiserver", "apiserver-kubelet-client", "front-proxy-client",
                       "apiserver-etcd-client"],
    "kube-controller-manager": ["controller-manager.conf"],
    "kube-scheduler": ["scheduler.conf"],
}


async def upgrade_control_plane(p: Proc, view: ClusterView, target: KubeVersion, *,
                                etcd_upgrade: bool, phased: bool) -> str | None:
    """Rewrite this node's manifests for `target`; an error message when a component failed."""
    host, fs = p.host, p.host.fs
    repo = view.image_repository()
    comps = host.data.kubeadm_components(target)
    stamp = datetime.fromtimestamp(host.clock.wall(), UTC).strftime("%Y-%m-%d-%H-%M-%S")
    backup = f"/etc/kubernetes/tmp/kubeadm-backup-manifests-{stamp}"
    moved = ("Moving new manifest to \"{0}\" and backing up old manifest to \"{1}\"" if phased
             else "Moved new manifest to \"{0}\" and backed up old manifest to \"{1}\"")
    p.out("[upgrade/staticpods] Writing new Static Pod manifests to \"/etc/kubernetes/tmp/"
          "kubeadm-upgraded-manifests2718281828\"\n")
    for comp in mf.COMPONENTS:
        path = mf.manifest_path(comp)
        old = fs.read(path) if fs.exists(path) else ""
        if comp == "etcd":
            if not etcd_upgrade:
                continue
            current = image_tag(mf.manifest_image(old)) or ""
            tag = comps.etcd if comps else current
            if current and tag and parse_deb_version(current) > parse_deb_version(tag):
                p.out(f"[upgrade/etcd] Non fatal issue encountered during upgrade: the desired etcd"
                      f" version \"{tag}\" is older than the currently installed \"{current}\". "
                      "Skipping etcd upgrade\n")
                continue
            if not phased:
                p.out("[upgrade/etcd] Upgrading to TLS for etcd\n")
        else:
            tag = str(target)
        new = mf.render_static_pod(comp, f"{repo}/{comp}:{tag}", host.name, host.setup.internal_ip)
        if old and mf.manifest_hash(old) == mf.manifest_hash(new):
            p.out(f"[upgrade/staticpods] Current and new manifests of {comp} are equal, "
                  "skipping upgrade\n")
            continue
        p.out(f"[upgrade/staticpods] Preparing for \"{comp}\" upgrade\n")
        for cert in CERTS[comp]:
            p.out(f"[upgrade/staticpods] Renewing {cert} certificate\n")
        fs.mkdir(backup, parents=True)
        fs.write(f"{backup}/{comp}.yaml", old)
        fs.write(path, new)
        p.out(f"[upgrade/staticpods] {moved.format(path, f'{backup}/{comp}.yaml')}\n"
              "[upgrade/staticpods] Waiting for the kubelet to restart the component\n"
              "[upgrade/staticpods] This can take up to 5m0s\n")
        if not await host.kubelet.static.wait_for(comp, mf.manifest_hash(new), WAIT_TIMEOUT):
            fs.write(path, old)
            return ("couldn't upgrade control plane. kubeadm has tried to recover everything "
                    "into the earlier state. Errors faced: failed to obtain static Pod hash for "
                    f"component {comp} on Node {host.name}: timed out waiting for the condition")
        p.out(f"[apiclient] Found 1 Pods for label selector component={comp}\n"
              f"[upgrade/staticpods] Component \"{comp}\" upgraded successfully!\n")
        if comp == "etcd" and not phased:
            p.out("[upgrade/etcd] Waiting for etcd to become available\n")
    return None


def write_kubelet_config(p: Proc, version: str) -> None:
    host = p.host
    p.out("[upgrade] Backing up kubelet config file to /etc/kubernetes/tmp/kubeadm-kubelet-config"
          "3141592653/config.yaml\n[kubelet-start] Writing kubelet configuration to file "
          "\"/var/lib/kubelet/config.yaml\"\n")
    host.fs.write(mf.KUBELET_CONFIG, mf.kubelet_config())
    host.db.state.kubelet_config = version
    host.db.save()
    host.component("kubelet-config", version, running=True)


def set_config_version(host: NodeHost, version: str) -> None:
    def update(cm: dict) -> None:
        text = cm.setdefault("data", {}).get("ClusterConfiguration", "")
        lines = [f"kubernetesVersion: {version}" if line.startswith("kubernetesVersion:")
                 else line for line in text.splitlines()]
        if not any(line.startswith("kubernetesVersion:") for line in lines):
            lines.append(f"kubernetesVersion: {version}")
        cm["data"]["ClusterConfiguration"] = "\n".join(lines) + "\n"

    with contextlib.suppress(NotFound):
        host.store.mutate("configmaps", "kube-system", "kubeadm-config", update)
    kubelet = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "kubelet-config", "namespace": "kube-system",
                            "annotations": {"kubeadm.kubernetes.io/component-config.hash":
                                            "sha256:" + "0" * 64}},
               "data": {"kubelet": mf.kubelet_config()}}
    try:
        host.store.mutate("configmaps", "kube-system", "kubelet-config",
                          lambda cm: cm.update(data=kubelet["data"]))
    except NotFound:
        host.store.create("configmaps", kubelet)


def addons(p: Proc, view: ClusterView, target: KubeVersion, kubeadm: KubeVersion,
           phased: bool) -> None:
    host = p.host
    pending = view.unupgraded_control_planes()
    if pending:
        names = " ".join(pending)
        if phased:
            p.out(f"[upgrade/addon] Skipping upgrade of addons because control plane instances "
                  f"[{names}] have not been upgraded\n" * 2)
        else:
            p.out(f"[upgrade/addons] skip upgrade addons because control plane instances [{names}]"
                  " have not been upgraded\n")
        return
    repo = view.image_repository()
    comps = host.data.kubeadm_components(kubeadm)
    for resource, name, label, image, component, version in (
            ("deployments.apps", "coredns", "CoreDNS",
             f"{repo}/coredns/coredns:{comps.coredns if comps else 'v1.11.1'}", "coredns",
             comps.coredns if comps else None),
            ("daemonsets.apps", "kube-proxy", "kube-proxy", f"{repo}/kube-proxy:{target}",
             "kube-proxy", str(target))):
        try:
            def set_image(obj: dict, image: str = image) -> None:
                obj["spec"]["template"]["spec"]["containers"][0]["image"] = image

            before = host.store.get(resource, "kube-system", name)
            host.store.mutate(resource, "kube-system", name, set_image)
            old = before["spec"]["template"]["spec"]["containers"][0].get("image")
            if old != image:
                host.record("component", node=None, component=component, version=version,
                            running=True)
        except NotFound:
            continue
        p.out(f"[addons] Applied essential addon: {label}\n")
