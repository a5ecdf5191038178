"""The `kubehop` click group: global options, exit codes, the one top-level error handler."""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass

import click

from kubehop import __version__
from kubehop.model.errors import KubehopError


@dataclass(frozen=True)
class GlobalOptions:
    """Options every command sees (kubectl's conventions)."""

    kubeconfig: str | None
    context: str | None
    ssh_inventory: str | None
    verbose: int
    log_format: str
    no_color: bool


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="kubehop", message="%(prog)s %(version)s")
@click.option("--kubeconfig", envvar=None, metavar="FILE",
              help="Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).")
@click.option("--context", metavar="NAME", help="The kubeconfig context to use.")
@click.option("--ssh-inventory", envvar="KUBEHOP_SSH_INVENTORY", metavar="FILE",
              help="Node → SSH host/port/user/key mapping (also $KUBEHOP_SSH_INVENTORY).")
@click.option("-v", "--verbose", count=True, help="More output; -v also shows tracebacks.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Log and event format.")
@click.pass_context
def cli(ctx: click.Context, kubeconfig: str | None, context: str | None,
        ssh_inventory: str | None, verbose: int, log_format: str) -> None:
    """Upgrade kubeadm Kubernetes clusters one minor hop at a time, safely.

    \b
    Exit codes: 0 success, 1 findings or failed operation (cluster left safe),
    2 usage error, 3 halted mid-upgrade (run `kubehop apply` again to resume).
    """
    ctx.obj = GlobalOptions(
        kubeconfig=kubeconfig,
        context=context,
        ssh_inventory=ssh_inventory,
        verbose=verbose,
        log_format=log_format,
        no_color=bool(os.environ.get("NO_COLOR")),
    )


# (module in kubehop.cli, click command name); each module holds one command family.
_COMMANDS = [
    ("releases", "releases"),
    ("lab", "lab"),
    ("versions", "versions"),
    ("check", "check"),
    ("plan", "plan"),
    ("apply", "apply"),
    ("apply", "upgrade"),
    ("apply", "status"),
    ("rehearse", "rehearse"),
    ("drain", "drain"),
    ("drain", "cordon"),
    ("drain", "uncordon"),
    ("demo", "demo"),
    ("completion", "completion"),
]


def _register_commands() -> None:
    """Add every command of `_COMMANDS`; a missing module is an error, never skipped."""
    # Imported here so that each command module stays importable on its own.
    import importlib

    for module, name in _COMMANDS:
        cli.add_command(getattr(importlib.import_module(f"kubehop.cli.{module}"), name))


_register_commands()


def _verbose(args: list[str]) -> bool:
    """Whether `-v` (`-vv`, `--verbose`) was given: read from the arguments, since an error may
    come before click has parsed them (no command takes a `-v` of its own)."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "--verbose" or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            return True
    return False


def leaf_error(error: BaseException) -> BaseException:
    """The error to report for `error`: an exception group (asyncio.TaskGroup) is reported by
    its first KubehopError, else its first member, so that an unreachable API server is one
    line, not "unhandled errors in a TaskGroup"."""
    while isinstance(error, BaseExceptionGroup):
        members = list(error.exceptions)
        flat: list[BaseException] = []
        while members:
            e = members.pop(0)
            if isinstance(e, BaseExceptionGroup):
                members[:0] = list(e.exceptions)
            else:
                flat.append(e)
        error = next((e for e in flat if isinstance(e, KubehopError | KeyboardInterrupt)),
                     flat[0])
    return error


def exit_code(error: BaseException) -> int:
    """The exit code for an error; the same with or without `-v`."""
    if isinstance(error, click.Abort | KeyboardInterrupt):
        return 130
    if isinstance(error, click.ClickException):
        return 2 if isinstance(error, click.UsageError) else error.exit_code
    if isinstance(error, KubehopError):
        return error.exit_code
    return 1


def report(error: BaseException, verbose: bool = False) -> str | None:
    """The one line that tells the user about `error` (None: click has its own output)."""
    if isinstance(error, click.Abort):
        return "kubehop: aborted"
    if isinstance(error, KeyboardInterrupt):
        return "kubehop: interrupted"
    if isinstance(error, click.ClickException):
        return None
    if isinstance(error, KubehopError):
        return f"kubehop: {error}"
    hint = "" if verbose else " (run with -v for details)"
    return f"kubehop: internal error: {type(error).__name__}: {error}{hint}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the group, turn every error into one line and an exit code (`-v` adds
    the traceback above that line; the exit code stays the same)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        rv = cli.main(args=args, prog_name="kubehop", standalone_mode=False)
    except (Exception, KeyboardInterrupt) as raised:
        error = leaf_error(raised)
        verbose = _verbose(args)
        if verbose and not isinstance(error, click.ClickException | click.Abort):
            traceback.print_exception(raised, file=sys.stderr)
        if isinstance(error, click.ClickException):
            error.show()
        line = report(error, verbose)
        if line is not None:
            click.echo(line, err=True)
        sys.exit(exit_code(error))
    # With standalone_mode=False click returns the code of `ctx.exit(code)`.
    sys.exit(rv if isinstance(rv, int) else 0)
