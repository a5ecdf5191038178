"""The drain's list+watch caches: the pods on one node, the PDBs of one namespace.

Both are `kubehop.shell.kube.informer.Informer`s over a `Reader` (a KubeClient is wrapped in
its ClusterReader): pods are decoded with the one Pod wire struct into PodInfo, PDBs into
PdbInfo (selector, status, generations).
"""

from __future__ import annotations

import msgspec

from kubehop.model.cluster import PdbInfo, PodInfo
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube import wire
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.informer import WATCH_SECONDS, Informer
from kubehop.shell.kube.reader import Reader, as_reader, pdb_status, pod_info

__all__ = ["WATCH_SECONDS", "Informer", "PdbInformer", "PodInformer", "list_pdbs", "list_pods"]

_pods = msgspec.json.Decoder(wire.ItemList[wire.PodWire])
_pod = msgspec.json.Decoder(wire.PodWire)
_pdbs = msgspec.json.Decoder(wire.ItemList[wire.PdbWire])
_pdb = msgspec.json.Decoder(wire.PdbWire)


async def list_pods(source: KubeClient | Reader, namespace: str | None = None, *,
                    node: str | None = None, label_selector: str | None = None
                    ) -> list[PodInfo]:
    """Every pod (of a namespace, on a node, matching a selector), as PodInfo."""
    return await as_reader(source).pods(namespace, node=node, label_selector=label_selector)


async def list_pdbs(source: KubeClient | Reader, namespace: str) -> list[PdbInfo]:
    """The PodDisruptionBudgets of one namespace."""
    return await as_reader(source).pdbs(namespace)


class PodInformer(Informer[PodInfo]):
    """The pods of one node (fieldSelector spec.nodeName), keyed by uid."""

    def __init__(self, source: KubeClient | Reader, node: str, label_selector: str = "") -> None:
        super().__init__(as_reader(source),
                         rq.list_pods(node=node, label_selector=label_selector or None))

    def _decode_page(self, page: bytes) -> tuple[list[PodInfo], wire.ListMeta]:
        doc = _pods.decode(page)
        return [pod_info(p) for p in doc.items], doc.metadata

    def _decode_item(self, raw: bytes) -> tuple[PodInfo, str]:
        pod = _pod.decode(raw)
        return pod_info(pod), pod.metadata.resourceVersion

    def key(self, item: PodInfo) -> str:
        return item.uid


class PdbInformer(Informer[PdbInfo]):
    """The PodDisruptionBudgets of one namespace, keyed by name."""

    def __init__(self, source: KubeClient | Reader, namespace: str) -> None:
        super().__init__(as_reader(source), rq.list_pdbs(namespace))

    def _decode_page(self, page: bytes) -> tuple[list[PdbInfo], wire.ListMeta]:
        doc = _pdbs.decode(page)
        return [pdb_status(p) for p in doc.items], doc.metadata

    def _decode_item(self, raw: bytes) -> tuple[PdbInfo, str]:
        pdb = _pdb.decode(raw)
        return pdb_status(pdb), pdb.metadata.resourceVersion

    def key(self, item: PdbInfo) -> str:
        return item.name
