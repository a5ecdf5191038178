"""`kubehop demo`: the whole story on the `oldversion` lab, in this process, explained.

    kubehop demo [--time-scale F | --fast] [--keep] [--state-dir DIR]

Starts the lab (a simulated 3-node kubeadm cluster at v1.28.9) on loopback inside this process,
then narrates what a user would type and what it shows: `versions`; a hand edit of the API
server's static pod manifest, which `check` blocks on and kubeadm is fooled by; the revert;
`check --to 1.30`; `plan --to 1.30`; `upgrade` with live progress; `versions` again; and the
proof, from the lab's own history (never from kubehop's report), that no PodDisruptionBudget
went below its minimum, no minor was skipped and the database primary switched over. Exit 0
when the proof holds, 1 when it does not, 3 when the upgrade halted. Nothing is left running
unless `--keep`, which serves the lab until Ctrl-C and prints how to use it.

Every kubehop call in here is pointed at the lab (global options and environment), never at the
user's own cluster.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import signal
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kubehop.model.errors import UsageError

if TYPE_CHECKING:
    from kubehop.cli.demo_story import Narrator
    from kubehop.lab.lab import Lab

SCENARIO = "oldversion"
DEFAULT_SCALE = 0.1
FAST_SCALE = 0.01
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


@click.command("demo")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="F", help=f"Real seconds per lab second (default {DEFAULT_SCALE:g}: "
                                f"{1 / DEFAULT_SCALE:g}x faster than life).")
@click.option("--fast", is_flag=True,
              help=f"Run the lab {1 / FAST_SCALE:g}x faster than life (--time-scale "
                   f"{FAST_SCALE:g}).")
@click.option("--keep", is_flag=True,
              help="Leave the lab up at the end (until Ctrl-C) and print how to use it.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The lab's state directory (default: a temporary one, removed at the end); "
                   "started afresh.")
@click.pass_context
def demo(ctx: click.Context, time_scale: float | None, fast: bool, keep: bool,
         state_dir: Path | None) -> None:
    """Watch kubehop upgrade a simulated cluster from 1.28 to 1.30, explained step by step.

    \b
    Starts the `oldversion` lab in this process (nothing else to run), then shows
    `versions`, a hand-edited API server manifest that `check` catches and kubeadm
    is fooled by, the revert, `check --to 1.30`, `plan --to 1.30`, `upgrade` with
    live progress, and proof from the lab's history that no PodDisruptionBudget
    was violated, no minor skipped and the database switched over. About 45 s
    (--fast: about 15 s). Exit 0 when all of it holds.
    """
    if fast and time_scale is not None:
        raise UsageError("--fast means --time-scale 0.01: give one of them")
    scale = FAST_SCALE if fast else (time_scale or DEFAULT_SCALE)
    ctx.exit(asyncio.run(run_demo(scale, keep=keep, state_dir=state_dir)))


async def run_upgrade() -> None:
    """`kubehop upgrade --to 1.30 --yes`, run in this process through the command's own flow
    (the lab keeps serving on the same event loop). Raises what the command raises (a halted
    run: exit 3)."""
    from kubehop.cli.context import make_session
    from kubehop.cli.demo_story import TARGET
    from kubehop.cli.plan import options_from
    from kubehop.cli.ui import ClickUi
    from kubehop.shell.session import ApplySettings
    from kubehop.shell.steps.base import ExecutorOptions

    settings = ApplySettings(executor=ExecutorOptions())
    async with make_session(ui=ClickUi("text", yes=True)) as session:
        await session.upgrade(TARGET, options_from("1", "skip", "minor", False, ()), settings)


async def run_demo(scale: float, *, keep: bool, state_dir: Path | None) -> int:
    """The demo; the exit status."""
    from kubehop.cli.demo_story import Narrator, Story, demo_environment
    from kubehop.lab.lab import Lab

    began = time.monotonic()
    n = Narrator()
    intro(n, scale)
    async with Lab(SCENARIO, time_scale=scale, state_dir=state_dir, reset=True) as lab:
        journal_dir = lab.kubeconfig_path.parent / "kubehop"
        shutil.rmtree(journal_dir, ignore_errors=True)  # an earlier demo's runs
        demo_environment(lab, str(journal_dir))
        lab_started(n, lab)
        story = Story(n, lab)
        await story.what_runs()
        await story.hand_edit()
        await story.check_catches_it()
        await story.kubeadm_confused()
        await story.revert()
        await story.check_target()
        await story.the_plan()
        mark = lab.history.last_seq
        await story.upgrade(run_upgrade)
        await story.after()
        ok = prove(n, lab, mark)
        n.chapter("The end")
        n.say(f"The demo took {time.monotonic() - began:.0f} s. "
              + ("The lab stays up: try the commands above on it from another terminal, with "
                 "the settings below." if keep else
                 "Try it yourself: `kubehop lab up` in one terminal, then the commands above in "
                 "another (or `kubehop demo --keep`)."))
        if keep:
            await serve_until_interrupted(n, lab, journal_dir)
    return 0 if ok else 1


def intro(n: Narrator, scale: float) -> None:
    pace = "as fast as life" if scale == 1 else (
        f"{1 / scale:g}x faster than life" if scale < 1 else f"{scale:g}x slower than life")
    n.say("kubehop demo: upgrading a Kubernetes cluster from 1.28 to 1.30, step by step.",
          "Kubernetes ships a new minor version (1.28, 1.29, 1.30, ...) about every four "
          "months and patches each for about 14 months. A cluster installed with kubeadm is "
          "upgraded by hand: the control plane first (the API server and its companions), then "
          "the kubelet on every node, moving each node's pods elsewhere before its kubelet "
          "restarts, one minor version at a time. kubehop does this the way a careful operator "
          "would, and can be stopped and resumed at any point.",
          f"The cluster here is the lab: a simulated kubeadm cluster running inside this "
          f"process, which kubehop reaches as it would a real one (the Kubernetes API over "
          f"HTTPS, each node over SSH). Lab time runs {pace} (--time-scale {scale:g}).")


def lab_started(n: Narrator, lab: Lab) -> None:
    ports = ", ".join(str(p) for p in lab.ssh_ports.values())
    n.say(f"Lab '{lab.spec.name}' is up: the Kubernetes API at {lab.url}, SSH on 127.0.0.1 "
          f"ports {ports}. Three nodes at Kubernetes v1.28.9 on Ubuntu: oldversion1 (the "
          "control plane), oldversion2 and oldversion3 (workers). They run a web Deployment "
          "of 3 pods whose PodDisruptionBudget allows at most one down at a time, a monitoring "
          "DaemonSet, a bare pod with scratch data, and a 3-instance PostgreSQL cluster "
          "(CloudNativePG, `db/pg`) whose primary runs on oldversion2.")


async def serve_until_interrupted(n: Narrator, lab: Lab, journal_dir: Path) -> None:
    """`--keep`: print how to use the lab, serve until SIGINT/SIGTERM."""
    import shlex

    from kubehop.cli.lab import usage_text

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        click.echo(usage_text(lab).replace(
            "  kubectl get nodes\n",
            f"  export KUBEHOP_STATE_DIR={shlex.quote(str(journal_dir))}   # the demo's "
            "journal: kubehop status\n  kubectl get nodes\n"))
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    click.echo("kubehop demo: lab stopped", err=True)


# --- the proof, from the lab's history -----------------------------------------------------------


def prove(n: Narrator, lab: Lab, mark: int) -> bool:
    """Judge the upgrade (the events after `mark`) from the lab's history; print the proof."""
    from kubehop.lab.history import check_history

    events = lab.history.since(0)
    violations = check_history(events, max_unavailable=1)
    n.chapter("What the lab saw")
    n.say(f"The lab recorded every state change ({len(events)} events): component versions, "
          "pods, evictions, budgets, node states. This judges the upgrade from that history, "
          "not from what kubehop reported.")
    broken = {v.invariant for v in violations}
    checks = [
        budgets_line(events, mark, 2 not in broken),
        minors_line(events, mark),
        kubelets_line(events, mark, ok=not broken & {1, 4}),
        switchover_line(events, mark, primary_now(lab)),
        nodes_line(events, ok=not broken & {3, 5}),
    ]
    for ok, text in checks:
        n.mark(ok, text)
    for v in violations:
        n.mark(False, f"invariant {v.invariant} broken at lab time {v.t:.0f} s: {v.message}")
    ok = not violations and all(ok for ok, _ in checks)
    n.mark(ok, f"{len(violations)} breaches of the safety invariants "
               "(kubehop.lab.history.check_history)")
    return ok


