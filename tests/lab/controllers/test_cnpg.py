"""The CloudNativePG-like operator: instances, PDBs, switchover off a cordoned node."""

from __future__ import annotations

from kubehop.lab.api.store import Store
from kubehop.lab.fixtures.specs import LabNodeSpec
from tests.lab.controllers.conftest import Factory, small_spec
from tests.lab.controllers.test_evictions import body

CLUSTERS = "clusters.postgresql.cnpg.io"
NODES = (LabNodeSpec("cp", roles=("control-plane",)), LabNodeSpec("w", count=3))


def cluster(instances: int) -> dict:
    return {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {"name": "pg", "namespace": "db"},
            "spec": {"instances": instances, "storage": {"size": "1Gi"}}}


def with_cluster(instances: int):
    def setup(store: Store) -> None:
        store.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": "db"}})
        store.create(CLUSTERS, cluster(instances))
    return setup


def role(pod: dict) -> str:
    return pod["metadata"]["labels"]["cnpg.io/instanceRole"]


async def test_instances_pdbs_and_roles(make_lab: Factory):
    lab = await make_lab(small_spec(nodes=NODES, workloads=()), setup=with_cluster(3))
    await lab.settle()
    pods = {p["metadata"]["name"]: p for p in lab.pods("db")}
    assert sorted(pods) == ["pg-1", "pg-2", "pg-3"]
    assert {n: role(p) for n, p in pods.items()} == {
        "pg-1": "primary", "pg-2": "replica", "pg-3": "replica"}
    assert len({p["spec"]["nodeName"] for p in pods.values()}) == 3  # anti-affinity spreads
    created = {e["name"]: e["t"] for e in lab.events("pod", event="created", namespace="db")}
    ready = {e["name"]: e["t"] for e in lab.events("pod", event="ready", namespace="db")}
    assert ready["pg-1"] <= created["pg-2"]
    assert ready["pg-2"] <= created["pg-3"]
    c = lab.store.get(CLUSTERS, "db", "pg")
    assert (c["status"]["currentPrimary"], c["status"]["readyInstances"]) == ("pg-1", 3)
    assert c["status"]["phase"] == "Cluster in healthy state"
    primary = lab.store.get("poddisruptionbudgets.policy", "db", "pg-primary")
    replicas = lab.store.get("poddisruptionbudgets.policy", "db", "pg")
    assert primary["spec"]["minAvailable"] == 1
    assert replicas["spec"]["minAvailable"] == 1
    assert (primary["status"]["currentHealthy"], primary["status"]["disruptionsAllowed"]) == (1, 0)
    assert (replicas["status"]["currentHealthy"], replicas["status"]["disruptionsAllowed"]) == (
        2, 1)
    assert lab.ctl.evict("db", "pg-1", body("pg-1"))[0] == 429


async def test_cordoning_the_primarys_node_switches_over(make_lab: Factory):
    lab = await make_lab(small_spec(nodes=NODES, workloads=()), setup=with_cluster(3))
    await lab.settle()
    old_node = lab.pod("db", "pg-1")["spec"]["nodeName"]
    lab.cordon(old_node)
    await lab.settle()
    c = lab.store.get(CLUSTERS, "db", "pg")
    new_primary = c["status"]["currentPrimary"]
    assert new_primary != "pg-1"
    assert c["status"]["targetPrimary"] == new_primary
    assert lab.pod("db", new_primary)["spec"]["nodeName"] != old_node
    assert role(lab.pod("db", new_primary)) == "primary"
    assert role(lab.pod("db", "pg-1")) == "replica"
    primary_pdb = lab.store.get("poddisruptionbudgets.policy", "db", "pg-primary")["status"]
    assert (primary_pdb["currentHealthy"], primary_pdb["disruptionsAllowed"]) == (1, 0)
    # The old primary, now a replica, can be drained; the new primary cannot.
    assert lab.ctl.evict("db", new_primary, body(new_primary))[0] == 429
    assert lab.ctl.evict("db", "pg-1", body("pg-1"))[0] == 201
    await lab.settle()
    back = lab.pod("db", "pg-1")  # recreated under its name, on a schedulable node
    assert back["spec"]["nodeName"] != old_node
    assert role(back) == "replica"
    deleted = lab.events("pod", name="pg-1", event="deleted")
    assert [(e["by"], e["pdb"]) for e in deleted] == [("eviction", "db/pg")]


async def test_single_instance_cluster_blocks_the_drain(make_lab: Factory):
    lab = await make_lab(small_spec(nodes=NODES, workloads=()), setup=with_cluster(1))
    await lab.settle()
    assert [p["metadata"]["name"] for p in lab.store.list(
        "poddisruptionbudgets.policy", "db").items] == ["pg-primary"]
    lab.cordon(lab.pod("db", "pg-1")["spec"]["nodeName"])
    await lab.settle()
    assert lab.store.get(CLUSTERS, "db", "pg")["status"]["currentPrimary"] == "pg-1"
    code, answer, _ = lab.ctl.evict("db", "pg-1", body("pg-1"))
    assert code == 429
    assert "pg-primary needs 1 healthy pods and has 1 currently" in answer["details"][
        "causes"][0]["message"]


async def test_deleted_primary_fails_over(make_lab: Factory):
    lab = await make_lab(small_spec(nodes=NODES, workloads=()), setup=with_cluster(2))
    await lab.settle()
    lab.ctl.delete_pod("db", "pg-1")
    await lab.settle()
    status = lab.store.get(CLUSTERS, "db", "pg")["status"]
    assert status["currentPrimary"] == "pg-2"
    assert role(lab.pod("db", "pg-2")) == "primary"
    assert role(lab.pod("db", "pg-1")) == "replica"
    assert status["readyInstances"] == 2


async def test_scaling_and_disabling_pdbs(make_lab: Factory):
    lab = await make_lab(small_spec(nodes=NODES, workloads=()), setup=with_cluster(3))
    await lab.settle()
    lab.store.mutate(CLUSTERS, "db", "pg", lambda c: c["spec"].update(instances=2))
    await lab.settle()
    assert sorted(p["metadata"]["name"] for p in lab.pods("db")) == ["pg-1", "pg-2"]
    assert [p["metadata"]["name"] for p in lab.store.list(
        "poddisruptionbudgets.policy", "db").items] == ["pg-primary"]
    lab.store.mutate(CLUSTERS, "db", "pg", lambda c: c["spec"].update(enablePDB=False))
    await lab.settle()
    assert lab.store.list("poddisruptionbudgets.policy", "db").items == []
