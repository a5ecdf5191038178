"""`kubehop plan --from-state`: text, JSON/YAML, bash runbook, --out, exit codes; and that
planning from a file imports no Kubernetes or SSH client."""

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from kubehop.cli import app
from kubehop.cli.plan_render import format_script
from kubehop.model.cluster_codec import state_to_dict
from kubehop.model.plan import Plan
from tests.release_pins import FRESH
from tests.unit.core.plan_strategies import oldversion_state

TODAY = str(FRESH)  # within 60 days of the shipped data: no staleness warning


@pytest.fixture(autouse=True)
def _environment(monkeypatch):
    monkeypatch.delenv("KUBEHOP_RELEASE_DATA", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def state_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state_to_dict(oldversion_state())))
    return str(path)


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        app.main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def plan_args(state_file, *extra):
    return ["plan", "--to", "1.30", "--from-state", state_file, "--today", TODAY, *extra]


def test_text_shows_hops_waves_and_drain_decisions(capsys, state_file):
    code, out, err = run(capsys, *plan_args(state_file))
    assert (code, err) == (0, "")
    assert out.startswith("Upgrade plan: v1.28.9 → v1.30.14\n  hops: v1.29.15, v1.30.14\n")
    assert "  wave 0 [v1.29.15] control plane (kubeadm): oldversion1\n" in out
    assert ("    oldversion2: repo-switch → kubeadm-install → kubeadm-node → cordon → "
            "switchover → drain → kubelet-install → kubelet-restart → wait-ready → uncordon\n"
            "      (kubelet changes minor: drain required)\n") in out
    assert "prepare" not in out  # workers are touched once, when their kubelet moves
    assert "estimate" in out
    assert "Warnings:\n  - drains delete the emptyDir data" in out


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_machine_output_is_the_plan(capsys, state_file, fmt):
    code, out, _ = run(capsys, *plan_args(state_file, "-o", fmt))
    assert code == 0
    doc = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    plan = Plan.from_dict(doc)
    assert plan.hops == ("v1.29.15", "v1.30.14")
    assert doc["steps"][0]["id"] == "1.29/oldversion1/repo-switch"


def test_options_reach_the_plan(capsys, state_file):
    code, out, _ = run(capsys, *plan_args(state_file, "-o", "json", "--worker-strategy",
                                          "every-minor", "--drain", "always",
                                          "--max-unavailable", "50%"))
    assert code == 0
    doc = json.loads(out)
    assert doc["strategy"]["workerStrategy"] == "every-minor"
    assert doc["strategy"]["maxUnavailable"] == "50%"
    assert sum(s["kind"] == "drain" for s in doc["steps"]) == 6


def test_the_runbook_is_bash_that_ssh_es_and_kubectl_s(capsys, state_file):
    code, out, _ = run(capsys, *plan_args(state_file, "-o", "script"))
    assert code == 0
    assert out.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail\n" in out
    assert "ssh oldversion1 -- 'sudo kubeadm upgrade apply -y v1.29.15'\n" in out
    assert ("ssh oldversion1 -- 'sudo tee /etc/apt/sources.list.d/kubernetes.list' >/dev/null "
            "<<'KUBEHOP_EOF'\ndeb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
            "https://pkgs.k8s.io/core:/stable:/v1.29/deb/ /\nKUBEHOP_EOF\n") in out
    assert ("kubectl drain oldversion3 --ignore-daemonsets --delete-emptydir-data --force\n"
            in out)
    assert "# expect: kubelet=v1.30.14, schedulable=true\nkubectl uncordon oldversion2\n" in out
    assert "cnpg.io/cluster=pg,cnpg.io/instanceRole=primary" in out
    if shutil.which("bash"):
        subprocess.run(["bash", "-n"], input=out, text=True, check=True)


def test_out_writes_the_file(capsys, state_file, tmp_path):
    target = tmp_path / "plan.json"
    code, out, _ = run(capsys, *plan_args(state_file, "-o", "json", "--out", str(target)))
    assert (code, out) == (0, "")
    assert Plan.from_dict(json.loads(target.read_text())).to_version == "v1.30.14"


def test_yaml_state_files_are_read(capsys, tmp_path):
    path = tmp_path / "state.yaml"
    path.write_text(yaml.safe_dump(state_to_dict(oldversion_state())))
    code, out, _ = run(capsys, "plan", "--to", "1.29", "--from-state", str(path), "--today",
                       TODAY)
    assert code == 0
    assert "hops: v1.29.15\n" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "1.27"], "downgrade"),
    (["--to", "1.30", "--max-unavailable", "0"], "bad --max-unavailable"),
    (["--to", "v1.30.99"], "--allow-unknown-version"),
    (["--to", "1.30", "--worker-strategy", "all"], "Invalid value"),
])
def test_usage_errors_exit_2_with_one_line(capsys, state_file, args, message):
    code, _, err = run(capsys, "plan", "--from-state", state_file, "--today", TODAY, *args)
    assert code == 2
    assert message in err


def test_an_unreadable_state_file_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "plan", "--to", "1.30", "--from-state",
                       str(tmp_path / "missing.json"))
    assert code == 2
    assert "cannot read state file" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"nodes": [{"name": 1, "kubelet": "x"}]}')
    code, _, err = run(capsys, "plan", "--to", "1.30", "--from-state", str(bad))
    assert code == 2
    assert "nodes[0].kubelet" in err


