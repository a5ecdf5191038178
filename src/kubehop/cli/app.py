"""The `kubehop` click group: global options, exit codes, the one top-level error handler."""

from __future__ import annotations

import os
import sys
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
    ("drain", "drain"),
    ("drain", "cordon"),
    ("drain", "uncordon"),
    ("demo", "demo"),
    ("completion", "completion"),
]


def _register_commands() -> None:
    # Imported here so that each command module stays importable on its own.
    import importlib

    for module, name in _COMMANDS:
        try:
            cli.add_command(getattr(importlib.import_module(f"kubehop.cli.{module}"), name))
        except ModuleNotFoundError as e:  # a command family not built yet
            if e.name != f"kubehop.cli.{module}":
                raise


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the group, turn every KubehopError into one line and an exit code."""
    verbose = any(a in ("-v", "-vv", "--verbose") for a in (argv or sys.argv[1:]))
    try:
        rv = cli.main(args=argv, prog_name="kubehop", standalone_mode=False)
    except click.Abort:
        click.echo("kubehop: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
    except KubehopError as e:
        if verbose:
            raise
        click.echo(f"kubehop: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("kubehop: interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # the last line of defence: never a traceback without -v
        if verbose:
            raise
        click.echo(f"kubehop: internal error: {type(e).__name__}: {e} (run with -v for details)",
                   err=True)
        sys.exit(1)
    # With standalone_mode=False click returns the code of `ctx.exit(code)`.
    sys.exit(rv if isinstance(rv, int) else 0)
