"""`lab snapshot` and `rehearse` against a live cluster (a lab serving in another thread, as a
real cluster would: the API over the kubeconfig, nodes over SSH), and the plan they rehearse
applied to it: accepted while its fingerprint matches, refused once the cluster changed."""

from __future__ import annotations

import asyncio
import json
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubehop.cli import app
from kubehop.lab.lab import Lab
from kubehop.lab.scenarios import load_scenario


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The `oldversion` lab serving from a thread of its own until the module's tests end."""
    state = tmp_path_factory.mktemp("live")
    ready = threading.Event()
    held: dict[str, Any] = {}

    async def serve() -> None:
        held["stop"] = asyncio.Event()
        async with Lab("oldversion", state_dir=state, time_scale=0.01, tls=False) as lab:
            held["lab"] = lab
            ready.set()
            await held["stop"].wait()

    def main() -> None:
        held["loop"] = loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(serve())
        finally:
            ready.set()
            loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(120)
    assert "lab" in held, "the lab did not start"
    yield held["lab"]
    held["loop"].call_soon_threadsafe(held["stop"].set)
    thread.join(60)


@pytest.fixture
def kubehop(live: Lab, capsys: pytest.CaptureFixture[str], tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `kubehop --kubeconfig K [--ssh-inventory I] ARGS`: (exit code, stdout, stderr)."""
    monkeypatch.setenv("KUBEHOP_STATE_DIR", str(tmp_path / "state"))

    def run(*args: str, ssh: bool = True) -> tuple[int, str, str]:
        inventory = ["--ssh-inventory", str(live.inventory_path)] if ssh else []
        with pytest.raises(SystemExit) as exited:
            app.main(["--kubeconfig", str(live.kubeconfig_path), *inventory, *args])
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out, err
    return run


def test_lab_snapshot_of_a_live_cluster_writes_a_scenario_and_a_private_name_map(
        kubehop: Any, tmp_path: Path) -> None:
    out = tmp_path / "snap.yaml"
    code, _, err = kubehop("lab", "snapshot", "-o", str(out), "--anonymize")
    assert code == 0, err
    names = tmp_path / "snap.yaml.names.yaml"
    assert stat.S_IMODE(names.stat().st_mode) == 0o600
    mapping = yaml.safe_load(names.read_text())
    assert len(bytes.fromhex(mapping["key"])) == 32
    text = out.read_text()
    for original in ("oldversion1", "oldversion2", "frontend", "scratch", "node-exporter"):
        assert original not in text
    assert load_scenario(str(out)).node_count == 3
    assert f"names and key in {names}" in err


def test_anonymize_needs_an_output_file(kubehop: Any) -> None:
    code, _, err = kubehop("lab", "snapshot", "--anonymize")
    assert code == 2
    assert "--anonymize needs -o FILE" in err


@pytest.mark.parametrize("ssh", [True, False], ids=["ssh-inventory", "api-only"])
def test_the_rehearsed_plan_applies_only_while_the_live_cluster_is_unchanged(
        kubehop: Any, tmp_path: Path, ssh: bool) -> None:
    plan = tmp_path / "plan.json"
    code, out, err = kubehop("rehearse", "--to", "1.30", "--time-scale", "0.005", "-o", "json",
                             "--out", str(plan), ssh=ssh)
    assert code == 0, err
    report = json.loads(out)
    assert report["liveFingerprint"] == report["fingerprint"]
    if not ssh:
        return  # `apply` reaches the nodes over SSH: it needs the inventory
    code, _, err = kubehop("apply", str(plan), "--dry-run")
    assert code == 0, err
    code, _, err = kubehop("cordon", "oldversion3")
    assert code == 0, err
    try:
        code, _, err = kubehop("apply", str(plan), "--dry-run")
        assert code == 1
        assert "the cluster changed since this plan was made" in err
    finally:
        kubehop("uncordon", "oldversion3")


def test_lab_snapshot_to_standard_output_is_a_scenario_lab_up_takes(kubehop: Any) -> None:
    from kubehop.lab.scenarios import parse_text

    code, out, err = kubehop("lab", "snapshot", "--name", "prod-twin")
    assert code == 0, err
    scenario = parse_text(out, "stdout")
    assert scenario.name == "prod-twin"
    assert scenario.node_names() == ["oldversion1", "oldversion2", "oldversion3"]
    pg = next(w for w in scenario.workloads if w.kind == "CNPGCluster")
    assert pg.placement[0] == "oldversion2"  # the primary's node
    assert "oldversion" not in err  # notes only: nothing was left out
