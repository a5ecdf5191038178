"""What every cluster-facing command needs: the global options, a session, asyncio.

Heavy clients (kubernetes-asyncio, asyncssh) are imported by the session when first used, so
that `kubehop --help`, `releases` and `plan -o script` stay fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from kubehop.cli.app import GlobalOptions
    from kubehop.shell.session import Session, Ui

T = TypeVar("T")
_F = TypeVar("_F", bound=Callable[..., Any])
_ACCEPT_NEW = "kubehop.accept_new_host_keys"


def _remember_accept_new(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.find_root().meta[_ACCEPT_NEW] = True
    return value


def host_key_option(f: _F) -> _F:
    """`--accept-new-host-keys`, for every command that connects to nodes over SSH; read back
    with `accept_new_host_keys()` wherever that command opens its session."""
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


def make_session(*, release_data: str | None = None, today: date | None = None,
                 ui: Ui | None = None) -> Session:
    """A session on the cluster the global options name, with this command's options."""
    from kubehop.cli.ui import ClickUi
    from kubehop.shell.session import Session, SessionOptions

    opts = global_options()
    options = SessionOptions(kubeconfig=opts.kubeconfig, context=opts.context,
                             ssh_inventory=opts.ssh_inventory,
                             accept_new_host_keys=accept_new_host_keys(),
                             release_data=release_data, today=today)
    return Session(options, ui or ClickUi(opts.log_format))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


def run_session(session: Session, work: Callable[[Session], Awaitable[T]]) -> T:
    """Run `work(session)` on a fresh event loop, closing the session after it."""
    async def scoped() -> T:
        async with session:
            return await work(session)

    return asyncio.run(scoped())
