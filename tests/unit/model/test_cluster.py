"""The observed-state model hands the skew engine the right versions."""

from kubehop.core.skew import evaluate_skew
from kubehop.model.cluster import ApiServerInfo, ClusterState, NodePackages, NodeState, OsFamily
from kubehop.model.versions import parse_kube_version as v


def cp(name: str, apiserver: str, kubelet: str = "v1.28.9") -> NodeState:
    images = tuple((c, f"registry.k8s.io/{c}:{apiserver}") for c in
                   ("kube-apiserver", "kube-controller-manager", "kube-scheduler"))
    return NodeState(name=name, roles=("control-plane",), kubelet=v(kubelet),
                     kube_proxy=v(kubelet), control_plane_images=(
                         *images, ("etcd", "registry.k8s.io/etcd:3.5.12-0")),
                     packages=NodePackages(OsFamily.DEBIAN, kubeadm_binary=v("v1.28.9")))


def test_components_carry_static_pod_versions_and_kubeadm():
    state = ClusterState(
        apiservers=(ApiServerInfo("127.0.0.1:6443", "cp1", v("v1.28.9")),),
        nodes=(cp("cp1", "v1.28.9"), NodeState("w1", kubelet=v("v1.27.16"))),
    )
    comps = state.components()
    cp1 = comps.node("cp1")
    assert cp1.kube_apiserver == v("v1.28.9")
    assert cp1.kube_scheduler == v("v1.28.9")
    assert cp1.kubeadm == v("v1.28.9")
    assert comps.node("w1").kubelet == v("v1.27.16")
    assert state.control_plane_nodes[0].name == "cp1"
    assert [n.name for n in state.worker_nodes] == ["w1"]
    assert evaluate_skew(comps) == []


def test_a_kubelet_newer_than_the_apiserver_is_found_through_the_model():
    state = ClusterState(
        apiservers=(ApiServerInfo("127.0.0.1:6443", "cp1", v("v1.28.9")),),
        nodes=(cp("cp1", "v1.28.9"), NodeState("w1", kubelet=v("v1.29.15"))),
    )
    ids = {f.id for f in evaluate_skew(state.components())}
    assert "skew.kubelet-newer-than-apiserver" in ids
