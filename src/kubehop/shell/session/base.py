"""What every session has: one API client, one node transport, the options the user gave, and
the reading side of a run (observe, check, plan, drain). `Session` (`session.py`) adds the
flows that change the cluster (`apply.py`), which take a BaseSession.

The client and the transport are opened on first use (a plan from a state file opens neither)
and closed with the session; every step of a run reuses them. Heavy clients (kubernetes-asyncio,
asyncssh) are imported only when first used, so `kubehop --help` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Self

from kubehop.model.findings import Finding
from kubehop.shell.session import planning
from kubehop.shell.session.ui import Ui

if TYPE_CHECKING:
    from kubehop.core.drain.explain import DrainEvent
    from kubehop.core.drain.rules import DrainOptions
    from kubehop.model.cluster import ClusterState
    from kubehop.model.plan import Plan, PlanOptions
    from kubehop.model.releases import ReleaseData
    from kubehop.model.versions import MinorVersion
    from kubehop.shell.kube.client import KubeClient
    from kubehop.shell.observe.snapshot import ClusterFacts
    from kubehop.shell.transports import Transport

# Given the observed state, the minor whose repository each node tries (None: no trial).
TrialFor = Callable[["ClusterState"], "MinorVersion | None"]


@dataclass(frozen=True)
class SessionOptions:
    """What the user said about the cluster and the data to judge it by."""

    kubeconfig: str | None = None  # --kubeconfig (None: $KUBECONFIG, then ~/.kube/config)
    context: str | None = None  # --context
    ssh_inventory: str | None = None  # --ssh-inventory: node facts and node commands over SSH
    accept_new_host_keys: bool = False  # --accept-new-host-keys (OpenSSH accept-new)
    release_data: str | None = None  # --release-data FILE (None: $KUBEHOP_RELEASE_DATA, shipped)
    today: date | None = None  # --today (None: the system date)


class BaseSession:
    """One run against one cluster: what it owns and how it reads (see the module docstring)."""

    def __init__(self, options: SessionOptions, ui: Ui, *, client: KubeClient | None = None,
                 transport: Transport | None = None, node_facts: bool | None = None,
                 data: ReleaseData | None = None) -> None:
        """`client`/`transport`: already open ones to use (the session closes them); `node_facts`:
        whether nodes are asked for their packages (default: given an SSH inventory or a
        transport); `data`: release data already loaded."""
        self.options = options
        self.ui = ui
        self._client = client
        self._transport = transport
        self._node_facts = (node_facts if node_facts is not None
                            else bool(options.ssh_inventory) or transport is not None)
        self._data = data
        self._stale_warned = False
        self._identity: str | None = None

    # --- what the session owns -------------------------------------------------------------

    async def client(self) -> KubeClient:
        """The session's one API client (kubectl's rules for kubeconfig), connected once."""
        if self._client is None:
            from kubehop.shell.kube.client import KubeClient

            self._client = await KubeClient.connect(self.options.kubeconfig, self.options.context)
        return self._client

    def transport(self) -> Transport:
        """The session's one node transport (SSH per the inventory, or the one handed in)."""
        if self._transport is None:
            from kubehop.shell.transports.ssh import SSHTransport

            self._transport = SSHTransport.from_file(
                self.options.ssh_inventory,
                accept_new_host_keys=self.options.accept_new_host_keys)
        return self._transport

    async def close(self) -> None:
        """Close the transport and the client (each only if opened)."""
        transport, self._transport = self._transport, None
        client, self._client = self._client, None
        try:
            if transport is not None:
                await transport.close()
        finally:
            if client is not None:
                await client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def today(self) -> date:
        """The day support is judged on."""
        return self.options.today or date.today()

    def release_data(self, *, warn_stale: bool = True) -> ReleaseData:
        """The release data (the user's file or the shipped one), loaded once; a stale one is
        warned about once per session, unless every caller reports it otherwise (`check`: the
        `data.stale` finding)."""
        if self._data is None:
            from kubehop.data.loader import load_release_data

            path = self.options.release_data or os.environ.get("KUBEHOP_RELEASE_DATA") or None
            self._data = load_release_data(path)
        if warn_stale and not self._stale_warned:
            from kubehop.core.support import staleness_warning

            message = staleness_warning(self._data, self.today)
            if message:
                self._stale_warned = True
                self.ui.warn(message)
        return self._data

    async def identity(self) -> str:
        """The cluster's identity: the uid of its kube-system namespace (kubectl's cluster-info
        has none; this one survives apiserver address changes), else the API server's URL."""
        if self._identity is None:
            from kubehop.shell.kube import requests as rq
            from kubehop.shell.kube.errors import Forbidden, NotFound

            client = await self.client()
            identity = f"server:{client.server}"
            try:
                ns = await client.get_json(rq.get_namespace("kube-system"))
                uid = (ns.get("metadata") or {}).get("uid")
                if uid:
                    identity = f"kube-system:{uid}"
            except (Forbidden, NotFound):  # not allowed to read it, or none: the URL
                pass
            self._identity = identity
        return self._identity

    # --- observe ---------------------------------------------------------------------------

    async def observe(self, *, workloads: bool, apis: bool = False, node_facts: bool = False,
                      kubectl: bool = True, trial_for: TrialFor | None = None) -> ClusterState:
        """The cluster now; node facts over the transport when asked and available."""
        state, _ = await self.observe_with_host_keys(workloads=workloads, apis=apis,
                                                     node_facts=node_facts, kubectl=kubectl,
                                                     trial_for=trial_for)
        return state

    async def observe_with_host_keys(self, *, workloads: bool, apis: bool = False,
                                     node_facts: bool = False, kubectl: bool = True,
                                     trial_for: TrialFor | None = None
                                     ) -> tuple[ClusterState, dict[str, str]]:
        """`observe`, and the nodes whose SSH host key changed (node → why). Warns about
        inventory entries naming no node of the cluster. With `trial_for`, each node also tries
        a refresh of the target minor's repository (into a temporary lists directory), so a
        node that cannot reach it is found before anything moves."""
        from kubehop.shell.observe.cluster import observe

        client = await self.client()
        watch = None
        if node_facts and self._node_facts:
            from kubehop.shell.observe.inventory import HostKeyWatch

            watch = HostKeyWatch(self.transport())
        state = await observe(client, workloads=workloads, apis=apis, node_runner=watch,
                              kubectl=kubectl)
        minor = trial_for(state) if trial_for is not None and watch is not None else None
        if minor is not None and watch is not None:
            from kubehop.shell.observe.nodes import gather_trials

            state = await gather_trials(watch, state, minor)
        inventory = getattr(watch.transport, "inventory", None) if watch else None
        if inventory is not None and self.options.ssh_inventory:  # an SSH inventory's names
            from kubehop.shell.observe.inventory import entries_without_node

            for name in entries_without_node(inventory.nodes, (n.name for n in state.nodes)):
                self.ui.warn(f"SSH inventory {self.options.ssh_inventory} lists {name}, which "
                             "is no node of this cluster: remove the entry, or fix its name to "
                             "match `kubectl get nodes`")
        return state, dict(watch.changed) if watch else {}

    def trial_for(self, to: str) -> TrialFor:
        """The target's minor given an observed state (see `planning.target_minor`); the release
        data is loaded now, before the cluster is touched."""
        data = self.release_data(warn_stale=False)
        return lambda state: planning.target_minor(state, to, data)

    async def observe_for_plan(self, to: str) -> ClusterState:
        """The live cluster, with workloads and (given an SSH inventory) package facts and each
        node's trial refresh of the target's repository."""
        return await self.observe(workloads=True, node_facts=True, trial_for=self.trial_for(to))

    async def read_cluster(self) -> ClusterFacts:
        """The cluster as `kubehop lab snapshot` reads it (node facts given an inventory)."""
        from kubehop.shell.observe.snapshot import read_cluster

        runner = None
        if self._node_facts:
            from kubehop.shell.observe.nodes import TransportRunner

            runner = TransportRunner(self.transport())
        return await read_cluster(await self.client(), runner)

    # --- check and plan --------------------------------------------------------------------

    async def check(self, to: str | None, *, trial: bool = True) -> list[Finding]:
        """Observe and check; with `to`, also judge the upgrade to it (removed APIs, CNI) and,
        with `trial`, have each node try the target's repository."""
        data = self.release_data(warn_stale=False)  # check reports it: `data.stale`
        state, changed = await self.observe_with_host_keys(
            workloads=True, apis=to is not None, node_facts=True,
            trial_for=self.trial_for(to) if to is not None and trial else None)
        from kubehop.core.checks.run import run_checks

        findings = run_checks(state, data, self.today, planning.check_target(state, to, data))
        return planning.with_host_keys(findings, changed)

    def plan(self, state: ClusterState, to: str, options: PlanOptions) -> Plan:
        """Check `state` for blocking findings and plan the upgrade to `to`."""
        return planning.make_plan(state, to, options, self.release_data(), self.today,
                                  self.ui.warn)

    # --- drain -----------------------------------------------------------------------------

    async def drain(self, node: str, options: DrainOptions,
                    on_event: Callable[[DrainEvent], None]) -> None:
        """Cordon `node` and evict its pods, as `kubectl drain` does."""
        from kubehop.shell.drain.node import Drainer

        await Drainer(await self.client(), options, on_event).drain(node)

    async def set_unschedulable(self, node: str, desired: bool, options: DrainOptions,
                                on_event: Callable[[DrainEvent], None]) -> None:
        """Cordon (`desired`) or uncordon `node`; nothing is sent when it already is."""
        from kubehop.shell.drain.node import Drainer

        await Drainer(await self.client(), options, on_event).set_unschedulable(node, desired)
