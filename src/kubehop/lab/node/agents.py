"""`NodeAgents`: every simulated node of a lab, their files, packages, kubelets and SSH.

    agents = await NodeAgents.start(store, history, clock, timing, state_dir)
    agents.inventory_path, agents.known_hosts_path, agents.client_key_path
    agents.apiserver_version("oldversion1")   # what that node's /version answers
    agents.apiserver_available("oldversion1") # False while its kube-apiserver restarts
    agents.on_apiserver_change(callback)      # callback(node) on either change
    agents.advertised_port("oldversion1", 43121)  # the port its Endpoints/annotation publish
    await agents.run("oldversion1", "sudo kubeadm version -o short")  # without SSH
    await agents.stop()

Nodes come from the store's Node objects, refined by `nodes=` (scenario `NodeSetup`s). A node
directory that already exists under `<state_dir>/nodes/` is reused as it is (a restarted lab
finds its nodes as it left them); the store's mirror pods and Node versions are then brought in
line with the node's manifests and kubelet.

Fault `apiserver-address-unreachable` (how: refused | timeout) makes the address a node's
apiserver advertises unreachable from outside, as behind a load balancer, bastion or VPN: the
published port is a loopback socket that is bound but not listening (connections refused) or
listening but never accepting (connections time out), held until `stop()`.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubehop.data import load_release_data
from kubehop.lab.addresses import DEFAULT_NODE_IP
from kubehop.lab.api.store import Store
from kubehop.lab.clock import LabClock
from kubehop.lab.node import manifests as mf
from kubehop.lab.node.cluster import NodeFleet
from kubehop.lab.node.config import NodeSetup, NodeTiming, kube_version_of, setups_from_store
from kubehop.lab.node.fs import NodeFS, provision
from kubehop.lab.node.host import HistoryLike, LabNode, TextStdin
from kubehop.lab.node.kubeadm_view import kube
from kubehop.lab.node.kubelet import KubeletService
from kubehop.lab.node.packages import PackageDB, PackageState
from kubehop.lab.node.repos import repo_for
from kubehop.lab.node.shell import Interpreter
from kubehop.lab.node.sshd import ChannelStdin, NodeSSH, ensure_keys
from kubehop.lab.node.tools import TOOLS
from kubehop.model.releases import ReleaseData


@dataclass(frozen=True, slots=True)
class Result:
    stdout: str
    stderr: str
    exit_code: int


class NodeAgents:
    """The node side of the lab."""

    def __init__(self, store: Store, history: HistoryLike | None, clock: LabClock, timing: Any,
                 state_dir: Path, *, nodes: Sequence[NodeSetup] = (),
                 release_data: ReleaseData | None = None, user: str = "kubehop",
                 load_balancer: bool = False) -> None:
        self.store = store
        self.history = history
        self.clock = clock
        self.timing = NodeTiming.of(timing)
        self.state_dir = Path(state_dir)
        self.user = user
        self.data = release_data or load_release_data()
        self.cluster: NodeFleet[LabNode] = NodeFleet(load_balancer=load_balancer)
        self._interpreters: dict[str, Interpreter] = {}
        self._ssh: NodeSSH | None = None
        self._unreachable: list[socket.socket] = []  # see advertised_port
        for setup in setups_from_store(store, nodes):
            self._add(setup)

    # --- construction ------------------------------------------------------------------

    def _images(self, setup: NodeSetup) -> dict[str, str]:
        cm = self.store.peek("configmaps", "kube-system", "kubeadm-config") or {}
        text = cm.get("data", {}).get("ClusterConfiguration", "")
        version = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                        if line.startswith("kubernetesVersion:")), None)
        version = version or kube_version_of(setup.package_version("kubeadm")) or "v1.28.9"
        comps = self.data.kubeadm_components(kube(version)) if kube(version) else None
        images = {}
        for comp in mf.COMPONENTS:
            pod = self.store.peek("pods", "kube-system", f"{comp}-{setup.name}")
            if pod is not None:
                images[comp] = pod["spec"]["containers"][0]["image"]
            else:
                tag = (comps.etcd if comps else "3.5.12-0") if comp == "etcd" else version
                images[comp] = f"registry.k8s.io/{comp}:{tag}"
        return images

    def _fresh_state(self, setup: NodeSetup) -> tuple[PackageState, NodeSetup]:
        """The packages, holds and kubelet a freshly provisioned node has, and its setup with
        the repository minor resolved."""
        installed = {p: v for p in ("kubeadm", "kubelet", "kubectl")
                     if (v := setup.package_version(p)) is not None}
        minor = setup.repo_minor or ".".join(
            (kube_version_of(installed.get("kubeadm") or installed.get("kubelet")) or "v1.28.9")
            .lstrip("v").split(".")[:2])
        setup = dataclasses.replace(setup, repo_minor=minor)
        kind = "rpm" if setup.rpm else "deb"
        uri = f"https://pkgs.k8s.io/core:/stable:/v{minor}/{kind}/"
        repo = repo_for(uri, kind)
        if repo is not None:
            for extra in ("cri-tools", "kubernetes-cni"):
                versions = repo.packages().get(extra)
                if versions:
                    installed[extra] = versions[0]
        node = self.store.peek("nodes", "", setup.name) or {}
        kubelet = (node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion")
                   or kube_version_of(installed.get("kubelet")))
        state = PackageState(installed=installed,
                          holds=sorted(h for h in setup.holds if h in installed),
                          apt_lists=[uri] if not setup.rpm and not setup.repo_legacy else [],
                          kubelet_running=kubelet, kubelet_config=kubelet, kubelet_active=True)
        return state, setup

    def _add(self, setup: NodeSetup) -> None:
        node_dir = self.state_dir / "nodes" / setup.name
        fs = NodeFS(node_dir / "root", self.user)
        state = PackageState.load(node_dir / "state.json")
        fresh = state is None
        if state is None:
            state, setup = self._fresh_state(setup)
            node_dir.mkdir(parents=True, exist_ok=True)
            cps = self.cluster.control_planes()
            server_ip = setup.internal_ip if setup.control_plane else (
                cps[0].setup.internal_ip if cps else self._first_cp_ip())
            provision(fs, setup, self._images(setup) if setup.control_plane else {},
                      f"https://{server_ip}:6443")
        db = PackageDB(node_dir / "state.json", state)
        db.save()
        host = LabNode(setup=setup, fs=fs, db=db, store=self.store, history=self.history,
                        clock=self.clock, timing=self.timing, data=self.data,
                        cluster=self.cluster, user=self.user, tools=TOOLS)
        host.kubelet = KubeletService(host)
        fs.listeners.append(host.kubelet.static.on_file)
        self.cluster.hosts[setup.name] = host
        self._interpreters[setup.name] = Interpreter(host, host.tools)
        host.kubelet.static.adopt()
        if not fresh and state.kubelet_running:
            host.kubelet._set_ready(state.kubelet_active, state.kubelet_running)
        for package in ("kubeadm", "kubectl"):
            if db.version(package):
                host.package_changed(package)
        host.component("kubelet-config", state.kubelet_config, running=True)

    def _first_cp_ip(self) -> str:
        for n in self.store.iter("nodes"):
            if "node-role.kubernetes.io/control-plane" in (n["metadata"].get("labels") or {}):
                return next((a["address"] for a in n["status"].get("addresses", [])
                             if a.get("type") == "InternalIP"), DEFAULT_NODE_IP)
        return DEFAULT_NODE_IP

    @classmethod
    async def start(cls, store: Store, history: HistoryLike | None, clock: LabClock, timing: Any,
                    state_dir: Path, *, nodes: Sequence[NodeSetup] = (),
                    release_data: ReleaseData | None = None, user: str = "kubehop",
                    load_balancer: bool = False, ssh: bool = True) -> NodeAgents:
        """Create the node agents and (unless `ssh=False`) their SSH endpoints."""
        agents = cls(store, history, clock, timing, state_dir, nodes=nodes,
                     release_data=release_data, user=user, load_balancer=load_balancer)
        if ssh:
            await agents.serve()
        return agents

    # --- SSH -----------------------------------------------------------------------------

    @property
    def ssh_dir(self) -> Path:
        return self.state_dir / "ssh"

    @property
    def inventory_path(self) -> Path:
        return self.state_dir / "inventory.yaml"

    @property
    def known_hosts_path(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def client_key_path(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def ports(self) -> dict[str, int]:
        return dict(self._ssh.ports) if self._ssh else {}

    async def serve(self, host: str = "127.0.0.1") -> None:
        """Start one SSH server per node on `host` (ports chosen by the OS) and write
        known_hosts and the inventory."""
        names = sorted(self.cluster.hosts)
        keys = ensure_keys(self.ssh_dir, names)
        self._ssh = NodeSSH(keys, self.user, self._run_channel, host)
        await self._ssh.start(names)
        self._ssh.write_known_hosts(self.known_hosts_path)
        self._ssh.write_inventory(self.inventory_path, self.known_hosts_path,
                                  sudo=self.user != "root")

    async def _run_channel(self, node: str, line: str, stdin: ChannelStdin,
                           out: Callable[[str], None], err: Callable[[str], None]) -> int:
        return await self._interpreters[node].run(line, stdin=stdin, out=out, err=err,
                                                  root=self.user == "root")

    async def stop(self) -> None:
        """Stop the SSH servers and cancel pending restarts."""
        if self._ssh is not None:
            await self._ssh.stop()
            self._ssh = None
        await self.cluster.stop()
        for sock in self._unreachable:
            sock.close()
        self._unreachable.clear()

    # --- the lab's view --------------------------------------------------------------------

    async def run(self, node: str, line: str, *, stdin: str = "", root: bool = False) -> Result:
        """Run a command line on `node` as the login user (or root), as an SSH exec would."""
        out: list[str] = []
        err: list[str] = []
        code = await self._interpreters[node].run(line, stdin=TextStdin(stdin), out=out.append,
                                                  err=err.append, root=root)
        return Result("".join(out), "".join(err), code)

    async def idle(self) -> None:
        """Until every pending static pod and kubelet restart has finished."""
        await self.cluster.idle()

    def host(self, node: str) -> LabNode:
        return self.cluster.hosts[node]

    def apiserver_version(self, node: str) -> str | None:
        """What `/version` on `node`'s kube-apiserver answers (`v1.28.9`); None without one."""
        return self.cluster.apiserver_version(node)

    def apiserver_available(self, node: str) -> bool:
        """False while `node`'s kube-apiserver static pod restarts (or when it has none)."""
        return self.cluster.apiserver_available(node)

    def advertised_port(self, node: str, port: int, host: str = "127.0.0.1") -> int:
        """The port `node`'s apiserver advertises on `host` (loopback only): `port`, its real
        endpoint, unless the `apiserver-address-unreachable` fault makes it one that refuses
        or times out."""
        options = self.cluster.fault_options.get(("apiserver-address-unreachable", node))
        if not options:
            return port
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((host, 0))
        if options[-1].get("how") == "timeout":
            sock.listen(1)  # never accepted: the handshake or the request hangs
        self._unreachable.append(sock)
        return int(sock.getsockname()[1])

    def on_apiserver_change(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(node)` whenever a node's apiserver version or availability changes;
        returns an unsubscriber."""
        self.cluster.listeners.append(callback)
        return lambda: self.cluster.listeners.remove(callback)
