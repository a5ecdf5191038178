"""A small POSIX-shell interpreter for the commands an operator or kubehop sends over SSH.

Parses with `shlex` and runs lists (`&&`, `||`, `;`), pipelines (`|`, stdin piped as text),
redirections (`>`, `>>`, `<`, `2>`, `2>&1`, `&>`), leading `VAR=value` assignments (accepted,
not expanded: the lab is env-free), `sudo [-n] [-E] [-H] [-u root]`, `sh -c`/`bash -c`, `cd`,
`set -e`/`-o pipefail`, `exit`, `command [-v]`. The special parameters (`$?`, `$$`, `$#`, `$0`,
`$-`, `$!`, `$@`, `$*`) expand outside single quotes, as bash expands them. Redirections are
opened by the calling shell, not by sudo, so `sudo echo x > /etc/file` fails as on a real node.
Anything unknown exits 127 with bash's `bash: line 1: X: command not found`, and so does a
command the node's OS does not ship (`dnf` on Ubuntu: `system.FAMILY_TOOLS`).
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from kubehop.lab.node.fs import FsError, set_kubelet_extra_args
from kubehop.lab.node.host import LabNode, Proc, Stdin, TextStdin, Tool
from kubehop.lab.node.system import available, os_has

OPERATORS = {"&&", "||", ";", "&", "|", ";;"}
REDIRECTS = {">", ">>", "<", ">&", "&>", ">|"}


@dataclass
class ShellCommand:
    words: list[str] = field(default_factory=list)
    redirects: list[tuple[int, str, str]] = field(default_factory=list)  # (fd, op, target)


@dataclass
class Pipeline:
    connector: str  # how it joins the previous one: "" (first), "&&", "||", ";"
    commands: list[ShellCommand]


class ShellSyntaxError(Exception):
    pass


# A `$` that stays literal (single-quoted or escaped) while the words wait for expansion.
_LITERAL_DOLLAR = "\x00"
_SPECIAL = re.compile(r"\$(?:\{([?$#!0@*-])\}|([?$#!0@*-]))")
# Shell builtins `command -v` names as themselves (bash); everything else is a file.
BUILTINS = frozenset({"cd", "exit", "set", "export", ":", "true", "false", "command", "echo",
                      "printf", "test", "["})
SHELL_COMMANDS = frozenset({"sudo", "sh", "bash", "env"})  # files the interpreter runs itself
_PIDS = itertools.count(2401)


def _protect(line: str) -> str:
    """`line` with every `$` that bash would not expand (inside single quotes, or escaped as
    `\\$`) replaced by a marker that `_expand` turns back into `$`."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote == "'":
            quote = None if c == "'" else quote
            out.append(_LITERAL_DOLLAR if c == "$" else c)
        elif c == "\\" and i + 1 < len(line):
            out.append(_LITERAL_DOLLAR if line[i + 1] == "$" else line[i:i + 2])
            i += 2
            continue
        else:
            if c == "'" and quote is None:
                quote = "'"
            elif c == '"':
                quote = None if quote == '"' else '"'
            out.append(c)
        i += 1
    return "".join(out)


def parse(line: str) -> list[Pipeline]:
    """Split a command line into pipelines joined by list operators (words not yet expanded)."""
    lex = shlex.shlex(_protect(line), posix=True, punctuation_chars=";&|<>")
    lex.whitespace_split = True
    lex.commenters = "#"
    try:
        tokens = list(lex)
    except ValueError as e:  # unbalanced quotes
        raise ShellSyntaxError(f"unexpected EOF while looking for matching quote ({e})") from None
    out: list[Pipeline] = []
    connector, commands, cmd = "", [], ShellCommand()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in REDIRECTS or tok in {"2>", "2>>"}:
            fd = 1 if tok not in ("<",) else 0
            if cmd.words and cmd.words[-1] in ("1", "2") and tok in (">", ">>", ">&"):
                fd = int(cmd.words.pop())
            if i + 1 >= len(tokens):
                raise ShellSyntaxError("syntax error near unexpected token `newline'")
            target = tokens[i + 1]
            cmd.redirects.append((-1 if tok == "&>" else fd, tok, target))
            i += 2
            continue
        if tok in OPERATORS:
            if not cmd.words and not cmd.redirects:
                raise ShellSyntaxError(f"syntax error near unexpected token `{tok}'")
            commands.append(cmd)
            cmd = ShellCommand()
            if tok != "|":
                out.append(Pipeline(connector, commands))
                connector, commands = (";" if tok in ("&", ";;") else tok), []
            i += 1
            continue
        cmd.words.append(tok)
        i += 1
    if cmd.words or cmd.redirects:
        commands.append(cmd)
    elif commands:
        raise ShellSyntaxError("syntax error: unexpected end of file")
    if commands:
        out.append(Pipeline(connector, commands))
    return out


