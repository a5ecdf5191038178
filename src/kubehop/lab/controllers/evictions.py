"""Pod removal as the API server does it: graceful DELETE and the Eviction subresource.

`PodDeleter.delete_pod` follows the pod registry (`CheckGracefulDelete`, `BeforeDelete`): an
unscheduled or terminated pod, or grace 0, goes at once; otherwise it gets a deletionTimestamp
and the kubelet removes it later. A second DELETE may only shorten the grace period.
`PodDeleter.evict` applies `kubehop.lab.api.eviction.decide_eviction`: PDB status first, then the
DisruptionTarget condition, then the graceful delete. Every removal tells the recorder who
asked for it (eviction, delete, controller, kubelet) so the history can say so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kubehop.lab.api.eviction import decide_eviction, with_pod_condition
from kubehop.lab.api.status import ConflictStatus, NotFoundStatus, StatusError
from kubehop.lab.api.store import Store
from kubehop.lab.clock import LabClock, parse_rfc3339, rfc3339

Obj = dict[str, Any]
Answer = tuple[int, Obj, dict[str, str]]
# Codes of refused evictions of an existing pod that the history records.
REFUSALS = frozenset({403, 409, 429, 500})


class PodDeleter:
    """The single place pods are deleted; `note(uid, by)` and `refused(...)` feed the history."""

    def __init__(
        self,
        store: Store,
        clock: LabClock,
        note: Callable[[str, str], None] = lambda uid, by: None,
        refused: Callable[[str, str, int, str | None], None] = lambda ns, n, code, pdb: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.note = note
        self.refused = refused

    # --- DELETE -------------------------------------------------------------------------------

    def delete_pod(
        self,
        namespace: str,
        name: str,
        *,
        by: str = "delete",
        grace_seconds: int | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """Delete a pod (NotFound / Conflict raised as the API answers them).

        Returns the pod as a DELETE answers it: terminating (graceful) or its last state.
        """
        pod = self.store.peek("pods", namespace, name)
        if pod is None:
            raise NotFoundStatus("pods", name)
        meta = pod["metadata"]
        if uid and uid != meta.get("uid"):
            raise ConflictStatus("pods", name, "Precondition failed: UID in precondition: "
                                 f"{uid}, UID in object meta: {meta.get('uid')}")
        if resource_version and resource_version != meta.get("resourceVersion"):
            raise ConflictStatus("pods", name,
                                 "Precondition failed: ResourceVersion in precondition: "
                                 f"{resource_version}, ResourceVersion in object meta: "
                                 f"{meta.get('resourceVersion')}")
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        grace = grace_seconds
        if grace is None:
            grace = int(spec.get("terminationGracePeriodSeconds", 30) or 0)
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            grace = 0
        self.note(meta["uid"], by)
        current = meta.get("deletionGracePeriodSeconds")
        if meta.get("deletionTimestamp") and current:
            if grace_seconds is None or grace >= current:
                return self.store.get("pods", namespace, name)  # deletion already pending
            start = parse_rfc3339(meta["deletionTimestamp"]) - current
            if grace > 0:
                return self._mark(namespace, name, rfc3339(start + grace), grace)
        if grace <= 0:
            return self.store.delete("pods", namespace, name)
        return self._mark(namespace, name, rfc3339(self.clock.wall() + grace), grace)

    def _mark(self, namespace: str, name: str, when: str, grace: int) -> Obj:
        def mark(p: Obj) -> None:
            p["metadata"]["deletionTimestamp"] = when
            p["metadata"]["deletionGracePeriodSeconds"] = grace

        return self.store.mutate("pods", namespace, name, mark)

    def on_pod_delete(self, pod: Obj, grace: int, by: str) -> None:
        """`LabApi.on_pod_delete` hook: the server marked the pod; remember who asked."""
        self.note(pod["metadata"]["uid"], by)

    # --- eviction -------------------------------------------------------------------------

    def evict(
        self, namespace: str, name: str, body: Obj, dry_run: Sequence[str] = ()
    ) -> Answer:
        """POST pods/NAME/eviction: (HTTP status, v1 Status body, headers)."""
        pod = self.store.peek("pods", namespace, name)
        pdbs = list(self.store.iter("poddisruptionbudgets.policy", namespace))
        decision = decide_eviction(pod, pdbs, body, name, self.clock.wall(), dry_run=dry_run)
        headers = {"Retry-After": str(decision.retry_after)} if decision.retry_after else {}
        if not decision.allowed:
            if pod is not None and decision.code in REFUSALS:
                self.refused(namespace, name, decision.code, decision.pdb)
            return decision.code, decision.body, headers
        if decision.dry_run or not decision.delete or pod is None:
            return decision.code, decision.body, headers
        options = decision.delete_options or {}
        pre = options.get("preconditions") or {}
        meta = pod["metadata"]
        stale = (pre.get("uid") and pre["uid"] != meta.get("uid")) or (
            pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"))
        if decision.pdb_status is not None and decision.pdb:
            pdb_ns, _, pdb_name = decision.pdb.partition("/")
            new_status = decision.pdb_status
            self.store.mutate("poddisruptionbudgets.policy", pdb_ns, pdb_name,
                              lambda p: p.update(status=new_status))
        if stale:
            if decision.conflict_body is not None:
                self.refused(namespace, name, 429, decision.pdb)
                return 429, decision.conflict_body, {"Retry-After": "10"}
            err = ConflictStatus("pods", name, "Precondition failed")
            return err.code, err.status(), {}
        if decision.pod_condition is not None:
            condition = decision.pod_condition

            def add_condition(p: Obj) -> None:
                # `p` is already mutate's private copy: let with_pod_condition copy only the
                # status it changes, not the whole pod again.
                p["status"] = with_pod_condition(
                    {"status": p.get("status") or {}}, condition)["status"]

            self.store.mutate("pods", namespace, name, add_condition)
        try:
            self.delete_pod(namespace, name, by="eviction",
                            grace_seconds=decision.grace_period_seconds)
        except StatusError as err:
            return err.code, err.status(), {}
        return decision.code, decision.body, headers
