"""Builders of schema-complete Kubernetes objects, as a kubeadm cluster's API server holds them.

Typed clients (kubernetes-asyncio, client-go) reject objects missing required fields
(`nodeInfo.architecture`, `containerStatuses[].imageID`, ...), so every builder fills what a real
kubelet or controller would. Builders are pure: times and uids come in as arguments.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from kubehop.lab.addresses import DEFAULT_NODE_IP

Obj = dict[str, Any]

EPOCH = "2024-01-01T00:00:00Z"
CONTROL_PLANE_ROLE = "control-plane"
ROLE_PREFIX = "node-role.kubernetes.io/"


def stable_uid(*parts: str) -> str:
    """A uid derived from names, so a rebuilt fixture has the same identities."""
    return str(uuid.UUID(bytes=hashlib.sha256("/".join(parts).encode()).digest()[:16], version=4))


def meta(
    name: str,
    namespace: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    owner: Obj | None = None,
    created: str = EPOCH,
    uid: str | None = None,
) -> Obj:
    """ObjectMeta; `owner` is an object whose controller ownerReference this one gets."""
    m: Obj = {"name": name}
    if namespace is not None:
        m["namespace"] = namespace
    m["uid"] = uid or stable_uid(namespace or "", name)
    m["creationTimestamp"] = created
    if labels:
        m["labels"] = dict(labels)
    if annotations:
        m["annotations"] = dict(annotations)
    if owner is not None:
        m["ownerReferences"] = [owner_reference(owner)]
    return m


def owner_reference(owner: Obj) -> Obj:
    """The controller ownerReference pointing at `owner`."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def namespace(name: str, *, created: str = EPOCH) -> Obj:
    """An Active namespace with the `kubernetes.io/metadata.name` label."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": meta(name, labels={"kubernetes.io/metadata.name": name}, created=created),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def node_condition(ctype: str, status: str, reason: str, message: str, at: str) -> Obj:
    return {
        "type": ctype,
        "status": status,
        "lastHeartbeatTime": at,
        "lastTransitionTime": at,
        "reason": reason,
        "message": message,
    }


def node_conditions(ready: bool | None, at: str) -> list[Obj]:
    """Kubelet conditions; `ready` None means the kubelet stopped posting status (Unknown)."""
    if ready is None:
        why = "Kubelet stopped posting node status."
        return [
            node_condition(t, "Unknown", "NodeStatusUnknown", why, at)
            for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
        ]
    return [
        node_condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                       "kubelet has sufficient memory available", at),
        node_condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                       "kubelet has no disk pressure", at),
        node_condition("PIDPressure", "False", "KubeletHasSufficientPID",
                       "kubelet has sufficient PID available", at),
        node_condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", at)
        if ready
        else node_condition("Ready", "False", "KubeletNotReady",
                            "container runtime network not ready", at),
    ]


def node(
    name: str,
    *,
    roles: Iterable[str] = (),
    kubelet_version: str = "v1.28.9",
    kube_proxy_version: str | None = None,
    os_image: str = "Ubuntu 22.04.4 LTS",
    kernel_version: str = "5.15.0-105-generic",
    container_runtime: str = "containerd://1.7.13",
    architecture: str = "amd64",
    internal_ip: str = DEFAULT_NODE_IP,
    pod_cidr: str = "10.244.0.0/24",
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    ready: bool | None = True,
    unschedulable: bool = False,
    labels: Mapping[str, str] | None = None,
    created: str = EPOCH,
) -> Obj:
    """A kubeadm-registered Node; control-plane nodes get kubeadm's label and taint."""
    roles = list(roles)
    all_labels = {
        "beta.kubernetes.io/arch": architecture,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": architecture,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }
    for role in roles:
        all_labels[ROLE_PREFIX + role] = ""
    if CONTROL_PLANE_ROLE in roles:
        all_labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
    all_labels.update(labels or {})
    spec: Obj = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    if CONTROL_PLANE_ROLE in roles:
        spec["taints"] = [{"key": ROLE_PREFIX + CONTROL_PLANE_ROLE, "effect": "NoSchedule"}]
    if unschedulable:
        spec["unschedulable"] = True
        spec.setdefault("taints", []).append(
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
             "timeAdded": created}
        )
    resources = {
        "cpu": cpu,
        "ephemeral-storage": "101430960Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": memory,
        "pods": pods,
    }
    machine = hashlib.md5(name.encode()).hexdigest()  # an id, not security
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta(
            name,
            labels=all_labels,
            annotations={
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
            created=created,
        ),
        "spec": spec,
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": node_conditions(ready, created),
            "addresses": [
                {"type": "InternalIP", "address": internal_ip},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": machine,
                "systemUUID": stable_uid("system", name),
                "bootID": stable_uid("boot", name),
                "kernelVersion": kernel_version,
                "osImage": os_image,
                "containerRuntimeVersion": container_runtime,
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": kube_proxy_version or kubelet_version,
                "operatingSystem": "linux",
                "architecture": architecture,
            },
        },
    }


