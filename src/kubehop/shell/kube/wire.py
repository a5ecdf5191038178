"""The API objects as kubehop reads them off the wire: one msgspec struct per shape.

Each struct holds only the fields kubehop reads (msgspec skips the rest while decoding, about
50x faster than the clients' typed models on 150k pods). Parts of a pod that repeat across
replicas (labels, annotations, containers, volumes) stay raw JSON slices (`msgspec.Raw`), so a
reader converts each distinct value once. Field names are the API's (camelCase); names that
collide with kubehop's own classes end in `Wire` (`LabelSelectorWire`, `PdbWire`, …).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


def _raw_empty() -> msgspec.Raw:
    return msgspec.Raw(b"{}")


def _raw_list() -> msgspec.Raw:
    return msgspec.Raw(b"[]")


# --- lists, watches, status --------------------------------------------------------------------


class ListMeta(msgspec.Struct):
    resourceVersion: str = ""
    # `continue` is a Python keyword: renamed on the wire.
    continue_: str = msgspec.field(default="", name="continue")


class ListHead(msgspec.Struct):
    """A list page read only for its paging fields."""

    metadata: ListMeta = msgspec.field(default_factory=ListMeta)


class ItemList(msgspec.Struct, Generic[T]):
    """Any list: `ItemList[PodWire]`, `ItemList[NodeWire]`, …"""

    metadata: ListMeta = msgspec.field(default_factory=ListMeta)
    items: list[T] = msgspec.field(default_factory=list)


class WatchEvent(msgspec.Struct):
    """One line of a watch; `object` is decoded by its reader (an item, or a Status)."""

    type: str
    object: msgspec.Raw


class StatusWire(msgspec.Struct):
    """A metav1.Status (error bodies, watch ERROR events)."""

    code: int = 0
    message: str = ""
    reason: str = ""


class VersionInfo(msgspec.Struct):
    gitVersion: str = ""


class ClientVersion(msgspec.Struct):
    """`kubectl version --client -o json`."""

    clientVersion: VersionInfo = msgspec.field(default_factory=VersionInfo)


# --- metadata --------------------------------------------------------------------------------


class OwnerRef(msgspec.Struct):
    kind: str = ""
    name: str = ""
    controller: bool = False


class ObjectMeta(msgspec.Struct):
    name: str = ""
    namespace: str = ""
    resourceVersion: str = ""
    generation: int = 0
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    ownerReferences: list[OwnerRef] = msgspec.field(default_factory=list)
    deletionTimestamp: str | None = None


class MetaOnly(msgspec.Struct):
    """An item of a PartialObjectMetadataList (or any object read for its metadata)."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


class Condition(msgspec.Struct):
    type: str = ""
    status: str = ""
    reason: str = ""
    message: str = ""


def is_true(conditions: list[Condition], kind: str = "Ready") -> bool:
    """Whether the condition `kind` has status True."""
    return any(c.type == kind and c.status == "True" for c in conditions)


# --- nodes -----------------------------------------------------------------------------------


class NodeSpec(msgspec.Struct):
    unschedulable: bool = False
    providerID: str | None = None
    taints: list[dict[str, Any]] = msgspec.field(default_factory=list)


class NodeSystemInfo(msgspec.Struct):
    kubeletVersion: str = ""
    kubeProxyVersion: str = ""
    kernelVersion: str = ""
    osImage: str = ""
    containerRuntimeVersion: str = ""


class NodeAddress(msgspec.Struct):
    type: str = ""
    address: str = ""


class NodeStatus(msgspec.Struct):
    nodeInfo: NodeSystemInfo = msgspec.field(default_factory=NodeSystemInfo)
    conditions: list[Condition] = msgspec.field(default_factory=list)
    addresses: list[NodeAddress] = msgspec.field(default_factory=list)
    allocatable: dict[str, str] = msgspec.field(default_factory=dict)


class NodeWire(msgspec.Struct):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: NodeSpec = msgspec.field(default_factory=NodeSpec)
    status: NodeStatus = msgspec.field(default_factory=NodeStatus)


# --- pods ------------------------------------------------------------------------------------


class PodMeta(msgspec.Struct):
    """A pod's metadata; labels and annotations raw (shared by replicas: decoded once)."""

    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    labels: msgspec.Raw = msgspec.field(default_factory=_raw_empty)
    annotations: msgspec.Raw = msgspec.field(default_factory=_raw_empty)
    ownerReferences: list[OwnerRef] = msgspec.field(default_factory=list)
    deletionTimestamp: str | None = None


class PodSpec(msgspec.Struct):
    nodeName: str | None = None
    containers: msgspec.Raw = msgspec.field(default_factory=_raw_list)  # list[Container]
    volumes: msgspec.Raw = msgspec.field(default_factory=_raw_list)


class PodStatus(msgspec.Struct):
    phase: str = ""
    conditions: list[Condition] = msgspec.field(default_factory=list)


class PodWire(msgspec.Struct):
    metadata: PodMeta = msgspec.field(default_factory=PodMeta)
    spec: PodSpec = msgspec.field(default_factory=PodSpec)
    status: PodStatus = msgspec.field(default_factory=PodStatus)


class ResourceRequirements(msgspec.Struct):
    requests: dict[str, str] = msgspec.field(default_factory=dict)


class Container(msgspec.Struct):
    name: str = ""
    image: str = ""
    resources: ResourceRequirements = msgspec.field(default_factory=ResourceRequirements)


