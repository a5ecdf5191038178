"""Where the operator's hooks run in a plan: pure placement, no I/O.

    hooks = parse_hooks(["before-drain=./silence-alerts.sh", "after-hop=./smoke-test.sh"])
    placed = place_hooks(plan, hooks)        # step id (or START / END) → hook calls before it

Every hook runs *before* a step the executor performs anyway, so a resume runs a hook that did
not succeed again and the step after it waits for it:

| event | runs before | context |
|---|---|---|
| `before-hop` | the gate that precedes the hop's first step (START for the first hop) | hop |
| `after-control-plane` | the gate closing the hop's last control-plane wave (1) | hop |
| `before-drain` | the node's cordon (or drain) step | hop, node |
| `after-uncordon` | the gate closing the wave of the node's uncordon | hop, node |
| `after-hop` | the hop's final gate | hop |
| `finished` | END: after every step, before the run is recorded succeeded | |
| `halted` | when a run halts (not placed: it never blocks anything) | |

(1) every control plane's static pods are at the hop: the guide's "upgrade your CNI plugin"
moment, before any kubelet moves.

At one gate, `after-uncordon` hooks come first, then `after-control-plane`, `after-hop`, then
the next hop's `before-hop`; several hooks of one event run in the order given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from kubehop.model.errors import UsageError
from kubehop.model.plan import Plan, Step, StepKind

HOOK_EVENTS = ("before-hop", "after-control-plane", "before-drain", "after-uncordon",
               "after-hop", "finished", "halted")
START = "<start>"
END = "<end>"
_ORDER = {e: i for i, e in enumerate(("after-uncordon", "after-control-plane", "after-hop",
                                      "before-hop", "before-drain", "finished"))}


@dataclass(frozen=True, slots=True)
class Hook:
    """A command of the operator's for one event (run with `sh -c` on the operator's machine)."""

    event: str
    command: str


@dataclass(frozen=True, slots=True)
class HookCall:
    """One run of a hook at one place: `id` is what the journal records it under."""

    id: str
    event: str
    command: str
    hop: str | None = None
    node: str | None = None


def parse_hook(text: str) -> Hook:
    """`EVENT=COMMAND` (`--hook`); UsageError naming the events otherwise."""
    event, sep, command = text.partition("=")
    event = event.strip()
    if not sep or event not in HOOK_EVENTS or not command.strip():
        raise UsageError(f"bad --hook {text!r}: expected EVENT=COMMAND with EVENT one of "
                         f"{', '.join(HOOK_EVENTS)}")
    return Hook(event, command.strip())


def parse_hooks(texts: Iterable[str]) -> tuple[Hook, ...]:
    return tuple(parse_hook(t) for t in texts)


def hooks_from_config(data: object, source: str) -> tuple[Hook, ...]:
    """Hooks of a config file's `hooks:` mapping (event → command or list of commands)."""
    if data is None:
        return ()
    section = data.get("hooks") if isinstance(data, Mapping) else None
    if not isinstance(section, Mapping):
        raise UsageError(f"{source}: expected a mapping `hooks:` of event → command(s)")
    out = []
    for event, commands in section.items():
        if event not in HOOK_EVENTS:
            raise UsageError(f"{source}: hooks.{event}: unknown event (expected one of "
                             f"{', '.join(HOOK_EVENTS)})")
        items = [commands] if isinstance(commands, str) else commands
        if not isinstance(items, list) or not all(isinstance(c, str) and c.strip()
                                                  for c in items):
            raise UsageError(f"{source}: hooks.{event}: expected a command or a list of "
                             f"commands")
        out += [Hook(str(event), c.strip()) for c in items]
    return tuple(out)


def _hop_key(step: Step) -> str:
    return step.id.split("/", 1)[0]


