"""kubeadm on the lab's nodes runs as a systemd unit that outlives kubehop: a kubehop killed
while `kubeadm upgrade apply` runs leaves it running, and the resumed run follows that kubeadm
instead of starting a second one; a CreateJob health check that fails twice is retried."""

from __future__ import annotations

import time

from kubehop.lab.history import check_history
from kubehop.lab.node.services import running_units
from tests.integration.upgrade.conftest import TODAY, final_versions
from tests.integration.upgrade.test_gates_unreachable import solo_scenario


def kubeadm_runs(events: list[dict], verb: str) -> list[tuple[list[str], int]]:
    """(argv, exit code) of every `kubeadm upgrade <verb>` the nodes ran (under sudo over SSH,
    or started by systemd-run), in order."""
    out = []
    for e in events:
        if e["type"] != "command":
            continue
        words = e["argv"][2:] if e["argv"][:2] == ["sudo", "-n"] else e["argv"]
        if words[:3] == ["kubeadm", "upgrade", verb]:
            out.append((e["argv"], e["exit_code"]))
    return out


def test_a_killed_kubehop_leaves_kubeadm_running_and_the_resumed_run_follows_it(upgrade_lab,
                                                                               tmp_path):
    # 250 lab s per static pod (2.5 s here; kubeadm waits 300): apply runs long enough to be
    # caught mid-way, and still runs when the resumed kubehop gets to it.
    up = upgrade_lab(solo_scenario(tmp_path, "  []\n", static_pod_restart=250))
    host = up.lt.call(lambda: up.lab.agents.host("solo1"))
    first = up.popen("upgrade", "--to", "1.29", "--yes", "--today", TODAY)
    deadline = time.monotonic() + 120
    while not up.lt.call(lambda: running_units(host)):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "kubeadm upgrade apply never started"
        time.sleep(0.05)
    first.kill()
    first.communicate()
    assert up.lt.call(lambda: running_units(host)) == ["kubehop-kubeadm"]  # still at work
    done = up.kubehop("upgrade", "--to", "1.29", "--yes", "--today", TODAY, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "✓ 1.29/solo1/kubeadm-apply" in done.stdout  # followed to its end, not skipped
    events = up.lt.events()
    assert check_history(events, max_unavailable=1) == []
    # One kubeadm upgrade apply, started by systemd (not over the SSH session), finished well.
    assert kubeadm_runs(events, "apply") == [(["kubeadm", "upgrade", "apply", "-y",
                                               "v1.29.15"], 0)]
    assert len([e for e in events if e["type"] == "command" and "systemd-run" in e["argv"]
                and "apply" in e["argv"]]) == 1
    assert final_versions(events)[("solo1", "kube-scheduler")] == "v1.29.15"


def test_createjob_failing_twice_is_retried_and_the_upgrade_completes(upgrade_lab, tmp_path):
    up = upgrade_lab(solo_scenario(
        tmp_path, '  - {kind: kubeadm-createjob-fails, node: solo1, times: "2"}\n'))
    done = up.kubehop("upgrade", "--to", "1.29", "--yes", "--today", TODAY, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = up.lt.events()
    assert [code for _, code in kubeadm_runs(events, "plan")] == [2, 2, 0]
    assert [code for _, code in kubeadm_runs(events, "apply")] == [0]
    assert final_versions(events)[("solo1", "kube-apiserver")] == "v1.29.15"
