"""`kubehop status` from a journal alone, the plain progress lines, and the usage errors of
`apply`/`upgrade` that need no cluster."""

from __future__ import annotations

import io
import json

import pytest

from kubehop.cli import app
from kubehop.cli.apply_progress import format_line
from kubehop.cli.apply_status import format_status
from kubehop.model.journal import RunStatus, StepStatus
from kubehop.shell.executor.events import ProgressEvent
from kubehop.shell.executor.journal import Journal
from kubehop.shell.session.runs import same_target
from tests.unit.shell.test_executor import make_plan


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEHOP_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        app.main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def halted_run(state_dir):
    plan = make_plan([["n0", "n1"]])
    with Journal.open() as j:
        s = j.begin("kube-system:x", plan)
        for step in ("w0/n0/cordon", "w0/n1/cordon", "w0/n0/kubeadm-node"):
            s = j.record(s, step, StepStatus.STARTED)
            s = j.record(s, step, StepStatus.SUCCEEDED)
        s = j.record(s, "w0/n1/kubeadm-node", StepStatus.STARTED)
        s = j.record(s, "w0/n1/kubeadm-node", StepStatus.FAILED, node="n1",
                     message="`sudo kubeadm upgrade node` exited with 1: boom")
        s = j.set_status(s, RunStatus.HALTED, "halted")
    return plan, s


def test_status_without_any_run_says_so(state_dir, capsys):
    code, _, err = run(capsys, "status")
    assert code == 1
    assert "no kubehop run recorded yet" in err


def test_status_for_people(state_dir, capsys):
    plan, state = halted_run(state_dir)
    text = format_status(plan, state, now=state.updated + 5)
    lines = text.splitlines()
    assert lines[0].startswith(f"Run {state.run.id}: v1.28.9 → v1.29.15, halted (last record ")
    assert lines[0].endswith(", 5 s ago)")
    assert lines[1] == "  3 of 7 steps done: 3 succeeded, 1 failed, 3 not-started"
    assert lines[2] == "  current wave 0 [v1.29.15] workers: 3/7 steps (n0, n1)"
    assert "  failed: w0/n1/kubeadm-node on node n1: `sudo kubeadm upgrade node` exited with " \
           "1: boom" in lines
    assert "  cordoned by this run: node n0 (cordoned for its upgrade to v1.29.15)" in lines
    assert "  cordoned by this run: node n1 (cordoned for its upgrade to v1.29.15)" in lines
    assert lines[-1] == "  resume: kubehop apply"
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert out.splitlines()[1:] == lines[1:]


def test_status_for_machines(state_dir, capsys):
    _plan, _state = halted_run(state_dir)
    code, out, _ = run(capsys, "status", "-o", "json")
    doc = json.loads(out)
    assert code == 0
    assert (doc["status"], doc["done"], doc["total"]) == ("halted", 3, 7)
    assert doc["failed"] == [{"step": "w0/n1/kubeadm-node", "node": "n1",
                              "message": "`sudo kubeadm upgrade node` exited with 1: boom"}]
    assert [s["status"] for s in doc["steps"]][:4] == ["succeeded", "succeeded", "not-started",
                                                       "succeeded"]
    code, _, err = run(capsys, "status", "--run", "run-nope")
    assert code == 1
    assert "no run run-nope" in err


def test_plain_lines():
    e = ProgressEvent("step-succeeded", "run-1", step="1.29/w1/drain", done=3, total=9,
                      seconds=1.25)
    assert format_line(e) == "[3/9] ✓ 1.29/w1/drain (1.2 s)"
    e = ProgressEvent("step-skipped", "run-1", step="1.29/w1/cordon", done=4, total=9,
                      message="already done: schedulable=False")
    assert format_line(e) == "[4/9] = 1.29/w1/cordon: already done: schedulable=False"
    e = ProgressEvent("drain", "run-1", node="w1", message="evicted web/a", done=4, total=9)
    assert format_line(e) is None
    e = ProgressEvent("drain", "run-1", node="w1", message="blocked web/a: pdb web/a", done=4,
                      total=9)
    assert format_line(e) == "[4/9]   w1: blocked web/a: pdb web/a"
    with pytest.raises(ValueError, match="unknown progress event"):
        ProgressEvent("nope", "run-1")


@pytest.mark.parametrize(("to", "recorded", "same"), [
    ("1.30", "v1.30.14", True), ("v1.30.14", "v1.30.14", True), ("1.31", "v1.30.14", False),
    ("v1.30.13", "v1.30.14", False), ("latest", "v1.30.14", None)])
def test_which_target_an_unfinished_run_answers(to, recorded, same):
    assert same_target(to, recorded) is same


def test_usage_errors(state_dir, capsys, tmp_path):
    code, _, err = run(capsys, "apply", str(tmp_path / "missing.json"), "--yes")
    assert code == 2
    assert "cannot read plan file" in err
    (tmp_path / "bad.json").write_text('{"version": 7}')
    code, _, err = run(capsys, "apply", str(tmp_path / "bad.json"))
    assert code == 2
    assert "unsupported plan format version 7" in err
    code, _, err = run(capsys, "upgrade", "--to", "1.30", "--from-state", "x.json")
    assert code == 2
    assert "--from-state plans from a file" in err
    code, _, err = run(capsys, "apply", "--abandon", "plan.json")
    assert code == 2
    assert "--abandon takes no PLAN_FILE" in err
    code, _, err = run(capsys, "apply", "--ready-timeout", "soon")
    assert code == 2
    assert "is not a duration" in err


