"""Common mistakes against a real API endpoint and the lab: an unreachable server, SSH host keys
(unknown, accepted, changed), an inventory naming nodes the cluster lacks, and standard output
kept pure JSON with `--log-format json`."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from kubehop.cli import app
from tests.integration.observe.test_check import TODAY, by_id

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}
contexts:
- name: lab
  context: {{cluster: lab, user: admin}}
current-context: lab
users:
- name: admin
  user: {{token: abc}}
"""


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        app.main(list(args))
    out, err = capsys.readouterr()
    code = exc.value.code
    return code if isinstance(code, int) else 1, out, err


@pytest.mark.parametrize("verbose", [[], ["-v"]], ids=["quiet", "verbose"])
@pytest.mark.parametrize("command", [["versions"], ["check", "--today", TODAY],
                                     ["plan", "--to", "1.29", "--today", TODAY]],
                         ids=lambda c: c[0])
def test_an_unreachable_api_server_is_one_line_and_exit_1(tmp_path, capsys, command, verbose):
    port = closed_port()
    config = tmp_path / "config"
    config.write_text(KUBECONFIG.format(port=port))
    code, out, err = main(capsys, *verbose, "--kubeconfig", str(config), *command)
    assert (code, out) == (1, ""), err
    last = err.strip().splitlines()[-1]
    assert last == (f"kubehop: cannot reach the Kubernetes API at https://127.0.0.1:{port}: "
                    "connection refused; check the server of the kubeconfig context and that "
                    "the cluster (or `kubehop lab up`) is running")
    assert "internal error" not in err
    if not verbose:
        assert err.count("\n") == 1


def ssh_args(lab) -> list[str]:
    return ["--kubeconfig", str(lab.kubeconfig_path), "--ssh-inventory", str(lab.inventory_path)]


def test_an_inventory_entry_for_no_node_of_the_cluster_is_said(lab_factory, cli_env, capsys):
    lt = lab_factory("oldversion", ssh=True)
    inventory = yaml.safe_load(lt.lab.inventory_path.read_text())
    inventory["nodes"]["oldversoin3"] = dict(inventory["nodes"]["oldversion3"])
    lt.lab.inventory_path.write_text(yaml.safe_dump(inventory))
    code, out, err = main(capsys, *ssh_args(lt.lab), "check", "--today", TODAY, "-o", "json")
    assert code == 0, out
    assert (f"kubehop: warning: SSH inventory {lt.lab.inventory_path} lists oldversoin3, which "
            "is no node of this cluster: remove the entry, or fix its name to match `kubectl "
            "get nodes`\n") in err


def _known_hosts(lab) -> Path:
    return Path(lab.known_hosts_path)


def test_check_and_plan_accept_new_host_keys_when_asked(lab_factory, cli_env, capsys):
    lt = lab_factory("oldversion", ssh=True)
    known = _known_hosts(lt.lab)
    recorded = known.read_text()
    known.write_text("")
    code, out, _ = main(capsys, *ssh_args(lt.lab), "check", "--today", TODAY, "-o", "json")
    unreadable = by_id(json.loads(out)["findings"])["packages.unreadable"]
    assert len(unreadable) == 3
    assert "is not in" in unreadable[0]["message"]
    code, out, err = main(capsys, *ssh_args(lt.lab), "plan", "--to", "1.29", "--today", TODAY)
    assert code == 1
    assert "fix SSH access to oldversion1" in err
    code, out, err = main(capsys, *ssh_args(lt.lab), "check", "--today", TODAY, "-o", "json",
                          "--accept-new-host-keys")
    assert "packages.unreadable" not in by_id(json.loads(out)["findings"])
    assert len(known.read_text().splitlines()) == len(recorded.splitlines())
    code, out, err = main(capsys, *ssh_args(lt.lab), "plan", "--to", "1.29", "--today", TODAY)
    assert code == 0, err


def test_check_reports_a_changed_host_key_as_blocking(lab_factory, cli_env, capsys):
    lt = lab_factory("oldversion", ssh=True)
    known = _known_hosts(lt.lab)
    lines = known.read_text().splitlines()
    # known_hosts lists oldversion1..3 in order: record oldversion3's key for oldversion2.
    lines[1] = " ".join([lines[1].split()[0], *lines[2].split()[1:]])
    known.write_text("\n".join(lines) + "\n")
    code, out, err = main(capsys, *ssh_args(lt.lab), "check", "--today", TODAY, "-o", "json")
    assert code == 1, err
    found = by_id(json.loads(out)["findings"])
    (changed,) = found["node.host-key-changed"]
    assert changed["severity"] == "blocking"
    assert "does not match the one recorded" in changed["message"]
    assert "packages.unreadable" not in found


def test_log_format_json_keeps_standard_output_pure_json(lab_factory, cli_env, capsys,
                                                         tmp_path, monkeypatch):
    """`upgrade --dry-run` printed the plan and the dry run as text into the JSON stream."""
    monkeypatch.setenv("KUBEHOP_STATE_DIR", str(tmp_path / "state"))
    lt = lab_factory("oldversion", ssh=True)
    code, out, err = main(capsys, "--log-format", "json", *ssh_args(lt.lab), "upgrade",
                          "--to", "1.29", "--today", TODAY, "--dry-run", "--yes")
    assert code == 0, err
    assert out == ""
    assert "Upgrade plan: v1.28.9 → v1.29.15" in err
    assert "Dry run: " in err
    saved = next((tmp_path / "state" / "plans").glob("*.json"))
    code, out, err = main(capsys, "--log-format", "json", *ssh_args(lt.lab), "apply",
                          str(saved), "--dry-run")
    assert code == 0, err
    assert out == ""
    assert "would run    1.29/oldversion1/" in err


def test_a_json_run_writes_only_json_lines_and_a_finished_run_is_not_resumed(
        lab_factory, cli_env, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEHOP_STATE_DIR", str(tmp_path / "state"))
    lt = lab_factory("oldversion", ssh=True)
    code, out, err = main(capsys, "--log-format", "json", *ssh_args(lt.lab), "upgrade",
                          "--to", "1.29", "--today", TODAY, "--yes", "--max-unavailable", "2")
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["event"] == "run-finished"
    code, out, err = main(capsys, *ssh_args(lt.lab), "apply", "--yes")
    assert (code, err) == (0, "")
    assert out.startswith("Nothing to resume: the last run on this cluster, ")
    assert out.endswith("(v1.28.9 → v1.29.15), finished successfully.\n")
