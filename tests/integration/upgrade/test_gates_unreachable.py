"""A single control plane whose advertise address does not answer from the operator's machine
(the `default/kubernetes` Endpoints and the mirror pod's annotation name an address that
refuses or times out, as behind a load balancer, bastion or VPN): `versions` reads the
apiserver from its mirror pod, and the upgrade's health gates judge it that way within
seconds instead of waiting out the step timeout."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kubehop.lab.history import check_history
from tests.integration.upgrade.conftest import TODAY, final_versions


def solo_scenario(tmp_path: Path, faults: str, static_pod_restart: int = 20) -> str:
    """One control plane (solo1) and one worker (worker1) at v1.28.9, with `faults`."""
    nodes = "".join(
        f"  - name: {name}\n{roles}    packages: {{kubeadm: 1.28.9-1.1, kubelet: 1.28.9-1.1, "
        "kubectl: 1.28.9-1.1}\n    holds: [kubeadm, kubelet, kubectl]\n"
        for name, roles in (("solo1", "    roles: [control-plane]\n"), ("worker1", "")))
    path = tmp_path / "solo.yaml"
    path.write_text(
        "apiVersion: kubehop.dev/v1\nkind: LabScenario\nname: solo\n"
        "cluster: {kubernetesVersion: v1.28.9}\nnodes:\n" + nodes +
        f"timing: {{podStart: 5, podStop: 2, kubeletRestart: 10, "
        f"staticPodRestart: {static_pod_restart}, packageInstall: 8}}\nfaults:\n{faults}")
    return str(path)


@pytest.mark.parametrize("how", ["refused", "timeout"])
def test_unreachable_advertise_address_neither_blocks_versions_nor_the_upgrade(
        upgrade_lab, tmp_path, how):
    up = upgrade_lab(solo_scenario(
        tmp_path, f"  - {{kind: apiserver-address-unreachable, node: solo1, how: {how}}}\n"))
    versions = up.kubehop("versions", "-o", "json", timeout=60)
    assert versions.returncode == 0, versions.stderr
    (apiserver,) = json.loads(versions.stdout)["apiservers"]
    assert apiserver["node"] == "solo1"
    assert apiserver["version"] == "v1.28.9"
    assert apiserver["readVia"] == "mirror-pod"
    table = up.kubehop("versions", timeout=60)
    assert "v1.28.9 (from its mirror pod; its address: " in table.stdout
    began = time.monotonic()
    done = up.kubehop("upgrade", "--to", "1.29", "--yes", "--today", TODAY, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert time.monotonic() - began < 120  # the gate's step timeout is 15 minutes
    events = up.lt.events()
    assert check_history(events, max_unavailable=1) == []
    assert final_versions(events)[("solo1", "kube-apiserver")] == "v1.29.15"
