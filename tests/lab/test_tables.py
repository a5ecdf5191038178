"""Server-side Table cells: the rules of kubectl's printers.go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kubehop.lab.api.tables import human_duration, node_row, pdb_row, pod_row, table
from kubehop.lab.fixtures import apps
from kubehop.lab.fixtures import objects as o

NOW = datetime(2024, 1, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (150, "2m30s"),
        (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (3 * 3600 + 600, "3h10m"),
        (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (50 * 3600, "2d2h"),
        (8 * 86400, "8d"), (400 * 86400, "400d"), (730 * 86400, "2y"), (740 * 86400, "2y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def _node(**kw: object) -> dict:
    return o.node("n1", created="2024-01-01T00:00:00Z", **kw)  # type: ignore[arg-type]


def test_node_rows() -> None:
    assert node_row(_node(roles=["control-plane"]), NOW)[:5] == [
        "n1", "Ready", "control-plane", "10d", "v1.28.9"]
    assert node_row(_node(unschedulable=True), NOW)[1:3] == ["Ready,SchedulingDisabled", "<none>"]
    assert node_row(_node(ready=False), NOW)[1] == "NotReady"
    assert node_row(_node(ready=None), NOW)[1] == "NotReady"
    no_conditions = _node()
    no_conditions["status"]["conditions"] = []
    assert node_row(no_conditions, NOW)[1] == "Unknown"
    wide = node_row(_node(internal_ip="127.77.2.3", roles=["worker", "infra"]), NOW)
    assert wide[2] == "infra,worker"
    assert wide[5:] == ["127.77.2.3", "<none>", "Ubuntu 22.04.4 LTS", "5.15.0-105-generic",
                        "containerd://1.7.13"]


def test_pod_rows() -> None:
    running = o.pod("ns", "p", node_name="n1", pod_ip="127.128.0.5", host_ip="127.77.0.1",
                    created="2024-01-10T23:00:00Z")
    assert pod_row(running, NOW) == ["p", "1/1", "Running", "0", "60m", "127.128.0.5", "n1",
                                     "<none>", "<none>"]
    pending = o.pod("ns", "q", created="2024-01-10T23:59:00Z")
    assert pod_row(pending, NOW)[:5] == ["q", "0/1", "Pending", "0", "60s"]
    assert pod_row(pending, NOW)[5:7] == ["<none>", "<none>"]
    creating = o.pod("ns", "r", node_name="n1", ready=False)
    assert pod_row(creating, NOW)[1:3] == ["0/1", "ContainerCreating"]
    deleting = o.pod("ns", "s", node_name="n1", pod_ip="127.128.0.6")
    deleting["metadata"]["deletionTimestamp"] = "2024-01-11T00:00:30Z"
    assert pod_row(deleting, NOW)[2] == "Terminating"
    done = o.pod("ns", "t", node_name="n1")
    done["status"]["phase"] = "Succeeded"
    done["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0,
                                                                      "reason": "Completed"}}
    done["status"]["containerStatuses"][0]["ready"] = False
    assert pod_row(done, NOW)[1:3] == ["0/1", "Completed"]


def test_pdb_rows_and_the_table_shape() -> None:
    pdb = apps.pdb("ns", "web", selector={"app": "web"}, max_unavailable=1,
                created="2024-01-01T00:00:00Z")
    assert pdb_row(pdb, NOW) == ["web", "N/A", "1", 0, "10d"]
    t = table("poddisruptionbudgets.policy", [pdb], NOW, resource_version="7")
    assert t["kind"] == "Table"
    assert t["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"]
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert t["rows"][0]["object"]["metadata"]["namespace"] == "ns"
    generic = table("configmaps", [apps.configmap("ns", "c", {})], NOW, include_object="None")
    assert [c["name"] for c in generic["columnDefinitions"]] == ["Name", "Age"]
    assert "object" not in generic["rows"][0]


def test_created_timestamps_are_relative_to_the_store_clock() -> None:
    later = NOW + timedelta(days=30)
    assert node_row(_node(), later)[3] == "40d"