def test_planning_from_a_file_imports_no_cluster_client(state_file):
    code = (
        "import sys\n"
        "from kubehop.cli.app import main\n"
        f"try:\n    main(['plan', '--to', '1.30', '--from-state', {state_file!r}, "
        f"'--today', {TODAY!r}, '-o', 'script', '--out', '/dev/null'])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('asyncssh', 'kubernetes_asyncio', 'aiohttp') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_format_script_skips_gates():
    from kubehop.core.planner.make import plan_upgrade
    from kubehop.model.plan import PlanOptions
    from tests.unit.core.plan_strategies import release_data

    plan = plan_upgrade(oldversion_state(), "1.29", release_data(), PlanOptions())
    assert "/done" not in format_script(plan)


def test_nodes_whose_facts_could_not_be_read_refuse_the_plan(capsys, tmp_path):
    """With an inventory, a node kubehop could not read would be planned on guesses (Debian,
    kubeadm one minor behind): wrong commands for an rpm node. Refused, naming the cause."""
    state = state_to_dict(oldversion_state())
    state["nodeErrors"] = [["oldversion2", "host key of node oldversion2 at root@127.77.0.2:22 "
                                            "is not in /root/.ssh/known_hosts"],
                            ["oldversion3", "connection refused"]]
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    code, out, err = run(capsys, *plan_args(str(path)))
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "host key of node oldversion2 at root@127.77.0.2:22" in err
    assert "(and 1 more node unreadable)" in err
    assert "fix SSH access to oldversion2" in err


@pytest.fixture
def blocked_state(tmp_path):
    """oldversion with a kubelet four minors behind: blocking skew findings."""
    state = state_to_dict(oldversion_state())
    state["nodes"][2]["kubelet"] = "v1.24.17"
    path = tmp_path / "blocked.json"
    path.write_text(json.dumps(state))
    return str(path)


def test_blocking_findings_refuse_the_plan_with_exit_1(capsys, blocked_state):
    code, out, err = run(capsys, *plan_args(blocked_state))
    assert (code, out) == (1, "")
    assert err.startswith("kubehop: refusing to plan: blocking finding skew.kubelet-too-old ")
    assert err.count("\n") == 1


def test_blocking_findings_exit_1_with_verbose_too(capsys, blocked_state):
    code, _, err = run(capsys, "-v", *plan_args(blocked_state))
    assert code == 1
    assert "Traceback" in err


def test_an_ignore_finding_matching_nothing_is_said(capsys, blocked_state):
    code, _, err = run(capsys, *plan_args(blocked_state, "--ignore-finding", "skew.nope"))
    assert code == 1
    assert ("kubehop: warning: --ignore-finding skew.nope: no such blocking finding on this "
            "cluster, nothing ignored (blocking: skew.kube-proxy-too-far-from-kubelet, "
            "skew.kubelet-too-old, skew.kubelet-too-old-for-kubeadm)\n") in err


@pytest.mark.parametrize("bad", ["kubelet-too-old", "skew", "skew.", "skews.kubelet-too-old"])
def test_an_ignore_finding_that_is_no_finding_id_exits_2(capsys, state_file, bad):
    code, _, err = run(capsys, *plan_args(state_file, "--ignore-finding", bad))
    assert code == 2
    assert err.startswith(f"kubehop: unknown finding id {bad!r} for --ignore-finding")


def test_plan_takes_accept_new_host_keys(capsys, state_file):
    code, out, _ = run(capsys, *plan_args(state_file, "--accept-new-host-keys"))
    assert code == 0
    assert out.startswith("Upgrade plan: v1.28.9 → v1.30.14\n")


def test_strict_kubeadm_skew_steps_worker_kubeadm_through_every_hop(capsys, state_file):
    code, out, _ = run(capsys, *plan_args(state_file, "-o", "json", "--strict-kubeadm-skew"))
    assert code == 0
    doc = json.loads(out)
    assert doc["strategy"]["strictKubeadmSkew"] is True
    # The workers' kubeadm follows the 1.29 hop first (no drain), as kubeadm's docs say.
    assert "1.29/oldversion2/kubeadm-node" in [s["id"] for s in doc["steps"]]
    code, out, _ = run(capsys, *plan_args(state_file, "-o", "json"))
    assert "1.29/oldversion2/kubeadm-node" not in [s["id"] for s in json.loads(out)["steps"]]


def test_plan_says_which_nodes_it_reaches_at_their_internalip(capsys, tmp_path):
    from dataclasses import replace

    path = tmp_path / "state.json"
    state = replace(oldversion_state(), address_fallbacks=(("oldversion3", "127.77.0.12"),))
    path.write_text(json.dumps(state_to_dict(state)))
    code, _, err = run(capsys, *plan_args(str(path)))
    assert code == 0
    assert ("kubehop: warning: node oldversion3 is not in the SSH inventory: reaching it at its "
            "InternalIP 127.77.0.12") in err


def test_plan_shows_where_hooks_run_and_how_many_windows_it_needs(capsys, state_file):
    code, out, err = run(capsys, *plan_args(state_file, "--hook", "before-drain=echo x",
                                            "--window", "daily 00:00-24:00 UTC"))
    assert code == 0, err
    assert "Hooks (on this machine; a failure halts the run):\n  before-drain: echo x — 4× " \
           "(before 1.29/oldversion1/cordon" in out
    assert "Maintenance windows: daily 00:00-24:00 UTC: the estimate" in out
    code, _, err = run(capsys, *plan_args(state_file, "--hook", "before-lunch=echo x"))
    assert code == 2
    assert "before-lunch" in err
