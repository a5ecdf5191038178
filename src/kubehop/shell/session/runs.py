"""A run's record: the settings it runs with, its id, the copy of its plan beside the journal,
and the journal questions every flow asks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kubehop.model.errors import OperationError, VersionError
from kubehop.model.journal import RunState, plan_digest, run_id
from kubehop.model.plan import Plan
from kubehop.model.versions import parse_kube_version, parse_minor_version

if TYPE_CHECKING:
    from kubehop.core.hooks import Hook
    from kubehop.core.windows import Window
    from kubehop.shell.executor.journal import Journal
    from kubehop.shell.steps.base import ExecutorOptions


@dataclass(frozen=True)
class ApplySettings:
    """What the user asked of `apply`/`upgrade` beyond the plan and the session's options."""

    executor: ExecutorOptions
    dry_run: bool = False
    hooks: tuple[Hook, ...] = ()  # --hook / --hook-file: the operator's commands (core.hooks)
    hook_timeout: float = 600.0
    windows: tuple[Window, ...] = ()  # --window: maintenance windows (core.windows)
    wait_for_window: bool = False
    notify: tuple[str, ...] = ()  # --notify URL: webhooks for the run's milestones


def saved_plan_path(rid: str) -> Path:
    """Where the copy of run `rid`'s plan is kept."""
    from kubehop.shell.executor.journal import state_dir

    return state_dir() / "plans" / f"{rid}.json"


def save_plan(plan: Plan, rid: str) -> Path:
    """Keep a copy of the plan beside the journal, for `kubehop apply FILE` and people."""
    path = saved_plan_path(rid)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(plan.to_dict(), indent=4, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def plan_run_id(cluster: str, plan: Plan) -> str:
    """The deterministic id of `plan`'s run on `cluster`."""
    return run_id(cluster, plan.fingerprint, plan_digest(plan.to_dict()))


def read_run(run: str | None) -> tuple[Plan, RunState]:
    """Run `run` (default: the latest) and its plan, from the journal alone (`kubehop status`)."""
    from kubehop.shell.executor.journal import Journal

    with Journal.open() as journal:
        state = journal.find(run) if run else journal.latest()
        if state is None:
            raise OperationError(f"no run {run} in the journal" if run else
                                 f"no kubehop run recorded yet (journal {journal.path})")
        return journal.plan_of(state.run.id), state


def same_target(to: str, recorded: str) -> bool | None:
    """Whether `--to` names the recorded target (None: a keyword such as `latest`, which
    cannot be told apart without planning)."""
    try:
        return parse_kube_version(to.strip()) == parse_kube_version(recorded)
    except VersionError:
        pass
    try:
        return parse_minor_version(to.strip()) == parse_kube_version(recorded).minor_version
    except VersionError:
        return None


def refuse_other_run(journal: Journal, cluster: str, rid: str) -> None:
    """Refuse while another run of the cluster is unfinished."""
    other = journal.latest(cluster, unfinished=True)
    if other is not None and other.run.id != rid:
        raise OperationError(
            f"run {other.run.id} ({other.run.from_version} → {other.run.to_version}, "
            f"{other.status}) is unfinished on this cluster: resume it with `kubehop apply`, "
            "or give it up with `kubehop apply --abandon`, then plan again")
