"""`kubehop versions`: every versioned component of the cluster, per apiserver and per node.

What an operator otherwise pieces together from `kubectl version` (one apiserver: the one the
load balancer picked), `kubectl get nodes -o wide` and a jq pipeline over kube-system pods.
"""

from __future__ import annotations

from typing import Any

import click

from kubehop.cli.context import make_session, run_session
from kubehop.cli.output import MACHINE_FORMATS, NONE, emit, warn
from kubehop.model.cluster import ApiServerInfo, ClusterState, NodeState
from kubehop.model.versions import KubeVersion, parse_image_ref


def _v(version: KubeVersion | None) -> str | None:
    return version.full if version is not None else None


def image_tag(image: str | None) -> str | None:
    """The tag of an image reference, or None."""
    if not image:
        return None
    try:
        return parse_image_ref(image).tag
    except ValueError:
        return image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else None


def node_document(n: NodeState) -> dict[str, Any]:
    """One `nodes[]` entry of `versions -o json`."""
    return {
        "name": n.name,
        "roles": list(n.roles),
        "kubelet": _v(n.kubelet),
        "kubeProxy": _v(n.kube_proxy),
        "kernel": n.kernel or None,
        "osImage": n.os_image or None,
        "containerRuntime": n.container_runtime or None,
        "ready": n.ready,
        "schedulable": n.schedulable,
        "controlPlane": {c: image_tag(n.image(c)) for c in (
            "kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")},
        # How the node keeps its Kubernetes packages (hold, preferences, versionlock, exclude,
        # none): with an SSH inventory only.
        **({"pinMethods": list(n.packages.pin_methods)} if n.packages else {}),
    }


def versions_document(state: ClusterState) -> dict[str, Any]:
    """The machine-readable shape of `versions -o json|yaml` (DESIGN: machine-readable output)."""
    return {
        "apiservers": [{"endpoint": a.endpoint, "node": a.node, "version": _v(a.version),
                        "readVia": a.read_via}
                       for a in state.apiservers],
        "nodes": [node_document(n) for n in state.nodes],
        "addons": {
            "coredns": state.addons.coredns,
            "kube-proxy": state.addons.kube_proxy,
            "cni": [{"name": name, "version": version or None}
                    for name, version in state.addons.cni],
        },
        "kubeadm": {"kubernetesVersion": _v(state.kubeadm_kubernetes_version)},
        "client": {"kubectl": _v(state.kubectl)},
    }


def ha_note(state: ClusterState) -> str | None:
    """Why `kubectl version` may mislead: HA apiservers that disagree."""
    versions = {a.version.full for a in state.apiservers if a.version is not None}
    if len(versions) < 2:
        return None
    via = f" ({state.kubeconfig_server})" if state.kubeconfig_server else ""
    return (f"the apiservers run different versions ({', '.join(sorted(versions))}); "
            f"`kubectl version` shows only the one the load balancer{via} picked for it")


def _status(n: NodeState) -> str:
    return ("Ready" if n.ready else "NotReady") + ("" if n.schedulable else ",SchedulingDisabled")


def node_rows(state: ClusterState, wide: bool) -> tuple[list[str], list[list[str | None]]]:
    """Headers and rows of the nodes table."""
    headers = ["name", "roles", "status", "kubelet", "kube-proxy", "apiserver",
               "controller-manager", "scheduler", "etcd"]
    if wide:
        headers += ["os-image", "kernel", "container-runtime"]
    rows = []
    for n in state.nodes:
        row = [n.name, ",".join(n.roles) or NONE, _status(n), _v(n.kubelet), _v(n.kube_proxy),
               *(image_tag(n.image(c)) for c in ("kube-apiserver", "kube-controller-manager",
                                                  "kube-scheduler", "etcd"))]
        if wide:
            row += [n.os_image or None, n.kernel or None, n.container_runtime or None]
        rows.append(row)
    return headers, rows


def plain_table(headers: list[str], rows: list[list[str | None]]) -> str:
    """kubectl's column layout (3 spaces between columns), without rich: fast on huge tables."""
    cells = [[h.upper() for h in headers]] + [[c or NONE for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
                   for r in cells)


def _apiserver_version(a: ApiServerInfo) -> str:
    """The VERSION cell: how it was read when not at its own address."""
    if a.read_via == "mirror-pod":
        how = f"from its mirror pod; its address: {a.address_error}"
        return f"{_v(a.version) or NONE} ({how})" + (f"; {a.error}" if a.error else "")
    return _v(a.version) or f"unreachable: {a.error}"


def print_people(state: ClusterState, wide: bool) -> None:
    """The tables for people: apiservers, nodes, addons and the rest (kubectl's plain columns:
    never truncated, fast on 5,000 nodes)."""
    lines = [plain_table(["apiserver", "node", "version"], [
        [a.endpoint, a.node, _apiserver_version(a)] for a in state.apiservers]), "\n",
        plain_table(*node_rows(state, wide)), "\n"]
    cni = ", ".join(f"{name} {version}".strip() for name, version in state.addons.cni) or NONE
    lines.append(f"CoreDNS {state.addons.coredns or NONE}, kube-proxy "
                 f"{state.addons.kube_proxy or NONE}, CNI {cni}\n")
    lines.append(f"kubeadm-config kubernetesVersion {_v(state.kubeadm_kubernetes_version) or NONE}"
                 f"; kubectl (this machine) {_v(state.kubectl) or NONE}\n")
    note = ha_note(state)
    if note:
        lines.append(f"Note: {note}\n")
    click.echo("".join(lines), nl=False)


@click.command("versions")
@click.option("-o", "--output", type=click.Choice(["table", "wide", *MACHINE_FORMATS]),
              default="table", show_default=True, help="Output format.")
def versions(output: str) -> None:
    """Show the version of every component: each apiserver, each node, the addons.

    \b
    Each apiserver is asked directly (`kubectl version` asks only the one the
    load balancer picks); control-plane versions come from the static pods on
    each node, kubelets from node status, kube-proxy from its pod on each node.
    """
    # Machines get each node's pin method too (one SSH round trip per node, with an inventory).
    node_facts = output in MACHINE_FORMATS
    state = run_session(make_session(),
                        lambda session: session.observe(workloads=False, node_facts=node_facts))
    for a in state.apiservers:
        if a.error:
            warn(f"apiserver {a.endpoint}: its address did not answer from here "
                 f"({a.address_error}); read from its mirror pod: {a.error}"
                 if a.read_via == "mirror-pod" else
                 f"apiserver {a.endpoint} did not answer /version: {a.error}")
    if output in MACHINE_FORMATS:
        emit(versions_document(state), output)
        note = ha_note(state)
        if note:
            warn(note)
        return
    print_people(state, wide=output == "wide")

