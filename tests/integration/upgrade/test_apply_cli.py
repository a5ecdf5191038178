"""`kubehop apply` refusals and modes on the lab (in-process CLI): a plan the cluster moved away
from, no confirmation, another run's lock, another unfinished run and --abandon, --dry-run,
JSON events."""

from __future__ import annotations

import json
import time

from tests.integration.upgrade.conftest import TODAY, Upgrade, kubehop_cli
from tests.integration.upgrade.test_resume import kill_at

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


kubehop = kubehop_cli


def make_plan(capsys, up: Upgrade, *extra: str) -> str:
    path = str(up.state_dir.parent / f"plan{len(extra)}.json")
    code, _, err = kubehop(capsys, "plan", "--to", "1.29", "--today", TODAY, "-o", "json",
                           "--out", path, *extra)
    assert code == 0, err
    return path


def test_a_plan_the_cluster_moved_away_from_is_refused_with_the_differences(lab, capsys):
    plan = make_plan(capsys, lab)
    line = "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] " \
           "https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /\n"
    done = lab.lt.wait(lab.lab.agents.run("oldversion3", "tee /etc/apt/sources.list.d/"
                                          "kubernetes.list", stdin=line, root=True))
    assert done.exit_code == 0
    code, _, err = kubehop(capsys, "apply", plan, "--yes")
    assert code == 1
    assert "  - step 1.29/oldversion3/repo-switch is no longer needed" in err
    assert "kubehop: the cluster changed since this plan was made (fingerprint sha256:" in err
    assert err.strip().endswith("plan again with `kubehop plan --to v1.29.15 -o json --out "
                                "FILE`")
    # A change the planner cannot plan around is named by its refusal.
    code, _, _ = kubehop(capsys, "cordon", "oldversion3")
    code, _out, err = kubehop(capsys, "apply", plan, "--yes")
    assert code == 1
    assert "  - planning again says: cannot drain node oldversion2" in err
    assert lab.journal_records() == 0


def test_without_yes_and_no_terminal_nothing_happens(lab, capsys, monkeypatch):
    plan = make_plan(capsys, lab)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = kubehop(capsys, "apply", plan)
    assert code == 2
    assert "refusing to change the cluster without confirmation: pass --yes" in err
    assert lab.journal_records() == 0


def test_dry_run_shows_the_next_steps_and_changes_nothing(lab, capsys):
    plan = make_plan(capsys, lab)
    code, out, _ = kubehop(capsys, "apply", plan, "--dry-run")
    assert code == 0, out
    assert "  would run    1.29/oldversion1/repo-switch (repoMinor is 1.28, expected 1.29)" in out
    assert "oldversion1$ printf '%s' 'deb [signed-by=" in out
    assert "  then wave 1:" in out
    assert lab.journal_records() == 0


def test_another_runs_lock_is_refused_naming_its_holder(lab, capsys):
    from kubehop.shell.executor.lock import micro_time

    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "kubehop-upgrade", "namespace": "kube-system"},
             "spec": {"holderIdentity": "ann@laptop/77 run-other", "leaseDurationSeconds": 3600,
                      "renewTime": micro_time(__import__("time").time())}}
    lab.lt.call(lambda: lab.lab.store.create("leases.coordination.k8s.io", lease))
    plan = make_plan(capsys, lab)
    code, _, err = kubehop(capsys, "apply", plan, "--yes")
    assert code == 1
    assert "another kubehop run holds the upgrade lock (Lease kube-system/kubehop-upgrade): " \
           "ann@laptop/77 run-other" in err


def test_an_unfinished_run_blocks_a_new_plan_until_abandoned(lab, capsys):
    plan = make_plan(capsys, lab)
    proc = lab.popen("apply", plan, "--yes")  # killed mid-way: its run stays unfinished
    assert kill_at(lab, proc, 8, time.monotonic() + 120)
    other = make_plan(capsys, lab, "--max-unavailable", "2")
    code, _, err = kubehop(capsys, "apply", other, "--yes")
    assert code == 1
    assert "is unfinished on this cluster: resume it with `kubehop apply`" in err
    code, out, _ = kubehop(capsys, "apply", "--abandon")
    assert code == 0
    assert "abandoned after" in out
    code, out, _ = kubehop(capsys, "status", "-o", "json")
    assert json.loads(out)["status"] == "abandoned"


def test_json_events_are_one_object_per_line(lab, capsys):
    code, out, err = kubehop(capsys, "--log-format", "json", "upgrade", "--to", "1.29", "--yes",
                             "--today", TODAY)
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run-started"
    assert kinds[-1] == "run-finished"
    assert {"wave-started", "step-started", "step-succeeded", "wave-finished"} <= set(kinds)
    done = [e for e in events if e["event"] == "step-succeeded"]
    assert all({"run", "step", "kind", "done", "total", "seconds"} <= e.keys() for e in done)
    assert "Upgrade plan: v1.28.9 → v1.29.15" in err  # the plan for people goes to stderr


def test_a_cluster_changed_while_waiting_for_the_lock_is_looked_at_again(lab, capsys,
                                                                         monkeypatch):
    """The checks before the lock passed; another run then changed the cluster before this one
    got the lock: once the lock is ours, the fingerprint is checked again and the plan refused,
    before anything is journaled or run."""
    from kubehop.shell.session import fingerprint

    plan = make_plan(capsys, lab)
    real = fingerprint.check_fingerprint
    calls = []

    async def first_passes(session, plan_, observed):
        calls.append(observed)
        if len(calls) > 1:  # the first, before the lock, saw the cluster as it was planned
            await real(session, plan_, observed)

    # What "another run" did meanwhile: oldversion3's repository already points at 1.29.
    line = "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] " \
           "https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /\n"
    done = lab.lt.wait(lab.lab.agents.run("oldversion3", "tee /etc/apt/sources.list.d/"
                                          "kubernetes.list", stdin=line, root=True))
    assert done.exit_code == 0

    def no_verify(session, plan_, observed, journal, state):
        return None

    monkeypatch.setattr(fingerprint, "check_fingerprint", first_passes)
    monkeypatch.setattr(fingerprint, "verify_before_running", no_verify)
    code, _, err = kubehop(capsys, "apply", plan, "--yes")
    assert code == 1, err
    assert len(calls) == 2
    assert "the cluster changed since this plan was made" in err
    assert lab.journal_records() == 0
