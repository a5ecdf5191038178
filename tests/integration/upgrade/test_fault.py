"""A node that never becomes Ready after its kubelet restart: the run halts with exit 3 naming
the node, the report says it is left cordoned, and no further node is drained."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubehop.lab import scenarios
from kubehop.lab.history import check_history
from tests.integration.upgrade.conftest import TODAY

FAULT = "\nfaults:\n  - {kind: node-never-ready, node: oldversion3, after: kubelet-restart}\n"


def broken_scenario(tmp_path: Path) -> str:
    text = (Path(scenarios.__file__).parent / "builtin" / "oldversion.yaml").read_text()
    text = text.replace("faults: []\n", "").replace("name: oldversion\n",
                                                    "name: broken-kubelet\n")
    path = tmp_path / "broken.yaml"
    path.write_text(text + FAULT)
    return str(path)


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
