"""`kubehop demo --fast` end to end, as a user runs it: exit 0 in under two minutes, the story
told (versions, the hand edit blocked by check, the revert, the plan's hops, the upgrade, the
final versions, the proof from the lab's history), and nothing left behind: no process of its
session, no listening port, no temporary lab directory."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
import time
from pathlib import Path

KUBEHOP = str(Path(sys.executable).parent / "kubehop")
TARGET = "v1.30.14"
NODES = ("oldversion1", "oldversion2", "oldversion3")


def session_processes(sid: int) -> list[str]:
    """`pid comm` of every process still in session `sid`."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp session
        if int(fields[3]) == sid:
            left.append(text.split(")", 1)[0] + ")")
    return left


def _address(hex_ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address of /proc/net/tcp{,6}: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_ip)
    return ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))


def listening_on(address: str) -> set[int]:
    """The TCP ports something listens on that reach IPv4 `address` (that address, a wildcard,
    or the IPv6 form of it). Tests running beside this one (pytest -n) listen on other loopback
    addresses with the same port numbers, so the address counts."""
    ip = ipaddress.IPv4Address(address)
    wanted = {ip, ipaddress.IPv4Address(0), ipaddress.IPv6Address(0),
              ipaddress.IPv6Address(f"::ffff:{ip}")}
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, port = fields[1].split(":")
            if fields[3] == "0A" and _address(local) in wanted:  # LISTEN
                ports.add(int(port, 16))
    return ports


def chapter(out: str, title: str) -> str:
    """The text of the chapter whose title contains `title`."""
    parts = re.split(r"^── \d+\. ", out, flags=re.MULTILINE)
    return next(p for p in parts if p.startswith(title))


def test_demo_fast_tells_the_whole_story_and_leaves_nothing_behind(tmp_path):
    env = dict(os.environ, NO_COLOR="1", TMPDIR=str(tmp_path), HOME=str(tmp_path),
               XDG_STATE_HOME=str(tmp_path / "state"), COLUMNS="100")
    for name in ("KUBECONFIG", "KUBEHOP_SSH_INVENTORY", "KUBEHOP_STATE_DIR",
                 "KUBEHOP_RELEASE_DATA"):
        env.pop(name, None)
    began = time.monotonic()
    proc = subprocess.Popen([KUBEHOP, "demo", "--fast"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    took = time.monotonic() - began
    assert proc.returncode == 0, out[-4000:] + err[-3000:]
    assert took < 120, f"the demo took {took:.0f} s"

    # What runs: the versions table, before anything changed.
    first = chapter(out, "What is running?")
    assert "$ kubehop versions" in first
    assert re.search(r"^NAME +ROLES +STATUS +KUBELET", first, re.MULTILINE)
    assert re.search(r"^oldversion1 +control-plane +Ready +v1\.28\.9", first, re.MULTILINE)
    assert "`kubectl version`" in first  # the HA caveat, explained

    # The hand edit, caught by check (blocking, exit 1), and kubeadm confused by it.
    edit = chapter(out, "A shortcut")
    assert "sed -i 's/kube-apiserver:v1.28.9/kube-apiserver:v1.29.15/'" in edit
    assert re.search(r"^127\.0\.0\.1:\d+ +oldversion1 +v1\.29\.15", edit, re.MULTILINE)
    caught = chapter(out, "kubehop check catches it")
    assert "BLOCKING (" in caught
    assert "drift.static-pod-image" in caught
    assert "(exit status 1)" in caught
    confused = chapter(out, "kubeadm is confused")
    assert "$ ssh oldversion1 sudo kubeadm upgrade plan" in confused
    assert "[upgrade/versions] Cluster version: v1.29.15" in confused

    # The revert, then nothing blocks 1.30.
    assert "sed -i 's/kube-apiserver:v1.29.15/kube-apiserver:v1.28.9/'" in \
        chapter(out, "Undo the hand edit")
    target = chapter(out, "Can we go to 1.30?")
    assert "$ kubehop check --to 1.30" in target
    assert "0 blocking" in target
    assert "(exit status 0)" in target

    # The plan: two hops, waves, an estimate.
    plan = chapter(out, "The plan")
    assert "hops: v1.29.15, v1.30.14" in plan
    assert re.search(r"\d+ steps in \d+ waves; estimate", plan)
    assert "wave 0 [v1.29.15] control plane (kubeadm): oldversion1" in plan

    # The upgrade, to its end.
    upgrade = chapter(out, "The upgrade")
    assert "$ kubehop upgrade --to 1.30 --yes" in upgrade
    assert re.search(r"^\[(\d+)/\1\] finished: \1 steps done$", upgrade, re.MULTILINE)

    # The final versions: every node and the control plane at the target.
    after = chapter(out, "After")
    for node in NODES:
        assert re.search(rf"^{node} +\S+ +Ready +{TARGET}\b", after, re.MULTILINE), after
    assert re.search(rf"^oldversion1 +control-plane +Ready +{TARGET} +\S+ +{TARGET} +{TARGET} "
                     rf"+{TARGET}\b", after, re.MULTILINE), after
    assert f"kubeadm-config kubernetesVersion {TARGET}" in after

    # The proof, from the lab's history.
    proof = chapter(out, "What the lab saw")
    assert "✓ no PodDisruptionBudget went below its minimum" in proof
    assert "✓ no minor skipped" in proof
    assert "✓ pg switched over" in proof
    assert "✓ 0 breaches of the safety invariants" in proof
    assert "✗" not in out

    # Nothing left behind.
    assert session_processes(proc.pid) == []
    api = {int(p) for p in re.findall(r"https://127\.0\.0\.1:(\d+)", out)}
    ssh = re.search(r"SSH\s+on\s+127\.0\.0\.1\s+ports\s+([\d,\s]+)\.", out)
    assert api
    assert ssh
    ports = api | {int(p) for p in ssh.group(1).replace(",", " ").split()}
    assert len(ports) == 1 + len(NODES)
    assert not ports & listening_on("127.0.0.1")
    assert not list(tmp_path.glob("kubehop-lab-*"))