def container(
    name: str,
    image: str,
    *,
    requests: Mapping[str, str] | None = None,
    command: list[str] | None = None,
    volume_mounts: list[Obj] | None = None,
) -> Obj:
    """A container spec with the defaults the API server fills in."""
    c: Obj = {
        "name": name,
        "image": image,
        "resources": {"requests": dict(requests)} if requests else {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    if command:
        c["command"] = list(command)
    if volume_mounts:
        c["volumeMounts"] = volume_mounts
    return c


def _image_id(image: str) -> str:
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def container_status(c: Obj, *, ready: bool, started_at: str, restarts: int = 0) -> Obj:
    """A running (or waiting, when not ready) container status for container spec `c`."""
    state: Obj = (
        {"running": {"startedAt": started_at}}
        if ready
        else {"waiting": {"reason": "ContainerCreating"}}
    )
    return {
        "name": c["name"],
        "image": c["image"],
        "imageID": _image_id(c["image"]) if ready else "",
        "containerID": "containerd://" + hashlib.sha256(
            (c["name"] + started_at).encode()).hexdigest() if ready else "",
        "ready": ready,
        "started": ready,
        "restartCount": restarts,
        "state": state,
        "lastState": {},
    }


def pod_condition(ctype: str, status: bool, at: str) -> Obj:
    return {"type": ctype, "status": "True" if status else "False", "lastProbeTime": None,
            "lastTransitionTime": at}


def pod(
    namespace: str,
    name: str,
    *,
    node_name: str | None = None,
    containers: list[Obj] | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    owner: Obj | None = None,
    phase: str = "Running",
    ready: bool = True,
    pod_ip: str | None = None,
    host_ip: str | None = None,
    host_network: bool = False,
    priority_class: str | None = None,
    volumes: list[Obj] | None = None,
    tolerations: list[Obj] | None = None,
    created: str = EPOCH,
) -> Obj:
    """A Pod with spec defaults and a kubelet-style status (conditions, container statuses).

    Without `node_name` the pod is Pending and unscheduled.
    """
    containers = containers or [container("app", "registry.k8s.io/pause:3.9")]
    spec: Obj = {
        "containers": containers,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst",
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 2000001000 if priority_class == "system-node-critical" else (
            2000000000 if priority_class == "system-cluster-critical" else 0),
        "tolerations": tolerations if tolerations is not None else [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 300},
        ],
    }
    if node_name:
        spec["nodeName"] = node_name
    if host_network:
        spec["hostNetwork"] = True
    if priority_class:
        spec["priorityClassName"] = priority_class
    if volumes:
        spec["volumes"] = volumes
    status: Obj = {"phase": phase if node_name else "Pending", "qosClass": _qos(containers)}
    if node_name:
        running = phase == "Running"
        is_ready = running and ready
        status["conditions"] = [
            pod_condition("PodReadyToStartContainers", running, created),
            pod_condition("Initialized", True, created),
            pod_condition("Ready", is_ready, created),
            pod_condition("ContainersReady", is_ready, created),
            pod_condition("PodScheduled", True, created),
        ]
        if host_ip:
            status["hostIP"] = host_ip
            status["hostIPs"] = [{"ip": host_ip}]
        ip = host_ip if host_network else pod_ip
        if ip and running:
            status["podIP"] = ip
            status["podIPs"] = [{"ip": ip}]
        status["startTime"] = created
        status["containerStatuses"] = [
            container_status(c, ready=is_ready, started_at=created) for c in containers
        ]
    else:
        status["conditions"] = [{
            "type": "PodScheduled", "status": "False", "lastProbeTime": None,
            "lastTransitionTime": created, "reason": "Unschedulable",
            "message": "0/0 nodes are available.",
        }]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, namespace, labels=labels, annotations=annotations, owner=owner,
                         created=created),
        "spec": spec,
        "status": status,
    }


def _qos(containers: list[Obj]) -> str:
    if any((c.get("resources") or {}).get("requests") for c in containers):
        return "Burstable"
    return "BestEffort"
