"""Component versions of a cluster: what the skew engine (`core.skew`) judges.

Built from a live cluster (`/version` of each apiserver, node status, kube-system static pods,
packages on nodes) or by the planner's simulator, which derives new states with
`dataclasses.replace`. Everything is frozen and hashable: tuples, never lists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kubehop.model.versions import KubeVersion


@dataclass(frozen=True, slots=True)
class ApiServer:
    """One kube-apiserver instance as its own `/version` reports it.

    `endpoint` is `host:port` (`192.0.2.1:6443`); `node` the node it runs on, None when unknown
    (an external or managed control plane).
    """

    endpoint: str
    node: str | None
    version: KubeVersion

    @property
    def subject(self) -> str:
        """How findings name it: `apiserver/192.0.2.1:6443`."""
        return f"apiserver/{self.endpoint}"


@dataclass(frozen=True, slots=True)
class NodeComponents:
    """The versioned components on one node; None where a component is absent or unknown.

    `kubelet` comes from node status, `kube_proxy` from the kube-proxy pod on the node,
    `kubeadm` from the installed package; the `kube_*` control-plane fields are the image tags of
    the static pods on that node (control-plane nodes only).
    """

    name: str
    control_plane: bool = False
    kubelet: KubeVersion | None = None
    kube_proxy: KubeVersion | None = None
    kubeadm: KubeVersion | None = None
    kube_apiserver: KubeVersion | None = None
    kube_controller_manager: KubeVersion | None = None
    kube_scheduler: KubeVersion | None = None

    @property
    def subject(self) -> str:
        """How findings name it: `node/w1`."""
        return f"node/{self.name}"


@dataclass(frozen=True, slots=True)
class ClusterComponents:
    """Every versioned component of a cluster, the skew engine's input.

    `kubectl` is the operator's client (None when unknown). `load_balanced` says whether
    kube-controller-manager and kube-scheduler may reach *any* apiserver (through a load
    balancer), which narrows their allowed versions to the oldest apiserver; False means each
    talks to the apiserver on its own node, as kubeadm configures them.
    """

    apiservers: tuple[ApiServer, ...] = ()
    nodes: tuple[NodeComponents, ...] = ()
    kubectl: KubeVersion | None = None
    load_balanced: bool = False

    def node(self, name: str) -> NodeComponents:
        """The node called `name` (KeyError when there is none)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def with_node(self, node: NodeComponents) -> ClusterComponents:
        """A copy with the node of the same name replaced by `node`."""
        if all(n.name != node.name for n in self.nodes):
            raise KeyError(node.name)
        return replace(self, nodes=tuple(node if n.name == node.name else n for n in self.nodes))

    def with_apiserver(self, apiserver: ApiServer) -> ClusterComponents:
        """A copy with the apiserver of the same endpoint replaced by `apiserver`."""
        if all(a.endpoint != apiserver.endpoint for a in self.apiservers):
            raise KeyError(apiserver.endpoint)
        return replace(
            self,
            apiservers=tuple(
                apiserver if a.endpoint == apiserver.endpoint else a for a in self.apiservers
            ),
        )
