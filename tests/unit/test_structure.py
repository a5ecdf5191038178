"""The tree reads top-down (#18): one class per name, no unused module-level names, and every
file a comment or the README names exists."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "kubehop"
SOURCES = sorted(SRC.rglob("*.py"))
# A repository path as comments and docs write it: `src/kubehop/lab/lab.py`, `tests/lab/...`,
# `kubehop/shell/kube/client.py`, or relative to the package where no upstream repository has
# such a top directory (`shell/kube/client.py`; `core/...` could be lightkube's).
_PATH = re.compile(r"(?<![\w./-])((?:(?:src/|tests/|bench/|kubehop/)+|(?=cli/|lab/|shell/))"
                   r"[\w/]+\.(?:py|md|yaml|json))")


def _modules() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text(), str(p)) for p in SOURCES}


def test_no_two_classes_share_a_name():
    where: dict[str, list[str]] = defaultdict(list)
    for path, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    clashes = {name: places for name, places in where.items() if len(places) > 1}
    assert not clashes, "classes sharing a name: " + "; ".join(
        f"{name} ({', '.join(places)})" for name, places in sorted(clashes.items()))


def test_every_module_level_name_is_used():
    """A module-level function, class or constant that no other code names is dead code."""
    texts = {p: p.read_text() for p in SOURCES}
    elsewhere = [p.read_text() for d in ("tests", "bench") for p in (ROOT / d).rglob("*.py")]
    counts: dict[str, int] = defaultdict(int)
    for text in [*texts.values(), *elsewhere]:
        for word in re.findall(r"\w+", text):
            counts[word] += 1
    unused = []
    for path, tree in _modules().items():
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                continue
            for name in names:
                if not name.startswith("__") and counts[name] == 1:
                    unused.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert not unused, "defined but never used: " + ", ".join(unused)


def _exists(ref: str) -> bool:
    candidates = [ROOT / ref, SRC.parent / ref, SRC / ref, ROOT / "src" / ref]
    return any(c.exists() for c in candidates)


def test_files_named_in_comments_and_readme_exist():
    texts = {p: p.read_text() for p in SOURCES}
    for d in ("tests", "bench"):
        texts.update({p: p.read_text() for p in (ROOT / d).rglob("*.py")})
    texts[ROOT / "README.md"] = (ROOT / "README.md").read_text()
    missing = sorted({f"{path.relative_to(ROOT)}: {ref}" for path, text in texts.items()
                      for ref in _PATH.findall(text) if not _exists(ref)})
    assert not missing, "files named but not in the repository: " + "; ".join(missing)


_DOTTED = re.compile(r"(?<![\w.])kubehop\.(?:cli|core|data|lab|model|shell)(?:\.\w+)*")


def _resolves(dotted: str) -> bool:
    """`kubehop.a.b.name`: the longest module prefix exists and defines the next part."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = SRC.parent.joinpath(*parts[:cut])
        module = base.with_suffix(".py")
        if not module.exists():
            module = base / "__init__.py"
        if module.exists():
            rest = parts[cut:]
            return not rest or bool(re.search(rf"\b{re.escape(rest[0])}\b", module.read_text()))
    return False


def test_modules_named_in_comments_and_readme_exist():
    texts = [p.read_text() for p in SOURCES]
    texts += [p.read_text() for d in ("tests", "bench") for p in (ROOT / d).rglob("*.py")]
    texts.append((ROOT / "README.md").read_text())
    missing = sorted({ref for text in texts for ref in _DOTTED.findall(text)
                      if not _resolves(ref.rstrip("."))})
    assert not missing, "modules named but not in the package: " + ", ".join(missing)


def test_unit_tests_start_no_lab():
    """A test that starts a lab (server, node agents) lives in tests/lab or tests/integration."""
    starts = re.compile(r"\bLab\(|\bLabServer\b|\bmake_lab\b|\bNodeAgents\b")
    found = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "unit").rglob("*.py")
                   if starts.search(p.read_text()))
    assert not found, "unit tests that start a lab: " + ", ".join(found)
