"""`kubehop rehearse`: run a plan with kubehop's executor against a twin (a lab) and report.

    run = await rehearse(session, to, options, clock, journal_dir)   # clock: lab seconds
    report = build_report(run.plan, run.recorder, run.halted, run.t0, run.t1,
                          history_events, violations, ...)

The shell does not know the lab (layers: shell | lab): the caller hands in a session on the
API and node transport the twin serves, a clock reading lab seconds, and the twin's history
judged by its own checker. The report says whether the run finished, how long it took in lab
seconds, each wait on a PodDisruptionBudget with its cause, the evictions the API refused, the
database switchovers, where it halted, the per-wave timeline and the safety verdict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubehop.core.drain.explain import DrainEvent
from kubehop.model.errors import UsageError
from kubehop.model.findings import Finding, Severity
from kubehop.model.plan import Plan, PlanOptions, Step, StepKind
from kubehop.shell.executor.cluster import KubeCluster
from kubehop.shell.executor.engine import Executor, RunHalted
from kubehop.shell.executor.events import HaltReport, ProgressEvent
from kubehop.shell.executor.expect import ExpectChecker
from kubehop.shell.executor.gates import HealthGates
from kubehop.shell.executor.journal import Journal
from kubehop.shell.executor.steps import StepRunner
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.session import Session
from kubehop.shell.steps.base import ExecutorOptions
from kubehop.shell.steps.facts import NodeFacts
from kubehop.shell.transports import Transport

# The lab's durations (lab seconds; DESIGN "Lab durations") and the user's, as `--timing FILE`
# gives them: the scenario's camelCase keys.
TIMING_KEYS = ("podStart", "podStop", "kubeletRestart", "staticPodRestart", "packageInstall",
               "switchover")
DEFAULT_TIMING: Mapping[str, float] = {"podStart": 5.0, "podStop": 2.0, "kubeletRestart": 10.0,
                                       "staticPodRestart": 20.0, "packageInstall": 8.0,
                                       "switchover": 3.0}
FIDELITY_NOTE = (
    "A rehearsal is not a guarantee: the lab models the API, scheduling, PodDisruptionBudgets, "
    "evictions, CloudNativePG switchovers, kubeadm, kubelets and package managers, but not "
    "networking, storage (volume attach/detach, CSI), image pulls and registries, admission "
    "webhooks and operators other than CloudNativePG, application readiness beyond a fixed "
    "pod start time, cloud load balancers or node reboots (README: Limitations).")


def load_timing(text: str, source: str) -> dict[str, float]:
    """`--timing FILE`: a YAML mapping of some of TIMING_KEYS to seconds (the rest default)."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(f"timing {source}: not YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"timing {source}: expected a mapping like {{kubeletRestart: 30}} "
                         f"(keys: {', '.join(TIMING_KEYS)})")
    timing = dict(DEFAULT_TIMING)
    for key, value in doc.items():
        if key not in TIMING_KEYS:
            raise UsageError(f"timing {source}: unknown key {key!r} (keys: "
                             f"{', '.join(TIMING_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise UsageError(f"timing {source}: {key}: expected seconds >= 0, got {value!r}")
        timing[key] = float(value)
    return timing


@dataclass(frozen=True, slots=True)
class PdbWait:
    """A drain that waited on a PodDisruptionBudget: which pod, which PDB, why."""

    node: str
    pod: str
    pdb: str | None
    cause: str
    t: float


@dataclass
class RehearsalRecorder:
    """What the executor did, stamped in lab seconds by `clock`."""

    clock: Callable[[], float]
    started: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    waits: list[PdbWait] = field(default_factory=list)
    switchovers: list[tuple[str, str, str, float]] = field(default_factory=list)  # node, pod, msg
    failed: list[tuple[str, str]] = field(default_factory=list)  # step, message

    def on_event(self, e: ProgressEvent) -> None:
        now = self.clock()
        if e.step is None:
            return
        if e.kind in ("step-started", "step-skipped"):
            self.started.setdefault(e.step, now)
        if e.kind in ("step-succeeded", "step-skipped"):
            self.ended[e.step] = now
        if e.kind == "step-failed":
            self.failed.append((e.step, e.message))

    def on_drain(self, step: Step, event: DrainEvent) -> None:
        now = self.clock()
        if event.kind == "blocked":
            self.waits.append(PdbWait(event.node, event.pod or "", event.pdb, event.message, now))
        elif event.kind == "switchover":
            self.switchovers.append((event.node, event.pod or "", event.message, now))


async def execute(client: KubeClient, transport: Transport, plan: Plan,
                  recorder: RehearsalRecorder, journal_dir: Path,
                  options: ExecutorOptions | None = None) -> HaltReport | None:
    """Run `plan` to its end (None) or its halt (the report), as `kubehop apply` runs it."""
    journal = Journal(journal_dir / "journal.sqlite3")
    kube = KubeCluster(client)
    await kube.start()
    try:
        runner = StepRunner(kube, transport, ExpectChecker(kube, NodeFacts(transport)),
                            HealthGates(kube), options or ExecutorOptions())
        executor = Executor(plan, journal, journal.begin("rehearsal", plan), runner,
                            on_event=recorder.on_event, resume="kubehop rehearse")
        forward = runner.on_drain

        def on_drain(step: Step, event: DrainEvent) -> None:
            recorder.on_drain(step, event)
            if forward is not None:
                forward(step, event)

        runner.on_drain = on_drain
        try:
            await executor.run()
        except RunHalted as halted:
            return halted.report
        return None
    finally:
        await kube.close()
        journal.close()


@dataclass
class RehearsalRun:
    """One run on one twin: the findings that stopped it, or the plan and what happened
    (t0, t1: lab seconds at its start and end)."""

    findings: list[Finding]
    plan: Plan | None = None
    recorder: RehearsalRecorder | None = None
    halted: HaltReport | None = None
    t0: float = 0.0
    t1: float = 0.0


async def rehearse(session: Session, to: str, options: PlanOptions, clock: Callable[[], float],
                   journal_dir: Path) -> RehearsalRun:
    """Check, plan and execute on the twin `session` talks to; stop at blocking findings that
    `options` does not ignore."""
    from kubehop.core.checks.run import run_checks
    from kubehop.core.planner.make import plan_upgrade
    from kubehop.core.planner.target import resolve

    state = await session.observe(workloads=True, apis=True, kubectl=False, node_facts=True)
    data = session.release_data(warn_stale=False)
    target = resolve(state, to, data, options)
    findings = run_checks(state, data, session.today, target.final)
    if any(f.severity is Severity.BLOCKING and f.id not in options.ignore_findings
           for f in findings):
        return RehearsalRun(findings)
    plan = plan_upgrade(state, target, data, options, findings)
    recorder = RehearsalRecorder(clock)
    t0 = clock()
    halted = await execute(await session.client(), session.transport(), plan, recorder,
                           journal_dir)
    return RehearsalRun(findings, plan, recorder, halted, t0, clock())


# --- the report ------------------------------------------------------------------------------


def _slowest(plan: Plan, wave: int, rec: RehearsalRecorder) -> tuple[str | None, float, str]:
    """(node, seconds, why) of the wave's slowest node: its longest step names the why."""
    per_node: dict[str, list[Step]] = {}
    for s in plan.steps:
        if s.wave == wave and s.node and s.kind is not StepKind.GATE:
            per_node.setdefault(s.node, []).append(s)
    best: tuple[str | None, float, str] = (None, 0.0, "")
    for node, steps in per_node.items():
        times = [(rec.ended[s.id] - rec.started[s.id], s) for s in steps
                 if s.id in rec.started and s.id in rec.ended]
        if not times:
            continue
        total = max(rec.ended[s.id] for _, s in times) - min(rec.started[s.id] for _, s in times)
        if total > best[1] or best[0] is None:
            longest, step = max(times, key=lambda t: t[0])
            why = f"{step.kind} took {longest:.0f} s"
            waits = [w for w in rec.waits if w.node == node]
            if waits and step.kind is StepKind.DRAIN:
                why += f", waiting on PDB {waits[0].pdb or '?'} ({len(waits)} refusals)"
            best = (node, total, why)
    return best


def timeline(plan: Plan, rec: RehearsalRecorder, t0: float) -> list[dict[str, Any]]:
    """Per wave: start, end (lab seconds since the run began), slowest node and why."""
    out = []
    for w in plan.waves:
        ids = [s.id for s in plan.steps if s.wave == w.index]
        begun = [rec.started[i] for i in ids if i in rec.started]
        ended = [rec.ended[i] for i in ids if i in rec.ended]
        if not begun:
            continue
        node, _, why = _slowest(plan, w.index, rec)
        out.append({"wave": w.index, "hop": w.hop, "kind": w.kind, "nodes": len(w.nodes),
                    "start": round(min(begun) - t0, 1),
                    "end": round(max(ended) - t0, 1) if ended else None,
                    "slowest": node, "why": why})
    return out


def refused_evictions(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The lab history's `eviction-refused` events, counted per pod and PDB."""
    counts: Counter[tuple[str, str | None, int]] = Counter()
    for e in events:
        if e.get("type") == "eviction-refused":
            counts[(f"{e['namespace']}/{e['name']}", e.get("pdb"), int(e.get("code", 429)))] += 1
    return [{"pod": pod, "pdb": pdb, "code": code, "times": n}
            for (pod, pdb, code), n in sorted(counts.items(), key=lambda kv: kv[0][:2])]


def build_report(plan: Plan, rec: RehearsalRecorder, halted: HaltReport | None, t0: float,
                 t1: float, events: Iterable[Mapping[str, Any]], violations: list[str], *,
                 timing: Mapping[str, float], user_seconds: float | None,
                 live_fingerprint: str | None) -> dict[str, Any]:
    """The machine-readable report (`rehearse -o json`)."""
    waits = [{"node": w.node, "pod": w.pod, "pdb": w.pdb, "cause": w.cause,
              "t": round(w.t - t0, 1)} for w in rec.waits]
    return {
        "finished": halted is None,
        "from": plan.from_version, "to": plan.to_version, "hops": list(plan.hops),
        "steps": len(plan.steps), "waves": len(plan.waves),
        "durationSeconds": {"labTiming": round(t1 - t0, 1),
                            "userTiming": None if user_seconds is None else round(user_seconds, 1)},
        "timing": dict(timing),
        "pdbWaits": waits,
        "refusedEvictions": refused_evictions(events),
        "switchovers": [{"node": n, "pod": p, "message": m, "t": round(t - t0, 1)}
                        for n, p, m, t in rec.switchovers],
        "halt": halted.to_dict() if halted is not None else None,
        "timeline": timeline(plan, rec, t0),
        "safety": {"violations": violations, "ok": not violations},
        "fingerprint": plan.fingerprint,
        "liveFingerprint": live_fingerprint,
        "fidelity": FIDELITY_NOTE,
    }


def report_lines(report: Mapping[str, Any]) -> list[str]:
    """The report for people: the verdict, then the facts, one per line."""
    d = report["durationSeconds"]
    head = "finished" if report["finished"] else "HALTED"
    lines = [f"Rehearsal {head}: {report['from']} → {report['to']}, {report['steps']} steps in "
             f"{report['waves']} waves.",
             f"  duration: {d['labTiming']:,.0f} s at the lab's timing"
             + (f", {d['userTiming']:,.0f} s at yours" if d["userTiming"] is not None else "")]
    if report["halt"]:
        lines += [f"  would halt: {f['step']}" + (f" on node {f['node']}" if f["node"] else "")
                  + f": {f['message']}" for f in report["halt"]["failed"]]
        lines += [f"  would leave cordoned: {c['node']} ({c['why']})"
                  for c in report["halt"]["cordoned"]]
    for s in report["switchovers"]:
        lines.append(f"  switchover: {s['pod']} off {s['node']} at {s['t']:,.0f} s"
                     + (f" ({s['message']})" if s["message"] else ""))
    by_pdb: dict[str, list[Mapping[str, Any]]] = {}
    for w in report["pdbWaits"]:
        by_pdb.setdefault(w["pdb"] or "(no PDB named)", []).append(w)
    for pdb, waits in by_pdb.items():
        lines.append(f"  waited on PDB {pdb}: {len(waits)} time{'s' * (len(waits) > 1)}, "
                     f"first for {waits[0]['pod']} on {waits[0]['node']}: {waits[0]['cause']}")
    refused = report["refusedEvictions"]
    if refused:
        total = sum(r["times"] for r in refused)
        lines.append(f"  evictions refused: {total} ("
                     + ", ".join(f"{r['pod']} x{r['times']} by {r['pdb'] or r['code']}"
                                 for r in refused[:5])
                     + (f", and {len(refused) - 5} more pods" if len(refused) > 5 else "") + ")")
    lines.append("  timeline (lab seconds):")
    for w in report["timeline"]:
        end = f"{w['end']:>8,.0f}" if w["end"] is not None else "       -"
        lines.append(f"    wave {w['wave']:>3} {w['hop']:>5} {w['kind']:<22} {w['start']:>8,.0f} "
                     f"→ {end}  {w['nodes']} node(s)"
                     + (f"; slowest {w['slowest']}: {w['why']}" if w["slowest"] else ""))
    v = report["safety"]["violations"]
    lines.append("  safety: no invariant broken (lab history)" if not v else
                 f"  safety: {len(v)} violation(s): " + "; ".join(v[:3]))
    live = report.get("liveFingerprint")
    if live and live != report["fingerprint"]:
        lines.append(f"  warning: the twin's fingerprint {report['fingerprint']} differs from "
                     f"the live cluster's {live}: `kubehop apply` will refuse this plan")
    lines.append(f"Note: {report['fidelity']}")
    return lines


def exit_status(report: Mapping[str, Any]) -> int:
    """0 rehearsed clean; 1 halted or an invariant broken."""
    return 0 if report["finished"] and report["safety"]["ok"] else 1

