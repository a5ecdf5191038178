"""Injected faults of a scenario behave as described in the scenario format."""

from __future__ import annotations

import asyncio

from kubehop.lab.lab import Lab


def scenario(name: str, fault: str, workers: tuple[str, ...] = ("w1", "w2")) -> str:
    """A one-control-plane scenario (cp1) with `workers` and one fault (a flow mapping)."""
    nodes = "".join(f"  - {{name: {w}}}\n" for w in workers)
    return (f"apiVersion: kubehop.dev/v1\nkind: LabScenario\nname: {name}\nnodes:\n"
            f"  - {{name: cp1, roles: [control-plane]}}\n{nodes}faults:\n  - {fault}\n")


SCENARIO = scenario("broken-kubelet", "{kind: node-never-ready, node: w1, after: kubelet-restart}")


def ready(lab: Lab, node: str) -> bool:
    conds = lab.store.peek("nodes", "", node)["status"]["conditions"]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


async def test_node_never_ready_after_a_kubelet_restart(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(SCENARIO)
    async with Lab(str(path), time_scale=0.001, ssh=False, state_dir=tmp_path / "s") as lab:
        assert lab.unsimulated_faults == []
        assert ready(lab, "w1")  # the fault waits for a kubelet restart
        for node in ("w1", "w2"):
            result = await lab.agents.run(node, "systemctl restart kubelet", root=True)
            assert result.exit_code == 0
        await lab.agents.idle()
        await asyncio.sleep(0.05)
        assert ready(lab, "w2")
        assert not ready(lab, "w1")
        restarts = [e for e in lab.history.since(0) if e["type"] == "kubelet-restart"]
        assert {e["node"] for e in restarts} == {"w1", "w2"}


PACKAGE_FAULT = scenario("broken-mirror",
                         "{kind: package-install-fails, node: w1, package: kubeadm}")
STATIC_POD_FAULT = scenario(
    "broken-apiserver", "{kind: static-pod-never-ready, node: cp1, component: kube-apiserver}",
    workers=("w1",))
INSTALL = "apt-get install -y --allow-change-held-packages kubeadm=1.28.15-1.1"


async def test_package_install_fails_on_its_node_for_its_package(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(PACKAGE_FAULT)
    async with Lab(str(path), time_scale=0.001, ssh=False, state_dir=tmp_path / "s") as lab:
        assert lab.unsimulated_faults == []
        before = (await lab.agents.run("w1", "dpkg -l")).stdout
        result = await lab.agents.run("w1", INSTALL, root=True)
        assert result.exit_code == 100
        assert "E: Failed to fetch https://prod-cdn.packages.k8s.io/" in result.stderr
        assert "kubeadm_1.28.15-1.1_amd64.deb  Could not connect to" in result.stderr
        assert result.stderr.endswith("E: Unable to fetch some archives, maybe run apt-get "
                                      "update or try with --fix-missing?\n")
        assert (await lab.agents.run("w1", "dpkg -l")).stdout == before
        assert "hi  kubeadm" in before
        for node, line in (("w1", "apt-get install -y --allow-change-held-packages "
                                  "kubelet=1.28.15-1.1"), ("w2", INSTALL)):
            result = await lab.agents.run(node, line, root=True)
            assert result.exit_code == 0, result.stderr
        assert (await lab.agents.run("w2", "kubeadm version -o short")).stdout == "v1.28.15\n"


async def test_static_pod_never_ready_makes_kubeadm_apply_roll_back(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(STATIC_POD_FAULT)
    async with Lab(str(path), time_scale=0.001, ssh=False, state_dir=tmp_path / "s") as lab:
        assert lab.unsimulated_faults == []
        setup = ("sed -i 's|/v1.28/deb|/v1.29/deb|' /etc/apt/sources.list.d/kubernetes.list && "
                 "apt-get update -q && apt-get install -y --allow-change-held-packages "
                 "kubeadm=1.29.15-1.1")
        assert (await lab.agents.run("cp1", setup, root=True)).exit_code == 0
        result = await lab.agents.run("cp1", "kubeadm upgrade apply -y v1.29.15", root=True)
        assert result.exit_code == 1
        assert result.stderr.startswith(
            "[upgrade/apply] FATAL: couldn't upgrade control plane. kubeadm has tried to recover "
            "everything into the earlier state. Errors faced: failed to obtain static Pod hash "
            "for component kube-apiserver on Node cp1: ")
        manifest = await lab.agents.run("cp1", "cat /etc/kubernetes/manifests/kube-apiserver.yaml",
                                        root=True)
        assert "image: registry.k8s.io/kube-apiserver:v1.28.9" in manifest.stdout
        await lab.agents.idle()
        assert lab.agents.apiserver_version("cp1") == "v1.28.9"
        pod = lab.store.peek("pods", "kube-system", "kube-apiserver-cp1")
        assert [c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready"] == \
            ["True"]
        events = [e for e in lab.history.since(0) if e["type"] == "component"
                  and e["component"] == "kube-apiserver"]
        seen = [(e["version"], e["running"]) for e in events]
        assert ("v1.29.15", False) in seen  # the mirror pod of the crashing pod
        assert ("v1.29.15", True) not in seen
        assert seen[-1] == ("v1.28.9", True)
