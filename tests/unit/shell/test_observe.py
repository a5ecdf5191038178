"""The observe layer's pure parts: decoding pages, node facts output, Helm releases, /metrics."""

from __future__ import annotations

import json

import msgspec
import pytest

from kubehop.lab.api.app import metrics_text
from kubehop.lab.fixtures import objects as o
from kubehop.lab.fixtures.apis import annotate_applied, helm_release_secret
from kubehop.lab.fixtures.specs import LabWorkloadSpec
from kubehop.model.cluster import OsFamily, Resources
from kubehop.model.versions import MinorVersion, parse_kube_version
from kubehop.shell.kube.reader import join_host_port
from kubehop.shell.kube.wire import WorkloadWire
from kubehop.shell.observe import apis as observe_apis
from kubehop.shell.observe.addons import recognise_cni
from kubehop.shell.observe.decode import (
    PodDecoder,
    cpu_milli,
    decode_nodes,
    decode_pdbs,
    image_repository,
    image_tag,
    pdb_info,
    quantity,
)
from kubehop.shell.observe.nodes import facts_command, os_family, parse_facts


def page(items: list[dict]) -> bytes:
    return json.dumps({"kind": "List", "metadata": {"resourceVersion": "1"},
                       "items": items}).encode()


@pytest.mark.parametrize(("text", "value"), [
    ("8Gi", 8 * 2**30), ("128Mi", 128 * 2**20), ("1e3", 1000), ("1k", 1000), ("110", 110),
    ("0.5Ki", 512), ("bogus", 0),
])
def test_quantities(text, value):
    assert quantity(text) == value


@pytest.mark.parametrize(("text", "milli"), [("4", 4000), ("100m", 100), ("0.25", 250),
                                             ("1500u", 2)])
def test_cpu(text, milli):
    assert cpu_milli(text) == milli


def test_nodes_decode_roles_readiness_versions_and_allocatable():
    cp = o.node("cp1", roles=["control-plane"], kubelet_version="v1.28.9-eks-8cb36c9",
                unschedulable=True, cpu="8", memory="32Gi", internal_ip="127.77.0.10")
    worker = o.node("w1", ready=False)
    n1, n2 = decode_nodes(page([cp, worker]))
    assert (n1.name, n1.roles, n1.schedulable, n1.ready) == ("cp1", ("control-plane",), False,
                                                             True)
    assert n1.kubelet.vendor == "eks-8cb36c9"
    assert n1.internal_ip == "127.77.0.10"
    assert n1.allocatable == Resources(8000, 32 * 2**30, 110)
    assert (n2.roles, n2.ready) == ((), False)
    assert ("kubernetes.io/hostname", "w1") in n2.labels


def test_pods_decode_owner_requests_emptydir_mirror_and_share_equal_parts():
    c = [o.container("app", "nginx:1.25", requests={"cpu": "100m", "memory": "64Mi"}),
         o.container("side", "envoy:1", requests={"cpu": "50m"})]
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "web-1", "namespace": "web", "uid": "u"}}
    pods = [o.pod("web", f"web-{i}", node_name="w1", containers=c, labels={"app": "web"},
                  owner=rs, volumes=[{"name": "s", "emptyDir": {}}]) for i in range(2)]
    mirror = o.pod("kube-system", "etcd-cp1", node_name="cp1",
                   containers=[o.container("etcd", "registry.k8s.io/etcd:3.5.12-0")],
                   annotations={"kubernetes.io/config.mirror": "abc"})
    decoder = PodDecoder()
    a, b, m = decoder.decode(page([*pods, mirror]))
    assert (a.owner_kind, a.owner_name, a.node, a.empty_dir, a.mirror) == (
        "ReplicaSet", "web-1", "w1", True, False)
    assert a.requests == Resources(150, 64 * 2**20, 1)
    assert a.labels is b.labels
    assert a.requests is b.requests
    assert m.mirror
    assert not m.empty_dir
    assert m.owner_kind is None


