"""A plan for people (text) and as a bash runbook (`plan -o script`).

Plain writers, not rich: a 5,000-node plan has 60,000 steps. Pure functions returning strings
(`format_*`), so tests compare exact text.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from kubehop.core.hooks import Hook, describe_hooks
from kubehop.core.windows import Window, describe_opening, next_opening, windows_needed
from kubehop.model.plan import Command, Plan, Step, StepKind, Wave, steps_by_node

_WAIT_TIMEOUT = "10m"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _expect_text(expect: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                     for k, v in expect.items())


def _nodes_text(nodes: Iterable[str], shown: int = 6) -> str:
    names = list(nodes)
    text = ", ".join(names[:shown])
    return text + (f" … (+{len(names) - shown})" if len(names) > shown else "")


def format_hooks(plan: Plan, hooks: Sequence[Hook]) -> str:
    """Where the operator's hooks run in `plan` ("" without hooks)."""
    lines = describe_hooks(plan, hooks)
    return "Hooks (on this machine; a failure halts the run):\n" + "\n".join(lines) + "\n" \
        if lines else ""


def format_windows(plan: Plan, windows: Sequence[Window], now: datetime) -> str:
    """How many maintenance windows the plan's estimate needs from `now` ("" without)."""
    if not windows:
        return ""
    count = windows_needed(windows, plan.estimate_seconds, now)
    opening = next_opening(windows, now)
    when = "one is open now" if opening == now else (
        f"the next opens {describe_opening(opening, windows[0].zone)}" if opening else
        "none opens in the next eight weeks")
    return (f"Maintenance windows: {'; '.join(w.text for w in windows)}: the estimate "
            f"({_duration(plan.estimate_seconds)}) needs {count} window"
            f"{'s' if count != 1 else ''}; {when}\n")


def format_text(plan: Plan) -> str:
    """Hops, waves (each node's steps in order, with drain decisions), estimate, warnings."""
    s = plan.strategy
    hops = ", ".join(plan.hops) or "none (completes the running version)"
    lines = [
        f"Upgrade plan: {plan.from_version} → {plan.to_version}",
        f"  hops: {hops}",
        f"  strategy: workers {s.worker_strategy}, drain {s.drain_policy}, max unavailable "
        f"{s.max_unavailable} ({plan.max_unavailable_nodes} "
        f"node{'s' if plan.max_unavailable_nodes != 1 else ''})",
        f"  {len(plan.steps)} steps in {len(plan.waves)} waves; estimate "
        f"{_duration(plan.estimate_seconds)} (lab timing, waves in parallel)",
        f"  state fingerprint: {plan.fingerprint}",
        "",
    ]
    by_wave: dict[int | None, list[Step]] = {}
    for step in plan.steps:
        if step.kind is not StepKind.GATE:
            by_wave.setdefault(step.wave, []).append(step)
    for wave in plan.waves:
        lines.append(_wave_title(wave))
        for node, steps in steps_by_node(by_wave.get(wave.index, [])).items():
            lines.append(f"    {node}: " + " → ".join(_step_word(s) for s in steps))
            reasons = {s.reason for s in steps if s.reason}
            lines += [f"      ({r})" for r in sorted(reasons)]
    if plan.warnings:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in plan.warnings]
    return "\n".join(lines) + "\n"


def _wave_title(wave: Wave) -> str:
    what = {
        "drift": "restore hand-edited control-plane manifests",
        "control-plane": "control plane (kubeadm)",
        "control-plane-kubelet": "control-plane kubelet",
        "prepare": "prepare workers (kubeadm; no drain, beside the waves)",
        "workers": "workers",
    }.get(wave.kind, wave.kind)
    return f"  wave {wave.index} [{wave.hop}] {what}: {_nodes_text(wave.nodes)}"


def _step_word(step: Step) -> str:
    word = str(step.kind)
    version = step.params.get("version") if step.params else None
    return f"{word}@{version}" if version else word


# --- bash runbook ----------------------------------------------------------------------------


