"""The drain's list+watch caches: the pods on one node, the PDBs of one namespace.

Both are `kubehop.shell.kube.informer.Informer`s over a `Reader` (a KubeClient is wrapped in
its ClusterReader): pods are decoded with the one Pod wire struct into PodInfo, PDBs into
PdbInfo (selector, status, generations).
"""

from __future__ import annotations

from operator import attrgetter

from kubehop.model.cluster import PdbInfo, PodInfo
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube import wire
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.informer import Informer
from kubehop.shell.kube.reader import Reader, as_reader, pdb_status, pod_info


class PodInformer(Informer[wire.PodWire, PodInfo]):
    """The pods of one node (fieldSelector spec.nodeName), keyed by uid."""

    def __init__(self, source: KubeClient | Reader, node: str, label_selector: str = "") -> None:
        super().__init__(as_reader(source),
                         rq.list_pods(node=node, label_selector=label_selector or None),
                         wire.PodWire, pod_info, attrgetter("uid"))


class PdbInformer(Informer[wire.PdbWire, PdbInfo]):
    """The PodDisruptionBudgets of one namespace, keyed by name."""

    def __init__(self, source: KubeClient | Reader, namespace: str) -> None:
        super().__init__(as_reader(source), rq.list_pdbs(namespace), wire.PdbWire, pdb_status,
                         attrgetter("name"))
