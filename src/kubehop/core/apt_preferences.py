"""apt preferences pins of the Kubernetes packages: read (`parse_stanzas`), judged
(`applies`, `version_matches`) and rewritten for another minor (`rewrite_pins`), all pure.

apt_preferences(5): `/etc/apt/preferences` is read first, then the files of
`/etc/apt/preferences.d` in name order (names without an extension or ending in `.pref`, made of
letters, digits, `-`, `_` and `.`); stanzas are separated by blank lines and hold `Package:`
(names, globs or `/regex/`), `Pin:` (`version V`, `release k=v,…`, `origin HOST`) and
`Pin-Priority:`. A version gets the priority of the first stanza that matches it. Matching
follows apt-pkg/versionmatch.cc: a `Pin: version` ending in `*` is a prefix, other globs go
through fnmatch, `/…/` is a case-insensitive extended regular expression (searched).

Operators pin the way the upgrade course does (`Package: kubectl kubeadm kubelet` / `Pin: version
1.28.*` / `Pin-Priority: 1000`); kubehop keeps that method across a minor upgrade by rewriting
the file (same file, same priority) with each package at its own minor, one stanza per minor.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence

from kubehop.model.cluster import AptPin
from kubehop.model.versions import MinorVersion

PREFERENCES = "/etc/apt/preferences"
PREFERENCES_DIR = "/etc/apt/preferences.d"
KUBE_PACKAGES = ("kubeadm", "kubelet", "kubectl")
REPOSITORY_PRIORITY = 500  # a source's default priority: a pin above it holds a package back
_PART_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_MINOR_IN = re.compile(r"(?<![\d.])(1)\.(\d+)(?=[.*/:]|$)")  # `1.28` inside a pin value


def reads_part(name: str) -> bool:
    """Whether apt reads `preferences.d/NAME` (no extension or `.pref`, apt's characters)."""
    return bool(_PART_NAME.fullmatch(name)) and ("." not in name or name.endswith(".pref"))


def _matches(pattern: str, text: str) -> bool:
    """apt's `ExpressionMatches`: `/regex/` (extended, case-insensitive, searched) or a glob."""
    if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
        try:
            return re.search(pattern[1:-1], text, re.IGNORECASE) is not None
        except re.error:
            return False
    return fnmatch.fnmatchcase(text, pattern)


def applies(packages: Sequence[str], name: str) -> bool:
    """Whether a `Package:` line (its words) names package `name`."""
    return any(p == name or _matches(p, name) for p in packages)


def version_matches(pin: str, version: str) -> bool | None:
    """Whether `Pin: version …` matches `version` (a prefix when it ends in `*`); None for a
    release or origin pin (they match by source, not by version)."""
    kind, _, value = pin.partition(" ")
    if kind.lower() != "version":
        return None
    value = value.strip()
    if value.endswith("*") and version.startswith(value[:-1]):
        return True
    bare = version.partition(":")[2] if ":" in version else version  # an epoch apt shows
    return value == version or _matches(value, version) or _matches(value, bare)


def parse_stanzas(file: str, text: str) -> list[AptPin]:
    """The stanzas of one preferences file that name kubeadm, kubelet or kubectl."""
    out: list[AptPin] = []
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        try:
            priority = int(fields.get("pin-priority", ""))
        except ValueError:
            continue
        words = tuple(fields.get("package", "").split())
        pin = " ".join(fields.get("pin", "").split())
        hit = tuple(p for p in KUBE_PACKAGES if applies(words, p))
        if words and pin and hit:
            out.append(AptPin(file, words, pin, priority, hit))
    return out


def pin_minor(pin: AptPin) -> MinorVersion | None:
    """The minor a pin names (`version 1.28.*`, `release l=…:v1.28`), if one."""
    m = _MINOR_IN.search(pin.pin.partition(" ")[2])
    return MinorVersion(int(m.group(1)), int(m.group(2))) if m else None


def held_back(pins: Sequence[AptPin], name: str, version: str | None) -> AptPin | None:
    """The first stanza that decides `version` of `name` (None: no stanza matches it)."""
    for pin in pins:
        if name not in pin.applies:
            continue
        matched = version_matches(pin.pin, version) if version else None
        if matched:
            return pin
    return None


def managed_pins(pins: Sequence[AptPin]) -> list[AptPin]:
    """The stanzas kubehop rewrites on a minor upgrade: those of the first file holding a
    Kubernetes package back (priority above a repository's) with a pin that names a minor."""
    first = next((p.file for p in pins if p.priority > REPOSITORY_PRIORITY and pin_minor(p)),
                 None)
    return [p for p in pins if p.file == first and p.priority >= 0 and pin_minor(p)]


def pin_value(template: str, version: str) -> str:
    """`template` (a managed stanza's `Pin:`) for Kubernetes `version` (`1.29.15`): a minor
    pin moves to the version's minor (`version 1.28.*` → `version 1.29.*`, `release
    l=isv:kubernetes:core:stable:v1.28` → `…v1.29`); a patch pin (`version 1.28.9-1.1`) names
    any build of the patch (`version 1.29.15-*`, as the upstream guide installs)."""
    kind, _, value = template.partition(" ")
    if kind.lower() == "version" and re.match(r"\d+:?\d*\.\d+\.\d+", value.strip()):
        return f"{kind} {version}-*"
    major, minor = version.split(".")[:2]
    return _MINOR_IN.sub(f"{major}.{minor}", template, count=1)


def rewrite_pins(pins: Sequence[AptPin], versions: Mapping[str, str], kept: str = "") -> str:
    """The preferences file with each Kubernetes package pinned at its version in `versions`
    (package → `1.29.15`; packages not named keep their stanza's pin): one stanza per pin
    value, the packages sharing one together; when all share one, the `Package:` line as first
    written (its globs or regex kept). `pins` are the file's managed stanzas (`managed_pins`),
    `kept` its other stanzas, written after them unchanged."""
    if not pins:
        raise ValueError("no pin to rewrite")
    first = pins[0]
    words = list(dict.fromkeys(w for p in pins for w in p.packages))
    covered = [p for p in KUBE_PACKAGES if any(p in pin.applies for pin in pins)]
    groups: dict[str, list[str]] = {}
    for name in covered:
        value = pin_value(first.pin, versions[name]) if versions.get(name) else next(
            pin.pin for pin in pins if name in pin.applies)
        groups.setdefault(value, []).append(name)
    if len(groups) == 1:
        stanzas = [(words, next(iter(groups)))]
    else:
        order = [w for w in words if w in covered] + [p for p in covered if p not in words]
        stanzas = [([w for w in order if w in names], value) for value, names in groups.items()]
    text = "\n".join(f"Package: {' '.join(names)}\nPin: {value}\n"
                     f"Pin-Priority: {first.priority}\n" for names, value in stanzas)
    return text + (f"\n{kept.strip()}\n" if kept.strip() else "")


def pins_summary(file: str, pins: Sequence[AptPin]) -> str:
    """The Kubernetes stanzas of `file` in one comparable line (`/etc/apt/preferences.d/
    kubernetes: kubeadm kubectl=version 1.29.*@1000; kubelet=version 1.28.*@1000`): a step's
    `aptPins` expectation, and what a node shows for it."""
    return f"{file}: " + "; ".join(f"{' '.join(p.applies)}={p.pin}@{p.priority}"
                                   for p in pins if p.file == file)