@dataclass
class ShellState:
    root: bool
    cwd: str
    errexit: bool = False
    pipefail: bool = False
    exited: int | None = None
    status: int = 0  # `$?`: the exit status of the last pipeline
    pid: int = field(default_factory=lambda: next(_PIDS))  # `$$`

    def special(self, name: str) -> str:
        """The value of special parameter `name` (`?`, `$`, `#`, `0`, `-`, `!`, `@`, `*`) in a
        `bash -c` shell without positional parameters or background jobs."""
        values = {"?": str(self.status), "$": str(self.pid), "#": "0", "0": "bash",
                  "-": ("e" if self.errexit else "") + "hBc"}
        return values.get(name, "")

    def expand(self, word: str) -> str:
        """`word` with its special parameters expanded and its literal `$` restored."""
        if "$" in word:
            word = _SPECIAL.sub(lambda m: self.special(m.group(1) or m.group(2)), word)
        return word.replace(_LITERAL_DOLLAR, "$")


# Faults already written into a node's files (see `Interpreter.apply_faults`).
_APPLIED: WeakKeyDictionary[LabNode, set[tuple[str, str]]] = WeakKeyDictionary()


class Interpreter:
    """Runs command lines on one node with the tools of `tools` (name → coroutine)."""

    def __init__(self, host: LabNode, tools: Mapping[str, Tool]) -> None:
        self.host = host
        self.tools = tools

    async def run(self, line: str, *, stdin: Stdin, out: Callable[[str], None],
                  err: Callable[[str], None], root: bool = False) -> int:
        """Run `line` as the login user (root when `root`); return the exit status."""
        home = "/root" if root else f"/home/{self.host.user}"
        state = ShellState(root=root, cwd=home)
        self.apply_faults()
        return await self._list(line, state, stdin, out, err)

    def apply_faults(self) -> None:
        """Scenario faults that change the node's files take effect before its next command
        (also when injected after the lab started), once each: an operator's fix stays.
        `kubelet-extra-args`: KUBELET_EXTRA_ARGS in the kubelet package's environment file."""
        host = self.host
        done = _APPLIED.setdefault(host, set())
        for options in host.cluster.fault_options.get(("kubelet-extra-args", host.name), []):
            key = ("kubelet-extra-args", options.get("args", ""))
            if key not in done:
                done.add(key)
                set_kubelet_extra_args(host.fs, host.setup, key[1])

    async def _list(self, line: str, state: ShellState, stdin: Stdin,
                    out: Callable[[str], None], err: Callable[[str], None]) -> int:
        try:
            pipelines = parse(line)
        except ShellSyntaxError as e:
            err(f"bash: -c: line 1: {e}\n")
            return 2
        status = 0
        for pipeline in pipelines:
            if pipeline.connector == "&&" and status != 0:
                continue
            if pipeline.connector == "||" and status == 0:
                continue
            status = await self._pipeline(pipeline, state, stdin, out, err)
            state.status = status
            if state.exited is not None:
                return state.exited
            if state.errexit and status != 0:
                return status
        return status

    async def _pipeline(self, pipeline: Pipeline, state: ShellState, stdin: Stdin,
                        out: Callable[[str], None], err: Callable[[str], None]) -> int:
        statuses: list[int] = []
        feed: Stdin = stdin
        for i, cmd in enumerate(pipeline.commands):
            last = i == len(pipeline.commands) - 1
            buffer: list[str] = []
            status = await self._command(cmd, state, feed, out if last else buffer.append, err)
            statuses.append(status)
            feed = TextStdin("".join(buffer))
        if state.pipefail:
            return next((s for s in reversed(statuses) if s != 0), 0)
        return statuses[-1]

    async def _command(self, cmd: ShellCommand, state: ShellState, stdin: Stdin,
                       out: Callable[[str], None], err: Callable[[str], None]) -> int:
        fs = self.host.fs
        files: dict[int, tuple[str, bool]] = {}  # fd → (path, append)
        to_out = False
        for fd, op, target in cmd.redirects:
            target = state.expand(target)
            path = fs.normalize(target, state.cwd)
            if op == "<":
                try:
                    stdin = TextStdin(fs.read(path, root=state.root))
                except FsError as e:
                    err(f"bash: line 1: {target}: {e.reason}\n")
                    return 1
            elif op == ">&" and target == "1" and fd == 2:
                to_out = True
            elif op == ">&" and target == "2" and fd == 1:
                files[1] = ("&2", False)
            else:
                if not fs.may_write(path, state.root):
                    err(f"bash: line 1: {target}: Permission denied\n")
                    return 1
                if fs.is_dir(path):
                    err(f"bash: line 1: {target}: Is a directory\n")
                    return 1
                for f in ((1, 2) if fd == -1 else (fd,)):
                    files[f] = (path, op == ">>")
        captured: dict[int, list[str]] = {1: [], 2: []}
        write_out = captured[1].append if 1 in files and files[1][0] != "&2" else (
            err if 1 in files else out)
        write_err = captured[2].append if 2 in files else (write_out if to_out else err)
        status = await self._simple(cmd.words, state, stdin, write_out, write_err)
        for f, (path, append) in files.items():
            if path == "&2":
                continue
            try:
                fs.write(path, "".join(captured[f]), root=state.root, append=append)
            except FsError as e:
                err(f"bash: line 1: {path}: {e.reason}\n")
                return 1
        return status

    async def _simple(self, words: list[str], state: ShellState, stdin: Stdin,
                      out: Callable[[str], None], err: Callable[[str], None]) -> int:
        argv = [state.expand(w) for w in words]
        while argv and "=" in argv[0] and argv[0].split("=", 1)[0].isidentifier():
            argv.pop(0)  # VAR=value prefixes: accepted, not used
        if not argv:
            return 0
        name = argv[0]
        if name == "cd":
            target = self.host.fs.normalize(argv[1] if len(argv) > 1 else "~", state.cwd)
            if argv[1:2] == ["~"] or len(argv) == 1:
                target = "/root" if state.root else f"/home/{self.host.user}"
            if not self.host.fs.is_dir(target):
                err(f"bash: line 1: cd: {argv[1]}: No such file or directory\n")
                return 1
            state.cwd = target
            return 0
        if name == "exit":
            state.exited = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 0
            return state.exited
        if name == "set":
            self._set(argv[1:], state)
            return 0
        if name in ("export", ":", "true"):
            return 0
        if name == "false":
            return 1
        if name == "command":
            return await self._command_builtin(argv[1:], state, stdin, out, err)
        if name in ("sh", "bash") and len(argv) >= 3 and argv[1] == "-c":
            inner = ShellState(root=state.root, cwd=state.cwd)
            return await self._list(argv[2], inner, stdin, out, err)
        if name == "sudo":
            return await self._sudo(argv, state, stdin, out, err)
        if name == "env":
            rest = argv[1:]
            while rest and "=" in rest[0]:
                rest.pop(0)
            return await self._simple(rest, state, stdin, out, err) if rest else 0
        return await self._exec(argv, argv, state.root, state, stdin, out, err)

    async def _command_builtin(self, args: list[str], state: ShellState, stdin: Stdin,
                               out: Callable[[str], None], err: Callable[[str], None]) -> int:
        """`command -v NAME...` (a builtin's name, else the file's path; status 1 when one is
        not found) or `command NAME ARGS` (run it)."""
        if args[:1] != ["-v"]:
            return await self._simple(args, state, stdin, out, err) if args else 0
        status = 0
        for name in args[1:]:
            if name in BUILTINS or (name.startswith("/") and self.host.fs.exists(name)):
                out(name + "\n")
            elif name in SHELL_COMMANDS or available(self.host, name):
                out(f"/usr/bin/{name}\n")
            else:
                status = 1
        return status

    @staticmethod
    def _set(args: list[str], state: ShellState) -> None:
        i = 0
        while i < len(args):
            a = args[i]
            if a == "-o" and i + 1 < len(args):
                if args[i + 1] == "pipefail":
                    state.pipefail = True
                if args[i + 1] == "errexit":
                    state.errexit = True
                i += 2
                continue
            if a.startswith("-") and "e" in a:
                state.errexit = True
            if a.startswith("-") and "o" in a and i + 1 < len(args) and args[i + 1] == "pipefail":
                state.pipefail = True
                i += 1
            i += 1

    async def _sudo(self, argv: list[str], state: ShellState, stdin: Stdin,
                    out: Callable[[str], None], err: Callable[[str], None]) -> int:
        rest = argv[1:]
        while rest and rest[0].startswith("-"):
            opt = rest.pop(0)
            if opt == "--":
                break
            if opt in ("-u", "-g") and rest:
                user = rest.pop(0)
                if user not in ("root", "0", "#0"):
                    err(f"sudo: unknown user {user}\n")
                    return 1
        while rest and "=" in rest[0] and rest[0].split("=", 1)[0].isidentifier():
            rest.pop(0)
        if not rest:
            err("usage: sudo -h | -K | -k | -V\n")
            return 1
        if rest[0] in ("sh", "bash") and len(rest) >= 3 and rest[1] == "-c":
            inner = ShellState(root=True, cwd=state.cwd)
            return await self._list(rest[2], inner, stdin, out, err)
        if rest[0] == "cd" or rest[0] not in self.tools or not os_has(self.host, rest[0]):
            err(f"sudo: {rest[0]}: command not found\n")
            self.host.record("command", node=self.host.name, argv=argv, exit_code=1)
            return 1
        return await self._exec(rest, argv, True, state, stdin, out, err)

    async def _exec(self, argv: list[str], shown: list[str], root: bool, state: ShellState,
                    stdin: Stdin, out: Callable[[str], None], err: Callable[[str], None]) -> int:
        name = argv[0].rsplit("/", 1)[-1] if argv[0].startswith(
            ("/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/")) else argv[0]
        tool = self.tools.get(name) if os_has(self.host, name) else None
        if tool is None:
            err(f"bash: line 1: {argv[0]}: command not found\n")
            status = 127
        else:
            argv = [argv[0].rsplit("/", 1)[-1], *argv[1:]]
            proc = Proc(self.host, argv, stdin, out, err, root=root, cwd=state.cwd)
            status = await tool(proc)
        self.host.record("command", node=self.host.name, argv=list(shown), exit_code=status)
        return status
