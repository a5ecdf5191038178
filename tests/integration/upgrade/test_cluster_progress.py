"""Progress visible from the cluster: `kubehop.dev/phase|target|run` on the Nodes and Events on
them (drain, kubelet restart, halt), read with real kubectl; removed when the run finishes."""

from __future__ import annotations

import subprocess

from tests.integration.kubectl_bin import kubectl
from tests.integration.upgrade.conftest import TODAY
from tests.integration.upgrade.test_fault import broken_scenario

KEYS = ("kubehop.dev/phase", "kubehop.dev/target", "kubehop.dev/run")


def node_marks(up, name: str) -> tuple[dict[str, str], dict[str, str]]:
    node = up.lt.call(lambda: up.lab.store.get("nodes", "", name))
    meta = node["metadata"]
    return ({k: v for k, v in (meta.get("labels") or {}).items() if k in KEYS},
            {k: v for k, v in (meta.get("annotations") or {}).items() if k in KEYS})


def kubehop_events(up) -> list[dict]:
    return up.lt.call(lambda: [e for e in up.lab.store.iter("events", "default")
                               if (e.get("source") or {}).get("component") == "kubehop"])


def test_a_halted_node_shows_where_it_stopped_and_a_finished_run_cleans_up(upgrade_lab,
                                                                          tmp_path):
    fault = "\nfaults:\n  - {kind: package-install-fails, node: oldversion3, package: kubelet}\n"
    up = upgrade_lab(broken_scenario(tmp_path, fault))
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    labels, annotations = node_marks(up, "oldversion3")
    assert labels == annotations
    assert labels["kubehop.dev/phase"] == "halted"
    assert labels["kubehop.dev/target"] == "v1.30.14"
    assert labels["kubehop.dev/run"].startswith("run-")
    reasons = [(e["involvedObject"]["name"], e["reason"], e["type"]) for e in kubehop_events(up)]
    assert ("oldversion3", "KubehopDrain", "Normal") in reasons
    assert ("oldversion1", "KubehopKubeletRestart", "Normal") in reasons
    assert reasons[-1] == ("oldversion3", "KubehopHalted", "Warning")
    binary = kubectl(37)
    if binary is not None:  # (fetched by `make test`; the lab's own view is checked above)
        env = dict(up.env, HOME=str(tmp_path))
        table = subprocess.run([str(binary), "get", "nodes", "-L", "kubehop.dev/phase",
                                "-L", "kubehop.dev/target"], env=env, capture_output=True,
                               text=True, timeout=60, check=True).stdout
        row = next(line for line in table.splitlines() if line.startswith("oldversion3"))
        assert row.split()[-2:] == ["halted", "v1.30.14"]
        described = subprocess.run([str(binary), "describe", "node", "oldversion3"], env=env,
                                   capture_output=True, text=True, timeout=60,
                                   check=True).stdout
        assert "KubehopHalted" in described
        assert "kubehop halted at step 1.30/oldversion3/kubelet-install" in described
    # Fixed and resumed: the run finishes and takes its marks and Events away.
    up.lt.call(lambda: up.lab.agents.cluster.faults.discard(("package-install-fails",
                                                             "oldversion3")))
    again = up.kubehop("apply", "--yes")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    for name in ("oldversion1", "oldversion2", "oldversion3"):
        assert node_marks(up, name) == ({}, {}), name
    assert kubehop_events(up) == []

