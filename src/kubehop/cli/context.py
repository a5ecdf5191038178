"""What every cluster-facing command needs: the global options, a connected client, asyncio.

Heavy clients (kubernetes-asyncio, asyncssh) are imported here lazily, inside the functions, so
that `kubehop --help`, `releases` and `plan -o script` stay fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from kubehop.cli.app import GlobalOptions
    from kubehop.shell.kube.client import KubeClient

T = TypeVar("T")
_F = TypeVar("_F", bound=Callable[..., Any])
_ACCEPT_NEW = "kubehop.accept_new_host_keys"


def _remember_accept_new(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.find_root().meta[_ACCEPT_NEW] = True
    return value


def host_key_option(f: _F) -> _F:
    """`--accept-new-host-keys`, for every command that connects to nodes over SSH; read back
    with `accept_new_host_keys()` wherever that command opens its transport."""
    return click.option(
        "--accept-new-host-keys", is_flag=True, expose_value=False,
        callback=_remember_accept_new,
        help="Trust SSH host keys not in known_hosts yet (OpenSSH accept-new); a changed key "
             "is always refused.")(f)


def accept_new_host_keys() -> bool:
    """Whether this command was given `--accept-new-host-keys`."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().meta.get(_ACCEPT_NEW))


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
