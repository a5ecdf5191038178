"""`FakeTransport`: a scripted, recording transport for unit tests (no node, no I/O).

    fake = FakeTransport()
    fake.on("kubeadm version*", stdout="v1.28.9\\n")
    fake.on(re.compile(r"^apt-get install "), exit_code=100, stderr="E: Held packages ...")
    fake.on("systemctl restart kubelet", node="w1", raises=CommandTimeout("...", node="w1"))
    result = await fake.run("w1", ["kubeadm", "version", "-o", "short"])
    fake.calls  # [Call(node="w1", command="kubeadm version -o short", sudo=False, ...)]

Patterns match the rendered command line (`shlex.join` of the argv): a string is a shell-style
glob (`fnmatch`, whole line), a compiled regex is searched. The answer registered last wins, so
a test can override a general answer with a specific one. Unmatched commands succeed with no
output, or raise `LookupError` when the fake is `strict`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass

from kubehop.shell.transports.base import DEFAULT_TIMEOUT, Command, CommandResult, Transport
from kubehop.shell.transports.base import render_command as _render


@dataclass(frozen=True, slots=True)
class Call:
    """One command the fake was asked to run."""

    node: str
    command: str
    sudo: bool
    timeout: float
    stdin: str | None
    argv: tuple[str, ...] | None  # None when the command was a script string


@dataclass(frozen=True, slots=True)
class Answer:
    """What the fake replies to a matching command."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    raises: BaseException | None = None


Responder = Callable[[Call], Answer]


@dataclass(slots=True)
class _Rule:
    pattern: str | re.Pattern[str]
    node: str | None
    reply: Answer | Responder
    times: int | None  # remaining uses; None: unlimited

    def matches(self, call: Call) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.node is not None and self.node != call.node:
            return False
        if isinstance(self.pattern, re.Pattern):
            return self.pattern.search(call.command) is not None
        return fnmatch.fnmatchcase(call.command, self.pattern)


class FakeTransport(Transport):
    """Replies from scripted answers and records every call in `.calls`."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.calls: list[Call] = []
        self.closed = False
        self._rules: list[_Rule] = []

    def on(self, pattern: str | re.Pattern[str], *, stdout: str = "", stderr: str = "",
           exit_code: int = 0, raises: BaseException | None = None, node: str | None = None,
           times: int | None = None, reply: Responder | None = None) -> FakeTransport:
        """Answer commands matching `pattern` (on `node`, or any), `times` times or always.
        `reply` computes the answer from the call instead."""
        answer: Answer | Responder = reply or Answer(stdout, stderr, exit_code, raises)
        self._rules.append(_Rule(pattern, node, answer, times))
        return self

    def commands(self, node: str | None = None) -> list[str]:
        """The command lines run so far (on `node`, or on every node), in order."""
        return [c.command for c in self.calls if node is None or c.node == node]

    async def run(self, node: str, command: Command, *, sudo: bool = False,
                  timeout: float = DEFAULT_TIMEOUT, stdin: str | None = None) -> CommandResult:
        if self.closed:
            raise RuntimeError("FakeTransport used after close()")
        argv = None if isinstance(command, str) else tuple(command)
        call = Call(node, _render(command), sudo, timeout, stdin, argv)
        self.calls.append(call)
        for rule in reversed(self._rules):
            if rule.matches(call):
                if rule.times is not None:
                    rule.times -= 1
                answer = rule.reply if isinstance(rule.reply, Answer) else rule.reply(call)
                break
        else:
            if self.strict:
                raise LookupError(f"FakeTransport: no answer for `{call.command}` on {node}")
            answer = Answer()
        if answer.raises is not None:
            raise answer.raises
        return CommandResult(node, call.command, answer.exit_code, answer.stdout, answer.stderr,
                             0.0)

    async def close(self) -> None:
        self.closed = True
