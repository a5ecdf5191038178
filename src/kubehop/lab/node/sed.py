"""`sed`, enough of it for the edits operators make to sources and manifests: `s///` with any
delimiter, flags `g`, `I` and a count, several `-e` scripts or `;`-separated commands, `-i`
(with an optional backup suffix), `-E`/`-r` for extended regular expressions, `-n` with `p`."""

from __future__ import annotations

import re

from kubehop.lab.node.fs import FsError
from kubehop.lab.node.host import Proc


class SedError(Exception):
    pass


def _bre_to_python(pattern: str, extended: bool) -> str:
    """Translate a POSIX basic (or extended) regex to Python's syntax."""
    if extended:
        return pattern
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            n = pattern[i + 1]
            out.append(n if n in "(){}|+?" else "\\" + n)
            i += 2
            continue
        out.append("\\" + c if c in "(){}|+?" else c)
        i += 1
    return "".join(out)


def _replacement(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n.isdigit():
                out.append(f"\\g<{n}>")
            else:
                out.append("\n" if n == "n" else n.replace("\\", "\\\\"))
            i += 2
            continue
        out.append("\\g<0>" if c == "&" else ("\\\\" if c == "\\" else c))
        i += 1
    return "".join(out)


def _split(script: str, delim: str, start: int) -> tuple[list[str], int]:
    parts, buf, i = [], [], start
    while i < len(script) and len(parts) < 2:
        c = script[i]
        if c == "\\" and i + 1 < len(script):
            buf.append(script[i + 1] if script[i + 1] == delim else c + script[i + 1])
            i += 2
            continue
        if c == delim:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    if len(parts) < 2:
        raise SedError(f"-e expression #1, char {len(script)}: unterminated `s' command")
    return parts, i


def compile_script(script: str, extended: bool) -> list[tuple[re.Pattern[str], str, int, bool]]:
    """Compile `s` commands: (regex, replacement, count (0 = all), print flag)."""
    cmds = []
    i = 0
    while i < len(script):
        while i < len(script) and script[i] in " ;\n":
            i += 1
        if i >= len(script):
            break
        if script[i] != "s" or i + 1 >= len(script):
            raise SedError(f"-e expression #1, char {i + 1}: unknown command: `{script[i]}'")
        delim = script[i + 1]
        (pattern, repl), i = _split(script, delim, i + 2)
        flags = ""
        while i < len(script) and script[i] not in ";\n":
            flags += script[i]
            i += 1
        count = 0 if "g" in flags else 1
        digits = "".join(ch for ch in flags if ch.isdigit())
        if digits:
            count = int(digits)
        re_flags = re.IGNORECASE if "I" in flags or "i" in flags else 0
        try:
            rx = re.compile(_bre_to_python(pattern, extended), re_flags)
        except re.error as e:
            raise SedError(f"-e expression #1, char {i}: {e}") from None
        cmds.append((rx, _replacement(repl), count, "p" in flags))
    return cmds


def apply(text: str, cmds: list[tuple[re.Pattern[str], str, int, bool]],
          quiet: bool) -> str:
    out = []
    for line in text.splitlines(keepends=True):
        body, nl = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        printed = []
        for rx, repl, count, p in cmds:
            new, n = rx.subn(repl, body, count=count)
            body = new
            if n and p:
                printed.append(body + nl)
        out.extend(printed)
        if not quiet:
            out.append(body + nl)
    return "".join(out)


async def sed(p: Proc) -> int:
    args = p.argv[1:]
    scripts: list[str] = []
    files: list[str] = []
    in_place: str | None = None
    extended = quiet = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-e" and i + 1 < len(args):
            scripts.append(args[i + 1])
            i += 2
            continue
        if a.startswith("-i") or a.startswith("--in-place"):
            in_place = a.split("=", 1)[1] if "=" in a else a[2:]
        elif a in ("-E", "-r", "--regexp-extended"):
            extended = True
        elif a in ("-n", "--quiet", "--silent"):
            quiet = True
        elif a.startswith("-") and len(a) > 1 and set(a[1:]) <= set("nErs"):
            extended = extended or "E" in a or "r" in a
            quiet = quiet or "n" in a
        elif not scripts and not files:
            scripts.append(a)
        else:
            files.append(a)
        i += 1
    if not scripts:
        p.err("Usage: sed [OPTION]... {script-only-if-no-other-script} [input-file]...\n")
        return 1
    try:
        cmds = compile_script("\n".join(scripts), extended)
    except SedError as e:
        p.err(f"sed: {e}\n")
        return 1
    if not files:
        if in_place is not None:
            p.err("sed: no input files\n")
            return 1
        p.out(apply(await p.read_stdin(), cmds, quiet))
        return 0
    status = 0
    fs = p.host.fs
    for f in files:
        path = p.path(f)
        try:
            text = fs.read(path, root=p.root)
        except FsError as e:
            p.err(f"sed: can't read {f}: {e.reason}\n")
            status = 2
            continue
        result = apply(text, cmds, quiet)
        if in_place is None:
            p.out(result)
            continue
        if not fs.may_write(path, p.root):
            directory = path.rsplit("/", 1)[0] or "/"
            p.err(f"sed: couldn't open temporary file {directory}/sedAbC123: Permission denied\n")
            return 4
        if in_place:
            fs.write(path + in_place, text)
        if result != text:
            fs.write(path, result)
    return status
