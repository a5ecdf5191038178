"""apt preferences as apt 2.x applies them on a node (apt_preferences(5); apt-pkg/policy.cc,
apt-pkg/versionmatch.cc), for `apt-get`, `apt` and `apt-cache policy`.

Files: `/etc/apt/preferences` first, then `/etc/apt/preferences.d/*` in name order, only names
without an extension or ending in `.pref` made of letters, digits, `_`, `-` and `.` (apt
ignores the others with a notice). A stanza holds `Package:` (names, globs, `/regex/`: an
extended, case-insensitive, searched regular expression), `Pin:` and `Pin-Priority:`:
- `Pin: version V`: `V` ending in `*` is a prefix, other globs match by fnmatch;
- `Pin: release k=v,…` (`o` Origin, `l` Label, `a` Suite, `n` Codename, `c` Component, `v`
  Version of a repository's Release file; a bare value is `v`);
- `Pin: origin HOST`: the host of the source URI (`""`: local `file:` sources).
A version gets the priority of the first stanza that matches it, else 500 when a source offers
it and 100 when only the dpkg status has it. The candidate is the highest priority (then the
newest version); an older version than the installed one only at 1000 or more (a downgrade);
never one below 0. An explicit `pkg=version` installs even a version pinned below 0 (seen with
apt 2.6: tests/integration/apt/test_real_apt_pins.py).
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubehop.lab.node.fs import FsError, NodeFS

PREFERENCES = "/etc/apt/preferences"
PREFERENCES_DIR = "/etc/apt/preferences.d"
_PART_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# Release-file fields of a pkgs.k8s.io repository (its OBS project), as `Pin: release` keys.
_RELEASE_KEYS = {"o": "origin", "l": "label", "a": "suite", "n": "codename", "c": "component",
                 "v": "version", "b": "architecture"}


@dataclass(frozen=True, slots=True)
class Stanza:
    """One preferences stanza (`kind`: version, release or origin; `value` as written)."""

    packages: tuple[str, ...]
    kind: str
    value: str
    priority: int
    file: str


def release_of(uri: str, minor: str) -> dict[str, str]:
    """The Release-file fields of pkgs.k8s.io's repository for `minor` (what `apt-cache policy`
    prints as `release o=…,l=…,c=`) and the source's host (`origin`)."""
    return {"origin": f"obs://build.opensuse.org/isv:kubernetes:core:stable:v{minor}/deb",
            "label": f"isv:kubernetes:core:stable:v{minor}", "component": "",
            "host": urlsplit(uri).hostname or ""}


def _reads(name: str) -> bool:
    return bool(_PART_NAME.fullmatch(name)) and ("." not in name or name.endswith(".pref"))


def read_stanzas(fs: NodeFS, preferences: str = PREFERENCES,
                 parts: str = PREFERENCES_DIR) -> list[Stanza]:
    """Every stanza apt reads, in its order (`Dir::Etc::Preferences`, then `PreferencesParts`)."""
    files = [preferences] if fs.is_file(preferences) else []
    with contextlib.suppress(FsError):
        files += [f"{parts}/{n}" for n in sorted(fs.listdir(parts)) if _reads(n)]
    out: list[Stanza] = []
    for path in files:
        if not fs.is_file(path):
            continue
        for block in re.split(r"\n[ \t]*\n", fs.read(path)):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            try:
                priority = int(fields.get("pin-priority", ""))
            except ValueError:
                continue
            kind, _, value = fields.get("pin", "").partition(" ")
            if kind in ("version", "release", "origin"):
                out.append(Stanza(tuple(fields.get("package", "").split()), kind,
                                  value.strip(), priority, path))
    return out


def _expr(pattern: str, text: str) -> bool:
    if len(pattern) > 1 and pattern[0] == pattern[-1] == "/":
        try:
            return re.search(pattern[1:-1], text, re.IGNORECASE) is not None
        except re.error:
            return False
    return fnmatch.fnmatchcase(text, pattern)


def _names(stanza: Stanza, name: str) -> bool:
    return any(p == name or _expr(p, name) for p in stanza.packages)


def _release_matches(value: str, release: Mapping[str, str]) -> bool:
    for term in value.split(","):
        key, eq, want = term.strip().partition("=")
        if not eq:
            key, want = "v", key
        field = _RELEASE_KEYS.get(key.strip())
        if field is None or not _expr(want.strip(), release.get(field, "")):
            return False
    return True


def _matches(stanza: Stanza, version: str, releases: Iterable[Mapping[str, str]]) -> bool:
    if stanza.kind == "version":
        v = stanza.value
        return (v.endswith("*") and version.startswith(v[:-1])) or v == version or \
            _expr(v, version)
    if stanza.kind == "release":
        return any(_release_matches(stanza.value, r) for r in releases)
    host = stanza.value.strip('"')
    return any(r.get("host", "") == host for r in releases)


def decided_by(stanzas: list[Stanza], name: str, version: str,
               releases: list[Mapping[str, str]]) -> Stanza | None:
    """The first stanza that names `name` and matches `version` (None: apt's default)."""
    return next((s for s in stanzas if _names(s, name) and _matches(s, version, releases)),
                None)


def priority(stanzas: list[Stanza], name: str, version: str,
             releases: list[Mapping[str, str]], installed: bool) -> int:
    """`version` of `name`'s priority: the first matching stanza's, else 500 when a source
    (`releases`: theirs) offers it, 100 when only the dpkg status has it."""
    stanza = decided_by(stanzas, name, version, releases)
    if stanza is not None:
        return stanza.priority
    return 500 if releases else (100 if installed else 0)
