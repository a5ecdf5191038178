"""POST pods/NAME/eviction: `kubehop.lab.api.eviction.decide_eviction` decides (PDBs, upstream
order and messages), this endpoint makes the writes the decision names."""

from __future__ import annotations

from aiohttp import web

from kubehop.lab.api.eviction import EvictionDecision, decide_eviction
from kubehop.lab.api.status import StatusError
from kubehop.lab.api.store import Obj
from kubehop.lab.api.target import ApiContext, ResourceTarget
from kubehop.lab.api.verbs import (
    check_preconditions,
    json_reply,
    read_body,
    remove_pod,
)


def _decide(api: ApiContext, request: web.Request, t: ResourceTarget, pod: Obj | None,
            body: Obj) -> EvictionDecision:
    """The eviction decision (PDBs, upstream order and messages) for `pod`."""
    pdbs = list(api.store.iter("poddisruptionbudgets.policy", t.namespace)) if pod else []
    return decide_eviction(pod, pdbs, body, t.name or "", api.now().timestamp(),
                           dry_run=request.query.getall("dryRun", []))


def _apply_decision(api: ApiContext, t: ResourceTarget, pod: Obj,
                    decision: EvictionDecision) -> web.Response:
    """Make the writes a granted decision names: PDB status, pod condition, pod deletion."""
    if decision.pdb_status is not None and decision.pdb:
        ns, name = decision.pdb.split("/", 1)
        api.store.mutate("poddisruptionbudgets.policy", ns, name,
                         lambda p: p.update(status=decision.pdb_status))
    if decision.delete:
        opts = decision.delete_options or {}
        try:
            check_preconditions(t, pod, opts)
        except StatusError:
            if decision.conflict_body:
                body = decision.conflict_body
                return json_reply(body, body.get("code", 429))
            raise
        if decision.pod_condition:
            def add_condition(p: Obj) -> None:
                conds = [c for c in p.setdefault("status", {}).get("conditions") or []
                         if c.get("type") != decision.pod_condition["type"]]
                p["status"]["conditions"] = [*conds, decision.pod_condition]

            pod = api.store.mutate("pods", t.namespace or "", t.name or "", add_condition)
        remove_pod(api, pod, decision.grace_period_seconds, "eviction")
    return json_reply(decision.body, decision.code)


async def evict(api: ApiContext, request: web.Request, t: ResourceTarget) -> web.Response:
    """POST pods/NAME/eviction: `kubehop.lab.api.eviction` decides, this endpoint writes."""
    body = await read_body(request)
    pod = api.store.peek("pods", t.namespace or "", t.name or "")
    decision = _decide(api, request, t, pod, body)
    if not decision.allowed:
        headers = {"Retry-After": str(decision.retry_after)} if decision.retry_after else None
        return json_reply(decision.body, decision.code, headers)
    return _apply_decision(api, t, pod or {}, decision)
