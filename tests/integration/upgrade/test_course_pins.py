"""kubehop upgrades the upgrade course's cluster (built-in scenario `course`: nodes pinned by
/etc/apt/preferences.d/kubernetes, no holds) and keeps that method: the pins end at the new
minor, no hold is added, and the lab's history shows no broken invariant."""

from __future__ import annotations

import json

from kubehop.lab.history import check_history
from tests.integration.upgrade.conftest import TODAY, final_versions

NODES = ("oldversion1", "oldversion2", "oldversion3")
PREF = "/etc/apt/preferences.d/kubernetes"


def test_kubehop_keeps_the_course_pins_and_adds_no_holds(upgrade_lab):
    up = upgrade_lab("course")
    check = up.kubehop("check", "--to", "1.29", "-o", "json", "--today", TODAY)
    found = {f["id"] for f in json.loads(check.stdout)["findings"]}
    assert "packages.not-held" not in found, check.stdout
    assert "node.apt-pin" in found
    script = up.kubehop("plan", "--to", "1.29", "-o", "script", "--today", TODAY)
    assert script.returncode == 0, script.stderr
    assert "apt-mark hold" not in script.stdout
    assert "Pin: version 1.29.*" in script.stdout
    done = up.kubehop("upgrade", "--to", "1.29", "--yes", "--today", TODAY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = up.lt.events()
    assert check_history(events, max_unavailable=1) == []
    versions = final_versions(events)
    for node in NODES:
        assert versions[(node, "kubelet")].startswith("v1.29."), node
        pin = up.lt.wait(up.lab.agents.run(node, f"cat {PREF}", root=True)).stdout
        assert pin == "Package: kubectl kubeadm kubelet\nPin: version 1.29.*\n" \
                      "Pin-Priority: 1000\n", node
        holds = up.lt.wait(up.lab.agents.run(node, "apt-mark showhold", root=True)).stdout
        assert holds == "", node
