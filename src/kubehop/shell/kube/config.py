"""Load cluster credentials the way kubectl does: --kubeconfig, $KUBECONFIG (several files),
~/.kube/config, then in-cluster service account; exec plugins and OIDC via kubernetes-asyncio.

The files are read and checked here first (`read_kubeconfigs`, `choose_context`), so that an
empty, unparsable or list-shaped file, or a context naming a cluster no file defines, is one
line naming the file (exit 2) instead of a parser's or the client library's exception.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config.config_exception import ConfigException

from kubehop.model.errors import UsageError

_LISTS = ("clusters", "contexts", "users")


def kubeconfig_paths(explicit: str | None) -> list[str]:
    """The kubeconfig files to merge, in kubectl's order of precedence."""
    if explicit:
        return [explicit]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [str(Path("~/.kube/config").expanduser())]


def _shape(value: Any) -> str:
    return {list: "a YAML list", str: "a YAML string"}.get(type(value), type(value).__name__)


def parse_kubeconfig(path: str, text: str) -> dict[str, Any]:
    """One kubeconfig file's content as a mapping ({} when empty, as client-go reads an empty
    file); UsageError naming the file when it is not YAML or not shaped like a kubeconfig."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"kubeconfig {path} is not valid YAML{where}: {problem}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UsageError(f"kubeconfig {path} is {_shape(doc)}, not a kubeconfig (a mapping with "
                         "clusters, contexts, users and current-context)")
    for key in _LISTS:
        items = doc.get(key)
        if items is None:
            continue
        if not isinstance(items, list) or not all(
                isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
            raise UsageError(f"kubeconfig {path}: {key} must be a list of entries with a name "
                             f"(`- name: NAME` then `{key[:-1]}: {{...}}`)")
    return doc


def read_kubeconfigs(paths: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """(path, content) of each existing file, in order; UsageError for one that cannot be read."""
    out = []
    for path in paths:
        if not Path(path).is_file():
            continue  # kubectl skips missing files of $KUBECONFIG
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as e:
            why = getattr(e, "strerror", None) or str(e)
            raise UsageError(f"cannot read kubeconfig {path}: {why}") from None
        out.append((path, parse_kubeconfig(path, text)))
    return out


def _names(docs: Sequence[tuple[str, dict[str, Any]]], key: str) -> dict[str, dict[str, Any]]:
    # client-go clientcmd/loader.go: when merging, the first file to set a name wins.
    out: dict[str, dict[str, Any]] = {}
    for _, doc in docs:
        for item in doc.get(key) or ():
            out.setdefault(item["name"], item)
    return out


def choose_context(docs: Sequence[tuple[str, dict[str, Any]]], context: str | None) -> str:
    """The context to use (`--context`, else the first file's current-context, as kubectl),
    checked to name a cluster with a server; UsageError saying what is missing otherwise."""
    files = os.pathsep.join(p for p, _ in docs)
    if all(not doc for _, doc in docs):
        raise UsageError(f"kubeconfig {files} is empty: pass --kubeconfig FILE or set KUBECONFIG "
                         "to a kubeconfig with a cluster, a user and a context")
    contexts = _names(docs, "contexts")
    known = ", ".join(sorted(contexts)) or "none"
    if context is None:
        context = next((d["current-context"] for _, d in docs if d.get("current-context")), None)
        if context is None:
            raise UsageError(f"no current-context in kubeconfig {files}: pass --context NAME "
                             f"(contexts: {known})")
    entry = contexts.get(context)
    if entry is None:
        raise UsageError(f"context {context!r} is not in kubeconfig {files} (contexts: {known})")
    cluster_name = (entry.get("context") or {}).get("cluster")
    clusters = _names(docs, "clusters")
    cluster = clusters.get(cluster_name) if isinstance(cluster_name, str) else None
    if cluster is None:
        defined = ", ".join(sorted(clusters)) or "none"
        raise UsageError(f"context {context!r} names cluster {cluster_name!r}, which kubeconfig "
                         f"{files} does not define (clusters: {defined})")
    if not (cluster.get("cluster") or {}).get("server"):
        raise UsageError(f"cluster {cluster_name!r} in kubeconfig {files} has no server")
    return context


async def load_configuration(kubeconfig: str | None, context: str | None) -> Configuration:
    """A kubernetes-asyncio Configuration for the chosen kubeconfig and context.

    Raises UsageError (exit 2) naming the file or context when they cannot be used.
    """
    paths = kubeconfig_paths(kubeconfig)
    cfg = Configuration()
    docs = read_kubeconfigs(paths)
    if not docs:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            try:
                k8s_config.load_incluster_config(client_configuration=cfg)
                return cfg
            except ConfigException as e:
                raise UsageError(f"in-cluster configuration unusable: {e}") from e
        raise UsageError(
            f"no kubeconfig found at {os.pathsep.join(paths)}; pass --kubeconfig FILE or set "
            "KUBECONFIG (for the lab: `kubehop lab up` prints the export line)"
        )
    chosen = choose_context(docs, context)
    files = os.pathsep.join(p for p, _ in docs)
    try:
        await k8s_config.load_kube_config(
            config_file=files, context=chosen, client_configuration=cfg, persist_config=False,
        )
    except ConfigException as e:
        raise UsageError(f"cannot use context {chosen!r} of {files}: {e}") from e
    except (OSError, ValueError, TypeError, KeyError, yaml.YAMLError) as e:
        raise UsageError(f"cannot use kubeconfig {files}: {type(e).__name__}: {e}") from e
    return cfg