def test_pdb_selectors_match_like_the_api_server():
    decoder = PodDecoder()
    pods = decoder.decode(page([
        o.pod("web", "a", node_name="w1", containers=[o.container("c", "i")],
              labels={"app": "web", "tier": "front"}),
        o.pod("web", "b", node_name="w1", containers=[o.container("c", "i")],
              labels={"app": "web", "tier": "back"}),
        o.pod("web", "c", node_name="w1", containers=[o.container("c", "i")],
              labels={"app": "db"}),
    ]))
    raw = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": "p", "namespace": "web"},
           "spec": {"selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
               {"key": "tier", "operator": "NotIn", "values": ["back"]}]}},
           "status": {"expectedPods": 1, "desiredHealthy": 1, "currentHealthy": 1,
                      "disruptionsAllowed": 0}}
    info = pdb_info(decode_pdbs(page([raw]))[0], pods)
    assert info.pods == ("web/a",)
    assert (info.expected, info.desired_healthy, info.disruptions_allowed) == (1, 1, 0)


@pytest.mark.parametrize(("image", "repo", "tag"), [
    ("registry.k8s.io/kube-proxy:v1.28.9", "registry.k8s.io/kube-proxy", "v1.28.9"),
    ("localhost:5000/calico/node:v3.27.0", "localhost:5000/calico/node", "v3.27.0"),
    ("quay.io/cilium/cilium:v1.15.1@sha256:abc", "quay.io/cilium/cilium", "v1.15.1"),
    ("busybox", "busybox", None),
])
def test_image_parts(image, repo, tag):
    assert (image_repository(image), image_tag(image)) == (repo, tag)


def workload(ns: str, name: str, image: str) -> WorkloadWire:
    return msgspec.convert({"metadata": {"name": name, "namespace": ns}, "spec": {"template": {
        "spec": {"containers": [{"name": name, "image": image}]}}}}, WorkloadWire)


def test_cni_is_recognised_by_image_and_unknown_ones_listed_by_image():
    known = [workload("kube-system", "calico-node", "docker.io/calico/node:v3.27.0"),
             workload("kube-system", "cilium", "quay.io/cilium/cilium:v1.15.1")]
    assert recognise_cni(known) == (("calico", "v3.27.0"), ("cilium", "v1.15.1"))
    other = [workload("kube-system", "kube-router", "cloudnativelabs/kube-router:v2.1.0"),
             workload("monitoring", "node-exporter", "prom/node-exporter:v1")]
    assert recognise_cni(other) == (("cloudnativelabs/kube-router", "v2.1.0"),)


def test_ipv6_endpoints_are_bracketed():
    assert join_host_port("fd00::1", 6443) == "[fd00::1]:6443"
    assert join_host_port("127.77.0.1", 6443) == "127.77.0.1:6443"


# --- node facts ----------------------------------------------------------------------------


APT_LINE = ("deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
            "https://pkgs.k8s.io/core:/stable:/v1.28/deb/ /")
DEB_OUT = f"""kubeadm 1.28.9-1.1
kubelet 1.28.9-1.1
kubectl 1.28.9-1.1
@@kubehop:repo
/etc/apt/sources.list.d/kubernetes.list:# the upstream line
/etc/apt/sources.list.d/kubernetes.list:{APT_LINE}
@@kubehop:holds
kubeadm
kubelet
@@kubehop:kubeadm
v1.28.9
"""

RPM_OUT = """kubeadm 1.28.9-150500.1.1
kubelet 1.28.9-150500.1.1
package kubectl is not installed
@@kubehop:repo
/etc/yum.repos.d/kubernetes.repo:[kubernetes]
/etc/yum.repos.d/kubernetes.repo:baseurl=https://pkgs.k8s.io/core:/stable:/v1.29/rpm/
/etc/yum.repos.d/kubernetes.repo:exclude=kubelet kubeadm cri-tools kubernetes-cni
@@kubehop:holds
Last metadata expiration check: 0:10:01 ago on Mon 25 Nov 2026.
kubectl-0:1.28.9-150500.1.1.*
@@kubehop:kubeadm
"""


def test_debian_facts():
    p = parse_facts(OsFamily.DEBIAN, DEB_OUT)
    assert (p.kubeadm, p.kubelet, p.kubectl) == ("1.28.9-1.1",) * 3
    assert (p.repo_minor, p.repo_legacy, p.held) == (MinorVersion(1, 28), False,
                                                     ("kubeadm", "kubelet"))
    assert p.kubeadm_binary == parse_kube_version("v1.28.9")


def test_rpm_facts_count_the_exclude_line_and_versionlocks_as_holds():
    p = parse_facts(OsFamily.RHEL, RPM_OUT)
    assert (p.kubelet, p.kubectl, p.repo_minor) == ("1.28.9-150500.1.1", None, MinorVersion(1, 29))
    assert p.held == ("kubeadm", "kubectl", "kubelet")
    assert p.kubeadm_binary is None


