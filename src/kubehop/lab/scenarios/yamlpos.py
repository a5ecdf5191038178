"""YAML with positions: the document, plus the line of every field path (`nodes[2].packages`).

PyYAML forgets where values came from and silently keeps the last of two equal keys; scenario
errors want `FILE:LINE: PATH: problem` and duplicate keys refused, so the document is composed
once, walked for lines and duplicates, then constructed with the safe constructor.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from kubehop.model.errors import UsageError

_LAST_STEP = re.compile(r"(\[\d+\]|\.[^.\[]+)$")


def join(path: str, key: str | int) -> str:
    """`path` + `.key` (or `[i]` for an index); the root path is ""."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def parent(path: str) -> str:
    """`nodes[2].packages` → `nodes[2]` → `nodes` → ``."""
    stripped = _LAST_STEP.sub("", path)
    return "" if stripped == path else stripped


class Positions:
    """Field path → 1-based line in the source text."""

    def __init__(self, lines: dict[str, int] | None = None) -> None:
        self.lines = lines or {}

    def line(self, path: str) -> int | None:
        """The line of `path`, else of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = parent(path)


def where(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line else source


def load(text: str, source: str) -> tuple[Any, Positions]:
    """The document in `text` and its positions; UsageError (one line) on invalid YAML."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise UsageError(f"{where(source, line)}: not valid YAML: {e.problem}") from None
    except yaml.YAMLError as e:
        raise UsageError(f"{source}: not valid YAML: {e}") from None
    if node is None:
        return None, Positions()
    lines: dict[str, int] = {}
    _walk(node, "", lines, source)
    try:
        loader = yaml.SafeLoader("")
        doc = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 1 if e.problem_mark else None
        raise UsageError(f"{where(source, line)}: not valid YAML: {e.problem}") from None
    return doc, Positions(lines)


def _walk(node: yaml.Node, path: str, lines: dict[str, int], source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue  # the validator reports the non-string key
            if key.value in seen:
                raise UsageError(f"{source}:{key.start_mark.line + 1}: {join(path, key.value)}: "
                                 "duplicate key (YAML would silently keep only the last)")
            seen.add(key.value)
            child = join(path, key.value)
            lines[child] = key.start_mark.line + 1
            _walk(value, child, lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = join(path, i)
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, source)
