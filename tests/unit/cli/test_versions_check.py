"""`kubehop versions` and `kubehop check` on a fake observed state: shapes, text, exit codes."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from kubehop.cli import app
from kubehop.cli import versions as versions_cli
from kubehop.model.cluster import Addons, ApiServerInfo, ClusterState, NodeState
from kubehop.model.versions import parse_kube_version
from kubehop.shell.session import BaseSession

V = parse_kube_version


def images(api: str) -> tuple[tuple[str, str], ...]:
    return (("etcd", "registry.k8s.io/etcd:3.5.12-0"),
            ("kube-apiserver", f"registry.k8s.io/kube-apiserver:{api}"),
            ("kube-controller-manager", "registry.k8s.io/kube-controller-manager:v1.28.9"),
            ("kube-scheduler", "registry.k8s.io/kube-scheduler:v1.28.9"))


def state(api2: str = "v1.28.9") -> ClusterState:
    return ClusterState(
        apiservers=(ApiServerInfo("127.77.0.10:6443", "cp1", V("v1.28.9")),
                    ApiServerInfo("127.77.0.11:6443", "cp2", V(api2)),
                    ApiServerInfo("127.77.0.12:6443", "cp3", None, "connection refused")),
        nodes=(NodeState("cp1", ("control-plane",), V("v1.28.9"), V("v1.28.9"), "5.15.0",
                         "Ubuntu 22.04.4 LTS", "containerd://1.7.13",
                         control_plane_images=images("v1.28.9")),
               NodeState("cp2", ("control-plane",), V("v1.28.9"), V("v1.28.9"),
                         control_plane_images=images(api2)),
               NodeState("w1", (), V("v1.27.16"), None, ready=False, schedulable=False)),
        addons=Addons("v1.10.1", "v1.28.9", (("calico", "v3.27.0"),)),
        kubeadm_kubernetes_version=V("v1.28.9"), kubectl=V("v1.30.2"),
        kubeconfig_server="127.77.0.5:6443", workloads_observed=True)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("KUBEHOP_RELEASE_DATA", raising=False)


@pytest.fixture
def observed(monkeypatch):
    """Replace the cluster by a fixed state; records what was asked."""
    asked = []
    current = {"state": state()}

    async def fake(self, **kw):
        asked.append(kw)
        return current["state"]

    async def fake_with_ssh(self, **kw):
        return await fake(self, **kw), current.get("changed_keys", {})

    monkeypatch.setattr(BaseSession, "observe", fake)
    monkeypatch.setattr(BaseSession, "observe_with_host_keys", fake_with_ssh)
    return current, asked


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        app.main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_versions_json_has_the_design_shape(observed, capsys):
    code, out, err = run(capsys, "versions", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["apiservers"][2] == {"endpoint": "127.77.0.12:6443", "node": "cp3", "version": None,
                                    "readVia": "address"}
    assert doc["nodes"][0] == {
        "name": "cp1", "roles": ["control-plane"], "kubelet": "v1.28.9", "kubeProxy": "v1.28.9",
        "kernel": "5.15.0", "osImage": "Ubuntu 22.04.4 LTS",
        "containerRuntime": "containerd://1.7.13", "ready": True, "schedulable": True,
        "controlPlane": {"kube-apiserver": "v1.28.9", "kube-controller-manager": "v1.28.9",
                         "kube-scheduler": "v1.28.9", "etcd": "3.5.12-0"}}
    assert doc["nodes"][2]["controlPlane"] == dict.fromkeys(
        ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"))
    assert doc["addons"] == {"coredns": "v1.10.1", "kube-proxy": "v1.28.9",
                             "cni": [{"name": "calico", "version": "v3.27.0"}]}
    assert doc["kubeadm"] == {"kubernetesVersion": "v1.28.9"}
    assert doc["client"] == {"kubectl": "v1.30.2"}
    assert "127.77.0.12:6443 did not answer /version: connection refused" in err
    assert observed[1][-1] == {"workloads": False, "node_facts": True}


def test_versions_json_shows_how_each_node_pins_its_packages(observed, capsys):
    from dataclasses import replace

    from kubehop.model.cluster import NodePackages, OsFamily

    st = observed[0]["state"]
    pinned = replace(st.nodes[1], packages=NodePackages(
        OsFamily.DEBIAN, kubeadm="1.28.9-1.1", kubelet="1.28.9-1.1", held=("kubeadm",)))
    observed[0]["state"] = replace(st, nodes=(st.nodes[0], pinned, *st.nodes[2:]))
    _, out, _ = run(capsys, "versions", "-o", "json")
    nodes = json.loads(out)["nodes"]
    assert "pinMethods" not in nodes[0]  # no facts read from that node
    assert nodes[1]["pinMethods"] == list(pinned.packages.pin_methods)
    assert nodes[1]["pinMethods"]


def test_versions_yaml_is_the_same_shape(observed, capsys):
    _, out, _ = run(capsys, "versions", "-o", "yaml")
    _, js, _ = run(capsys, "versions", "-o", "json")
    assert yaml.safe_load(out) == json.loads(js)


def test_versions_table_for_people(observed, capsys):
    code, out, _ = run(capsys, "versions")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["APISERVER", "NODE", "VERSION"]
    assert lines[3].split() == ["127.77.0.12:6443", "cp3", "unreachable:", "connection", "refused"]
    assert "w1     <none>          NotReady,SchedulingDisabled   v1.27.16" in out
    assert "CoreDNS v1.10.1, kube-proxy v1.28.9, CNI calico v3.27.0" in out
    assert "Note:" not in out
    _, wide, _ = run(capsys, "versions", "-o", "wide")
    assert "OS-IMAGE" in wide
    assert "Ubuntu 22.04.4 LTS" in wide


def test_versions_notes_apiservers_that_disagree(observed, capsys):
    observed[0]["state"] = state(api2="v1.29.15")
    _, out, _ = run(capsys, "versions")
    assert ("Note: the apiservers run different versions (v1.28.9, v1.29.15); `kubectl version` "
            "shows only the one the load balancer (127.77.0.5:6443) picked for it") in out
    _, _, err = run(capsys, "versions", "-o", "json")
    assert "load balancer" in err


def test_check_json_exit_1_on_blocking_and_the_fix(observed, capsys):
    observed[0]["state"] = state(api2="v1.29.15")
    code, out, _ = run(capsys, "check", "--to", "1.29", "--today", "2026-11-25", "-o", "json")
    assert code == 1
    findings = json.loads(out)["findings"]
    assert set(findings[0]) == {"id", "severity", "subject", "message", "fix"}
    drift = next(f for f in findings if f["id"] == "drift.static-pod-image")
    assert drift["severity"] == "blocking"
    assert drift["fix"].startswith("restore the image to v1.28.9 (kubehop plan and upgrade")
    call = dict(observed[1][-1])
    assert callable(call.pop("trial_for"))  # the nodes try the 1.29 repository too
    assert call == {"workloads": True, "apis": True, "node_facts": True}


def test_check_exit_0_without_blocking_and_people_output(observed, capsys):
    code, out, _ = run(capsys, "check", "--today", "2026-11-25")
    assert code == 0
    assert out.splitlines()[0].startswith("WARNING (")
    assert "  support.end-of-life  cluster" in out
    assert "    fix: " in out
    assert out.rstrip().endswith(": nothing blocks an upgrade")
    assert observed[1][-1]["apis"] is False


@pytest.mark.parametrize("bad", ["newest", "1", "v1.29.x", "one.two"])
def test_check_bad_to_is_a_usage_error(observed, capsys, bad):
    code, _, err = run(capsys, "check", "--to", bad)
    assert code == 2
    assert f"bad --to {bad!r}" in err
    assert observed[1] == []  # refused before touching the cluster


@pytest.mark.parametrize(("to", "target"), [
    ("1.29", "v1.29.15"), ("v1.29.14", "v1.29.14"), ("next-minor", "v1.29.15"),
    ("latest-patch", "v1.28.15"), ("v1.29.99", "v1.29.99")])
def test_check_targets_resolve_as_plan_targets_do(to, target):
    from kubehop.data import load_release_data
    from kubehop.shell.session.planning import check_target

    assert check_target(state(), to, load_release_data()) == V(target)
    assert check_target(state(), None, load_release_data()) is None


def test_check_to_latest_judges_the_newest_release(observed, capsys):
    from kubehop.data import load_release_data

    newest = max(v for v in load_release_data().all_versions() if not v.is_prerelease)
    latest = run(capsys, "check", "--to", "latest", "-o", "json")
    pinned = run(capsys, "check", "--to", str(newest), "-o", "json")
    assert latest[0] in (0, 1), latest[2]
    assert latest[:2] == pinned[:2]


def test_plain_table_never_truncates():
    text = versions_cli.plain_table(["a", "long header"], [["x" * 50, None]])
    assert text.splitlines() == ["A" + " " * 52 + "LONG HEADER", "x" * 50 + "   <none>"]


def test_check_reports_a_changed_host_key_as_blocking(observed, capsys):
    """`upgrade` refuses a node whose host key changed; `check` must not call it ready."""
    observed[0]["state"] = dataclasses.replace(
        state(), nodes_observed=True,
        node_errors=(("w1", "host key of node w1 at 127.77.0.21 does not match the one recorded "
                            "in /root/.ssh/known_hosts"),))
    observed[0]["changed_keys"] = {"w1": "host key of node w1 at 127.77.0.21 does not match the "
                                         "one recorded in /root/.ssh/known_hosts"}
    code, out, _ = run(capsys, "check", "--today", "2026-11-25", "-o", "json")
    assert code == 1
    found = {f["id"]: f for f in json.loads(out)["findings"]}
    key = found["node.host-key-changed"]
    assert (key["severity"], key["subject"]) == ("blocking", "node/w1")
    assert "does not match the one recorded" in key["message"]
    assert "packages.unreadable" not in found


def test_check_says_stale_data_once_as_a_finding(observed, capsys):
    code, out, err = run(capsys, "check", "--today", "2026-11-25", "-o", "json")
    assert code == 0
    assert "release data is" not in err
    assert [f["id"] for f in json.loads(out)["findings"]].count("data.stale") == 1


def test_check_takes_accept_new_host_keys(observed, capsys, monkeypatch):
    from kubehop.cli.context import accept_new_host_keys

    seen = []

    async def fake(self, **kw):
        seen.append((accept_new_host_keys(), self.options.accept_new_host_keys))
        return state(), {}

    monkeypatch.setattr(BaseSession, "observe_with_host_keys", fake)
    code, _, _ = run(capsys, "check", "--today", "2026-11-25", "--accept-new-host-keys")
    assert code == 0
    code, _, _ = run(capsys, "check", "--today", "2026-11-25")
    assert seen == [(True, True), (False, False)]