def budgets_line(events: list[dict[str, Any]], mark: int, ok: bool) -> tuple[bool, str]:
    """Evictions, refusals and each budget's lowest healthy count from `mark` on."""
    upgrade = [e for e in events if e["seq"] > mark]
    evicted = sum(1 for e in upgrade if e["type"] == "pod" and e["event"] == "deleted"
                  and e.get("by") == "eviction")
    deleted = sum(1 for e in upgrade if e["type"] == "pod" and e["event"] == "deleted"
                  and e.get("by") == "delete" and e.get("pdb"))
    refused = sum(1 for e in upgrade if e["type"] == "eviction-refused" and e["code"] == 429)
    lowest: dict[str, tuple[int, int]] = {}
    for e in events:
        if e["type"] == "pdb":
            key, pair = f"{e['namespace']}/{e['name']}", (e["current_healthy"],
                                                           e["desired_healthy"])
            if e["seq"] <= mark or key not in lowest or \
                    pair[0] - pair[1] < lowest[key][0] - lowest[key][1]:
                lowest[key] = pair
    low = ", ".join(f"{k} {c}/{d}" for k, (c, d) in sorted(lowest.items()))
    head = ("no PodDisruptionBudget went below its minimum" if ok and not deleted else
            "a PodDisruptionBudget went below its minimum")
    return ok and not deleted, (
        f"{head}: {evicted} pods left their nodes through the Eviction API, none by a plain "
        f"delete; {refused} evictions were refused (429: the budget had no disruption to "
        "spare) and retried later" + (f". Lowest healthy/required: {low}" if low else ""))


