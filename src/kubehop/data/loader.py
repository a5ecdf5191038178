"""Load release data: the shipped `releases.yaml`, or a user file in the same format.

Validation is strict (unknown keys, duplicate keys, bad versions or dates, patches filed under the
wrong minor): any problem is one `UsageError` line naming the file, the place in it and the fix.
The format is documented at the top of the shipped file, `kubehop/data/releases.yaml`.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from kubehop.model.errors import UsageError, VersionError
from kubehop.model.releases import (
    HOST_REQUIREMENTS,
    CniRelease,
    CniSupport,
    CnpgRelease,
    CnpgSupport,
    HostRequirement,
    KubeadmChange,
    KubeadmComponents,
    KubeadmDefaults,
    KubeletFlagRemoval,
    MinorRelease,
    PatchRelease,
    ReleaseData,
    RemovedApi,
)
from kubehop.model.versions import (
    KubeVersion,
    MinorVersion,
    parse_kube_version,
    parse_minor_version,
)

API_VERSION = "kubehop.dev/v1"
KIND = "ReleaseData"
SHIPPED_FILE = "releases.yaml"
SHIPPED_SOURCE = "shipped release data (kubehop/data/releases.yaml)"

_T = TypeVar("_T")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):  # type: ignore[misc]
    """A safe loader that refuses duplicate mapping keys (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable key: let PyYAML report it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_lenient_timestamp(self, node: yaml.ScalarNode) -> object:
        """A date; an impossible one (2025-02-30) stays a string for `_date` to report."""
        try:
            return self.construct_yaml_timestamp(node)
        except ValueError:
            return str(node.value)


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp",
                              _StrictLoader.construct_lenient_timestamp)


