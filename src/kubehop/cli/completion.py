"""`kubehop completion bash|zsh|fish`: print the shell completion script."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

_INSTALL = {
    "bash": 'eval "$(kubehop completion bash)"   # in ~/.bashrc',
    "zsh": 'eval "$(kubehop completion zsh)"    # in ~/.zshrc',
    "fish": "kubehop completion fish > ~/.config/fish/completions/kubehop.fish",
}


@click.command("completion")
@click.argument("shell", type=click.Choice(sorted(_INSTALL)))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(kubehop completion bash)"   (e.g. in ~/.bashrc)
    zsh:   eval "$(kubehop completion zsh)"    (e.g. in ~/.zshrc)
    fish:  kubehop completion fish > ~/.config/fish/completions/kubehop.fish
    """
    from kubehop.cli.app import cli

    cls = get_completion_class(shell)
    assert cls is not None  # every choice is a shell click knows
    # The environment variable click's completion protocol reads: _KUBEHOP_COMPLETE.
    comp = cls(cli, {}, "kubehop", "_KUBEHOP_COMPLETE")
    click.echo(comp.source())
