"""`kubehop lab scenarios` and `kubehop lab validate FILE`: tables, machine output, exit codes."""

import json
import subprocess
import sys

import pytest
import yaml

from kubehop.cli import app


@pytest.fixture(autouse=True)
def _environment(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")


def run(capsys, *args):
    """Run `kubehop ARGS` through the real entry point: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        app.main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_scenarios_table(capsys):
    code, out, err = run(capsys, "lab", "scenarios")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "NODES", "VERSION", "DESCRIPTION"]
    rows = {line.split()[0]: line.split()[1:3] for line in lines[1:]}
    assert rows["oldversion"] == ["3", "v1.28.9"]
    assert rows["ha"] == ["9", "v1.28.9"]
    assert rows["large"] == ["1000", "v1.28.9"]
    assert rows["rpm"] == ["3", "v1.28.9"]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_scenarios_machine_output(capsys, fmt):
    code, out, _ = run(capsys, "lab", "scenarios", "-o", fmt)
    doc = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert code == 0
    by_name = {s["name"]: s for s in doc["scenarios"]}
    assert by_name["oldversion"]["nodes"] == 3
    assert by_name["oldversion"]["kubernetesVersion"] == "v1.28.9"
    assert by_name["large"]["parameters"] == {"nodes": 1000, "pods": 30}
    assert by_name["rpm"]["parameters"] is None


def test_validate_a_good_file(capsys, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nnodes:\n  - {name: cp, roles: [control-plane]}\n"
                    "  - {name: w, count: 4}\n", encoding="utf-8")
    code, out, err = run(capsys, "lab", "validate", str(path))
    assert (code, err) == (0, "")
    assert out == f"{path}: valid scenario mine (5 nodes)\n"


def test_validate_a_builtin_with_parameters(capsys):
    code, out, _ = run(capsys, "lab", "validate", "large:nodes=50")
    assert code == 0
    assert out == "large:nodes=50: valid scenario large (50 nodes)\n"


def test_validate_prints_the_defaulted_scenario(capsys):
    code, out, _ = run(capsys, "lab", "validate", "oldversion", "-o", "yaml")
    doc = yaml.safe_load(out)
    assert code == 0
    assert doc["apiVersion"] == "kubehop.dev/v1"
    assert doc["nodes"][0]["packages"]["kubelet"] == "1.28.9-1.1"
    assert doc["workloads"][3]["primaryNode"] == "oldversion2"


@pytest.mark.parametrize(("body", "field", "problem"), [
    ("  - {name: w, packages: {kubelet: 1.2x.9-1.1}}\n", "nodes[1].packages.kubelet",
     "not a Kubernetes package version"),
    ("  - {name: w, kubeletVersion: 1.28.9}\n", "nodes[1].kubeletVersion", "unknown field"),
    ("  - {name: cp}\n", "nodes[1].name", "duplicate node name cp"),
])
def test_validate_bad_files_exit_2_with_one_line(capsys, tmp_path, body, field, problem):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nnodes:\n  - {name: cp, roles: [control-plane]}\n" + body,
                    encoding="utf-8")
    code, out, err = run(capsys, "lab", "validate", str(path))
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"kubehop: {path}:4: {field}: ")
    assert problem in err


def test_validate_missing_file_and_unknown_builtin(capsys, tmp_path):
    code, _, err = run(capsys, "lab", "validate", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "no such file" in err
    code, _, err = run(capsys, "lab", "validate", "large:racks=2")
    assert code == 2
    assert "unknown parameter 'racks'" in err


def test_validate_exit_code_through_the_real_entry_point(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nnodes:\n  - {name: cp, roles: [control-plane], count: x}\n",
                    encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "kubehop", "lab", "validate", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == (f"kubehop: {path}:3: nodes[0].count: expected an integer, "
                             "got the string 'x'\n")
    assert "Traceback" not in result.stderr
