"""`kubehop plan`: what an upgrade will do, step by step, before anything is done.

Observes the cluster (or reads a state file: `--from-state`, a JSON/YAML `ClusterState` dump),
runs the checks, and prints the plan for people, as JSON/YAML for `kubehop apply`, or as a bash
runbook. Planning from a file imports no Kubernetes or SSH client (it stays fast).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kubehop.cli.context import host_key_option, make_session, run_session
from kubehop.cli.output import MACHINE_FORMATS, format_machine
from kubehop.cli.plan_render import format_script, format_text
from kubehop.cli.releases import release_data_option, resolve_today, today_option
from kubehop.model.cluster import ClusterState
from kubehop.model.cluster_codec import state_from_dict
from kubehop.model.errors import UsageError
from kubehop.model.plan import DRAIN_POLICIES, WORKER_STRATEGIES, Plan, PlanOptions

OUTPUTS = ("text", *MACHINE_FORMATS, "script")
# The areas finding ids are namespaced by (DESIGN.md, `check -o json`), plus `host.*` and
# `node.*`.
FINDING_AREAS = ("skew", "support", "drift", "packages", "apis", "drain", "capacity", "install",
                 "cni", "data", "host", "node")


def read_document(path: str, what: str) -> Any:
    """A JSON or YAML file as data; UsageError (exit 2) naming the file otherwise."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if path.endswith(".json") or text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"{what} {path} is not valid JSON: {e}") from None
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as e:
        raise UsageError(f"{what} {path} is not valid YAML: {str(e).splitlines()[0]}") from None


def load_state(path: str) -> ClusterState:
    """A `ClusterState` from a state file (`state_to_dict` shape, JSON or YAML)."""
    try:
        return state_from_dict(read_document(path, "state file"))
    except UsageError as e:
        if str(e).startswith(("cannot read", "state file")):
            raise
        raise UsageError(f"state file {path}: {e}") from None


def write_output(text: str, out: str | None) -> None:
    """`text` to FILE (`--out`) or standard output."""
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        Path(out).write_text(text)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror or e}") from None


def render(plan: Plan, output: str) -> str:
    """`plan` as `output` (text, script, json or yaml)."""
    if output == "text":
        return format_text(plan)
    if output == "script":
        return format_script(plan)
    return format_machine(plan.to_dict(), output)


def check_ignore_ids(ids: tuple[str, ...]) -> None:
    """`--ignore-finding` ids must look like finding ids (`area.name`); UsageError otherwise."""
    for finding_id in ids:
        area, dot, name = finding_id.partition(".")
        if not (dot and name and area in FINDING_AREAS):
            raise UsageError(
                f"unknown finding id {finding_id!r} for --ignore-finding: ids look like "
                f"skew.kubelet-too-old, with an area of {', '.join(FINDING_AREAS)} "
                "(`kubehop check` lists this cluster's)")


hook_options = (
    click.option("--hook", "hooks", multiple=True, metavar="EVENT=COMMAND",
                 help="Run COMMAND (sh -c, on this machine) at EVENT: before-hop, "
                      "after-control-plane, before-drain, after-uncordon, after-hop, "
                      "finished, halted. Repeatable; a failure halts the run (exit 3)."),
    click.option("--hook-file", metavar="FILE", type=click.Path(dir_okay=False),
                 help="YAML file with `hooks: {EVENT: COMMAND or [COMMAND, ...]}`."),
)
window_option = click.option(
    "--window", "windows", multiple=True, metavar="'DAYS HH:MM-HH:MM [ZONE]'",
    help="Start new nodes and hops only inside this maintenance window, e.g. "
         "'Sat,Sun 01:00-05:00 Europe/Berlin' (repeatable); outside, the run halts (exit 3) "
         "until resumed.")


def hooks_from(flags: tuple[str, ...], path: str | None) -> tuple[Any, ...]:
    """`--hook-file` hooks, then the `--hook` ones (core.hooks)."""
    from kubehop.core.hooks import hooks_from_config, parse_hooks

    from_file = hooks_from_config(read_document(path, "hook file"), path) if path else ()
    return from_file + parse_hooks(flags)


def windows_from(texts: tuple[str, ...]) -> tuple[Any, ...]:
    """`--window` texts as maintenance windows (core.windows)."""
    from kubehop.core.windows import parse_windows

    return parse_windows(texts)


