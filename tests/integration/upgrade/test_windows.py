"""Maintenance windows on the lab's clock: a window that closes mid-upgrade starts no new node
(no cordon after the close in the lab history), the run halts with exit 3 naming the next
opening, and a resume inside a window finishes with zero invariant violations; with
`--wait-for-window` the run sleeps (lab time) until the window opens."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from kubehop.lab.history import check_history
from tests.integration.upgrade.conftest import TODAY
from tests.integration.upgrade.test_notify import receiver  # noqa: F401 — a fixture

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def lab_now(up) -> datetime:
    return datetime.fromtimestamp(up.lt.call(lambda: up.lab.clock.wall()), UTC)


def window(opens: datetime, hours: int) -> str:
    start = opens.replace(second=0, microsecond=0)
    end = start + timedelta(hours=hours)
    return f"{DAYS[start.weekday()]} {start:%H:%M}-{end:%H:%M} UTC"


def test_a_window_closing_mid_upgrade_stops_new_nodes_and_a_resume_finishes(
        upgrade_lab, receiver):  # noqa: F811 — the fixture
    up = upgrade_lab("oldversion")
    now = lab_now(up)
    proc = up.popen("upgrade", "--to", "1.30", "--yes", "--today", TODAY,
                    "--window", window(now - timedelta(minutes=1), 2), "--notify", receiver.url)
    # Close the window once the first control plane is through its 1.30 hop: three hours of
    # lab time pass at once.
    deadline = time.monotonic() + 120
    closed_at = None
    while proc.poll() is None and time.monotonic() < deadline:
        events = up.lt.events()
        if any(e["type"] == "node" and e["node"] == "oldversion1" and e["schedulable"]
               and e["seq"] > max((x["seq"] for x in events if x["type"] == "command" and
                                   "v1.30.14" in " ".join(x["argv"])), default=10**9)
               for e in events):
            closed_at = up.lt.call(lambda: (setattr(up.lab.clock, "epoch",
                                                    up.lab.clock.epoch + 3 * 3600),
                                            up.lab.history.since(0)[-1]["seq"])[1])
            break
        time.sleep(0.05)
    out, err = proc.communicate(timeout=300)
    assert closed_at is not None, out[-2000:] + err[-2000:]
    assert proc.returncode == 3, out[-3000:] + err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("kubehop: halted: maintenance window closed: resume with "
                           "`kubehop apply ")
    assert "(next window opens " in last
    assert receiver.bodies[-1]["event"] == "window-closed"
    assert receiver.bodies[-1]["text"].startswith(
        "kubehop v1.28.9 → v1.30.14: halted: maintenance window closed: resume with ")
    events = up.lt.events()
    assert not [e for e in events if e["seq"] > closed_at and e["type"] == "node"
                and not e["schedulable"]], "a node was cordoned after the window closed"
    assert not [e for e in events if e["type"] == "node" and not e["schedulable"]
                and e["node"] == "oldversion2"]
    # A resume inside the next window finishes.
    again = up.kubehop("apply", "--yes", "--window", window(lab_now(up), 2))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert check_history(up.lt.events(), max_unavailable=1) == []


def test_wait_for_window_sleeps_in_lab_time_until_it_opens(upgrade_lab):
    up = upgrade_lab("oldversion")
    opens = lab_now(up) + timedelta(minutes=12)  # 720 lab seconds: about 7 real seconds
    started = time.monotonic()
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY, "--wait-for-window",
                      "--window", window(opens + timedelta(minutes=1), 3))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert time.monotonic() - started < 120
    assert "needs 1 window; the next opens " in done.stdout
    first = min(e["t"] for e in up.lt.events() if e["type"] == "command"
                and "kubeadm" in " ".join(e["argv"]) and "install" in " ".join(e["argv"]))
    opened = up.lt.call(lambda: up.lab.clock.lab(
        (opens + timedelta(minutes=1)).replace(second=0, microsecond=0).timestamp()))
    assert first >= opened - 1
