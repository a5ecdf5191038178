"""Old API versions in lab scenarios (Helm releases, last-applied annotations) and /metrics."""

from __future__ import annotations

import base64
import gzip
import json
import textwrap

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubehop.lab.api.app import LabApi
from kubehop.lab.api.store import Store
from kubehop.lab.fixtures.apis import LAST_APPLIED
from kubehop.lab.fixtures.cluster import populate
from kubehop.lab.scenarios import load_scenario, parse_text, to_cluster_spec
from kubehop.lab.scenarios.validate import parse_scenario
from kubehop.model.errors import UsageError

HEAD = """\
apiVersion: kubehop.dev/v1
kind: LabScenario
name: apis
nodes:
  - {name: cp, roles: [control-plane]}
  - {name: w1}
workloads:
"""


def scenario(workloads: str):
    return parse_text(HEAD + textwrap.indent(textwrap.dedent(workloads), "  "), "apis.yaml")


def test_the_ha_builtin_remembers_old_api_versions():
    store = Store()
    populate(to_cluster_spec(load_scenario("ha")), store)
    api = store.peek("deployments.apps", "web", "api")
    applied = json.loads(api["metadata"]["annotations"][LAST_APPLIED])
    assert (applied["apiVersion"], applied["kind"]) == ("apps/v1beta2", "Deployment")
    assert api["apiVersion"] == "apps/v1"  # stored (and served) in the current version
    secret = store.peek("secrets", "monitoring", "sh.helm.release.v1.flow-tuning.v1")
    assert secret["type"] == "helm.sh/release.v1"
    assert secret["metadata"]["labels"] == {"owner": "helm", "name": "flow-tuning",
                                            "status": "deployed", "version": "1"}
    release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(
        secret["data"]["release"]))))
    assert release["chart"]["metadata"] == {"name": "flow-tuning", "version": "0.3.1",
                                            "apiVersion": "v2"}
    assert "apiVersion: flowcontrol.apiserver.k8s.io/v1beta2\nkind: FlowSchema\n" in \
        release["manifest"]


def test_helm_releases_and_applied_versions_round_trip_and_populate():
    sc = scenario("""\
        - {kind: HelmRelease, namespace: apps, name: shop, chart: shop-1.2.0,
           objects: [{apiVersion: policy/v1beta1, kind: PodSecurityPolicy, name: restricted}]}
        - {kind: DaemonSet, namespace: apps, name: agent, appliedApiVersion: extensions/v1beta1}
        - {kind: Pod, namespace: apps, name: solo, appliedApiVersion: v1}
    """)
    assert parse_scenario(sc.to_dict(), "again").to_dict() == sc.to_dict()
    store = Store()
    populate(to_cluster_spec(sc), store)
    assert store.peek("secrets", "apps", "sh.helm.release.v1.shop.v1") is not None
    ds = store.peek("daemonsets.apps", "apps", "agent")
    assert json.loads(ds["metadata"]["annotations"][LAST_APPLIED])["apiVersion"] == \
        "extensions/v1beta1"
    solo = store.peek("pods", "apps", "solo")
    assert json.loads(solo["metadata"]["annotations"][LAST_APPLIED])["kind"] == "Pod"


@pytest.mark.parametrize(("workload", "problem"), [
    ("- {kind: HelmRelease, name: x, objects: [{apiVersion: v1, kind: ConfigMap}]}",
     r"objects\[0\]\.name: required"),
    ("- {kind: HelmRelease, name: x, objects: [{apiVersion: 'not a version', kind: A, "
     "name: a}]}", "apiVersion"),
    ("- {kind: HelmRelease, name: x, replicas: 2}", "replicas"),
    ("- {kind: Deployment, name: x, appliedApiVersion: apps}", "appliedApiVersion"),
    ("- {kind: CNPGCluster, name: x, appliedApiVersion: v1}", "appliedApiVersion"),
])
def test_bad_api_fields_are_one_line_errors(workload, problem):
    with pytest.raises(UsageError, match=problem):
        scenario(workload)


async def test_metrics_serve_the_deprecated_apis_gauge():
    api = LabApi(Store())
    api.deprecated_apis.append({"group": "flowcontrol.apiserver.k8s.io", "version": "v1beta2",
                                "resource": "flowschemas", "removed_release": "1.29"})
    async with TestClient(TestServer(api.app())) as client:
        resp = await client.get("/metrics")
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    assert "# TYPE apiserver_requested_deprecated_apis gauge" in text
    assert ('apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",'
            'removed_release="1.29",resource="flowschemas",subresource="",version="v1beta2"} 1'
            ) in text
