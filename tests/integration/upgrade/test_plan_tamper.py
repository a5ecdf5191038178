"""A plan file is not a root shell: `kubehop apply` refuses an edited plan with exit 2, naming
the first differing step and field, before any node is touched and before anything is
journaled — so the untouched plan still applies afterwards (issue #15, items 1-2)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubehop.shell.executor.journal import Journal
from tests.integration.upgrade.conftest import TODAY, Upgrade, kubehop_cli

Doc = dict[str, Any]
REPO = "1.29/oldversion1/repo-switch"
DRAIN = "1.29/oldversion3/drain"
# What upgrade steps run on nodes (observing runs `apt-mark showhold`, `kubeadm version`).
CHANGING = {"tee", "apt-get", "systemctl", "sed", "yum", "dnf", "sh"}
CHANGING_VERBS = {("apt-mark", "hold"), ("apt-mark", "unhold"), ("kubeadm", "upgrade")}


kubehop = kubehop_cli


def step(doc: Doc, step_id: str) -> Doc:
    return next(s for s in doc["steps"] if s["id"] == step_id)


def extra_command(doc: Doc) -> None:
    step(doc, REPO)["commands"].append("sudo sh -c 'echo pwned > /etc/pwned'")


def drain_to_gate(doc: Doc) -> None:
    step(doc, DRAIN).update(kind="gate", params={}, expect={})


def other_repository(doc: Doc) -> None:
    commands = step(doc, REPO)["commands"]
    commands[0] = commands[0].replace("https://pkgs.k8s.io/", "https://mirror.invalid/")


def unknown_target(doc: Doc) -> None:
    doc["to"] = "v1.29.99"


def dangling_after(doc: Doc) -> None:
    step(doc, DRAIN)["after"].append("1.29/oldversion9/cordon")


TAMPERINGS: list[tuple[Callable[[Doc], None], str]] = [
    (extra_command, f"step {REPO}: commands[1]: \"sudo sh -c 'echo pwned > /etc/pwned'\" is "
                    f"not a command of a repo-switch step"),
    (drain_to_gate, f"step {DRAIN}: kind: a gate on node oldversion3 (gates run nothing)"),
    (other_repository, f"step {REPO}: commands[0]: \"printf '%s' "),
    (unknown_target, "plan: to: v1.29.99 is not a release the data knows"),
    (dangling_after, f"step {DRAIN}: after: waits for 1.29/oldversion9/cordon, not a step of "
                     f"the plan"),
]


def node_changes(up: Upgrade) -> list[list[str]]:
    """Commands that changed a node: the trial refresh of the target's repository (`plan`'s,
    into a throwaway lists directory under /tmp) changes nothing of the node's own."""
    return [e["argv"] for e in up.lt.events() if e["type"] == "command" and e["argv"] and (
        e["argv"][0] in CHANGING or tuple(e["argv"][:2]) in CHANGING_VERBS)
        and not any(a.startswith("Dir::State::Lists=/tmp/kubehop-trial") for a in e["argv"])]


def journaled_runs(up: Upgrade) -> int:
    path = up.state_dir / "journal.sqlite3"
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (n,) = db.execute("SELECT COUNT(*) FROM runs").fetchone()
    finally:
        db.close()
    return int(n)


def test_each_tampering_is_refused_before_anything_runs_or_is_recorded(lab, capsys):
    good = str(lab.state_dir.parent / "plan.json")
    code, _, err = kubehop(capsys, "plan", "--to", "1.29", "--today", TODAY, "-o", "json",
                           "--out", good)
    assert code == 0, err
    before = node_changes(lab)
    for tamper, message in TAMPERINGS:
        doc = json.loads(Path(good).read_text())
        tamper(doc)
        path = lab.state_dir.parent / f"{tamper.__name__}.json"
        path.write_text(json.dumps(doc))
        for mode in ("--yes", "--dry-run"):
            code, _, err = kubehop(capsys, "apply", str(path), mode)
            assert code == 2, (tamper.__name__, mode, err)
            assert f"kubehop: refusing the plan: {message}" in err, (tamper.__name__, err)
            assert err.rstrip().endswith("plan again with `kubehop plan --to "
                                         f"{doc['to']} -o json --out FILE`")
            assert "Traceback" not in err
    assert node_changes(lab) == before == []
    assert journaled_runs(lab) == 0
    # Nothing was left behind: the untouched plan is checked, then applies.
    code, out, _ = kubehop(capsys, "apply", good, "--dry-run")
    assert code == 0
    assert "Plan checked: its steps are the planner's for this cluster" in out
    code, _, err = kubehop(capsys, "apply", good, "--yes")
    assert code == 0, err
    assert ["kubeadm", "upgrade", "apply", "-y", "v1.29.15"] in node_changes(lab)
    # The run kept the node facts its plan was checked against (a resume checks it again).
    with Journal.open(lab.state_dir / "journal.sqlite3") as journal:
        (rid,) = journal.runs()
        baseline = journal.baseline_of(rid)
    assert baseline is not None
    assert [n.name for n in baseline.nodes] == ["oldversion1", "oldversion2", "oldversion3"]
    assert {str(n.kubelet) for n in baseline.nodes} == {"v1.28.9"}
    assert baseline.pods == ()