class Volume(msgspec.Struct):
    emptyDir: dict[str, Any] | None = None


# --- workloads (Deployments, StatefulSets, DaemonSets, ReplicaSets) ------------------------------


class TemplateSpec(msgspec.Struct):
    """A pod template's spec."""

    containers: list[Container] = msgspec.field(default_factory=list)
    nodeSelector: dict[str, str] = msgspec.field(default_factory=dict)
    tolerations: list[dict[str, Any]] = msgspec.field(default_factory=list)


class PodTemplate(msgspec.Struct):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: TemplateSpec = msgspec.field(default_factory=TemplateSpec)


class WorkloadSpec(msgspec.Struct):
    template: PodTemplate = msgspec.field(default_factory=PodTemplate)


class WorkloadWire(msgspec.Struct):
    """A Deployment, StatefulSet, DaemonSet or ReplicaSet: its pod template."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: WorkloadSpec = msgspec.field(default_factory=WorkloadSpec)


# --- PodDisruptionBudgets ----------------------------------------------------------------------


class RequirementWire(msgspec.Struct, omit_defaults=True):
    key: str = ""
    operator: str = ""
    values: list[str] = msgspec.field(default_factory=list)


class LabelSelectorWire(msgspec.Struct, omit_defaults=True):
    """A metav1.LabelSelector as the API sends it (matched by kubehop.core.selectors)."""

    matchLabels: dict[str, str] = msgspec.field(default_factory=dict)
    matchExpressions: list[RequirementWire] = msgspec.field(default_factory=list)


class PdbSpec(msgspec.Struct):
    selector: LabelSelectorWire | None = None  # null selects nothing, {} everything (policy/v1)
    minAvailable: int | str | None = None
    maxUnavailable: int | str | None = None


class PdbStatus(msgspec.Struct):
    expectedPods: int = 0
    desiredHealthy: int = 0
    currentHealthy: int = 0
    disruptionsAllowed: int = 0
    observedGeneration: int | None = None


class PdbWire(msgspec.Struct):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PdbSpec = msgspec.field(default_factory=PdbSpec)
    status: PdbStatus = msgspec.field(default_factory=PdbStatus)


# --- CloudNativePG clusters ----------------------------------------------------------------------


class CnpgSpec(msgspec.Struct):
    instances: int = 1
    enablePDB: bool = True
    imageName: str = ""


class CnpgStatus(msgspec.Struct):
    currentPrimary: str | None = None
    targetPrimary: str | None = None


class CnpgWire(msgspec.Struct):
    """A `clusters.postgresql.cnpg.io` object."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: CnpgSpec = msgspec.field(default_factory=CnpgSpec)
    status: CnpgStatus = msgspec.field(default_factory=CnpgStatus)


# --- the snapshot's union of kinds -------------------------------------------------------------


class AnySpec(msgspec.Struct):
    """One struct for the specs of every kind a snapshot keeps (absent fields: defaults)."""

    template: PodTemplate = msgspec.field(default_factory=PodTemplate)
    # PDBs
    minAvailable: int | str | None = None
    maxUnavailable: int | str | None = None
    selector: LabelSelectorWire | None = None
    # CloudNativePG clusters
    instances: int = 1
    enablePDB: bool = True
    imageName: str = ""
    # Nodes
    taints: list[dict[str, Any]] = msgspec.field(default_factory=list)


class AnyObject(msgspec.Struct):
    """The few fields of a Deployment, ReplicaSet, StatefulSet, DaemonSet, PDB, CNPG cluster or
    Node a snapshot keeps."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: AnySpec = msgspec.field(default_factory=AnySpec)
    status: CnpgStatus = msgspec.field(default_factory=CnpgStatus)


# --- services, config, secrets -------------------------------------------------------------------


class EndpointAddress(msgspec.Struct):
    ip: str = ""


class EndpointPort(msgspec.Struct):
    port: int = 0
    name: str | None = None


class EndpointSubset(msgspec.Struct):
    addresses: list[EndpointAddress] = msgspec.field(default_factory=list)
    ports: list[EndpointPort] = msgspec.field(default_factory=list)


class EndpointsWire(msgspec.Struct):
    subsets: list[EndpointSubset] = msgspec.field(default_factory=list)


class SliceEndpoint(msgspec.Struct):
    addresses: list[str] = msgspec.field(default_factory=list)


class EndpointSliceWire(msgspec.Struct):
    endpoints: list[SliceEndpoint] = msgspec.field(default_factory=list)
    ports: list[EndpointPort] = msgspec.field(default_factory=list)


class ConfigMapWire(msgspec.Struct):
    data: dict[str, str] = msgspec.field(default_factory=dict)


class SecretWire(msgspec.Struct):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    type: str = ""
    data: dict[str, str] = msgspec.field(default_factory=dict)


class AppliedWire(msgspec.Struct):
    """The head of a `kubectl.kubernetes.io/last-applied-configuration` annotation."""

    apiVersion: str = ""
    kind: str = ""


# --- shared decoders ---------------------------------------------------------------------------

list_head = msgspec.json.Decoder(ListHead)
watch_event = msgspec.json.Decoder(WatchEvent)
containers = msgspec.json.Decoder(list[Container])
volumes = msgspec.json.Decoder(list[Volume])
string_map = msgspec.json.Decoder(dict[str, str])
watch_bookmark = msgspec.json.Decoder(MetaOnly)
