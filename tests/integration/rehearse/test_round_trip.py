"""`kubehop lab snapshot` round trip: a lab, its snapshot, and a lab started from the snapshot
read the same to kubehop — `versions -o json` (apiserver endpoints aside), `check -o json`
(finding ids and subjects) and `plan --to 1.30 -o json` (steps, waves, fingerprint)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kubehop.cli.lab import snapshot_yaml
from kubehop.lab.scenarios import builtin_names, parse_text
from kubehop.shell.observe.snapshot import build_snapshot
from tests.integration.rehearse.twin import read_lab, reading

HERE = Path(__file__).parent / "scenarios"
# Every built-in (large made small) and the two written for this: HA with tight budgets and a
# database, RHEL nodes.
SCENARIOS = [*(f"{n}:nodes=12,pods=4" if n == "large" else n for n in builtin_names()),
             str(HERE / "ha-tight.yaml"), str(HERE / "rhel.yaml")]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: Path(s.split(":")[0]).stem)
async def test_a_twin_reads_as_the_original(scenario: str) -> None:
    original = await read_lab(scenario)
    snap = build_snapshot(original)
    # Through the file format as `lab snapshot -o FILE` writes it and `lab up` reads it.
    twin_scenario = parse_text(snapshot_yaml(snap.document, snap.notes), "snapshot.yaml")
    twin = await read_lab(twin_scenario)
    a, b = reading(original.state), reading(twin.state)
    assert b.versions == a.versions
    assert b.findings == a.findings
    assert b.steps == a.steps
    assert b.waves == a.waves
    assert b.fingerprint == a.fingerprint
    assert snap.notes == []


async def test_ha_tight_keeps_labels_taints_selectors_and_budgets() -> None:
    facts = await read_lab(str(HERE / "ha-tight.yaml"))
    doc = build_snapshot(facts).document
    gpu = next(n for n in doc["nodes"] if n["name"] == "gpu")
    assert gpu["labels"] == {"accelerator": "a100", "tier": "gpu"}
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "present",
                              "effect": "NoSchedule"}]
    by_name = {w["name"]: w for w in doc["workloads"]}
    assert by_name["queue"]["pdb"] == {"name": "queue-quorum", "minAvailable": 2}
    assert by_name["dcgm-exporter"]["placement"] == ["gpu"]
    assert by_name["trainer"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert by_name["orders"]["placement"][0] == "app-2"  # the primary first


async def test_anonymized_snapshot_names_nothing_and_keeps_the_plan_shape() -> None:
    scenario = str(HERE / "ha-tight.yaml")
    original = await read_lab(scenario)
    snap = build_snapshot(original, anonymize_key=b"k" * 32)
    text = snapshot_yaml(snap.document, snap.notes)
    names = {"cp-1", "cp-2", "cp-3", "app-1", "app-2", "app-3", "gpu", "shop", "ml", "db",
             "monitoring", "checkout", "queue", "queue-quorum", "trainer", "dcgm-exporter",
             "orders", "a100"}
    for name in names:
        assert not re.search(rf"(?<![\w./-]){re.escape(name)}(?![\w-])", text), name
    twin = await read_lab(parse_text(text, "anonymized.yaml"))
    assert reading(twin.state).shape() == reading(original.state).shape()
    # Another key gives other names: they cannot be guessed by hashing candidates.
    other = build_snapshot(original, anonymize_key=b"x" * 32)
    assert other.document["nodes"][0]["name"] != snap.document["nodes"][0]["name"]
    assert snap.names["node"]["gpu"] == next(
        n["name"] for n in snap.document["nodes"] if n.get("taints"))


def test_the_written_scenarios_are_valid() -> None:
    for path in HERE.glob("*.yaml"):
        assert parse_text(path.read_text(), str(path)).node_count >= 3
        assert yaml.safe_load(path.read_text())["kind"] == "LabScenario"
