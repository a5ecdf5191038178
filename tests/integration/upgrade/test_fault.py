"""Injected faults halt the run with exit 3 naming the node and the failing step, and nothing
further is drained: a node that never becomes Ready after its kubelet restart (left cordoned),
a package that cannot be downloaded on a worker, a control-plane static pod that never comes
up after `kubeadm upgrade apply` rewrote its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubehop.lab import scenarios
from kubehop.lab.history import check_history
from tests.integration.upgrade.conftest import TODAY

FAULT = "\nfaults:\n  - {kind: node-never-ready, node: oldversion3, after: kubelet-restart}\n"


def broken_scenario(tmp_path: Path, fault: str = FAULT) -> str:
    text = (Path(scenarios.__file__).parent / "builtin" / "oldversion.yaml").read_text()
    text = text.replace("faults: []\n", "").replace("name: oldversion\n",
                                                    "name: broken-kubelet\n")
    path = tmp_path / "broken.yaml"
    path.write_text(text + fault)
    return str(path)


def drained(events: list[dict[str, Any]]) -> set[str]:
    """Nodes cordoned at some point of the history (a drain starts with the cordon)."""
    return {e["node"] for e in events if e["type"] == "node" and not e["schedulable"]}


@pytest.mark.slow
def test_a_node_never_ready_halts_with_exit_3_and_drains_nothing_else(upgrade_lab, tmp_path):
    up = upgrade_lab(broken_scenario(tmp_path))
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY,
                      "--ready-timeout", "3s")
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("kubehop: halted: step 1.30/oldversion3/wait-ready on node "
                           "oldversion3 failed: node oldversion3 did not become Ready")
    assert "left cordoned: oldversion3" in last
    assert "cordoned by kubehop: node oldversion3" in done.stderr
    events = up.lt.events()
    assert check_history(events, max_unavailable=1) == []
    restart = next(e["seq"] for e in events if e["type"] == "kubelet-restart"
                   and e["node"] == "oldversion3")
    after = [e for e in events if e["seq"] > restart]
    assert not [e for e in after if e["type"] == "node" and not e["schedulable"]
                and e["node"] != "oldversion3"]
    assert not [e for e in after if e["type"] == "pod" and e["event"] == "deleted"
                and e.get("by") == "eviction"]
    status = up.kubehop("status")
    assert "halted" in status.stdout
    assert "cordoned by this run: node oldversion3" in status.stdout
    # `upgrade` again resumes the halted run (it does not plan oldversion3 as cordoned by
    # hand), and halts at the same node.
    again = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY,
                       "--ready-timeout", "1s")
    assert again.returncode == 3
    assert "Resuming the unfinished run run-" in again.stderr
    assert "step 1.30/oldversion3/wait-ready on node oldversion3 failed" in again.stderr


def test_a_package_that_cannot_be_downloaded_halts_the_worker_with_exit_3(upgrade_lab, tmp_path):
    fault = "\nfaults:\n  - {kind: package-install-fails, node: oldversion3, package: kubelet}\n"
    up = upgrade_lab(broken_scenario(tmp_path, fault))
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("kubehop: halted: step 1.30/oldversion3/kubelet-install on node "
                           "oldversion3 failed: `sudo apt-get install -y ")
    assert "exited with 100: " in last
    assert "E: Unable to fetch some archives, maybe run apt-get update or try with " \
           "--fix-missing?" in last
    assert "left cordoned: oldversion3" in last
    # The report carries the tail of apt's output.
    assert "  failed: 1.30/oldversion3/kubelet-install on node oldversion3: " in done.stderr
    assert ("    | E: Failed to fetch https://prod-cdn.packages.k8s.io/repositories/isv:/"
            "kubernetes:/core:/stable:/v1.30/deb/amd64/kubelet_1.30.14-1.1_amd64.deb  Could not "
            "connect to prod-cdn.packages.k8s.io:443") in done.stderr
    assert "    | Err:1 https://prod-cdn.packages.k8s.io/" in done.stderr
    events = up.lt.events()
    assert check_history(events, max_unavailable=1) == []
    assert drained(events) == {"oldversion1", "oldversion3"}  # oldversion2 never drained
    # The download failed: oldversion3's kubelet package is the one it had.
    versions = up.lt.call(lambda: dict(up.lab.agents.host("oldversion3").db.state.installed))
    assert versions["kubelet"] == "1.28.9-1.1"
    assert versions["kubeadm"] == "1.30.14-1.1"


def test_a_static_pod_that_never_comes_up_halts_the_first_control_plane(upgrade_lab, tmp_path):
    fault = ("\nfaults:\n  - {kind: static-pod-never-ready, node: oldversion1, "
             "component: kube-apiserver}\n")
    up = upgrade_lab(broken_scenario(tmp_path, fault))
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("kubehop: halted: step 1.29/oldversion1/kubeadm-apply on node "
                           "oldversion1 failed: `sudo kubeadm upgrade apply -y v1.29.15` exited "
                           "with 1: ")
    assert "couldn't upgrade control plane. kubeadm has tried to recover everything into the " \
           "earlier state. Errors faced: failed to obtain static Pod hash for component " \
           "kube-apiserver on Node oldversion1" in done.stderr
    assert "    | [upgrade/staticpods] Waiting for the kubelet to restart the component" \
        in done.stderr
    events = up.lt.events()
    assert check_history(events, max_unavailable=1) == []
    assert drained(events) == set()  # no node, worker or control plane, was ever drained
    assert not [e for e in events if e["type"] == "pod" and e["event"] == "deleted"
                and e.get("by") == "eviction"]
    # kubeadm rolled the manifest back: once the kubelet restarted it, the old one answers.
    up.lt.wait(up.lab.agents.idle())
    assert up.lt.call(lambda: up.lab.agents.apiserver_version("oldversion1")) == "v1.28.9"
