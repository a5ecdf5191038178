"""`Lab`: one running simulated cluster, composed from the lab's parts.

    async with Lab("oldversion", time_scale=0.05) as lab:
        lab.url, lab.kubeconfig_path, lab.inventory_path   # serve kubectl, kubehop, ssh
        lab.endpoints["oldversion1"]                         # that node's own apiserver

One store (populated from the scenario), the controllers, the node agents (one SSH server per
node) and one HTTP(S) API endpoint per control-plane node on loopback, whose `/version` follows
that node's kube-apiserver static pod and which refuses connections while that pod restarts
(`kubehop.lab.api.faults`). With `loadBalancer: true` one more endpoint spreads requests
round-robin over the control-plane endpoints that listen; it is the kubeconfig's server (else
the first control-plane node's endpoint is). API faults (the scenario's and those added at
`/lab/v1/faults`) act on the endpoints through `lab.faults`. Every endpoint shares the
store, a CA and serving certificate (`<state-dir>/pki/`), the controllers' pod deletion and
eviction, and serves the history at `/lab/v1/history`. The `default/kubernetes` Service and
Endpoints and each kube-apiserver mirror pod's advertise-address annotation name the endpoints'
real loopback addresses, so a client can find and query every apiserver directly.

State directory: `kubeconfig`, `inventory.yaml`, `ssh/` (client key, host keys, known_hosts),
`pki/`, `nodes/` (each node's files and packages). A temporary one is made (and removed on
`stop`) when none is given. One lab at a time per directory (`lab.lock`). A directory an
earlier lab left is reused: its nodes continue from the state they were left in (the node
agents bring the store in line with it) unless `reset=True`; the store, controllers and history
always start afresh from the scenario.

Lab time and object timestamps: lab durations run on `LabClock` (`time_scale` real seconds per
lab second). Object timestamps are lab wall time (`clock.wall()`), which the controllers compare
with the timestamps the API server writes, so the store's clock is the lab's wall clock. Since a
lab faster than life (`time_scale` < 1) gains on real time, its epoch is set back by what it
gains in `WALL_HORIZON` real seconds (a day): timestamps never run ahead of real time (clients
computing ages against their own clock would show `<invalid>`) unless a fast lab runs longer
than that. kubectl's AGE column is computed by the lab itself, in lab time, and is unaffected.
Tests may hand in `clock=VirtualClock(...)` (`kubehop.lab.clock`): then lab time moves only
when the test advances it (or, with `auto=True`, whenever nothing else runs).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from kubehop.lab.addresses import KUBERNETES_SERVICE_IP
from kubehop.lab.api import tls as labtls
from kubehop.lab.api.app import LabApi
from kubehop.lab.api.faults import LOAD_BALANCER, ROUTED, ApiFaults
from kubehop.lab.api.server import LabServer
from kubehop.lab.api.store import Store
from kubehop.lab.api.watches import Change
from kubehop.lab.clock import LabClock
from kubehop.lab.controllers.manager import Controllers
from kubehop.lab.controllers.runtime import Timing
from kubehop.lab.fixtures import objects as o
from kubehop.lab.fixtures.cluster import populate
from kubehop.lab.fixtures.specs import ClusterSpec
from kubehop.lab.history import History
from kubehop.lab.node import NodeAgents, NodeSetup, package_faults
from kubehop.lab.node.package_faults import PACKAGE_FAULTS
from kubehop.lab.scenarios import Scenario, load_scenario, to_cluster_spec
from kubehop.model.errors import OperationError

Obj = dict[str, Any]
HOST = "127.0.0.1"
WALL_HORIZON = 86_400.0  # real seconds a fast lab runs before its timestamps may pass real time
# Scenario fault kinds the lab simulates (others are listed as unsimulated).
SIMULATED_FAULTS: frozenset[str] = frozenset({"node-never-ready", "package-install-fails",
                                              "static-pod-never-ready",
                                              "kubeadm-createjob-fails",
                                              "apiserver-address-unreachable",
                                              "kubelet-extra-args", "cgroup-v1",
                                              "disk-full", *PACKAGE_FAULTS})
ADVERTISE = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"


def wall_epoch(time_scale: float, real_now: float, horizon: float = WALL_HORIZON) -> float:
    """Unix seconds at lab time 0: `real_now`, set back by what lab time gains in `horizon`."""
    return real_now - horizon * max(0.0, 1.0 / time_scale - 1.0)


class Lab:
    """A simulated kubeadm cluster serving its API, SSH and history on loopback."""

    def __init__(self, scenario: str | Scenario, *, state_dir: Path | None = None,
                 time_scale: float = 1.0, tls: bool = True, ssh: bool = True,
                 reset: bool = False, clock: LabClock | None = None) -> None:
        self.scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
        self.spec: ClusterSpec = to_cluster_spec(self.scenario)
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.time_scale = time_scale
        self.tls = tls
        self.ssh = ssh
        self.reset = reset  # drop node state an earlier lab left in `state_dir`
        self.reused_nodes = False  # whether the nodes continue from an earlier lab's state
        self._given_clock = clock  # e.g. a `VirtualClock` in tests: lab time moves when told
        self.clock = self._new_clock()
        self.store = Store(clock=self._wall_now)
        self.history = History()
        self.controllers: Controllers | None = None
        self.agents: NodeAgents | None = None
        self.servers: dict[str, LabServer] = {}  # node name → its apiserver endpoint
        self.load_balancer: LabServer | None = None
        self.tls_files: labtls.TlsFiles | None = None
        self._lock: TextIO | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._unwatch_apiservers: Callable[[], None] | None = None
        self.faults = ApiFaults(self.clock)
        self._advertised: dict[str, str] = {}  # mirror pod name → wanted annotation

    def _new_clock(self) -> LabClock:
        if self._given_clock is not None:
            return self._given_clock
        return LabClock(self.time_scale, epoch=wall_epoch(self.time_scale, time.time()))

    def _wall_now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.wall(), UTC)

    # --- what a user of the lab reads -----------------------------------------------------------

    @property
    def control_planes(self) -> list[str]:
        """Control-plane node names, in scenario order."""
        return [n for ns in self.spec.nodes if ns.control_plane for n in ns.names()]

    @property
    def endpoints(self) -> dict[str, str]:
        """Control-plane node → the URL of its own apiserver endpoint."""
        return {node: server.url for node, server in self.servers.items()}

    @property
    def url(self) -> str:
        """The kubeconfig's server: the load balancer, else the first control-plane endpoint."""
        if self.load_balancer is not None:
            return self.load_balancer.url
        if not self.servers:
            raise RuntimeError("the lab is not running")
        return next(iter(self.servers.values())).url

    @property
    def _dir(self) -> Path:
        if self.state_dir is None:
            raise RuntimeError("the lab is not running")
        return self.state_dir

    @property
    def kubeconfig_path(self) -> Path:
        return self._dir / "kubeconfig"

    @property
    def inventory_path(self) -> Path:
        return self._dir / "inventory.yaml"

    @property
    def known_hosts_path(self) -> Path:
        return self._running_agents.known_hosts_path

    @property
    def client_key_path(self) -> Path:
        return self._running_agents.client_key_path

    @property
    def ssh_ports(self) -> dict[str, int]:
        """Node → the port of its SSH endpoint on 127.0.0.1."""
        return self._running_agents.ports

    @property
    def ssh_user(self) -> str:
        return self._running_agents.user

    @property
    def unsimulated_faults(self) -> list[str]:
        """The scenario's faults the lab does not simulate yet (`kind node` each)."""
        return [f"{f.kind} {f.node}" for f in self.spec.faults if f.kind not in SIMULATED_FAULTS]

    @property
    def history_url(self) -> str:
        return f"{self.url}/lab/v1/history"

    @property
    def _running_agents(self) -> NodeAgents:
        if self.agents is None:
            raise RuntimeError("the lab is not running")
        return self.agents

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> Lab:
        """Populate the store and start the controllers, node agents and API endpoints."""
        if self.store.resources():
            raise RuntimeError("a Lab starts once; make a new one")
        if not self.control_planes:
            raise OperationError(f"scenario {self.spec.name}: no control-plane node to serve "
                                 "the API (give a node roles: [control-plane])")
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix=f"kubehop-lab-{self.spec.name}-"))
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._take_lock()
            if self.reset:
                shutil.rmtree(self.state_dir / "nodes", ignore_errors=True)
            self.reused_nodes = any((self.state_dir / "nodes").glob("*/state.json"))
            self.clock = self._new_clock()  # lab time 0: now (the store reads self.clock)
            self.faults = ApiFaults(self.clock,
                                    resource_version=lambda: self.store.resource_version)
            populate(self.spec, self.store)
            gc.freeze()  # the initial world lives as long as the lab: keep it out of GC passes
            self.controllers = Controllers.install(self.store, self.clock, self.history,
                                                   Timing(**self.spec.timing))
            setups = [s for n in self.scenario.nodes for s in NodeSetup.from_scenario(n.to_dict())]
            self.agents = await NodeAgents.start(
                self.store, self.history, self.clock, self.spec.timing, self.state_dir,
                nodes=setups, load_balancer=self.spec.load_balancer, ssh=self.ssh)
            for host in self.agents.cluster.hosts.values():  # the guide's apt keyring
                package_faults.provision_keyring(host)
            for f in self.spec.faults:
                if f.kind in SIMULATED_FAULTS:
                    self.agents.cluster.inject(f.kind, f.node, f.options)
                if f.kind in PACKAGE_FAULTS:  # what the fault leaves on the node's disk
                    package_faults.seed(self.agents.host(f.node), f.kind, dict(f.options))
            if self.tls:
                self.tls_files = labtls.generate(self.state_dir / "pki")
            for node in self.control_planes:
                self.servers[node] = await self._serve(node, self._node_version(node))
            if self.spec.load_balancer:
                self.load_balancer = await self._serve(LOAD_BALANCER, self._balanced_version())
            self._follow_apiservers()
            for api_fault in self.scenario.api_faults:
                self.faults.add(api_fault)
            self._advertise()
            self._write_kubeconfig()
            self.controllers.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        """Stop everything `start` started; remove the state directory if the lab made it."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._unwatch_apiservers is not None:
            self._unwatch_apiservers()
            self._unwatch_apiservers = None
        await self.faults.stop()
        servers = [*self.servers.values(), *([self.load_balancer] if self.load_balancer else [])]
        self.servers, self.load_balancer = {}, None
        for server in servers:
            await server.stop()
        if self.agents is not None:
            await self.agents.stop()
            self.agents = None
        if self.controllers is not None:
            await self.controllers.stop()
            self.controllers.uninstall()
            self.controllers = None
        self.clock.close()
        self._release_lock()
        if self._own_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None

    async def __aenter__(self) -> Lab:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # --- endpoints ------------------------------------------------------------------------------

    def _node_version(self, node: str) -> Callable[[], str | None]:
        agents = self._running_agents
        return lambda: agents.apiserver_version(node)

    def _balanced_version(self) -> Callable[[], str | None]:
        """The load balancer's `/version`: that of the apiserver it sent the request to."""
        agents = self._running_agents

        def version() -> str | None:
            node = ROUTED.get()
            return agents.apiserver_version(node) if node else None

        return version

    def _follow_apiservers(self) -> None:
        """Each node's endpoint listens only while its kube-apiserver static pod runs."""
        agents = self._running_agents

        def changed(node: str) -> None:
            self.faults.set_pod_running(node, agents.apiserver_available(node))

        for node in self.servers:
            changed(node)
        self._unwatch_apiservers = agents.on_apiserver_change(changed)

    async def _serve(self, name: str, version: Callable[[], str | None]) -> LabServer:
        controllers = self.controllers
        assert controllers is not None
        server = LabServer(store=self.store, tls=self.tls, host=HOST, state_dir=self.state_dir,
                           version=self.spec.apiserver_version(), tls_files=self.tls_files)
        api: LabApi = server.api
        api.version_source = version
        api.faults, api.fault_name = self.faults, name
        api.on_pod_delete = controllers.deleter.on_pod_delete
        api.on_evict = lambda ns, name, body, dry: controllers.evict(ns, name, body, dry_run=dry)
        api.history = self.history
        api.time_scale = self.clock.time_scale  # /lab/v1/clock: maintenance windows on lab time
        self.faults.register(name, pause=server.pause, resume=server.resume,
                             balancer=name == LOAD_BALANCER)
        await server.start()
        return server

    def _write_kubeconfig(self) -> None:
        server = self.load_balancer or next(iter(self.servers.values()))
        server.write_kubeconfig(self.kubeconfig_path, name=f"kubehop-lab-{self.spec.name}")

    # --- the cluster's own record of its apiservers ---------------------------------------------

    def _advertise(self) -> None:
        """Point `default/kubernetes` and the kube-apiserver mirror pods at the real endpoints."""
        ports = {node: self._running_agents.advertised_port(node, server.port)
                 for node, server in self.servers.items()}
        self._advertised = {f"kube-apiserver-{node}": f"{HOST}:{port}"
                            for node, port in ports.items()}
        created = o.EPOCH
        ns = self.store.peek("namespaces", "", "default")
        if ns is not None:
            created = ns["metadata"].get("creationTimestamp", created)
        service = _kubernetes_service(created)
        endpoints = _kubernetes_endpoints(list(ports.values()), created)
        for resource, obj in (("services", service), ("endpoints", endpoints)):
            if self.store.peek(resource, "default", "kubernetes") is None:
                self.store.create(resource, obj)
            elif resource == "endpoints":
                self.store.mutate(resource, "default", "kubernetes",
                                  lambda e, new=obj: e.update(subsets=new["subsets"]))
        for name in self._advertised:
            self._fix_annotation(name)
        self._unsubscribe = self.store.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        """Keep the annotation when a mirror pod is recreated or rewritten."""
        if change.resource != "pods" or change.type == "DELETED":
            return
        meta = change.object["metadata"]
        name = meta.get("name")
        if meta.get("namespace") == "kube-system" and name in self._advertised and \
                (meta.get("annotations") or {}).get(ADVERTISE) != self._advertised[name]:
            self._fix_annotation(name)

    def _fix_annotation(self, name: str) -> None:
        if self.store.peek("pods", "kube-system", name) is None:
            return
        wanted = self._advertised[name]
        self.store.mutate("pods", "kube-system", name,
                          lambda p: p["metadata"].setdefault("annotations", {})
                          .update({ADVERTISE: wanted}))

    # --- one lab per state directory ------------------------------------------------------------

    def _take_lock(self) -> None:
        path = self._dir / "lab.lock"
        lock = path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            pid = lock.read().strip() or "?"
            lock.close()
            raise OperationError(f"lab state directory {self._dir} is in use by another lab "
                                 f"(pid {pid}); stop it or choose another --state-dir") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def _release_lock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


def _kubernetes_service(created: str) -> Obj:
    """The `default/kubernetes` Service every cluster has."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": o.meta("kubernetes", "default", created=created,
                           labels={"component": "apiserver", "provider": "kubernetes"}),
        "spec": {"type": "ClusterIP", "clusterIP": KUBERNETES_SERVICE_IP,
                 "clusterIPs": [KUBERNETES_SERVICE_IP],
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                 "internalTrafficPolicy": "Cluster", "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                            "targetPort": 6443}]},
        "status": {"loadBalancer": {}},
    }


def _kubernetes_endpoints(ports: list[int], created: str) -> Obj:
    """`default/kubernetes` Endpoints listing each apiserver endpoint (one subset per port:
    they share the loopback address)."""
    return {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": o.meta("kubernetes", "default", created=created,
                           labels={"endpointslice.kubernetes.io/skip-mirror": "true"}),
        "subsets": [{"addresses": [{"ip": HOST}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
                    for port in ports],
    }
