"""`kubehop apply`, `upgrade` and `status`: run a plan, resumably; plan and run; show progress.

    kubehop apply PLAN_FILE [--yes] [--dry-run]   run (or resume) a plan made by `kubehop plan`
    kubehop apply [--yes]                         resume this cluster's unfinished run
    kubehop apply --abandon                       give up this cluster's unfinished run
    kubehop upgrade --to 1.30 [plan options] [--yes] [--dry-run]   check, plan, confirm, apply
    kubehop status [-o table|json|yaml]           the current or last run, from the journal

Every step is journaled before and after it runs ($KUBEHOP_STATE_DIR or
~/.local/state/kubehop/), so running the same command again after a failure, Ctrl-C or a crash
resumes where the run stopped. Exit 3 when a run halts (the report names the failed step, the
nodes left cordoned and how to resume). The work is the session's
(`kubehop.shell.session`); these commands parse flags and hand it a front end (`cli.ui`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kubehop.cli.context import global_options, host_key_option, make_session, run_session
from kubehop.cli.output import MACHINE_FORMATS, emit, json_stdout
from kubehop.cli.params import parse_duration
from kubehop.cli.plan import (
    hook_options,
    hooks_from,
    options_from,
    plan_options,
    read_document,
    window_option,
    windows_from,
)
from kubehop.cli.releases import release_data_option, resolve_today
from kubehop.model.errors import UsageError
from kubehop.model.plan import Plan

if TYPE_CHECKING:
    from kubehop.shell.session import ApplySettings, Session


def apply_options(f: Any) -> Any:
    """The options `apply` and `upgrade` share."""
    for option in reversed([
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation."),
        click.option("--dry-run", is_flag=True,
                     help="Show what would run next (checked against the cluster); change "
                          "nothing."),
        host_key_option,
        click.option("--parallel", type=click.IntRange(1, 10_000), default=256,
                     show_default=True, help="Steps running at once (nodes of a wave)."),
        click.option("--ready-timeout", default="10m", show_default=True, metavar="D",
                     help="How long a node may take to be Ready after its kubelet restart."),
        click.option("--drain-timeout", default="30m", show_default=True, metavar="D",
                     help="How long one drain may wait (PodDisruptionBudgets); 0: forever."),
        click.option("--step-timeout", default="15m", show_default=True, metavar="D",
                     help="How long one node command, and a step's health gate, may take."),
        click.option("--kubeadm-timeout", default="30m", show_default=True, metavar="D",
                     help="How long kubeadm upgrade apply|node may run (it waits up to 5 min "
                          "per static pod; kubehop never kills it)."),
        click.option("--lock-wait", default="10m", show_default=True, metavar="D",
                     help="How long to wait for another process's package manager lock on a "
                          "node (unattended-upgrades)."),
        *hook_options,
        click.option("--hook-timeout", default="10m", show_default=True, metavar="D",
                     help="How long one hook may run before it is killed (and fails)."),
        window_option,
        click.option("--wait-for-window", is_flag=True,
                     help="Outside the windows, wait for the next one instead of halting."),
        click.option("--notify", multiple=True, metavar="URL",
                     help="POST JSON events (started, hop-finished, node-halted, window-closed, "
                          "halted, finished; with a Slack-compatible `text`) to this webhook "
                          "(repeatable). A failed post is a warning, never a halt."),
        click.option("--etcd-snapshot-dir", metavar="DIR", type=click.Path(file_okay=False),
                     help="Also copy each etcd snapshot (taken on the first control plane before "
                          "every kubeadm upgrade apply) to DIR on this machine."),
    ]):
        f = option(f)
    return f


def _settings(params: dict[str, Any]) -> ApplySettings:
    """ApplySettings from the apply flags (click's values)."""
    from kubehop.shell.session import ApplySettings
    from kubehop.shell.steps.base import ExecutorOptions

    step = parse_duration(params["step_timeout"], "--step-timeout")
    return ApplySettings(
        dry_run=params["dry_run"],
        executor=ExecutorOptions(
            parallel=params["parallel"], command_timeout=step, gate_timeout=step,
            verify_timeout=min(step, 300.0),
            ready_timeout=parse_duration(params["ready_timeout"], "--ready-timeout"),
            drain_timeout=parse_duration(params["drain_timeout"], "--drain-timeout"),
            kubeadm_timeout=parse_duration(params["kubeadm_timeout"], "--kubeadm-timeout"),
            lock_wait=parse_duration(params["lock_wait"], "--lock-wait"),
            etcd_snapshot_dir=params["etcd_snapshot_dir"]),
        hooks=hooks_from(params["hooks"], params["hook_file"]),
        hook_timeout=parse_duration(params["hook_timeout"], "--hook-timeout"),
        windows=windows_from(params["windows"]), wait_for_window=params["wait_for_window"],
        notify=params["notify"])


def _session(params: dict[str, Any], release_data: str | None,
             today: str | None = None) -> Session:
    """The session of an `apply` or `upgrade`: its confirmation follows --yes."""
    from kubehop.cli.ui import ClickUi

    ui = ClickUi(global_options().log_format, yes=params["yes"])
    return make_session(release_data=release_data, today=resolve_today(today) if today else None,
                        ui=ui)


@click.command("apply")
@click.argument("plan_file", required=False, metavar="[PLAN_FILE]")
@apply_options
@release_data_option
@click.option("--abandon", is_flag=True,
              help="Give up this cluster's unfinished run instead (it will not be resumed).")
def apply(plan_file: str | None, abandon: bool, release_data: str | None,
          **params: Any) -> None:
    """Apply a plan (`kubehop plan -o json --out FILE`), resuming from its journal.

    \b
    Without PLAN_FILE, resumes this cluster's unfinished run. A new plan must
    still match the cluster (its fingerprint), else it is refused with the
    differences; a plan already started resumes: each step's expected after-state
    is checked before it runs. Exit 3 when the run halts; run it again to resume.
    """
    settings = _settings(params)
    if abandon and plan_file:
        raise UsageError("--abandon takes no PLAN_FILE: it gives up the cluster's "
                         "unfinished run")
    plan = Plan.from_dict(read_document(plan_file, "plan file")) if plan_file else None
    session = _session(params, release_data)
    with json_stdout(global_options().log_format):
        if abandon:
            run_session(session, lambda s: s.abandon())
        elif plan is None:
            run_session(session, lambda s: s.resume(settings))
        else:
            run_session(session, lambda s: s.apply(plan, settings, plan_path=plan_file))


@click.command("upgrade")
@plan_options
@apply_options
def upgrade(to: str, max_unavailable: str, worker_strategy: str, drain_policy: str,
            strict_kubeadm_skew: bool, allow_unknown_version: bool,
            ignore_findings: tuple[str, ...],
            from_state: str | None, today: str | None, release_data: str | None,
            **params: Any) -> None:
    """Check, plan, show the plan, confirm and apply it: the whole upgrade.

    \b
    An unfinished run towards the same version is resumed instead of planned
    again (its nodes may be cordoned mid-way). Same exit codes as `apply`.
    """
    if from_state:
        raise UsageError("--from-state plans from a file; `upgrade` observes the cluster it "
                         "changes (use `kubehop plan --from-state` then `kubehop apply`)")
    options = options_from(max_unavailable, worker_strategy, drain_policy,
                           allow_unknown_version, ignore_findings, strict_kubeadm_skew)
    settings = _settings(params)
    session = _session(params, release_data, today)
    with json_stdout(global_options().log_format):
        run_session(session, lambda s: s.upgrade(to, options, settings))


@click.command("status")
@click.option("-o", "--output", type=click.Choice(["table", *MACHINE_FORMATS]),
              default="table", show_default=True, help="Output format.")
@click.option("--run", "run_id", metavar="ID", help="A run id (default: the latest run).")
def status(output: str, run_id: str | None) -> None:
    """Progress of the current or last run, from the journal (no cluster access)."""
    from kubehop.cli.apply_status import format_status, status_document
    from kubehop.shell.session.runs import read_run

    plan, state = read_run(run_id)
    if output in MACHINE_FORMATS:
        emit(status_document(plan, state), output)
    else:
        click.echo(format_status(plan, state), nl=False)
