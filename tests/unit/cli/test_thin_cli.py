"""`kubehop.cli` parses flags and renders; the session (`kubehop.shell.session`) does the work:
no command module talks to the API, takes the lock, opens the journal or wires the executor."""

from __future__ import annotations

import grimp
import pytest

from kubehop.cli import app

# What only the session may use: the API client, the journal, the lock, the executor's wiring,
# observing and the SSH transport.
SESSION_ONLY = (
    "kubehop.shell.kube",
    "kubehop.shell.executor.engine", "kubehop.shell.executor.journal",
    "kubehop.shell.executor.lock", "kubehop.shell.executor.cluster",
    "kubehop.shell.executor.annotations", "kubehop.shell.executor.gates",
    "kubehop.shell.executor.hooks", "kubehop.shell.executor.windows",
    "kubehop.shell.executor.notify", "kubehop.shell.executor.expect",
    "kubehop.shell.observe.cluster", "kubehop.shell.observe.inventory",
    "kubehop.shell.observe.nodes", "kubehop.shell.transports.ssh",
)


def test_no_command_module_wires_the_run_itself() -> None:
    graph = grimp.build_graph("kubehop", cache_dir=None)
    found = sorted(
        (module, imported)
        for module in graph.find_children("kubehop.cli") | {"kubehop.cli"}
        for imported in graph.find_modules_directly_imported_by(module)
        if any(imported == s or imported.startswith(s + ".") for s in SESSION_ONLY))
    assert found == []


def test_a_missing_command_module_is_an_error_not_a_missing_command(monkeypatch) -> None:
    monkeypatch.setattr(app, "_COMMANDS", [("no_such_family", "nothing")])
    with pytest.raises(ModuleNotFoundError, match=r"kubehop\.cli\.no_such_family"):
        app._register_commands()