def chains(events: Iterable[Mapping[str, Any]], mark: int) -> dict[tuple[str | None, str],
                                                                    list[str]]:
    """(node, component) → its versions from `mark` on (the one at `mark`, then each change)."""
    out: dict[tuple[str | None, str], list[str]] = {}
    for e in events:
        if e["type"] != "component" or not e["version"]:
            continue
        chain = out.setdefault((e["node"], e["component"]), [])
        if e["seq"] <= mark:
            chain[:] = [e["version"]]
        elif not chain or chain[-1] != e["version"]:
            chain.append(e["version"])
    return out


def _skips(chain: list[str]) -> bool:
    """Whether a component moved up more than one minor at once."""
    from kubehop.model.versions import parse_kube_version

    minors = [parse_kube_version(v).minor_version for v in chain]
    return any(b.minus(a) > 1 for a, b in itertools.pairwise(minors))


def _path(chain: list[str]) -> str:
    return " → ".join(chain)


def minors_line(events: list[dict[str, Any]], mark: int) -> tuple[bool, str]:
    c = chains(events, mark)
    plane = {k: v for k, v in c.items() if k[1] in CONTROL_PLANE}
    nodes = sorted({str(k[0]) for k in plane})
    # kubeadm steps through every minor where it upgrades static pods (the control planes); a
    # worker's kubeadm moves with its kubelet (`upgrade node` there only rewrites its config).
    kubeadm = {k: v for k, v in c.items() if k[1] == "kubeadm" and str(k[0]) in nodes}
    skipped = [f"{comp} on {node}" for (node, comp), v in {**plane, **kubeadm}.items()
               if _skips(v)]
    paths = sorted({_path(v) for v in plane.values()})
    text = (f"no minor skipped: the control plane ({', '.join(nodes)}) went "
            f"{' / '.join(paths)}, with kubeadm there through each minor"
            if not skipped else f"minor skipped by {', '.join(skipped)}")
    coredns = c.get((None, "coredns"), [])
    if len(coredns) > 1 and not skipped:
        text += f" (CoreDNS, which kubeadm upgrades with it: {_path(coredns)})"
    return not skipped, text


