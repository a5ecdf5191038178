"""The composed lab (`kubehop.lab.lab.Lab`) and `kubehop lab up`, driven by real clients: kubectl
1.30 over the written kubeconfig, OpenSSH over the written inventory, HTTP for the history."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from kubehop.cli.lab import default_state_dir
from kubehop.lab.clock import parse_rfc3339
from kubehop.lab.lab import ADVERTISE, Lab, wall_epoch
from kubehop.lab.scenarios import load_scenario
from kubehop.model.errors import OperationError
from tests.integration import kubectl_bin

SSH = shutil.which("ssh")
SCALE = 0.01


async def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def kubectl(kubeconfig: Path, home: Path, *args: str) -> str:
    binary = kubectl_bin.kubectl(30)
    if binary is None:
        pytest.skip(kubectl_bin.skip_reason(30))
    env = {"HOME": str(home), "KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"}
    code, out, err = await run(str(binary), "--cache-dir", str(home / "cache"), *args, env=env)
    assert code == 0, f"kubectl {' '.join(args)} exited {code}: {out}{err}"
    return out


def session(lab: Lab) -> aiohttp.ClientSession:
    """An HTTP client trusting the lab's CA."""
    assert lab.tls_files is not None
    ctx = ssl.create_default_context(cafile=str(lab.tls_files.ca_cert))
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx))