def test_rich_progress_shows_the_run_the_wave_and_busy_nodes():
    import io

    from rich.console import Console

    from kubehop.cli.apply_progress import RichProgress

    console = Console(file=io.StringIO(), width=100, force_terminal=False, no_color=True)
    progress = RichProgress(console)
    progress.wave_sizes({0: 2})
    with progress:
        for kind, step, node, done in [
                ("run-started", None, None, 0), ("step-started", "w0/n0/drain", "n0", 0),
                ("drain", "w0/n0/drain", "n0", 0), ("step-succeeded", "w0/n0/drain", "n0", 1),
                ("step-failed", "w0/n1/drain", "n1", 1)]:
            progress(ProgressEvent(kind, "run-1", step=step, step_kind="drain", node=node,
                                   wave=0 if step else None, hop="v1.29.15",
                                   message="blocked web/a", done=done, total=2))
        tasks = {t.description: (t.completed, t.total) for t in progress.progress.tasks}
    assert tasks["upgrade"] == (1, 2)
    assert tasks["wave 0 [v1.29.15]"] == (1, 2)
    assert "[1/2] ✗ w0/n1/drain: blocked web/a" in console.file.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_answering_no_to_the_confirmation_exits_1_nothing_changed(monkeypatch, capsys):
    import click

    from kubehop.cli.ui import ClickUi

    @click.command("ask")
    def ask() -> None:
        ClickUi(yes=False).confirm("Apply 7 steps to the cluster?")

    monkeypatch.setitem(app.cli.commands, "ask", ask)
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    code, _, err = run(capsys, "ask")
    assert code == 1
    assert err.endswith("kubehop: not confirmed: nothing changed\n")


@pytest.fixture
def fake_cluster(monkeypatch):
    async def identity(session):
        return "kube-system:x"

    monkeypatch.setattr("kubehop.shell.session.base.BaseSession.identity", identity)


def test_resume_after_a_finished_run_says_it_finished(state_dir, capsys, fake_cluster):
    plan = make_plan([["n0"]])
    with Journal.open() as j:
        s = j.begin("kube-system:x", plan)
        s = j.set_status(s, RunStatus.SUCCEEDED, "done")
    code, out, err = run(capsys, "apply", "--yes")
    assert (code, err) == (0, "")
    assert out == (f"Nothing to resume: the last run on this cluster, {s.run.id} "
                   "(v1.28.9 → v1.29.15), finished successfully.\n")


def test_resume_without_any_run_is_a_usage_error(state_dir, capsys, fake_cluster):
    code, _, err = run(capsys, "apply", "--yes")
    assert code == 2
    assert err.startswith("kubehop: no unfinished run on this cluster (none was recorded): "
                          "give a PLAN_FILE")


def test_timeouts_and_release_data_reach_the_run(state_dir, capsys, monkeypatch, tmp_path):
    seen = {}

    async def apply_plan(session, plan, settings, **kw):
        seen["settings"] = settings
        seen["options"] = session.options

    monkeypatch.setattr("kubehop.shell.session.apply.apply_plan", apply_plan)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(make_plan([["n0"]]).to_dict()))
    data = tmp_path / "releases.yaml"
    data.write_text("x")
    code, _, err = run(capsys, "apply", str(path), "--yes", "--kubeadm-timeout", "45m",
                       "--lock-wait", "90s", "--release-data", str(data))
    assert code == 0, err
    settings = seen["settings"]
    assert settings.executor.kubeadm_timeout == 2700
    assert settings.executor.lock_wait == 90
    assert seen["options"].release_data == str(data)
    code, _, err = run(capsys, "apply", str(path), "--yes", "--lock-wait", "soon")
    assert code == 2
    assert "--lock-wait" in err


def test_after_a_run_nodes_with_kubectl_out_of_skew_are_named(monkeypatch, capsys):
    import asyncio

    import click

    from kubehop.model.cluster import ApiServerInfo, ClusterState, NodePackages, NodeState, OsFamily
    from kubehop.model.versions import parse_kube_version
    from kubehop.shell.session import QuietUi, Session, SessionOptions
    from kubehop.shell.session.apply import warn_node_kubectl

    state = ClusterState(
        apiservers=(ApiServerInfo("127.0.0.1:6443", "cp1", parse_kube_version("v1.30.14")),),
        nodes=(NodeState("w1", packages=NodePackages(OsFamily.DEBIAN, kubectl="1.28.9-1.1")),
               NodeState("w2", packages=NodePackages(OsFamily.DEBIAN, kubectl="1.30.14-1.1"))))

    async def observe(self, **kw):
        return state

    monkeypatch.setattr("kubehop.shell.session.base.BaseSession.observe", observe)
    ui = QuietUi(warn=lambda message: click.echo(message, err=True))
    asyncio.run(warn_node_kubectl(Session(SessionOptions(ssh_inventory="inventory.yaml"), ui)))
    err = capsys.readouterr().err
    assert "w1" in err
    assert "w2" not in err