def test_the_legacy_repository_is_recognised():
    out = DEB_OUT.replace("https://pkgs.k8s.io/core:/stable:/v1.28/deb/ /",
                          "https://apt.kubernetes.io/ kubernetes-xenial main")
    p = parse_facts(OsFamily.DEBIAN, out)
    assert p.repo_legacy
    assert p.repo_minor is None


def test_one_command_line_per_node_by_os_family():
    assert os_family("Rocky Linux 9.3 (Blue Onyx)") is OsFamily.RHEL
    assert os_family("Ubuntu 22.04.4 LTS") is OsFamily.DEBIAN
    assert facts_command(OsFamily.DEBIAN).startswith("dpkg-query -W -f '${Package} ${Version}\\n'")
    assert "dnf versionlock list" in facts_command(OsFamily.RHEL)


# --- API versions in use -------------------------------------------------------------------


def test_helm_release_secrets_decode_to_their_manifest_objects():
    w = LabWorkloadSpec("HelmRelease", "monitoring", "flow", chart="flow-0.3.1", objects=(
        ("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema", "scrapes"),
        ("v1", "ConfigMap", "flow")))
    secret = helm_release_secret(w, "2026-01-01T00:00:00Z")
    assert secret["type"] == observe_apis.HELM_SECRET_TYPE
    objs = observe_apis.helm_objects([("monitoring", secret["metadata"]["labels"],
                                       secret["data"]["release"])])
    assert [(x.api_version, x.kind, x.name, x.source) for x in objs] == [
        ("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema", "scrapes", "helm:monitoring/flow"),
        ("v1", "ConfigMap", "flow", "helm:monitoring/flow")]


def test_only_the_newest_deployed_helm_revision_counts():
    old = LabWorkloadSpec("HelmRelease", "ns", "r", objects=(("policy/v1beta1", "PodSecurityPolicy",
                                                           "p"),))
    new = LabWorkloadSpec("HelmRelease", "ns", "r", objects=(("policy/v1", "PodDisruptionBudget",
                                                           "p"),))
    secrets = [helm_release_secret(w, "t", revision=i) for i, w in ((1, old), (2, new))]
    objs = observe_apis.helm_objects([("ns", s["metadata"]["labels"], s["data"]["release"])
                                      for s in secrets])
    assert [x.api_version for x in objs] == ["policy/v1"]


def test_manifest_documents_with_namespaces_and_quotes():
    manifest = ("---\n# Source: x\napiVersion: \"apps/v1\"\nkind: Deployment\nmetadata:\n"
                "  name: 'web'\n  namespace: shop\nspec:\n  template:\n    metadata:\n"
                "      name: inner\n---\n# empty\n")
    (obj,) = observe_apis.manifest_objects(manifest, "helm:shop/web")
    assert (obj.api_version, obj.kind, obj.name, obj.namespace) == ("apps/v1", "Deployment",
                                                                     "web", "shop")


def test_last_applied_annotations():
    dep = annotate_applied({"kind": "Deployment", "metadata": {"name": "api", "namespace": "web"},
                            "spec": {}}, "apps/v1beta2")
    text = dep["metadata"]["annotations"][observe_apis.LAST_APPLIED]
    obj = observe_apis.applied_object(text, "web", "api")
    assert (obj.api_version, obj.kind, obj.subject) == ("apps/v1beta2", "Deployment",
                                                        "deployment/web/api")
    assert observe_apis.applied_object("not json", "web", "x") is None
    assert observe_apis.applied_object(None, "web", "x") is None


def test_the_deprecated_apis_gauge_is_parsed_from_the_labs_metrics():
    text = metrics_text([{"group": "flowcontrol.apiserver.k8s.io", "version": "v1beta2",
                          "resource": "flowschemas", "removed_release": "1.29"},
                         {"group": "", "version": "v1", "resource": "componentstatuses",
                          "removed_release": ""}])
    text += 'apiserver_requested_deprecated_apis{group="x",removed_release="1.40",' \
            'resource="y",subresource="",version="v1"} 0\n'
    uses = observe_apis.parse_deprecated_apis(text, "127.77.0.10:6443")
    assert [(u.api_version, u.resource, u.removed_release) for u in uses] == [
        ("flowcontrol.apiserver.k8s.io/v1beta2", "flowschemas", "1.29"),
        ("v1", "componentstatuses", None)]
