"""Strict validation of scenario documents into `schema.Scenario`.

Every problem is one `UsageError` line: `FILE:LINE: nodes[2].packages.kubelet: problem`.
Refused: unknown or duplicate keys, wrong types, versions that do not parse, duplicate node
names (after `count` expansion), references to nodes that do not exist, a cluster without a
control-plane node, control-plane images on a worker. Allowed on purpose (drift scenarios):
kubelets newer than the control plane, packages and images that disagree with each other.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from kubehop.lab.scenarios import schema as s
from kubehop.lab.scenarios.yamlpos import Positions, join, where
from kubehop.model.errors import UsageError, VersionError
from kubehop.model.versions import parse_deb_version, parse_kube_version, parse_minor_version

_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUANTITY_RE = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")
_PERCENT_RE = re.compile(r"(100|[1-9]?[0-9])%")
_RUNTIME_RE = re.compile(r"[a-z][a-z0-9-]*://\S+")
_PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]*")
_PREFERENCES_RE = re.compile(r"/etc/apt/preferences(?:\.d/[A-Za-z0-9_.-]+)?")
_LABEL_KEY_RE = re.compile(r"([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_VALUE_RE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
TOP_KEYS = ("apiVersion", "kind", "name", "description", "cluster", "nodes", "workloads",
            "timing", "faults")
_WORKLOAD_COMMON = ("kind", "namespace", "name", "image", "requests", "emptyDir", "labels")
_PLACED = ("placement", "nodeSelector", "tolerations")  # what a snapshot of a live cluster keeps
_WORKLOAD_KEYS = {
    "Deployment": ("replicas", "pdb", "node", "appliedApiVersion", *_PLACED),
    "StatefulSet": ("replicas", "pdb", "node", "appliedApiVersion", *_PLACED),
    "DaemonSet": ("appliedApiVersion", "pdb", *_PLACED),
    "Pod": ("pdb", "node", "appliedApiVersion", "nodeSelector", "tolerations"),
    "CNPGCluster": ("instances", "primaryNode", "enablePDB", "placement"),
    "HelmRelease": ("chart", "objects"),
}
_API_VERSION_RE = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?")
_KIND_RE = re.compile(r"[A-Z][A-Za-z0-9]*")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")


class _Doc:
    """One document being validated: where errors point to."""

    def __init__(self, source: str, positions: Positions) -> None:
        self.source = source
        self.positions = positions

    def fail(self, path: str, problem: str) -> NoReturn:
        line = self.positions.line(path)
        raise UsageError(f"{where(self.source, line)}: {path or 'document'}: {problem}")

    # --- shapes -------------------------------------------------------------------------------

    def mapping(self, value: Any, path: str, allowed: Iterable[str],
                required: Iterable[str] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_kind(value)}")
        allowed = tuple(allowed)
        for key in value:
            if not isinstance(key, str):
                self.fail(path, f"keys must be strings, got {key!r}")
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(allowed)}"
                self.fail(join(path, key), f"unknown field ({hint})")
        for key in required:
            if value.get(key) is None:
                self.fail(join(path, key), "required field is missing")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {_kind(value)}")
        return value

    def text(self, value: Any, path: str, pattern: re.Pattern[str] | None = None,
            what: str = "") -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, f"expected a non-empty string, got {_kind(value)}")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(path, f"not {what}: {value!r}")
        return value

    def integer(self, value: Any, path: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected an integer, got {_kind(value)}")
        if value < minimum:
            self.fail(path, f"must be at least {minimum}, got {value}")
        return value

    def flag(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {_kind(value)}")
        return value

    def seconds(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.fail(path, f"expected lab seconds (a number >= 0), got {value!r}")
        return float(value)

    def quantity(self, value: Any, path: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return self.text(value, path, _QUANTITY_RE, "a resource quantity (e.g. 500m, 4, 8Gi)")

    def labels(self, value: Any, path: str) -> dict[str, str]:
        out = {}
        for k, v in self.mapping(value or {}, path, value or {}).items():
            self.text(k, join(path, k), _LABEL_KEY_RE, "a label key")
            if not isinstance(v, str) or not _LABEL_VALUE_RE.fullmatch(v):
                self.fail(join(path, k), f"not a label value: {v!r}")
            out[k] = v
        return out

    # --- versions -----------------------------------------------------------------------------

    def version(self, value: Any, path: str, example: str = "v1.28.9") -> str:
        """A Kubernetes-style version (`v1.28.9`, etcd's `3.5.12-0`), kept as written."""
        if not isinstance(value, str):
            self.fail(path, f"expected a version string like {example}, got {_kind(value)} "
                            "(quote it)")
        try:
            parse_kube_version(value)
        except VersionError:
            self.fail(path, f"not a version: {value!r} (expected e.g. {example})")
        return value.strip()

    def kube_version(self, value: Any, path: str) -> str:
        """A Kubernetes version, normalised to `v1.28.9` (vendor suffixes kept)."""
        return parse_kube_version(self.version(value, path)).full

    def package(self, value: Any, path: str, family: str) -> str:
        """A kubeadm/kubelet/kubectl package version; `1.28.9` gets the family's revision."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.fail(path, f"expected a package version like 1.28.9-1.1, got {value!r} (quote it)")
        text = self.text(value, path).strip()
        try:
            kube = parse_deb_version(text).kube_version()
            if kube.is_prerelease or kube.vendor or kube.build:
                raise VersionError(text)
        except VersionError:
            self.fail(path, f"not a Kubernetes package version: {text!r} "
                            f"(expected e.g. 1.28.9-{s.OS_DEFAULTS[family]['revision']})")
        return text if "-" in text else f"{text}-{s.OS_DEFAULTS[family]['revision']}"

    def minor(self, value: Any, path: str) -> str:
        if isinstance(value, float):
            self.fail(path, f"expected a quoted minor like \"1.28\", got the number {value!r} "
                            "(YAML reads an unquoted 1.30 as 1.3)")
        try:
            return str(parse_minor_version(self.text(value, path)))
        except VersionError:
            self.fail(path, f"not a Kubernetes minor: {value!r} (expected e.g. \"1.28\")")


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "a number", float: "a number", str: f"the string {value!r}",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def parse_scenario(doc: Any, source: str, positions: Positions | None = None) -> s.Scenario:
    """Validate a loaded YAML document; `source` names it in errors (a path or `builtin:X`)."""
    d = _Doc(source, positions or Positions())
    top = d.mapping(doc, "", TOP_KEYS, required=("name", "nodes"))
    if top.get("apiVersion", s.API_VERSION) != s.API_VERSION:
        d.fail("apiVersion", f"expected {s.API_VERSION}, got {top['apiVersion']!r}")
    if top.get("kind", s.KIND) != s.KIND:
        d.fail("kind", f"expected {s.KIND}, got {top['kind']!r}")
    name = d.text(top["name"], "name", _LABEL_RE, "a name (lower-case letters, digits, '-')")
    description = d.text(top["description"], "description") if top.get("description") else ""
    cluster = _cluster(d, top.get("cluster"))
    nodes = tuple(_node(d, raw, f"nodes[{i}]", cluster)
                  for i, raw in enumerate(d.items(top["nodes"], "nodes")))
    if not nodes:
        d.fail("nodes", "a scenario needs at least one node")
    names = _node_names(d, nodes)
    if not any(n.control_plane for n in nodes):
        d.fail("nodes", f"no node has role {s.CONTROL_PLANE_ROLE} (a kubeadm cluster needs one)")
    workloads = tuple(_workload(d, raw, f"workloads[{i}]", names)
                      for i, raw in enumerate(d.items(top.get("workloads"), "workloads")))
    seen: dict[tuple[str, str], int] = {}
    for i, w in enumerate(workloads):
        other = seen.setdefault((w.namespace, w.name), i)
        if other != i:
            d.fail(f"workloads[{i}].name",
                   f"{w.namespace}/{w.name} is already used by workloads[{other}]")
    control_planes = [n for node in nodes if node.control_plane for n in node.names()]
    faults: list[s.Fault] = []
    api_faults: list[s.ApiFault] = []
    for i, raw in enumerate(d.items(top.get("faults"), "faults")):
        if isinstance(raw, dict) and raw.get("kind") in s.API_FAULT_KINDS:
            api_faults.append(_api_fault(d, raw, f"faults[{i}]", control_planes,
                                         cluster.load_balancer))
        else:
            faults.append(_fault(d, raw, f"faults[{i}]", names))
    return s.Scenario(name=name, description=description, cluster=cluster, nodes=nodes,
                      workloads=workloads, timing=_timing(d, top.get("timing")),
                      faults=tuple(faults), api_faults=tuple(api_faults), source=source)


def _cluster(d: _Doc, raw: Any) -> s.ClusterConfig:
    if raw is None:
        return s.ClusterConfig()
    c = d.mapping(raw, "cluster", ("kubernetesVersion", "cni", "coredns", "kubeProxy", "etcd",
                                   "loadBalancer"))
    default = s.ClusterConfig()
    cni = default.cni
    if c.get("cni") is not None:
        m = d.mapping(c["cni"], "cluster.cni", ("name", "version"), required=("name", "version"))
        cni = s.Cni(d.text(m["name"], "cluster.cni.name", _LABEL_RE, "a CNI name"),
                    d.version(m["version"], "cluster.cni.version", "v3.27.0"))
    return s.ClusterConfig(
        kubernetes_version=d.kube_version(c.get("kubernetesVersion", default.kubernetes_version),
                                          "cluster.kubernetesVersion"),
        cni=cni,
        coredns=d.version(c.get("coredns", default.coredns), "cluster.coredns", "v1.10.1"),
        kube_proxy=d.kube_version(c["kubeProxy"], "cluster.kubeProxy")
        if c.get("kubeProxy") is not None else None,
        etcd=d.version(c.get("etcd", default.etcd), "cluster.etcd", "3.5.12-0"),
        load_balancer=d.flag(c.get("loadBalancer", False), "cluster.loadBalancer"),
    )


def _node(d: _Doc, raw: Any, path: str, cluster: s.ClusterConfig) -> s.Node:
    n = d.mapping(raw, path, ("name", "roles", "os", "runtime", "packages", "repo", "holds",
                              "aptPreferences",
                              "controlPlaneImages", "capacity", "unschedulable", "count",
                              "labels", "taints", "ready"),
                  required=("name",))
    name = d.text(n["name"], join(path, "name"), _SUBDOMAIN_RE,
                 "a node name (lower-case DNS name)")
    roles = tuple(d.text(r, f"{path}.roles[{i}]", _LABEL_RE, "a role name")
                  for i, r in enumerate(d.items(n.get("roles"), join(path, "roles"))))
    o = d.mapping(n.get("os") or {}, join(path, "os"), ("family", "image", "kernel"))
    family = o.get("family", "debian")
    if family not in s.OS_DEFAULTS:
        d.fail(join(path, "os.family"), f"expected debian or rhel, got {family!r}")
    defaults = s.OS_DEFAULTS[family]
    os_info = s.OsInfo(family, d.text(o.get("image", defaults["image"]), join(path, "os.image")),
                       d.text(o.get("kernel", defaults["kernel"]), join(path, "os.kernel")))
    p = d.mapping(n.get("packages") or {}, join(path, "packages"), s.KUBE_PACKAGES)
    plain = parse_kube_version(cluster.kubernetes_version).plain
    packages = s.Packages(**{k: d.package(p.get(k, plain), f"{path}.packages.{k}", family)
                             for k in s.KUBE_PACKAGES})
    r = d.mapping(n.get("repo") or {}, join(path, "repo"), ("minor", "legacy"))
    kubeadm_minor = str(parse_deb_version(packages.kubeadm).kube_version().minor_version)
    repo = s.ScenarioRepo(d.minor(r.get("minor", kubeadm_minor), join(path, "repo.minor")),
                  d.flag(r.get("legacy", False), join(path, "repo.legacy")))
    holds = tuple(d.text(h, f"{path}.holds[{i}]", _PACKAGE_RE, "a package name")
                  for i, h in enumerate(d.items(n.get("holds", list(defaults["holds"])),
                                               join(path, "holds"))))
    if len(set(holds)) != len(holds):
        d.fail(join(path, "holds"), "a package is listed twice")
    prefs_at = join(path, "aptPreferences")
    prefs = n.get("aptPreferences") or {}
    if not isinstance(prefs, dict):
        d.fail(prefs_at, f"expected a mapping of file → content, got {_kind(prefs)}")
    preferences = {d.text(f, prefs_at, _PREFERENCES_RE, "an apt preferences file "
                          "(/etc/apt/preferences or /etc/apt/preferences.d/NAME)"):
                   d.text(text, join(prefs_at, str(f))) for f, text in prefs.items()}
    if preferences and family != "debian":
        d.fail(prefs_at, "apt preferences need a debian node")
    images = {}
    cpi = join(path, "controlPlaneImages")
    for comp, tag in d.mapping(n.get("controlPlaneImages") or {}, cpi,
                               s.CONTROL_PLANE_COMPONENTS).items():
        images[comp] = d.version(tag, join(cpi, comp), "3.5.12-0" if comp == "etcd" else "v1.28.9")
    if images and s.CONTROL_PLANE_ROLE not in roles:
        d.fail(cpi, f"only a node with role {s.CONTROL_PLANE_ROLE} runs control-plane images")
    c = d.mapping(n.get("capacity") or {}, join(path, "capacity"), ("cpu", "memory", "pods"))
    cap = s.Capacity(d.quantity(c.get("cpu", "4"), join(path, "capacity.cpu")),
                     d.quantity(c.get("memory", "8Gi"), join(path, "capacity.memory")),
                     d.integer(c.get("pods", 110), join(path, "capacity.pods"), 1))
    runtime = d.text(n.get("runtime", "containerd://1.7.13"), join(path, "runtime"), _RUNTIME_RE,
                    "a container runtime (e.g. containerd://1.7.13)")
    return s.Node(name=name, packages=packages, repo=repo, roles=roles, os=os_info,
                  runtime=runtime, holds=holds, control_plane_images=images, capacity=cap,
                  apt_preferences=preferences,
                  unschedulable=d.flag(n.get("unschedulable", False), join(path, "unschedulable")),
                  count=d.integer(n.get("count", 1), join(path, "count"), 1),
                  labels=d.labels(n.get("labels"), join(path, "labels")),
                  taints=tuple(_taint(d, t, f"{path}.taints[{i}]") for i, t in
                               enumerate(d.items(n.get("taints"), join(path, "taints")))),
                  ready=d.flag(n.get("ready", True), join(path, "ready")))


def _taint(d: _Doc, raw: Any, path: str) -> s.Taint:
    t = d.mapping(raw, path, ("key", "value", "effect"), required=("key", "effect"))
    if t["effect"] not in _TAINT_EFFECTS:
        d.fail(join(path, "effect"), f"expected one of {', '.join(_TAINT_EFFECTS)}, "
                                     f"got {t['effect']!r}")
    value = t.get("value") or ""
    if not isinstance(value, str) or not _LABEL_VALUE_RE.fullmatch(value):
        d.fail(join(path, "value"), f"not a taint value: {value!r}")
    return s.Taint(d.text(t["key"], join(path, "key"), _LABEL_KEY_RE, "a taint key"),
                   t["effect"], value)


def _toleration(d: _Doc, raw: Any, path: str) -> dict[str, str]:
    """A pod toleration (core/v1 Toleration), its values kept as strings."""
    t = d.mapping(raw, path, _TOLERATION_KEYS)
    if t.get("operator", "Equal") not in ("Equal", "Exists"):
        d.fail(join(path, "operator"), f"expected Equal or Exists, got {t['operator']!r}")
    if t.get("effect") and t["effect"] not in _TAINT_EFFECTS:
        d.fail(join(path, "effect"), f"expected one of {', '.join(_TAINT_EFFECTS)}, "
                                     f"got {t['effect']!r}")
    return {k: str(v) for k, v in t.items() if v is not None}


def _node_names(d: _Doc, nodes: tuple[s.Node, ...]) -> dict[str, int]:
    """Expanded node name → index of its `nodes[]` entry; duplicates refused."""
    names: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for name in node.names():
            if len(name) > 253:
                d.fail(f"nodes[{i}].name", f"node name {name[:40]}… is longer than 253")
            other = names.setdefault(name, i)
            if other != i:
                counted = [j for j in (other, i) if nodes[j].count > 1]
                how = "".join(f" (nodes[{j}] has count {nodes[j].count}: {nodes[j].name}-1 … "
                              f"{nodes[j].name}-{nodes[j].count})" for j in counted)
                d.fail(f"nodes[{i}].name",
                       f"duplicate node name {name}, already defined by nodes[{other}]{how}")
    return names


def _node_ref(d: _Doc, value: Any, path: str, names: Mapping[str, int]) -> str:
    name = d.text(value, path)
    if name not in names:
        close = difflib.get_close_matches(name, list(names)[:5000], n=1)
        known = list(names)
        listed = ", ".join(known[:5]) + (f" and {len(known) - 5} more" if len(known) > 5 else "")
        hint = f"did you mean {close[0]}?" if close else f"nodes: {listed}"
        d.fail(path, f"no node named {name} ({hint})")
    return name


def _pdb(d: _Doc, raw: Any, path: str, kind: str) -> s.ScenarioPdb:
    m = dict(d.mapping(raw, path, ("name", "minAvailable", "maxUnavailable")))
    name = d.text(m.pop("name"), join(path, "name"), _SUBDOMAIN_RE, "a PDB name") \
        if "name" in m else None
    if len(m) != 1:
        d.fail(path, "give exactly one of minAvailable and maxUnavailable")
    (key, value), = m.items()
    if isinstance(value, str):
        d.text(value, join(path, key), _PERCENT_RE, "an integer or a percentage like 50%")
    else:
        d.integer(value, join(path, key))
    if kind in ("Pod", "DaemonSet") and (key != "minAvailable" or isinstance(value, str)):
        d.fail(join(path, key), f"a {kind}'s PDB needs an integer minAvailable (without a "
                                "scale there is nothing to compute it from)")
    return s.ScenarioPdb(min_available=value, name=name) if key == "minAvailable" \
        else s.ScenarioPdb(max_unavailable=value, name=name)


def _workload(d: _Doc, raw: Any, path: str, names: Mapping[str, int]) -> s.ScenarioWorkload:
    kind = d.mapping(raw, path, (*_WORKLOAD_COMMON, *{k for v in _WORKLOAD_KEYS.values()
                                                      for k in v}), required=("kind",))["kind"]
    if kind not in _WORKLOAD_KEYS:
        d.fail(join(path, "kind"), f"expected one of {', '.join(s.WORKLOAD_KINDS)}, got {kind!r}")
    w = d.mapping(raw, path, (*_WORKLOAD_COMMON, *_WORKLOAD_KEYS[kind]), required=("name",))
    if kind == "HelmRelease":
        return _helm_release(d, w, path)
    req = join(path, "requests")
    requests = {k: d.quantity(v, join(req, k)) for k, v in d.mapping(
        w.get("requests") or {}, req, ("cpu", "memory", "ephemeral-storage")).items()}
    count_key = "instances" if kind == "CNPGCluster" else "replicas"
    workload = s.ScenarioWorkload(
        kind=kind,
        namespace=d.text(w.get("namespace", "default"), join(path, "namespace"), _LABEL_RE,
                        "a namespace name"),
        # Object names are DNS subdomains (apimachinery ValidateObjectMeta), dots allowed.
        name=d.text(w["name"], join(path, "name"), _SUBDOMAIN_RE,
                   "a workload name (lower-case letters, digits, '-', '.')"),
        replicas=d.integer(w.get(count_key, 1), join(path, count_key), 1 if kind == "CNPGCluster"
                       else 0),
        image=d.text(w["image"], join(path, "image")) if w.get("image") is not None else None,
        requests=requests,
        empty_dir=d.flag(w.get("emptyDir", kind == "CNPGCluster"), join(path, "emptyDir")),
        pdb=_pdb(d, w["pdb"], join(path, "pdb"), kind) if w.get("pdb") is not None else None,
        node=_node_ref(d, w["node"], join(path, "node"), names) if w.get("node") else None,
        primary_node=_node_ref(d, w["primaryNode"], join(path, "primaryNode"), names)
        if w.get("primaryNode") else None,
        enable_pdb=d.flag(w.get("enablePDB", True), join(path, "enablePDB")),
        labels=d.labels(w.get("labels"), join(path, "labels")),
        applied_api_version=d.text(w["appliedApiVersion"], join(path, "appliedApiVersion"),
                                   _API_VERSION_RE, "an apiVersion like apps/v1")
        if w.get("appliedApiVersion") is not None else None,
        placement=tuple(_node_ref(d, n, f"{path}.placement[{i}]", names) for i, n in
                        enumerate(d.items(w.get("placement"), join(path, "placement")))),
        node_selector=d.labels(w.get("nodeSelector"), join(path, "nodeSelector")),
        tolerations=tuple(_toleration(d, t, f"{path}.tolerations[{i}]") for i, t in
                          enumerate(d.items(w.get("tolerations"), join(path, "tolerations")))),
    )
    if (workload.placement and kind != "DaemonSet"
            and len(workload.placement) != workload.replicas):
        d.fail(join(path, "placement"), f"names {len(workload.placement)} nodes for "
                                        f"{workload.replicas} {count_key} (one node each)")
    if workload.placement and (workload.node or workload.primary_node):
        d.fail(join(path, "placement"), "give placement or node/primaryNode, not both")
    return workload


def _helm_release(d: _Doc, w: dict[str, Any], path: str) -> s.ScenarioWorkload:
    """A Helm 3 release: only its release Secret, whose manifest declares `objects`."""
    objects = []
    for i, raw in enumerate(d.items(w.get("objects"), join(path, "objects"))):
        at = f"{join(path, 'objects')}[{i}]"
        o = d.mapping(raw, at, ("apiVersion", "kind", "name"),
                      required=("apiVersion", "kind", "name"))
        objects.append((d.text(o["apiVersion"], join(at, "apiVersion"), _API_VERSION_RE,
                               "an apiVersion like apps/v1"),
                        d.text(o["kind"], join(at, "kind"), _KIND_RE, "a kind like Deployment"),
                        d.text(o["name"], join(at, "name"), _LABEL_RE, "an object name")))
    return s.ScenarioWorkload(
        kind="HelmRelease",
        namespace=d.text(w.get("namespace", "default"), join(path, "namespace"), _LABEL_RE,
                         "a namespace name"),
        name=d.text(w["name"], join(path, "name"), _LABEL_RE, "a release name"),
        chart=d.text(w.get("chart", w["name"]), join(path, "chart")),
        objects=tuple(objects),
    )


def _timing(d: _Doc, raw: Any) -> s.ScenarioTiming:
    if raw is None:
        return s.ScenarioTiming()
    t = d.mapping(raw, "timing", s.TIMING_KEYS)
    return s.ScenarioTiming(**{s.TIMING_KEYS[k]: d.seconds(v, join("timing", k))
                               for k, v in t.items()})


def _fault(d: _Doc, raw: Any, path: str, names: Mapping[str, int]) -> s.Fault:
    kind = d.mapping(raw, path, ("kind", "node", *{k for v in s.FAULT_KINDS.values() for k in v},
                                 "apiserver", *{k for v in s.API_FAULT_KINDS.values() for k in v}),
                     required=("kind",))["kind"]
    if kind not in s.FAULT_KINDS:
        kinds = ", ".join([*s.FAULT_KINDS, *s.API_FAULT_KINDS])
        d.fail(join(path, "kind"), f"expected one of {kinds}, got {kind!r}")
    fields = s.FAULT_KINDS[kind]
    f = d.mapping(raw, path, ("kind", "node", *fields), required=("node",))
    options: dict[str, str] = {}
    for key, allowed in fields.items():
        value = f.get(key, allowed[0] if allowed else "")
        if allowed and value not in allowed:
            d.fail(join(path, key), f"expected one of {', '.join(allowed)}, got {value!r}")
        if not isinstance(value, str):
            d.fail(join(path, key), f"expected a string, got {_kind(value)}")
        options[key] = value
    return s.Fault(kind, _node_ref(d, f["node"], join(path, "node"), names), options)


def _api_fault(d: _Doc, raw: dict[str, Any], path: str, control_planes: list[str],
               load_balancer: bool) -> s.ApiFault:
    kind = raw["kind"]
    f = d.mapping(raw, path, ("kind", "apiserver", *s.API_FAULT_KINDS[kind]),
                  required=("apiserver",))
    try:
        target = api_fault_target(f["apiserver"], control_planes, load_balancer)
    except ValueError as e:
        d.fail(join(path, "apiserver"), str(e))
    options: dict[str, float | int | str] = {}
    for key, default in s.API_FAULT_KINDS[kind].items():
        try:
            options[key] = api_fault_option(kind, key, f.get(key, default))
        except ValueError as e:
            d.fail(join(path, key), str(e))
    return s.ApiFault(kind, target, options)


def api_fault_target(value: Any, control_planes: list[str], load_balancer: bool) -> str:
    """An API fault's `apiserver`: a control-plane node, `all`, or `loadbalancer` when there is
    one (ValueError naming the choices otherwise)."""
    if value == "loadbalancer" and not load_balancer:
        raise ValueError("this cluster has no load balancer (cluster.loadBalancer: true adds one)")
    if isinstance(value, str) and (value in s.API_FAULT_TARGETS or value in control_planes):
        return value
    targets = [*control_planes[:5], "all", *(["loadbalancer"] if load_balancer else [])]
    raise ValueError(f"expected a control-plane node or all ({', '.join(targets)}), "
                     f"got {value!r}")


def api_fault_option(kind: str, key: str, value: Any) -> float | int | str:
    """Option `key` of API fault `kind`, checked against the type of its default (ValueError
    with the problem otherwise)."""
    default = s.API_FAULT_KINDS[kind][key]
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {_kind(value)}")
        return value.upper() if key == "method" else value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {_kind(value)}")
    if isinstance(default, int):
        if value != int(value) or value < 0:
            raise ValueError(f"expected a whole number >= 0, got {value!r}")
        if key == "code" and value not in s.API_ERROR_CODES:
            raise ValueError(f"expected one of {', '.join(map(str, s.API_ERROR_CODES))}, "
                             f"got {value!r}")
        return int(value)
    if value < 0 or (key == "rate" and value > 1):
        raise ValueError(f"expected {'a rate from 0 to 1' if key == 'rate' else 'lab seconds >= 0'}"
                         f", got {value!r}")
    return float(value)
