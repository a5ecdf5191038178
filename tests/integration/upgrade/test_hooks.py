"""Operator hooks on every event during a lab upgrade: one line per run, in an order that
follows the plan's dependencies; a failing `before-drain` halts with exit 3 naming the node, and
the resume runs it again and goes on without repeating the hooks that succeeded."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubehop.core.hooks import HOOK_EVENTS
from kubehop.lab.history import check_history
from tests.integration.upgrade.conftest import TODAY

HOPS = ("v1.29.15", "v1.30.14")


def hook_flags(log: Path, fail_once: str | None = None, flag: Path | None = None) -> list[str]:
    line = f'echo "$KUBEHOP_EVENT $KUBEHOP_HOP $KUBEHOP_NODE" >> {log}'
    flags = []
    for event in HOOK_EVENTS:
        command = line
        if event == "before-drain" and fail_once:
            command = (f'if [ "$KUBEHOP_NODE" = {fail_once} ] && [ ! -e {flag} ]; then '
                       f'touch {flag}; echo "alerts not silenced" >&2; exit 1; fi; {line}')
        flags += ["--hook", f"{event}={command}"]
    return flags


def runs(log: Path) -> list[tuple[str, ...]]:
    return [tuple(x.split()) for x in log.read_text().splitlines()]


def assert_consistent(lines: list[tuple[str, ...]], nodes: set[str]) -> None:
    pos = {line: i for i, line in enumerate(lines)}
    assert len(pos) == len(lines), "a hook ran twice"
    for k, hop in enumerate(HOPS):
        hop_lines = [i for i, x in enumerate(lines) if len(x) > 1 and x[1] == hop]
        after_hop = pos[("after-hop", hop)]
        assert max(hop_lines) == after_hop  # every hook of the hop before its after-hop
        assert min(hop_lines) == pos[("before-hop", hop)]
        assert pos[("before-hop", hop)] < pos[("after-control-plane", hop)] < after_hop
        if k + 1 < len(HOPS):
            assert after_hop < pos[("before-hop", HOPS[k + 1])]
    drained = {(x[1], x[2]) for x in lines if x[0] == "before-drain"}
    assert {n for _, n in drained} == nodes
    for hop, node in drained:
        assert pos[("before-drain", hop, node)] < pos[("after-uncordon", hop, node)]
    assert lines[-1] == ("finished",)


def test_hooks_on_every_event_follow_the_plan(upgrade_lab, tmp_path):
    up = upgrade_lab("oldversion")
    log = tmp_path / "hooks.log"
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY, *hook_flags(log))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert check_history(up.lt.events(), max_unavailable=1) == []
    assert_consistent(runs(log), {"oldversion1", "oldversion2", "oldversion3"})
    assert "hook before-drain oldversion3 `" in done.stdout


def test_a_failing_before_drain_halts_naming_the_node_and_the_resume_runs_it_again(
        upgrade_lab, tmp_path):
    up = upgrade_lab("oldversion")
    log, flag = tmp_path / "hooks.log", tmp_path / "failed-once"
    flags = hook_flags(log, fail_once="oldversion3", flag=flag)
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY, *flags)
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("kubehop: halted: step 1.30/oldversion3/cordon on node oldversion3 "
                           "failed: hook before-drain for node oldversion3 `")
    assert "exited with 1: alerts not silenced" in last
    before = runs(log)
    assert before[-1] == ("halted",)
    assert ("before-drain", "v1.30.14", "oldversion3") not in before
    # The node was never cordoned: the hook runs before the cordon.
    assert not [e for e in up.lt.events() if e["type"] == "node" and
                e["node"] == "oldversion3" and not e["schedulable"]]
    again = up.kubehop("apply", "--yes", *flags)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    after = runs(log)[len(before):]
    # Hooks that succeeded before the halt do not run again.
    assert not set(after) & (set(before) - {("halted",)})
    assert after[0] == ("before-drain", "v1.30.14", "oldversion3")
    assert_consistent([x for x in before if x != ("halted",)] + after,
                      {"oldversion1", "oldversion2", "oldversion3"})
    assert check_history(up.lt.events(), max_unavailable=1) == []


@pytest.mark.slow
def test_hooks_on_an_ha_upgrade(upgrade_lab, tmp_path):
    up = upgrade_lab("ha")
    log = tmp_path / "hooks.log"
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY,
                      "--max-unavailable", "2", *hook_flags(log), timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert check_history(up.lt.events(), max_unavailable=2) == []
    nodes = {n["metadata"]["name"] for n in up.lt.nodes()}
    assert_consistent(runs(log), nodes)