def plan_options(f: Any) -> Any:
    """The options `plan` and `upgrade` share."""
    for option in reversed([
        click.option("--to", "to", required=True, metavar="VERSION",
                     help="Target: a minor (1.30: its newest patch), a version (v1.30.14), "
                          "latest, next-minor or latest-patch."),
        click.option("--max-unavailable", default="1", show_default=True, metavar="N|P%",
                     help="Worker nodes drained at once (control planes always go alone)."),
        click.option("--worker-strategy", type=click.Choice(WORKER_STRATEGIES), default="skip",
                     show_default=True,
                     help="skip: workers upgraded once, straight to the newest allowed minor; "
                          "every-minor: every hop, as the upstream guide."),
        click.option("--drain", "drain_policy", type=click.Choice(DRAIN_POLICIES),
                     default="minor", show_default=True,
                     help="minor: drain before a kubelet changes minor (a patch restart "
                          "skips it); always: drain before every kubelet restart."),
        click.option("--strict-kubeadm-skew", is_flag=True,
                     help="Step every worker's kubeadm through every minor (the letter of "
                          "kubeadm's documented skew); refuse workers more than one minor "
                          "behind."),
        click.option("--allow-unknown-version", is_flag=True,
                     help="Accept a target patch the release data does not know."),
        click.option("--ignore-finding", "ignore_findings", multiple=True, metavar="ID",
                     help="Plan despite this blocking finding (repeatable)."),
        click.option("--from-state", metavar="FILE",
                     help="Plan from a ClusterState file (JSON/YAML) instead of the cluster."),
        today_option,
        release_data_option,
    ]):
        f = option(f)
    return f


def options_from(max_unavailable: str, worker_strategy: str, drain_policy: str,
                 allow_unknown_version: bool, ignore_findings: tuple[str, ...],
                 strict_kubeadm_skew: bool = False) -> PlanOptions:
    """PlanOptions from the plan flags (click's values)."""
    check_ignore_ids(ignore_findings)
    text = max_unavailable.strip()
    value: int | str = int(text) if text.isascii() and text.isdigit() else text
    return PlanOptions(max_unavailable=value, worker_strategy=worker_strategy,
                       drain_policy=drain_policy, allow_unknown_version=allow_unknown_version,
                       ignore_findings=tuple(ignore_findings),
                       strict_kubeadm_skew=strict_kubeadm_skew)


@click.command("plan")
@plan_options
@click.option("-o", "--output", type=click.Choice(OUTPUTS), default="text", show_default=True,
              help="text for people, json/yaml for `kubehop apply`, script: a bash runbook.")
@click.option("--out", metavar="FILE", help="Write the plan to FILE instead of standard output.")
@host_key_option
@hook_options[0]
@hook_options[1]
@window_option
def plan(to: str, max_unavailable: str, worker_strategy: str, drain_policy: str,
         strict_kubeadm_skew: bool, allow_unknown_version: bool,
         ignore_findings: tuple[str, ...], from_state: str | None, today: str | None,
         release_data: str | None, output: str, out: str | None, hooks: tuple[str, ...],
         hook_file: str | None, windows: tuple[str, ...]) -> None:
    """Plan an upgrade: hops, waves, every step and what must be true after it.

    \b
    Per hop, the upstream order: the first control plane (repository, kubeadm,
    `kubeadm upgrade plan`, `apply`), the other control planes one at a time
    (`kubeadm upgrade node`), their kubelets one at a time, then workers in waves
    of --max-unavailable that respect PodDisruptionBudgets and capacity. The plan
    is checked against the safety invariants by a simulator before it is shown.
    """
    options = options_from(max_unavailable, worker_strategy, drain_policy,
                           allow_unknown_version, ignore_findings, strict_kubeadm_skew)
    parsed_hooks, parsed_windows = hooks_from(hooks, hook_file), windows_from(windows)
    state = load_state(from_state) if from_state else None
    session = make_session(release_data=release_data, today=resolve_today(today))
    if state is None:
        state = run_session(session, lambda s: s.observe_for_plan(to))
    result = session.plan(state, to, options)
    text = render(result, output)
    if output == "text":  # where the hooks run, and how many windows the estimate needs
        from datetime import UTC, datetime

        from kubehop.cli.plan_render import format_hooks, format_windows

        extra = format_hooks(result, parsed_hooks) + format_windows(
            result, parsed_windows, datetime.now(UTC))
        text += f"\n{extra}" if extra else ""
    write_output(text, out)