class _Invalid(Exception):
    """A problem at one place of the document; turned into a UsageError naming the file."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


def load_release_data(path: str | None = None) -> ReleaseData:
    """The shipped release data, or the data in the user's file `path` (same format)."""
    if path is None:
        return _load_shipped()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"release data {path}: no such file (check the --release-data path)"
        ) from None
    except IsADirectoryError:
        raise UsageError(f"release data {path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise UsageError(f"release data {path}: not UTF-8 text") from None
    except OSError as e:
        raise UsageError(f"release data {path}: cannot read: {e.strerror or e}") from None
    return parse_release_data(text, source=path)


@functools.cache
def _load_shipped() -> ReleaseData:
    text = resources.files("kubehop.data").joinpath(SHIPPED_FILE).read_text(encoding="utf-8")
    return parse_release_data(text, source=SHIPPED_SOURCE)


def parse_release_data(text: str, source: str = "release data") -> ReleaseData:
    """Parse and validate release data from YAML text; `source` names it in error messages."""
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # a safe loader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UsageError(f"release data {source}: not valid YAML: {e.problem}{where}") from None
    except yaml.YAMLError as e:
        raise UsageError(f"release data {source}: not valid YAML: {e}") from None
    try:
        return _release_data(doc, source)
    except _Invalid as e:
        raise UsageError(f"release data {source}: {e}") from None


# --- the document -------------------------------------------------------------------------------


def _release_data(doc: object, source: str) -> ReleaseData:
    top = _mapping(doc, "document", {"apiVersion", "kind", "generated", "minors"},
                   {"sources", "removedApis", "cni", "cnpg", "kubeletRemovedFlags",
                    "hostRequirements"})
    if top["apiVersion"] != API_VERSION:
        raise _Invalid("apiVersion", f"expected {API_VERSION!r}, got {_show(top['apiVersion'])}")
    if top["kind"] != KIND:
        raise _Invalid("kind", f"expected {KIND!r}, got {_show(top['kind'])}")
    minors = _mapping(top["minors"], "minors")
    if not minors:
        raise _Invalid("minors", "empty: the data needs at least one minor")
    releases = sorted((_minor_release(k, v) for k, v in minors.items()), key=lambda r: r.minor)
    for older, newer in itertools.pairwise(releases):
        if older.minor == newer.minor:
            raise _Invalid("minors", f"minor {newer.minor} appears twice")
    cni = _mapping(top.get("cni") or {}, "cni")
    return ReleaseData(
        data_date=_date(top["generated"], "generated"),
        releases=tuple(releases),
        removed_apis=tuple(
            _removed_api(item, f"removedApis[{i}]")
            for i, item in enumerate(_list(top.get("removedApis") or [], "removedApis"))
        ),
        cni_support=tuple(_cni(name, value) for name, value in cni.items()),
        cnpg=_cnpg(top["cnpg"]) if top.get("cnpg") is not None else None,
        sources=tuple(_str(s, "sources") for s in _list(top.get("sources") or [], "sources")),
        source=source,
        kubelet_removed_flags=tuple(
            _kubelet_flag(item, f"kubeletRemovedFlags[{i}]") for i, item in
            enumerate(_list(top.get("kubeletRemovedFlags") or [], "kubeletRemovedFlags"))),
        host_requirements=tuple(
            _host_requirement(item, f"hostRequirements[{i}]") for i, item in
            enumerate(_list(top.get("hostRequirements") or [], "hostRequirements"))),
    )


def _minor_release(key: object, value: object) -> MinorRelease:
    minor = _minor(key, "minors")
    where = f'minors["{minor}"]'
    m = _mapping(value, where, {"ga", "maintenanceStart", "eol", "patches"},
                 {"kubeadm", "unsure", "note"})
    ga = _date(m["ga"], f"{where}.ga")
    maintenance = _date(m["maintenanceStart"], f"{where}.maintenanceStart")
    eol = _date(m["eol"], f"{where}.eol")
    if not ga <= maintenance <= eol:
        raise _Invalid(where, f"dates out of order: ga {ga}, maintenanceStart {maintenance}, "
                              f"eol {eol} (expected ga <= maintenanceStart <= eol)")
    patches: list[PatchRelease] = []
    for text, day in _mapping(m["patches"] or {}, f"{where}.patches").items():
        at = f"{where}.patches[{text}]"
        version = _patch_of(minor, text, at)
        patches.append(PatchRelease(version, _date(day, at)))
    patches.sort(key=lambda p: p.version)
    for older, newer in itertools.pairwise(patches):
        if older.version == newer.version:
            raise _Invalid(f"{where}.patches", f"{newer.version} appears twice")
    return MinorRelease(
        minor=minor,
        ga=ga,
        maintenance_start=maintenance,
        eol=eol,
        patches=tuple(patches),
        kubeadm=_kubeadm(minor, m["kubeadm"], f"{where}.kubeadm") if m.get("kubeadm") else None,
        unsure=_flag(m.get("unsure", False), f"{where}.unsure"),
        note=_opt(_str, m.get("note"), f"{where}.note"),
    )


def _kubeadm(minor: MinorVersion, value: object, where: str) -> KubeadmDefaults:
    k = _mapping(value, where, {"ga", "verifiedThrough"}, {"changes", "unsure", "note"})
    changes: list[KubeadmChange] = []
    for i, item in enumerate(_list(k.get("changes") or [], f"{where}.changes")):
        at = f"{where}.changes[{i}]"
        c = _mapping(item, at, {"from"})
        since = _patch_of(minor, c["from"], f"{at}.from", prerelease=True)
        if changes and since <= changes[-1].since:
            raise _Invalid(at, f"from {since} is not after {changes[-1].since} (keep in order)")
        changes.append(KubeadmChange(since, _components(c, at, {"from"})))
    return KubeadmDefaults(
        ga=_components(k["ga"], f"{where}.ga"),
        changes=tuple(changes),
        verified_through=_patch_of(minor, k["verifiedThrough"], f"{where}.verifiedThrough",
                                   prerelease=True),
        unsure=_flag(k.get("unsure", False), f"{where}.unsure"),
        note=_opt(_str, k.get("note"), f"{where}.note"),
    )


def _components(value: object, where: str, extra: Iterable[str] = ()) -> KubeadmComponents:
    names = ("etcd", "coredns", "pause")
    m = _mapping(value, where, names, extra)
    return KubeadmComponents(*(_str(m[name], f"{where}.{name}") for name in names))


def _removed_api(value: object, where: str) -> RemovedApi:
    r = _mapping(value, where, {"apiVersion", "kinds", "removedIn"},
                 {"deprecatedIn", "replacement", "replacementSince", "unsure", "note"})
    kinds = tuple(_str(k, f"{where}.kinds") for k in _list(r["kinds"], f"{where}.kinds"))
    if not kinds:
        raise _Invalid(f"{where}.kinds", 'empty: name the kinds, or ["*"] for all')
    return RemovedApi(
        api_version=_str(r["apiVersion"], f"{where}.apiVersion"),
        kinds=kinds,
        deprecated_in=_opt(_minor, r.get("deprecatedIn"), f"{where}.deprecatedIn"),
        removed_in=_opt(_minor, r["removedIn"], f"{where}.removedIn"),
        replacement=_opt(_str, r.get("replacement"), f"{where}.replacement"),
        replacement_since=_opt(_minor, r.get("replacementSince"), f"{where}.replacementSince"),
        unsure=_flag(r.get("unsure", False), f"{where}.unsure"),
        note=_opt(_str, r.get("note"), f"{where}.note"),
    )


def _kubelet_flag(value: object, where: str) -> KubeletFlagRemoval:
    r = _mapping(value, where, {"flag", "removedIn", "fix", "source"}, {"unsure"})
    flag = _str(r["flag"], f"{where}.flag")
    if not flag.startswith("--") or "=" in flag or " " in flag:
        raise _Invalid(f"{where}.flag", f"expected a flag name like --pod-infra-container-image, "
                                        f"got {flag!r}")
    removed_in = _minor(r["removedIn"], f"{where}.removedIn")
    return KubeletFlagRemoval(flag, removed_in, _str(r["fix"], f"{where}.fix"),
                              _str(r["source"], f"{where}.source"),
                              _flag(r.get("unsure", False), f"{where}.unsure"))


def _host_requirement(value: object, where: str) -> HostRequirement:
    r = _mapping(value, where, {"requirement", "since", "fix", "source"}, {"unsure"})
    name = _str(r["requirement"], f"{where}.requirement")
    if name not in HOST_REQUIREMENTS:
        raise _Invalid(f"{where}.requirement",
                       f"expected one of {', '.join(HOST_REQUIREMENTS)}, got {name!r}")
    return HostRequirement(name, _minor(r["since"], f"{where}.since"),
                           _str(r["fix"], f"{where}.fix"), _str(r["source"], f"{where}.source"),
                           _flag(r.get("unsure", False), f"{where}.unsure"))


def _cni(name: object, value: object) -> CniSupport:
    where = f"cni.{_str(name, 'cni')}"
    c = _mapping(value, where, {"releases"}, {"minKubernetes", "latest", "note", "notes"})
    releases = []
    for i, item in enumerate(_list(c["releases"] or [], f"{where}.releases")):
        at = f"{where}.releases[{i}]"
        r = _mapping(item, at, {"version", "testedKubernetes"}, {"latestPatch", "unsure", "note"})
        tested = r["testedKubernetes"]
        releases.append(CniRelease(
            version=_str(r["version"], f"{at}.version"),
            tested=None if tested is None else _minors(tested, f"{at}.testedKubernetes"),
            latest_patch=_opt(_str, r.get("latestPatch"), f"{at}.latestPatch"),
            unsure=_flag(r.get("unsure", False), f"{at}.unsure"),
            note=_opt(_str, r.get("note"), f"{at}.note"),
        ))
    return CniSupport(
        name=str(name).lower(),
        releases=tuple(releases),
        min_kubernetes=_opt(_minor, c.get("minKubernetes"), f"{where}.minKubernetes"),
        latest=_opt(_str, c.get("latest"), f"{where}.latest"),
        note=_opt(_str, c.get("note"), f"{where}.note"),
        notes=tuple(_str(n, f"{where}.notes") for n in _list(c.get("notes") or [], where)),
    )


def _cnpg(value: object) -> CnpgSupport:
    c = _mapping(value, "cnpg", {"checkedRelease", "releases"}, {"drainTaints"})
    releases = []
    for i, item in enumerate(_list(c["releases"], "cnpg.releases")):
        at = f"cnpg.releases[{i}]"
        r = _mapping(item, at, {"version", "supportedKubernetes"},
                     {"testedNotSupportedKubernetes", "released", "eol"})
        releases.append(CnpgRelease(
            version=_str(r["version"], f"{at}.version"),
            supported=_minors(r["supportedKubernetes"], f"{at}.supportedKubernetes"),
            tested_not_supported=_minors(r.get("testedNotSupportedKubernetes") or [],
                                         f"{at}.testedNotSupportedKubernetes"),
            released=_opt(_date, r.get("released"), f"{at}.released"),
            eol=_opt(_date, r.get("eol"), f"{at}.eol"),
        ))
    taints = _list(c.get("drainTaints") or [], "cnpg.drainTaints")
    return CnpgSupport(
        checked_release=_str(c["checkedRelease"], "cnpg.checkedRelease"),
        drain_taints=tuple(_str(t, "cnpg.drainTaints") for t in taints),
        releases=tuple(releases),
    )


# --- scalars and shapes -------------------------------------------------------------------------


def _show(value: object) -> str:
    """A value as a message shows it, with a hint for YAML's usual surprises."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{value} (a boolean)"
    if isinstance(value, int | float):
        return f"{value!r} (a number: quote it, e.g. \"1.30\"; unquoted 1.30 reads as 1.3)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _mapping(value: object, where: str, required: Iterable[str] = (),
             optional: Iterable[str] | None = None) -> dict[Any, Any]:
    """`value` as a mapping with every `required` key; with `optional` given, no other keys."""
    if not isinstance(value, dict):
        raise _Invalid(where, f"expected a mapping, got {_show(value)}")
    required = set(required)
    missing = sorted(required - value.keys())
    if missing:
        raise _Invalid(where, f"missing key {missing[0]!r}")
    if optional is not None:
        allowed = required | set(optional)
        unknown = sorted(str(k) for k in value.keys() - allowed)
        if unknown:
            expected = ", ".join(sorted(allowed))
            raise _Invalid(where, f"unknown key {unknown[0]!r} (expected {expected})")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(where, f"expected a list, got {_show(value)}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(where, f"expected a non-empty string, got {_show(value)}")
    return value


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(where, f"expected true or false, got {_show(value)}")
    return value


def _date(value: object, where: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_RE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _Invalid(where, f"expected a date like 2026-08-22, got {_show(value)}")


def _minor(value: object, where: str) -> MinorVersion:
    if not isinstance(value, str):
        raise _Invalid(where, f"expected a minor version like \"1.30\", got {_show(value)}")
    try:
        return parse_minor_version(value)
    except VersionError as e:
        raise _Invalid(where, str(e)) from None


def _minors(value: object, where: str) -> tuple[MinorVersion, ...]:
    return tuple(_minor(m, where) for m in _list(value, where))


def _patch_of(minor: MinorVersion, value: object, where: str,
              prerelease: bool = False) -> KubeVersion:
    """A Kubernetes version that must belong to `minor` (and be a release unless allowed)."""
    if not isinstance(value, str):
        raise _Invalid(where, f"expected a version like \"v{minor}.0\", got {_show(value)}")
    try:
        version = parse_kube_version(value)
    except VersionError as e:
        raise _Invalid(where, str(e)) from None
    if version.minor_version != minor:
        raise _Invalid(where, f"{version} is not a patch of {minor}")
    if version.vendor or version.build or (version.is_prerelease and not prerelease):
        raise _Invalid(where, f"{value!r} is not an upstream release (expected e.g. v{minor}.0)")
    return version


def _opt(parse: Callable[[Any, str], _T], value: object, where: str) -> _T | None:
    """`parse(value)`, or None when the value is null or absent."""
    return None if value is None else parse(value, where)
