"""The upgrade course's commands typed on its cluster (built-in scenario `course`), every node
command through a real OpenSSH sshd and every cluster command through a real kubectl, with the
outcomes the course describes — down to its "Almost!": kubelets that changed minor on nodes that
were never drained, as the lab's history shows."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable

import pytest

from kubehop.lab.history import check_history
from kubehop.shell.transports.ssh import SSHTransport
from tests.integration import kubectl_bin
from tests.integration.openssh_apply.conftest import OpenSSHLab

CP, WORKERS = "oldversion1", ("oldversion2", "oldversion3")
MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
# The course's per-node loop, verbatim.
LOOP = ("sudo sed -i s/1.28/1.29/ /etc/apt/sources.list.d/kubernetes.list && "
        "sudo rm /etc/apt/preferences.d/kubernetes && "
        "sudo apt update && sudo apt install kubeadm -y && sudo kubeadm upgrade node && "
        "sudo apt install kubelet -y")
# The kubelet package does not restart the service (kubernetes/release cmd/krel/templates/latest/
# kubelet/kubelet.spec: `%systemd_postun`): the guide's restart makes the new kubelet run.
RESTART = "sudo systemctl daemon-reload && sudo systemctl restart kubelet"


def ssh(lab: OpenSSHLab, node: str, line: str, stdin: str | None = None) -> tuple[int, str, str]:
    async def run() -> tuple[int, str, str]:
        async with SSHTransport.from_file(lab.inventory, ssh_config=[]) as t:
            r = await t.run(node, line, stdin=stdin, timeout=120)
        return r.exit_code, r.stdout, r.stderr
    return asyncio.run(run())


def ok(lab: OpenSSHLab, node: str, line: str, stdin: str | None = None) -> str:
    code, out, err = ssh(lab, node, line, stdin)
    assert code == 0, (node, line, out[-2000:], err[-2000:])
    return out


class Kubectl:
    """The real kubectl 1.28 against the lab's kubeconfig."""

    def __init__(self, lab: OpenSSHLab) -> None:
        path = kubectl_bin.kubectl(28)
        if path is None:
            pytest.skip(kubectl_bin.skip_reason(28))
        self.path, self.env = str(path), lab.up.env

    def __call__(self, *args: str) -> str | None:
        """stdout, or None while the apiserver restarts (connection refused)."""
        done = subprocess.run([self.path, *args], env=self.env, capture_output=True, text=True,
                              timeout=60, check=False)
        return done.stdout if done.returncode == 0 else None

    def server(self) -> str | None:
        out = self("version", "-o", "json")
        return json.loads(out)["serverVersion"]["gitVersion"] if out else None

    def node_versions(self) -> dict[str, str] | None:
        out = self("get", "nodes", "-o", "wide")
        if not out:
            return None
        rows = out.splitlines()
        column = rows[0].split().index("VERSION")
        return {r.split()[0]: r.split()[column] for r in rows[1:]}

    def until(self, what: str, read: Callable[[], object], want: object,
              timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while (got := read()) != want:
            assert time.monotonic() < deadline, f"{what}: {got!r}, expected {want!r}"
            time.sleep(0.2)


@pytest.mark.slow
def test_the_courses_commands_on_the_course_cluster(openssh_lab):
    lab = openssh_lab("course")
    kubectl = Kubectl(lab)
    assert kubectl.server() == "v1.28.9"

    # A hand edit of the apiserver's image: kubectl and kubeadm both believe it.
    ok(lab, CP, f"sudo sed -i 's/kube-apiserver:v1.28.9/kube-apiserver:v1.30.1/' {MANIFEST}")
    kubectl.until("server version", kubectl.server, "v1.30.1")
    plan = ok(lab, CP, "sudo kubeadm upgrade plan")
    assert "[upgrade/versions] Cluster version: v1.30.1" in plan
    ok(lab, CP, f"sudo sed -i 's/kube-apiserver:v1.30.1/kube-apiserver:v1.28.9/' {MANIFEST}")
    kubectl.until("server version", kubectl.server, "v1.28.9")

    # The pin keeps 1.28 until it goes: "add the new package repository and unpin packages".
    ok(lab, CP, "sudo sed -i s/1.28/1.29/ /etc/apt/sources.list.d/kubernetes.list && "
                "sudo apt-get update")
    assert "kubeadm is already the newest version (1.28.9-1.1)." in ok(
        lab, CP, "sudo apt-get install kubeadm -y")
    ok(lab, CP, "sudo rm /etc/apt/preferences.d/kubernetes && sudo apt-get install kubeadm -y")
    assert ok(lab, CP, "kubeadm version -o short") == "v1.29.15\n"
    applied = ok(lab, CP, "sudo kubeadm upgrade apply v1.29.15", stdin="y\n")
    assert '[upgrade/successful] SUCCESS! Your cluster was upgraded to "v1.29.15".' in applied
    kubectl.until("server version", kubectl.server, "v1.29.15")
    ok(lab, CP, f"sudo apt install kubelet -y && {RESTART}")

    for node in WORKERS:
        ok(lab, node, f"{LOOP} && {RESTART}")
    kubectl.until("node versions", kubectl.node_versions,
                  dict.fromkeys((CP, *WORKERS), "v1.29.15"))

    # "Almost!": nothing was drained, so kubelets changed minor under running pods.
    broken = [v for v in check_history(lab.up.lt.events()) if v.invariant == 4]
    assert {v.message.split()[2] for v in broken} == set(WORKERS)
    assert all("went from v1.28.9 to v1.29.15 while it still ran" in v.message for v in broken)
