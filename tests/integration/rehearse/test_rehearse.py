"""`kubehop rehearse`: check, plan and the executor on a twin, judged from the lab's history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubehop.cli import app

HERE = Path(__file__).parent / "scenarios"


@pytest.fixture
def rehearse(capsys: pytest.CaptureFixture[str]) -> object:
    """Run `kubehop rehearse --to 1.30 ARGS` as the entry point does: (exit code, stdout +
    stderr)."""
    def run(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exited:
            app.main(["rehearse", "--to", "1.30", "--time-scale", "0.005", *args])
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out + err
    return run


def test_oldversion_rehearses_clean_with_its_switchover_and_refused_evictions(
        rehearse: Any, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    code, out = rehearse("--snapshot", "oldversion", "-o", "json", "--out", str(plan_file))
    assert code == 0, out
    report = json.loads(out[out.index("{"):out.rindex("}") + 1])
    assert report["finished"]
    assert report["safety"]["ok"]
    assert any(s["pod"] == "db/pg-1" for s in report["switchovers"])
    assert {r["pdb"] for r in report["refusedEvictions"]} >= {"web/frontend"}
    assert [w["kind"] for w in report["timeline"]].count("workers") >= 1
    assert all(w["end"] is not None and w["end"] >= w["start"] for w in report["timeline"])
    assert report["durationSeconds"]["labTiming"] > 0
    assert "not a guarantee" in report["fidelity"]
    plan = json.loads(plan_file.read_text())
    assert plan["fingerprint"] == report["fingerprint"]


def test_text_report_names_the_pdb_waits_and_prints_the_fidelity_note_once(rehearse: Any) -> None:
    code, out = rehearse("--snapshot", "oldversion")
    assert code == 0, out
    assert "Rehearsal finished" in out
    assert "waited on PDB web/frontend" in out
    assert "switchover: db/pg-1 off oldversion2" in out
    assert out.count("not a guarantee") == 1


def test_a_pdb_that_allows_no_disruption_stops_the_rehearsal_and_is_named(rehearse: Any) -> None:
    code, out = rehearse("--snapshot", str(HERE / "pdb-blocked.yaml"))
    assert code == 1, out
    assert "drain.pdb-never-allows pdb/pay/ledger" in out


def test_user_timing_is_reported_from_a_second_run(rehearse: Any, tmp_path: Path) -> None:
    timing = tmp_path / "timing.yaml"
    timing.write_text("kubeletRestart: 60\nstaticPodRestart: 60\n")
    code, out = rehearse("--snapshot", "rpm", "--timing", str(timing), "-o", "json")
    assert code == 0, out
    d = json.loads(out[out.index("{"):out.rindex("}") + 1])["durationSeconds"]
    assert d["userTiming"] > d["labTiming"] + 100  # 4 restarts of each at least 40 s longer


def test_bad_timing_is_a_usage_error(rehearse: Any, tmp_path: Path) -> None:
    timing = tmp_path / "timing.yaml"
    timing.write_text("kubeletRestrat: 60\n")
    code, out = rehearse("--snapshot", "oldversion", "--timing", str(timing))
    assert code == 2
    assert "unknown key 'kubeletRestrat'" in out


def test_a_rehearsal_that_would_halt_exits_1_and_says_where(rehearse: Any,
                                                            tmp_path: Path) -> None:
    scenario = tmp_path / "halts.yaml"
    scenario.write_text(
        "name: halts\nnodes:\n  - {name: cp, roles: [control-plane]}\n  - {name: w, count: 2}\n"
        "workloads:\n  - {kind: Deployment, namespace: web, name: frontend, replicas: 2,\n"
        "     pdb: {maxUnavailable: 1}}\n"
        "faults:\n  - {kind: package-install-fails, node: w-2, package: kubelet}\n")
    code, out = rehearse("--snapshot", str(scenario))
    assert code == 1, out
    assert "Rehearsal HALTED" in out
    assert "would halt:" in out
    assert "on node w-2" in out