async def get_json(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(url, headers={"Authorization": "Bearer t"}) as resp:
        assert resp.status == 200, f"GET {url}: {resp.status} {await resp.text()}"
        return await resp.json()


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
async def oldversion(tmp_path):
    lab = Lab("oldversion", time_scale=SCALE, state_dir=tmp_path / "state")
    async with lab:
        yield lab
    assert lab.controllers is None
    assert lab.agents is None
    assert not lab.servers


# --- one control plane ----------------------------------------------------------------------


async def test_kubectl_gets_the_nodes_with_the_written_kubeconfig(oldversion, tmp_path):
    assert oldversion.kubeconfig_path == tmp_path / "state" / "kubeconfig"
    config = yaml.safe_load(oldversion.kubeconfig_path.read_text())
    assert config["clusters"][0]["cluster"]["server"] == oldversion.url
    assert oldversion.url == oldversion.endpoints["oldversion1"]
    out = await kubectl(oldversion.kubeconfig_path, tmp_path, "get", "nodes", "-o", "json")
    nodes = json.loads(out)["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == [
        "oldversion1", "oldversion2", "oldversion3"]
    table = await kubectl(oldversion.kubeconfig_path, tmp_path, "get", "nodes")
    assert "<invalid>" not in table
    assert "Ready" in table


@pytest.mark.skipif(SSH is None, reason="needs OpenSSH's ssh client")
async def test_ssh_with_the_inventory_runs_kubeadm_on_a_node(oldversion):
    inventory = yaml.safe_load(oldversion.inventory_path.read_text())
    assert oldversion.inventory_path == oldversion.state_dir / "inventory.yaml"
    entry = inventory["nodes"]["oldversion1"]
    assert inventory["knownHosts"] == str(oldversion.known_hosts_path)
    assert entry["identityFile"] == str(oldversion.client_key_path)
    assert SSH is not None
    code, out, err = await run(
        SSH, "-F", "/dev/null", "-i", entry["identityFile"], "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={inventory['knownHosts']}", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-p", str(entry["port"]),
        f"{entry['user']}@{entry['host']}", "kubeadm version -o short")
    assert (code, out.strip(), err) == (0, "v1.28.9", "")


async def test_history_starts_with_the_initial_world(oldversion):
    async with session(oldversion) as http:
        events = (await get_json(http, oldversion.history_url))["events"]
        assert {"component", "node", "pod", "pdb"} <= {e["type"] for e in events}
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        nodes = {e["node"] for e in events if e["type"] == "node"}
        assert nodes == {"oldversion1", "oldversion2", "oldversion3"}
        kubelets = {e["node"]: e["version"] for e in events
                    if e["type"] == "component" and e["component"] == "kubelet"}
        assert kubelets == dict.fromkeys(nodes, "v1.28.9")
        assert {(e["namespace"], e["name"]) for e in events if e["type"] == "pdb"} >= {
            ("web", "frontend")}
        later = await get_json(http, f"{oldversion.history_url}?since={len(events) - 1}")
        assert [e["seq"] for e in later["events"]][:1] == [len(events)]


async def test_deletion_and_eviction_reach_the_controllers(oldversion, tmp_path):
    pods = [p["metadata"]["name"] for p in oldversion.store.iter("pods", "web")]
    evicted, deleted = pods[0], "scratch"
    url = f"{oldversion.url}/api/v1/namespaces/web/pods/{evicted}/eviction"
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": evicted, "namespace": "web"}}
    async with session(oldversion) as http, http.post(url, json=body) as resp:
        assert resp.status == 201, await resp.text()
    await kubectl(oldversion.kubeconfig_path, tmp_path, "delete", "pod", "-n", "default",
                  deleted, "--wait=false")
    by: dict[str, str] = {}
    for _ in range(200):
        by = {e["name"]: e["by"] for e in oldversion.history.since(0)
              if e["type"] == "pod" and e["event"] == "deleted"}
        if {evicted, deleted} <= by.keys():
            break
        await asyncio.sleep(0.02)
    assert (by.get(evicted), by.get(deleted)) == ("eviction", "delete")
    assert oldversion.controllers is not None
    assert oldversion.controllers.errors == []


async def test_the_cluster_records_its_apiserver_at_its_loopback_address(oldversion):
    port = int(oldversion.url.rsplit(":", 1)[1])
    ep = oldversion.store.get("endpoints", "default", "kubernetes")
    assert [(a["ip"], s["ports"][0]["port"]) for s in ep["subsets"] for a in s["addresses"]] == [
        ("127.0.0.1", port)]
    assert oldversion.store.peek("services", "default", "kubernetes") is not None
    pod = oldversion.store.get("pods", "kube-system", "kube-apiserver-oldversion1")
    assert pod["metadata"]["annotations"][ADVERTISE] == f"127.0.0.1:{port}"


async def test_timestamps_never_run_ahead_of_real_time(oldversion):
    await asyncio.sleep(0.3)  # 30 lab seconds
    assert oldversion.clock.wall() <= time.time()
    for pod in oldversion.store.iter("pods"):
        assert parse_rfc3339(pod["metadata"]["creationTimestamp"]) <= time.time()
    assert wall_epoch(1.0, 1000.0) == 1000.0
    assert wall_epoch(2.0, 1000.0) == 1000.0
    assert wall_epoch(0.5, 1000.0, horizon=10) == 990.0


async def test_a_state_dir_serves_one_lab_at_a_time(oldversion):
    with pytest.raises(OperationError, match="in use by another lab"):
        await Lab("oldversion", time_scale=SCALE, state_dir=oldversion.state_dir).start()


async def test_a_restarted_lab_continues_its_nodes_unless_reset(tmp_path):
    state = tmp_path / "state"
    async with Lab("oldversion", time_scale=SCALE, state_dir=state) as first:
        assert not first.reused_nodes
        first_ca = first.kubeconfig_path.read_text()
    assert (state / "kubeconfig").exists()  # a given state dir is kept
    async with Lab("oldversion", time_scale=SCALE, state_dir=state) as again:
        assert again.reused_nodes
        assert again.kubeconfig_path.read_text() != first_ca  # a new port and CA
        async with session(again) as http:
            assert (await get_json(http, f"{again.url}/version"))["gitVersion"] == "v1.28.9"
    async with Lab("oldversion", time_scale=SCALE, state_dir=state, reset=True) as fresh:
        assert not fresh.reused_nodes


async def test_plain_http_without_ssh():
    async with Lab("oldversion", time_scale=SCALE, tls=False, ssh=False) as lab, \
            aiohttp.ClientSession() as http:
        assert lab.url.startswith("http://127.0.0.1:")
        assert lab.tls_files is None
        assert (await get_json(http, f"{lab.url}/version"))["gitVersion"] == "v1.28.9"
        config = yaml.safe_load(lab.kubeconfig_path.read_text())
        assert "certificate-authority-data" not in config["clusters"][0]["cluster"]
        assert lab.ssh_ports == {}


async def test_stop_closes_every_port_and_removes_its_temporary_dir():
    lab = Lab("oldversion", time_scale=SCALE)
    await lab.start()
    state = lab.state_dir
    assert state is not None
    assert state.is_dir()
    ports = [int(u.rsplit(":", 1)[1]) for u in lab.endpoints.values()]
    ports += list(lab.ssh_ports.values())
    assert not any(refused(p) for p in ports)
    await lab.stop()
    assert all(refused(p) for p in ports)
    assert not state.exists()


# --- high availability ----------------------------------------------------------------------


async def test_ha_has_an_endpoint_per_apiserver_and_a_balancing_one():
    async with Lab("ha", time_scale=SCALE) as lab, session(lab) as http:
        assert sorted(lab.endpoints) == ["cp-1", "cp-2", "cp-3"]
        assert len(set(lab.endpoints.values()) | {lab.url}) == 4
        for url in lab.endpoints.values():
            assert (await get_json(http, f"{url}/version"))["gitVersion"] == "v1.28.9"
        assert (await get_json(http, f"{lab.url}/version"))["gitVersion"] == "v1.28.9"
        ep = lab.store.get("endpoints", "default", "kubernetes")
        listed = [f"{a['ip']}:{s['ports'][0]['port']}" for s in ep["subsets"]
                  for a in s["addresses"]]
        wanted = [u.removeprefix("https://") for u in lab.endpoints.values()]
        assert listed == wanted
        for node, address in zip(lab.endpoints, wanted, strict=True):
            pod = lab.store.get("pods", "kube-system", f"kube-apiserver-{node}")
            assert pod["metadata"]["annotations"][ADVERTISE] == address

        # cp-2's kube-apiserver moves to v1.29: its endpoint follows, the others stay, and the
        # load balancer answers for each in turn.
        assert lab.agents is not None
        sed = ("sudo sed -i 's#kube-apiserver:v1.28.9#kube-apiserver:v1.29.15#' "
               "/etc/kubernetes/manifests/kube-apiserver.yaml")
        assert (await lab.agents.run("cp-2", sed)).exit_code == 0
        await lab.agents.idle()
        versions = {n: (await get_json(http, f"{u}/version"))["gitVersion"]
                    for n, u in lab.endpoints.items()}
        assert versions == {"cp-1": "v1.28.9", "cp-2": "v1.29.15", "cp-3": "v1.28.9"}
        seen = [(await get_json(http, f"{lab.url}/version"))["gitVersion"] for _ in range(6)]
        assert seen.count("v1.29.15") == 2
        pod = lab.store.get("pods", "kube-system", "kube-apiserver-cp-2")
        assert pod["metadata"]["annotations"][ADVERTISE] == wanted[1]


# --- kubehop lab up -------------------------------------------------------------------------


def test_default_state_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir(load_scenario("ha")) == tmp_path / "kubehop" / "lab" / "ha"
    assert default_state_dir(load_scenario("large:nodes=50")).name == "large-nodes50-pods30"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_state_dir(load_scenario("ha")) == tmp_path / ".local/state/kubehop/lab/ha"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_lab_up_serves_until_signalled(tmp_path, sig):
    state = tmp_path / "state"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from kubehop.cli.app import main; main()", "lab", "up",
        "--scenario", "oldversion", "--state-dir", str(state), "--time-scale", str(SCALE),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
        env={**os.environ, "NO_COLOR": "1"})
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] != "Ctrl-C stops the lab.":
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, "lab up ended early:\n" + "\n".join(lines)
            lines.append(line.decode().rstrip("\n"))
        exports = dict(line.strip().removeprefix("export ").split("=", 1)
                       for line in lines if line.strip().startswith("export "))
        assert exports == {"KUBECONFIG": str(state / "kubeconfig"),
                           "KUBEHOP_SSH_INVENTORY": str(state / "inventory.yaml")}
        assert any(line.strip().startswith("ssh -i ") for line in lines)
        assert any("/lab/v1/history" in line for line in lines)
        assert (state / "ssh" / "known_hosts").exists()
        out = await kubectl(Path(exports["KUBECONFIG"]), tmp_path, "get", "nodes", "-o", "name")
        assert out.split() == ["node/oldversion1", "node/oldversion2", "node/oldversion3"]
        port = int(yaml.safe_load(Path(exports["KUBECONFIG"]).read_text())
                   ["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1])
        proc.send_signal(sig)
        code = await asyncio.wait_for(proc.wait(), 30)
        err = (await proc.stderr.read()).decode() if proc.stderr else ""
        assert code == 0, err
        assert "Traceback" not in err
        assert refused(port)
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)  # nothing of its session is left
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
