"""SIGKILL kubehop at many points of one upgrade, `kubehop apply` again each time: the run
converges to the same end state, the invariants intact throughout (judged from the history of
the whole, interrupted upgrade)."""

from __future__ import annotations

import random
import signal
import time

import pytest

from kubehop.lab.history import check_history
from tests.integration.upgrade.conftest import TODAY
from tests.integration.upgrade.test_upgrade import (
    assert_primary_switched_over_before_its_node_drained,
    assert_upgraded,
)

KILLS = 12
TOTAL_RECORDS = 95  # about two records per step of the 52-step oldversion plan


def kill_at(up, proc, records: int, deadline: float) -> bool:
    """SIGKILL `proc` once the journal holds `records` step records; False if it ended first."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if up.journal_records() >= records:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            return True
        time.sleep(0.005)
    raise AssertionError("kubehop made no progress")


@pytest.mark.slow
def test_sigkill_at_a_dozen_points_then_apply_converges(upgrade_lab):
    up = upgrade_lab("oldversion")
    points = sorted(random.Random(20261126).sample(range(2, TOTAL_RECORDS), KILLS))
    deadline = time.monotonic() + 600
    proc = up.popen("upgrade", "--to", "1.30", "--yes", "--today", TODAY)
    kills = 0
    for point in points:
        target = max(point, up.journal_records() + 1)  # always let the new process progress
        if not kill_at(up, proc, target, deadline):
            break
        kills += 1
        proc = up.popen("apply", str(up.plan_file()), "--yes")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    assert kills >= 10
    events = assert_upgraded(up)
    assert check_history(events, max_unavailable=1) == []
    assert_primary_switched_over_before_its_node_drained(events, "oldversion2")
    status = up.kubehop("status")
    assert "succeeded" in status.stdout.splitlines()[0]
