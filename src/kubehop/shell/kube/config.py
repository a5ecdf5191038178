"""Load cluster credentials the way kubectl does: --kubeconfig, $KUBECONFIG (several files),
~/.kube/config, then in-cluster service account; exec plugins and OIDC via kubernetes-asyncio."""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config.config_exception import ConfigException

from kubehop.model.errors import UsageError


def kubeconfig_paths(explicit: str | None) -> list[str]:
    """The kubeconfig files to merge, in kubectl's order of precedence."""
    if explicit:
        return [explicit]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [str(Path("~/.kube/config").expanduser())]


async def load_configuration(kubeconfig: str | None, context: str | None) -> Configuration:
    """A kubernetes-asyncio Configuration for the chosen kubeconfig and context.

    Raises UsageError (exit 2) naming the file or context when they cannot be used.
    """
    paths = kubeconfig_paths(kubeconfig)
    existing = [p for p in paths if Path(p).is_file()]
    cfg = Configuration()
    if not existing:
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
    try:
        await k8s_config.load_kube_config(
            config_file=os.pathsep.join(existing), context=context,
            client_configuration=cfg, persist_config=False,
        )
    except ConfigException as e:
        what = f"context {context!r}" if context else "the current context"
        raise UsageError(f"cannot use {what} of {os.pathsep.join(existing)}: {e}") from e
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read kubeconfig {os.pathsep.join(existing)}: {e}") from e
    return cfg
