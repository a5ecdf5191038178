"""The steps `kubeadm upgrade apply` and `kubeadm upgrade node` share: rewriting this node's
static pod manifests one component at a time, uploading the cluster configuration, writing the
kubelet configuration, and upgrading the CoreDNS and kube-proxy addons.

A component whose new pod does not run within the wait (5 min lab time) fails the upgrade as in
kubeadm's staticpods.go: every manifest moved so far goes back (etcd's only when etcd failed),
and the error says `couldn't upgrade control plane. kubeadm has tried to recover everything into
the earlier state. Errors faced: …` with what the wait last saw."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from kubehop.lab.api.status import NotFoundStatus
from kubehop.lab.node import manifests as mf
from kubehop.lab.node.host import LabNode, Proc
from kubehop.lab.node.kubeadm_view import ClusterView
from kubehop.lab.node.kubelet import image_tag
from kubehop.model.versions import KubeVersion, MinorVersion, parse_deb_version

WAIT_TIMEOUT = 300.0  # lab seconds kubeadm waits for each static pod
ETCD_RETRIES = 150.0  # lab seconds kubeadm waits for the previous etcd (10 x 15 s)
# From this kubeadm on, its waits (wait.PollUntilContextTimeout) time out with the context's
# error rather than wait.ErrWaitTimeout's text [U: approximate].
CONTEXT_TIMEOUTS = MinorVersion(1, 28)
CERTS = {
    "etcd": ["etcd-server", "etcd-peer", "etcd-healthcheck-client"],
    "kube-apiserver": ["apiserver", "apiserver-kubelet-client", "front-proxy-client",
                       "apiserver-etcd-client"],
    "kube-controller-manager": ["controller-manager.conf"],
    "kube-scheduler": ["scheduler.conf"],
}


async def upgrade_control_plane(p: Proc, view: ClusterView, target: KubeVersion, *,
                                etcd_upgrade: bool, phased: bool,
                                kubeadm: KubeVersion | None = None) -> str | None:
    """Rewrite this node's manifests for `target`; an error message when a component failed
    (`kubeadm`: the binary's version, for the wording of timeouts)."""
    host, fs = p.host, p.host.fs
    moved: dict[str, str] = {}  # component → its manifest before this run
    repo = view.image_repository()
    comps = host.data.kubeadm_components(target)
    stamp = datetime.fromtimestamp(host.clock.wall(), UTC).strftime("%Y-%m-%d-%H-%M-%S")
    backup = f"/etc/kubernetes/tmp/kubeadm-backup-manifests-{stamp}"
    moving = ("Moving new manifest to \"{0}\" and backing up old manifest to \"{1}\"" if phased
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
        moved[comp] = old
        p.out(f"[upgrade/staticpods] {moving.format(path, f'{backup}/{comp}.yaml')}\n"
              "[upgrade/staticpods] Waiting for the kubelet to restart the component\n"
              "[upgrade/staticpods] This can take up to 5m0s\n")
        if not await host.kubelet.static.wait_for(comp, mf.manifest_hash(new), WAIT_TIMEOUT):
            why = _wait_error(p, comp, mf.manifest_hash(new), kubeadm)
            for c, text in moved.items():  # rollbackOldManifests
                if c != "etcd" or comp == "etcd":
                    fs.write(mf.manifest_path(c), text)
            failure = ("couldn't upgrade control plane. kubeadm has tried to recover everything "
                       f"into the earlier state. Errors faced: {why}")
            if comp == "etcd":
                return await _etcd_rolled_back(p, old, failure, stamp)
            return failure
        p.out(f"[apiclient] Found 1 Pods for label selector component={comp}\n"
              f"[upgrade/staticpods] Component \"{comp}\" upgraded successfully!\n")
        if comp == "etcd" and not phased:
            p.out("[upgrade/etcd] Waiting for etcd to become available\n")
    return None


def _wait_error(p: Proc, comp: str, h: str, kubeadm: KubeVersion | None) -> str:
    """What kubeadm's wait for `comp`'s new pod (hash `h`) last saw when it timed out: the API
    did not answer, the mirror pod's hash never changed, or its pod never came up."""
    host = p.host
    expired = ("context deadline exceeded"
               if kubeadm is None or kubeadm.minor_version >= CONTEXT_TIMEOUTS
               else "timed out waiting for the condition")
    if host.cluster.answering(host.name) is None:
        ip = host.cluster.endpoint_ip(host.name)
        return (f"failed to obtain static Pod hash for component {comp} on Node {host.name}: "
                f"Get \"https://{ip}:6443/api/v1/namespaces/kube-system/pods/{comp}-{host.name}"
                f"?timeout=10s\": dial tcp {ip}:6443: connect: connection refused")
    pod = host.kubelet.static.running.get(comp)
    if pod is None or pod.hash != h:
        return (f"static Pod hash for component {comp} on Node {host.name} did not change after "
                f"5m0s: {expired}")
    p.out(f"[apiclient] Found 1 Pods for label selector component={comp}\n")
    return expired


async def _etcd_rolled_back(p: Proc, old: str, failure: str, stamp: str) -> str:
    """performEtcdStaticPodUpgrade after a failed etcd: wait for the previous etcd."""
    p.out(f"[upgrade/etcd] Failed to upgrade etcd: {failure}\n"
          "[upgrade/etcd] Waiting for previous etcd to become available\n")
    if await p.host.kubelet.static.wait_for("etcd", mf.manifest_hash(old), ETCD_RETRIES):
        p.out("[upgrade/etcd] Etcd was rolled back and is now available\n")
        return ("fatal error when trying to upgrade the etcd cluster, rolled the state back to "
                f"pre-upgrade state: {failure}")
    p.out("[upgrade/etcd] Failed to healthcheck previous etcd: timeout waiting for etcd cluster "
          "to be available\n")
    return ("fatal error rolling back local etcd cluster manifest, the backup of etcd database is "
            f"stored here:(/etc/kubernetes/tmp/kubeadm-backup-etcd-{stamp}): timeout waiting for "
            "etcd cluster to be available")


def write_kubelet_config(p: Proc, version: str) -> None:
    host = p.host
    p.out("[upgrade] Backing up kubelet config file to /etc/kubernetes/tmp/kubeadm-kubelet-config"
          "3141592653/config.yaml\n[kubelet-start] Writing kubelet configuration to file "
          "\"/var/lib/kubelet/config.yaml\"\n")
    host.fs.write(mf.KUBELET_CONFIG, mf.kubelet_config())
    host.db.state.kubelet_config = version
    host.db.save()
    host.component("kubelet-config", version, running=True)


def set_config_version(host: LabNode, version: str) -> None:
    def update(cm: dict) -> None:
        text = cm.setdefault("data", {}).get("ClusterConfiguration", "")
        lines = [f"kubernetesVersion: {version}" if line.startswith("kubernetesVersion:")
                 else line for line in text.splitlines()]
        if not any(line.startswith("kubernetesVersion:") for line in lines):
            lines.append(f"kubernetesVersion: {version}")
        cm["data"]["ClusterConfiguration"] = "\n".join(lines) + "\n"

    with contextlib.suppress(NotFoundStatus):
        host.store.mutate("configmaps", "kube-system", "kubeadm-config", update)
    kubelet = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "kubelet-config", "namespace": "kube-system",
                            "annotations": {"kubeadm.kubernetes.io/component-config.hash":
                                            "sha256:" + "0" * 64}},
               "data": {"kubelet": mf.kubelet_config()}}
    try:
        host.store.mutate("configmaps", "kube-system", "kubelet-config",
                          lambda cm: cm.update(data=kubelet["data"]))
    except NotFoundStatus:
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
        except NotFoundStatus:
            continue
        p.out(f"[addons] Applied essential addon: {label}\n")
