"""`kubehop.cli` parses flags and renders (the import contract `thin-cli` in `.importlinter`
keeps the API, journal, lock and executor wiring in `kubehop.shell.session`); a command module
that fails to import is an error, not a missing command."""

from __future__ import annotations

import pytest

from kubehop.cli import app


def test_a_missing_command_module_is_an_error_not_a_missing_command(monkeypatch) -> None:
    monkeypatch.setattr(app, "_COMMANDS", [("no_such_family", "nothing")])
    with pytest.raises(ModuleNotFoundError, match=r"kubehop\.cli\.no_such_family"):
        app._register_commands()
