"""The chapters of `kubehop demo`: each shows what a user would type (`$ kubehop versions`), says
in a sentence or two why, and prints the real command's output (the same functions the commands
use), against the lab running in this process.

Every chapter is a coroutine run on the lab's own event loop, so the lab keeps serving while
kubehop talks to it over loopback (Kubernetes API and SSH), as it would to a real cluster.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from kubehop.cli.output import color_disabled

if TYPE_CHECKING:
    from kubehop.lab.lab import Lab
    from kubehop.lab.node import NodeAgents
    from kubehop.model.cluster import ClusterState
    from kubehop.model.findings import Finding
    from kubehop.model.plan import Plan

TARGET = "1.30"
MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


class Narrator:
    """Chapter titles, narration wrapped to the terminal, and the command lines a user types."""

    def __init__(self) -> None:
        self.color = not color_disabled()
        self.width = min(shutil.get_terminal_size((100, 24)).columns, 100) - 2
        self.chapter_no = 0

    def _style(self, text: str, **style: object) -> str:
        return click.style(text, **style) if self.color else text  # type: ignore[arg-type]

    def chapter(self, title: str) -> None:
        self.chapter_no += 1
        head = f"── {self.chapter_no}. {title} "
        click.echo()
        click.echo(self._style(head + "─" * max(3, self.width - len(head)), bold=True,
                               fg="cyan"))

    def say(self, *paragraphs: str) -> None:
        """Narration: each paragraph wrapped to the terminal."""
        for text in paragraphs:
            click.echo(textwrap.fill(text, self.width, break_on_hyphens=False,
                                     break_long_words=False))
            click.echo()

    def command(self, line: str) -> None:
        """The command line a user would type, before its output."""
        click.echo(self._style(f"$ {line}", bold=True))

    def note(self, text: str) -> None:
        """A short remark after a command's output (exit code, time taken)."""
        click.echo(self._style(text, dim=True))
        click.echo()

    def mark(self, ok: bool, text: str) -> None:
        """One line of proof: ✓ or ✗, wrapped with a hanging indent."""
        sign = self._style("✓", fg="green", bold=True) if ok else \
            self._style("✗", fg="red", bold=True)
        lines = textwrap.wrap(text, self.width - 4, break_on_hyphens=False,
                              break_long_words=False) or [""]
        click.echo(f"  {sign} {lines[0]}")
        for line in lines[1:]:
            click.echo(f"    {line}")


