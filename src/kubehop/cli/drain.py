"""`kubehop drain`, `cordon`, `uncordon`: kubectl's flags and lines, plus what a drain waits for.

People get kubectl's lines (`node/w1 cordoned`, `evicting pod web/a`, `pod/a evicted`,
`node/w1 drained`) and, while pods remain, `waiting` lines naming the PodDisruptionBudget and
what blocks it; `--log-format json` writes every event as one JSON object per line. The drain
library is imported inside the commands so that `kubehop --help` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import click

from kubehop.cli.context import global_options, make_session, run_session
from kubehop.cli.params import parse_duration
from kubehop.core.drain.rules import DrainOptions
from kubehop.core.selectors import valid_label_selector

if TYPE_CHECKING:
    from kubehop.core.drain.explain import DrainEvent
    from kubehop.shell.session import Session


def drain_options(params: Mapping[str, Any]) -> DrainOptions:
    """DrainOptions from the `drain` command's parsed flags (click's parameter names)."""
    if not valid_label_selector(params["pod_selector"]):
        raise click.BadParameter("must be a valid label selector", param_hint="--pod-selector")
    return DrainOptions(
        force=params["force"], ignore_daemonsets=params["ignore_daemonsets"],
        delete_emptydir_data=params["delete_emptydir_data"], grace_period=params["grace_period"],
        timeout=parse_duration(params["timeout_text"], "--timeout"),
        pod_selector=params["pod_selector"],
        skip_wait_for_delete_timeout=params["skip_wait_for_delete_timeout"],
        disable_eviction=params["disable_eviction"], dry_run=params["dry_run"] != "none",
        switchover_timeout=parse_duration(params["switchover_text"], "--switchover-timeout"))


def format_event(event: DrainEvent) -> tuple[str, bool] | None:
    """The kubectl-like line for an event and whether it goes to standard error."""
    suffix = " (dry run)" if event.dry_run else ""
    pod = event.pod or ""
    name = pod.split("/", 1)[-1]
    kind = event.kind
    if kind in ("cordoned", "uncordoned"):
        return f"node/{event.node} {kind}{suffix}", False
    if kind.startswith("already-"):
        return f"node/{event.node} already {kind.removeprefix('already-')}", False
    if kind == "warning":
        return f"Warning: {event.message}", True
    if kind in ("evicting", "deleting"):
        return f"{kind} pod {pod}{suffix}", False
    if kind in ("evicted", "deleted"):
        return f"pod/{name} {kind}", False
    if kind == "blocked":
        verb = "would wait" if event.dry_run else "blocked"
        return f"pod {pod} {verb}: {event.message}", True
    if kind == "waiting":
        shown = ", ".join(event.pods[:5]) + (f" and {len(event.pods) - 5} more"
                                             if len(event.pods) > 5 else "")
        noun = "pod" if len(event.pods) == 1 else "pods"
        return f"waiting for {len(event.pods)} {noun} ({shown}): {event.message}", True
    if kind == "switchover":
        return event.message, True
    if kind == "drained":
        return f"node/{event.node} drained{suffix}", False
    return None


def _printer(json_lines: bool) -> Callable[[DrainEvent], None]:
    def show(event: DrainEvent) -> None:
        if json_lines:
            click.echo(json.dumps(event.to_dict(), ensure_ascii=False))
            return
        line = format_event(event)
        if line is not None:
            click.echo(line[0], err=line[1])

    return show


def _dry_run_option(f):  # noqa: ANN001 - a decorator
    return click.option(
        "--dry-run", type=click.Choice(["none", "client", "server"]), default="none",
        is_flag=False, flag_value="client", show_default=True,
        help="Only print what would be done (client and server both change nothing).")(f)


@click.command()
@click.argument("node")
@click.option("--ignore-daemonsets", is_flag=True, help="Ignore DaemonSet-managed pods.")
@click.option("--delete-emptydir-data", is_flag=True,
              help="Continue even if there are pods using emptyDir (local data that will be "
                   "deleted when the node is drained).")
@click.option("--force", is_flag=True,
              help="Continue even if there are pods not managed by a ReplicationController, "
                   "ReplicaSet, Job, DaemonSet or StatefulSet.")
@click.option("--grace-period", type=int, default=-1, show_default=True,
              help="Seconds each pod gets to terminate; negative: the pod's own value.")
@click.option("--timeout", "timeout_text", default="0", metavar="DURATION", show_default=True,
              help="Give up after this long (e.g. 10m); 0 waits forever. The node stays "
                   "cordoned and is named in the error.")
@click.option("--pod-selector", default="", metavar="SELECTOR",
              help="Label selector to filter pods on the node.")
@click.option("--skip-wait-for-delete-timeout", type=int, default=0, metavar="SECONDS",
              help="If a pod's DeletionTimestamp is older than SECONDS, skip waiting for it.")
@click.option("--disable-eviction", is_flag=True,
              help="Delete pods instead of evicting them: PodDisruptionBudgets are bypassed.")
@click.option("--switchover-timeout", "switchover_text", default="5m", metavar="DURATION",
              show_default=True,
              help="How long to wait for a database operator (CloudNativePG) to move a primary "
                   "off the node before evicting it.")
@_dry_run_option
def drain(node: str, **params: Any) -> None:
    """Cordon NODE and evict its pods, as `kubectl drain` does, explaining what blocks.

    \b
    Exit codes: 0 drained, 1 refused or failed (the error names the node if it was left
    cordoned), 2 bad flags.
    """
    options = drain_options(params)
    json_lines = global_options().log_format == "json"

    async def go(session: Session) -> None:
        from kubehop.core.drain.rules import DrainError

        try:
            await session.drain(node, options, _printer(json_lines))
        except DrainError as e:
            if json_lines:
                click.echo(json.dumps({"kind": "failed", "node": node, "message": str(e),
                                       "leftCordoned": e.left_cordoned, "pods": e.pending}))
            raise

    run_session(make_session(), go)


def _set_unschedulable(node: str, desired: bool, dry_run: str) -> None:
    options = DrainOptions(dry_run=dry_run != "none")
    show = _printer(global_options().log_format == "json")
    run_session(make_session(),
                lambda session: session.set_unschedulable(node, desired, options, show))


@click.command()
@click.argument("node")
@_dry_run_option
def cordon(node: str, dry_run: str) -> None:
    """Mark NODE unschedulable (nothing is sent when it already is)."""
    _set_unschedulable(node, True, dry_run)


@click.command()
@click.argument("node")
@_dry_run_option
def uncordon(node: str, dry_run: str) -> None:
    """Mark NODE schedulable again (nothing is sent when it already is)."""
    _set_unschedulable(node, False, dry_run)