def kubelets_line(events: list[dict[str, Any]], mark: int, ok: bool) -> tuple[bool, str]:
    by_path: dict[str, list[str]] = {}
    for (node, comp), chain in sorted(chains(events, mark).items(), key=str):
        if comp == "kubelet":
            by_path.setdefault(_path(chain), []).append(str(node))
    paths = "; ".join(f"{', '.join(nodes)} {path}" for path, nodes in by_path.items())
    return ok, (f"kubelets: {paths}. Each kubelet restarted only on a drained node, and none "
                "ever ran newer than the API server (the version skew policy held at every "
                "instant)" if ok else f"kubelets: {paths}; the skew policy or a drain was "
                "broken (below)")


def primary_now(lab: Lab) -> dict[str, tuple[str, str | None]]:
    """CloudNativePG cluster (`ns/name`) → its primary pod now and its node."""
    from kubehop.lab.controllers.cnpg_specs import CLUSTER_LABEL, INSTANCE_ROLE_LABEL

    out: dict[str, tuple[str, str | None]] = {}
    for pod in lab.store.iter("pods"):
        labels = pod["metadata"].get("labels") or {}
        if labels.get(INSTANCE_ROLE_LABEL) == "primary" and CLUSTER_LABEL in labels:
            key = f"{pod['metadata']['namespace']}/{labels[CLUSTER_LABEL]}"
            out[key] = (pod["metadata"]["name"], (pod.get("spec") or {}).get("nodeName"))
    return out


def switchover_line(events: list[dict[str, Any]], mark: int,
                    now: Mapping[str, tuple[str, str | None]]) -> tuple[bool, str]:
    """The database's primary moved off its node before that node was drained, and its pods
    left only as replicas (covered by `<db>`, never by `<db>-primary`)."""
    parts, ok = [], bool(now)
    for db, (new, new_node) in sorted(now.items()):
        ns, name = db.split("/", 1)
        guard = f"{db}-primary"
        before: tuple[str, str | None] | None = None
        for e in events:
            if e["seq"] > mark:
                break
            if e["type"] == "pod" and e["namespace"] == ns and e.get("pdb") == guard:
                before = (e["name"], e["node"]) if e["event"] != "deleted" else None
        old, old_node = before or ("?", None)
        gone = [e for e in events if e["seq"] > mark and e["type"] == "pod"
                and e["namespace"] == ns and e["name"] == old and e["event"] == "deleted"]
        hit = [e for e in events if e["seq"] > mark and (
            (e["type"] == "eviction-refused" and e["pdb"] == guard)
            or (e["type"] == "pod" and e["event"] == "deleted" and e.get("pdb") == guard))]
        restarts = [e["seq"] for e in events if e["seq"] > mark
                    and e["type"] == "kubelet-restart" and e["node"] == old_node]
        cordoned = next((e["seq"] for e in events if e["seq"] > mark and e["type"] == "node"
                         and e["node"] == old_node and not e["schedulable"]), None)
        moved = new_node != old_node and bool(gone) and all(
            e.get("by") == "eviction" and e.get("pdb") == db for e in gone)
        in_time = bool(gone) and cordoned is not None and cordoned < gone[0]["seq"] and all(
            r > gone[0]["seq"] for r in restarts)
        ok = ok and moved and in_time and not hit
        parts.append(
            f"{name} switched over: its primary {old} ran on {old_node}; once kubehop cordoned "
            f"{old_node}, CloudNativePG promoted {new} (on {new_node}), and only then was "
            f"{old} evicted, as a replica (budget {db}), before {old_node}'s kubelet restarted; "
            f"no eviction ever touched {guard}" if moved and in_time and not hit else
            f"{name} did not switch over cleanly: primary {old} on {old_node}, now {new} on "
            f"{new_node}; {len(hit)} evictions hit {guard}")
    return ok, "; ".join(parts) or "no database primary found in the lab"


def nodes_line(events: list[dict[str, Any]], ok: bool) -> tuple[bool, str]:
    last: dict[str, bool] = {}
    for e in events:
        if e["type"] == "node":
            last[e["node"]] = e["schedulable"]
    cordoned = sorted(n for n, schedulable in last.items() if not schedulable)
    text = ("control-plane nodes changed one at a time, at most one worker was cordoned at "
            "once, and no node is left cordoned" if ok and not cordoned else
            f"nodes left cordoned: {', '.join(cordoned) or 'none'}; see the breaches below")
    return ok and not cordoned, text