@dataclass
class Story:
    """What the chapters share: the narrator and the lab."""

    narrator: Narrator
    lab: Lab

    def _agents(self) -> NodeAgents:
        if self.lab.agents is None:
            raise RuntimeError("the lab is not running")
        return self.lab.agents

    # --- the commands, as the CLI runs them ------------------------------------------------------

    async def versions(self) -> ClusterState:
        from kubehop.cli.context import make_session
        from kubehop.cli.versions import print_people

        self.narrator.command("kubehop versions")
        async with make_session() as session:
            state = await session.observe(workloads=False)
        print_people(state, wide=False)
        click.echo()
        return state

    async def check(self, to: str | None = None) -> list[Finding]:
        from kubehop.cli.check import print_findings
        from kubehop.cli.context import make_session
        from kubehop.model.findings import Severity

        self.narrator.command("kubehop check" + (f" --to {to}" if to else ""))
        async with make_session() as session:
            session.release_data()  # the demo's data is the shipped one: warned when stale
            findings = await session.check(to, trial=False)
        print_findings(findings)
        code = 1 if any(f.severity is Severity.BLOCKING for f in findings) else 0
        self.narrator.note(f"(exit status {code})")
        return findings

    async def plan(self, to: str) -> Plan:
        from kubehop.cli.context import make_session
        from kubehop.cli.plan import options_from
        from kubehop.cli.plan_render import format_text

        self.narrator.command(f"kubehop plan --to {to}")
        async with make_session() as session:
            state = await session.observe(workloads=True, node_facts=True)
            plan = session.plan(state, to, options_from("1", "skip", "minor", False, ()))
        click.echo(format_text(plan))
        return plan

    async def node_shell(self, node: str, line: str, *, shown: str | None = None) -> str:
        """Run `line` as root on a lab node (over its shell, as `ssh NODE sudo ...` would)."""
        self.narrator.command(f"ssh {node} sudo {shown or line}")
        result = await self._agents().run(node, line, root=True)
        out = result.stdout + result.stderr
        if out.strip():
            click.echo(out.rstrip("\n"))
        self.narrator.note(f"(exit status {result.exit_code})" if result.exit_code else "")
        return out

    # --- the chapters ----------------------------------------------------------------------------

    async def what_runs(self) -> None:
        n = self.narrator
        n.chapter("What is running?")
        n.say("Before changing anything, find out what every part of the cluster runs. Each "
              "control-plane node runs the API server (kube-apiserver), the controller-manager, "
              "the scheduler and etcd (the database) as static pods: containers the kubelet "
              "starts from manifest files in /etc/kubernetes/manifests. Every node runs a kubelet "
              "(the agent that runs pods) and kube-proxy. kubeadm, the installer, keeps its own "
              "record of the cluster version in the kubeadm-config ConfigMap.")
        state = await self.versions()
        n.say("`kubectl version` would show one API server version. With several control "
              "planes behind a load balancer, that is whichever one the balancer picked, and "
              "mid-upgrade they differ; kubehop asks every API server directly and adds a Note "
              "when they disagree. This cluster has "
              + ("one API server, and all agree." if len(state.apiservers) < 2 else
                 f"{len(state.apiservers)} API servers."))

    async def hand_edit(self) -> None:
        n = self.narrator
        n.chapter("A shortcut someone took: editing the API server's manifest by hand")
        n.say("A tempting shortcut: 'upgrade' the API server by editing its static pod manifest "
              "on the control-plane node. The kubelet notices the changed file and restarts the "
              "API server with the new image.")
        line = (f"sed -i 's/kube-apiserver:v1.28.9/kube-apiserver:v1.29.15/' {MANIFEST}")
        await self.node_shell("oldversion1", line)
        await self._agents().idle()
        await self.versions()
        n.say("The API server now answers v1.29.15, but nothing else moved: the "
              "controller-manager, the scheduler and every kubelet still run v1.28.9, kubeadm on "
              "the node is v1.28.9, and kubeadm-config still says v1.28.9. The cluster no longer "
              "is what kubeadm believes it is.")

    async def check_catches_it(self) -> None:
        n = self.narrator
        n.chapter("kubehop check catches it")
        n.say("`kubehop check` compares every component with kubeadm's record and with the "
              "version skew policy (which versions may run side by side). Findings are grouped "
              "by severity; a blocking finding makes it exit 1, and kubehop will not plan an "
              "upgrade past one.")
        await self.check()
        n.say("Both blocking findings come from the hand edit: the API server's image differs "
              "from what kubeadm-config records (drift), and kubeadm v1.28.9 on the node cannot "
              "manage an API server a minor newer than itself (skew). Warnings and info do not "
              "block: they say what an upgrade will have to handle (pods a drain deletes, data "
              "in emptyDir volumes, versions past their end of life).")

    async def kubeadm_confused(self) -> None:
        n = self.narrator
        n.chapter("kubeadm is confused by it")
        n.say("kubeadm, the tool that really performs the upgrade, asks the API server which "
              "version the cluster runs. Here is what `kubeadm upgrade plan` says on the "
              "control-plane node:")
        await self.node_shell("oldversion1", "kubeadm upgrade plan")
        n.say("kubeadm now believes the cluster runs v1.29.15 (its 'Cluster version', read from "
              "the API server): newer than kubeadm itself and than the v1.28.15 it would target, "
              "so it lists no upgrade at all, while kubeadm-config, the controller-manager, the "
              "scheduler and every kubelet are at v1.28.9. Every kubeadm upgrade from here would "
              "start from that wrong picture. That is why the hand edit was a bad idea, and why "
              "kubehop refuses to plan until it is undone.")

    async def revert(self) -> None:
        n = self.narrator
        n.chapter("Undo the hand edit")
        n.say("The fix `check` printed: put the image back to what kubeadm-config says. The "
              "kubelet restarts the API server at v1.28.9, and kubeadm's record and the cluster "
              "agree again.")
        line = (f"sed -i 's/kube-apiserver:v1.29.15/kube-apiserver:v1.28.9/' {MANIFEST}")
        await self.node_shell("oldversion1", line)
        await self._agents().idle()

    async def check_target(self) -> None:
        n = self.narrator
        n.chapter(f"Can we go to {TARGET}?")
        n.say(f"`check --to {TARGET}` also judges the upgrade itself: APIs removed on the way "
              "that the cluster still uses, whether the network plugin (CNI) supports the "
              "target, and whether every drain can succeed.")
        await self.check(TARGET)
        n.say(f"Nothing blocks. (1.30 is itself past its end of life; a real cluster should go "
              f"further. The demo stops at {TARGET} to stay short.)")

    async def the_plan(self) -> Plan:
        n = self.narrator
        n.chapter(f"The plan: v1.28.9 → {TARGET}")
        n.say("kubeadm upgrades the control plane one minor version at a time, so 1.28 → 1.30 "
              "is two hops, each to the newest patch of its minor: v1.29.15, then v1.30.14. "
              "`kubehop plan` computes every step before anything is done, and checks the plan "
              "against the safety rules in a simulation.")
        plan = await self.plan(TARGET)
        n.say("How to read it: in each hop the control plane goes first (on oldversion1: "
              "switch the package repository to the new minor, install the new kubeadm, "
              "`kubeadm upgrade plan`, `kubeadm upgrade apply`), then its kubelet. Before a "
              "kubelet changes minor, its node is cordoned (no new pods) and drained (its pods "
              "are evicted and start elsewhere), and uncordoned once it is Ready again.",
              "Steps in the same wave run together; waves run in order. The workers' kubelets "
              "are upgraded once, straight to the target: a kubelet may trail the API server by "
              "up to three minors, so one drain per worker is enough (--worker-strategy "
              "every-minor would drain them at every hop). One worker at a time "
              "(--max-unavailable 1), so PodDisruptionBudgets (how many pods of an app may be "
              "down at once) can be honoured. oldversion2 runs the database primary: kubehop "
              "cordons it and waits for CloudNativePG to switch the primary over to a replica "
              "before draining. The estimate is in lab time (as on real machines).")
        return plan

    async def upgrade(self, run: object) -> float:
        """The upgrade chapter; `run` is the coroutine function that performs it. Returns the
        real seconds it took."""
        import time

        n = self.narrator
        n.chapter("The upgrade")
        n.say("`kubehop upgrade` is check + plan + confirm + apply in one command (`--yes` "
              "answers the confirmation). It prints the plan again, saves it, and runs it. "
              "Every step is recorded in a journal before and after it runs: after Ctrl-C or a "
              "crash, `kubehop apply` resumes where it stopped. After each step kubehop checks "
              "that what the step promised holds (for example 'node oldversion3: kubelet "
              "v1.30.14, schedulable') before going on.")
        n.command(f"kubehop upgrade --to {TARGET} --yes")
        start = time.monotonic()
        await run()  # type: ignore[operator]
        took = time.monotonic() - start
        lab_seconds = took / self.lab.time_scale
        n.note(f"(the upgrade took {took:.0f} s here, about {lab_seconds / 60:.0f} min in lab "
               "time)")
        if sys.stdout.isatty():
            n.say("The bars showed the whole run, the current wave and the step each node was "
                  "on; `kubehop status` shows the same from the journal, from any terminal. "
                  "When a PodDisruptionBudget refuses an eviction (the app has no pod to spare), "
                  "kubehop waits for a replacement to be Ready elsewhere and tries again.")
        else:
            n.say("Reading the progress: ✓ a step ran and what it promised holds; = a step was "
                  "skipped because its promised state already held (the control plane had "
                  "nothing to drain); 'blocked' lines are PodDisruptionBudgets at work: an "
                  "eviction was refused because the app had no pod to spare, so kubehop waited "
                  "for a replacement to be Ready elsewhere and tried again.")
        return took

    async def after(self) -> None:
        n = self.narrator
        n.chapter("After")
        await self.versions()
        n.say("Every component now runs v1.30.14, and kubeadm-config agrees.")


def demo_environment(lab: Lab, journal_dir: str) -> None:
    """Point every kubehop function of this process at the lab (never at the user's cluster):
    the global options, and the environment kubehop and kubectl read."""
    from dataclasses import replace

    root = click.get_current_context().find_root()
    root.obj = replace(root.obj, kubeconfig=str(lab.kubeconfig_path), context=None,
                       ssh_inventory=str(lab.inventory_path))
    os.environ["KUBECONFIG"] = str(lab.kubeconfig_path)
    os.environ["KUBEHOP_SSH_INVENTORY"] = str(lab.inventory_path)
    os.environ["KUBEHOP_STATE_DIR"] = journal_dir
