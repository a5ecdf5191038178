"""What changed between a saved plan and the plan the cluster calls for now.

`apply` refuses a new plan whose fingerprint no longer matches the cluster; to say why, it plans
again from the cluster as it is and lists the differences step by step (one line each), which
names the nodes and versions that moved far better than two hashes.
"""

from __future__ import annotations

from kubehop.model.plan import Plan, Step

_LIMIT = 12


def _brief(step: Step) -> str:
    return step.description or str(step.kind)


def diff_plans(saved: Plan, current: Plan, limit: int = _LIMIT) -> list[str]:
    """One line per difference (at most `limit`, then a count of the rest)."""
    out: list[str] = []
    if saved.from_version != current.from_version:
        out.append(f"the cluster now runs {current.from_version}, the plan starts from "
                   f"{saved.from_version}")
    if saved.to_version != current.to_version:
        out.append(f"the target is now {current.to_version}, the plan goes to "
                   f"{saved.to_version}")
    old = {s.id: s for s in saved.steps}
    new = {s.id: s for s in current.steps}
    old_nodes = {s.node for s in saved.steps if s.node}
    new_nodes = {s.node for s in current.steps if s.node}
    out += [f"node {n} is not in the plan" for n in sorted(new_nodes - old_nodes)]
    out += [f"node {n} of the plan needs nothing now (or is gone)"
            for n in sorted(old_nodes - new_nodes)]
    for step_id, step in old.items():
        if step.node in old_nodes - new_nodes:
            continue
        other = new.get(step_id)
        if other is None:
            out.append(f"step {step_id} is no longer needed ({_brief(step)})")
        elif other.commands != step.commands or dict(other.expect) != dict(step.expect):
            out.append(f"step {step_id} changed: now {_brief(other)}")
    for step_id, step in new.items():
        if step_id not in old and step.node not in new_nodes - old_nodes:
            out.append(f"step {step_id} is needed now ({_brief(step)})")
    if len(out) > limit:
        out = [*out[:limit], f"… and {len(out) - limit} more"]
    return out
