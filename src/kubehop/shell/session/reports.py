"""What a session reports to its front end, as data (the front end renders it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NextStep:
    """A step whose dependencies are done: what the run would do with it."""

    step: str
    verdict: str  # pass (a gate), skip (already done), run
    why: str | None = None  # for run: what does not hold yet
    node: str | None = None
    commands: tuple[str, ...] = ()  # for run: the command lines


@dataclass(frozen=True)
class DryRun:
    """What a run of a plan would do next."""

    remaining: int
    total: int
    next: tuple[NextStep, ...]
    later: dict[int, int] = field(default_factory=dict)  # wave → steps not ready yet