def format_script(plan: Plan) -> str:
    """A bash runbook that performs the plan one step at a time (list order is a valid order)."""
    q = shlex.quote
    lines = [
        "#!/usr/bin/env bash",
        f"# kubehop upgrade runbook: {plan.from_version} -> {plan.to_version} "
        f"(hops: {' '.join(plan.hops) or 'none'})",
        f"# Planned from the cluster state {plan.fingerprint}; re-plan if the cluster changed.",
        "# Node commands run over ssh (NODE resolves through ~/.ssh/config); kubectl uses the",
        "# current context. One step at a time: stop at the first failure (set -e).",
        "set -euo pipefail",
    ]
    for w in plan.warnings:
        lines.append(f"# warning: {w}")
    for step in plan.steps:
        if step.kind is StepKind.GATE:
            continue
        lines += ["", f"# --- {step.id}: {step.description}"]
        if step.reason:
            lines.append(f"# ({step.reason})")
        if step.expect:
            lines.append(f"# expect: {_expect_text(step.expect)}")
        node = q(step.node or "")
        if step.kind is StepKind.ETCD_SNAPSHOT:
            lines.append("# etcdctl and etcdutl run in the etcd static pod's container")
            lines += [f"ssh {node} -- {q(_in_etcd_container(c))}" if c.argv[0] in _ETCD_TOOLS
                      else _ssh_lines(node, c)[0] for c in step.commands]
        elif step.commands:
            for c in step.commands:
                lines += _ssh_lines(node, c)
        else:
            lines += _api_lines(step, node)
    lines += ["", f"echo {q(f'kubehop runbook done: the cluster runs {plan.to_version}')}"]
    return "\n".join(lines) + "\n"


_ETCD_TOOLS = ("etcdctl", "etcdutl")


def _in_etcd_container(command: Command) -> str:
    """The remote line running an etcd tool in the running etcd container (kubeadm nodes have
    etcdctl only there)."""
    find = "sudo crictl ps --name '^etcd$' --state running -q | head -n 1"
    return f'sudo crictl exec "$({find})" {shlex.join(command.argv)}'


def _ssh_lines(node: str, command: Command) -> list[str]:
    """`ssh NODE -- 'command'`; stdin (a file's content) as a here-document fed through ssh."""
    if command.stdin is None:
        return [f"ssh {node} -- {shlex.quote(command.line)}"]
    body = command.stdin if command.stdin.endswith("\n") else command.stdin + "\n"
    delimiter = "KUBEHOP_EOF"
    while delimiter in body.splitlines():
        delimiter += "_"
    remote = Command(command.argv, None, command.sudo).line
    return [f"ssh {node} -- {shlex.quote(remote)} >/dev/null <<'{delimiter}'",
            *body.splitlines(), delimiter]


def _api_lines(step: Step, node: str) -> list[str]:
    kind, q = step.kind, shlex.quote
    if kind is StepKind.CORDON:
        return [f"kubectl cordon {node}"]
    if kind is StepKind.UNCORDON:
        return [f"kubectl uncordon {node}"]
    if kind is StepKind.DRAIN:
        flags = ["--ignore-daemonsets"]
        if step.params.get("deleteEmptydirData"):
            flags.append("--delete-emptydir-data")
        if step.params.get("force"):
            flags.append("--force")
        return [f"kubectl drain {node} {' '.join(flags)}"]
    if kind is StepKind.WAIT_READY:
        version = str(step.expect.get("kubelet", ""))
        lines = [f"kubectl wait --for=condition=Ready node/{step.node} "
                 f"--timeout={_WAIT_TIMEOUT}"]
        if version:
            jsonpath = q("{.status.nodeInfo.kubeletVersion}")
            lines.append(f'test "$(kubectl get node {node} -o jsonpath={jsonpath})" = '
                         f'{q(version)}')
        return lines
    if kind is StepKind.SWITCHOVER:
        out = []
        for db in step.params.get("databases", ()):  # type: ignore[union-attr]
            ns, name = str(db).split("/", 1)
            selector = q(f"cnpg.io/cluster={name},cnpg.io/instanceRole=primary")
            jsonpath = q("{.items[0].spec.nodeName}")
            out.append(f"until [ \"$(kubectl -n {q(ns)} get pod -l {selector} "
                       f"-o jsonpath={jsonpath})\" != {node} ]; do sleep 5; done")
        return out
    return [f"# (no command: {kind})"]