def place_hooks(plan: Plan, hooks: Sequence[Hook]) -> dict[str, tuple[HookCall, ...]]:
    """Step id (or START / END) → the hook calls to run before it, in order (see the module
    docstring). `halted` hooks are not placed."""
    by_event: dict[str, list[Hook]] = {}
    for h in hooks:
        by_event.setdefault(h.event, []).append(h)
    if not by_event:
        return {}
    placed: dict[str, list[tuple[int, HookCall]]] = {}

    def put(anchor: str, event: str, key: str, hop: str | None = None,
            node: str | None = None) -> None:
        for k, h in enumerate(by_event.get(event, ())):
            call = HookCall(f"hook/{event}/{key}/{k}", event, h.command, hop, node)
            placed.setdefault(anchor, []).append((_ORDER[event], call))

    steps = plan.steps
    gates = [i for i, s in enumerate(steps) if s.kind is StepKind.GATE]
    wave_kind = {w.index: w.kind for w in plan.waves}

    def gate_after(i: int) -> str | None:
        return next((steps[g].id for g in gates if g > i), None)

    first_of_hop: dict[str, int] = {}
    last_gate_of_hop: dict[str, int] = {}
    last_cp_gate: dict[str, int] = {}
    for i, s in enumerate(steps):
        if s.kind is StepKind.GATE:
            last_gate_of_hop[s.hop] = i
            if s.wave is not None and wave_kind.get(s.wave) == "control-plane":
                last_cp_gate[s.hop] = i
        else:
            first_of_hop.setdefault(s.hop, i)
    for hop in plan.hops:
        first = first_of_hop.get(hop)
        if first is None:
            continue
        before = max((g for g in gates if g < first), default=None)
        put(steps[before].id if before is not None else START, "before-hop", hop, hop)
        if hop in last_cp_gate:
            put(steps[last_cp_gate[hop]].id, "after-control-plane", hop, hop)
        if hop in last_gate_of_hop:
            put(steps[last_gate_of_hop[hop]].id, "after-hop", hop, hop)
    drained: set[tuple[str, str]] = set()
    for i, s in enumerate(steps):
        if s.node is None:
            continue
        key = f"{_hop_key(s)}/{s.node}"
        if s.kind in (StepKind.CORDON, StepKind.DRAIN) and (s.hop, s.node) not in drained:
            drained.add((s.hop, s.node))
            put(s.id, "before-drain", key, s.hop, s.node)
        elif s.kind is StepKind.UNCORDON:
            gate = gate_after(i)
            if gate is not None:
                put(gate, "after-uncordon", key, s.hop, s.node)
    put(END, "finished", "run")
    return {anchor: tuple(c for _, c in sorted(calls, key=lambda x: x[0]))
            for anchor, calls in placed.items()}


def halted_calls(hooks: Sequence[Hook]) -> tuple[HookCall, ...]:
    return tuple(HookCall(f"hook/halted/{k}", "halted", h.command)
                 for k, h in enumerate(x for x in hooks if x.event == "halted"))


def describe_hooks(plan: Plan, hooks: Sequence[Hook]) -> list[str]:
    """Where each hook runs, for the plan's text: one line per event."""
    placed = place_hooks(plan, hooks)
    where: dict[str, list[str]] = {}
    for anchor, calls in placed.items():
        for c in calls:
            spot = "at the start" if anchor == START else (
                "at the end" if anchor == END else f"before {anchor}")
            where.setdefault(c.event, [])
            if spot not in where[c.event]:
                where[c.event].append(spot)
    lines = []
    for event in HOOK_EVENTS:
        commands = [h.command for h in hooks if h.event == event]
        if not commands:
            continue
        spots = where.get(event, ["when a run halts"] if event == "halted" else ["nowhere"])
        shown = ", ".join(spots[:4]) + (f" … (+{len(spots) - 4})" if len(spots) > 4 else "")
        lines.append(f"  {event}: {'; '.join(commands)} — {len(spots)}× ({shown})")
    return lines
