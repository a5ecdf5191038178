"""What every cluster-facing command needs: the global options, a connected client, asyncio.

Heavy clients (kubernetes-asyncio, asyncssh) are imported here lazily, inside the functions, so
that `kubehop --help`, `releases` and `plan -o script` stay fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from kubehop.cli.app import GlobalOptions
    from kubehop.shell.kube.client import KubeClient

T = TypeVar("T")


def global_options() -> GlobalOptions:
    """The group's options (`--kubeconfig`, `--context`, ...) from the current click context."""
    return click.get_current_context().find_root().obj


async def connect() -> KubeClient:
    """A client for the cluster the global options name (kubectl's rules for kubeconfig)."""
    from kubehop.shell.kube.client import KubeClient

    opts = global_options()
    return await KubeClient.connect(opts.kubeconfig, opts.context)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)
