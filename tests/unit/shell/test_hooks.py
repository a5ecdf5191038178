"""HookRunner: the context in the environment, a timeout that kills, failures with the output's
last line, and a hook journaled as succeeded not run again."""

from __future__ import annotations

import pytest

from kubehop.core.hooks import Hook
from kubehop.model.journal import StepStatus
from kubehop.shell.executor.hooks import HookFailed, HookRunner
from tests.unit.core.test_hooks import PLAN


class Journal:
    def __init__(self, done: set[str] | None = None) -> None:
        self.done = done or set()
        self.records: list[tuple[str, StepStatus]] = []

    def hook_done(self, hook_id: str) -> bool:
        return hook_id in self.done

    def hook_record(self, call, status, message="", output="") -> None:
        self.records.append((call.id, status))


async def test_a_hook_sees_its_context_in_the_environment(tmp_path):
    out = tmp_path / "env"
    runner = HookRunner(PLAN, [Hook("before-drain", f"env > {out}")], run_id="run-1",
                        env={"PATH": "/usr/bin:/bin", "KUBECONFIG": "/k/config"})
    journal = Journal()
    await runner.before("1.30/oldversion3/cordon", journal)
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert {k: env[k] for k in ("KUBEHOP_EVENT", "KUBEHOP_NODE", "KUBEHOP_HOP", "KUBEHOP_STEP",
                                "KUBEHOP_RUN", "KUBEHOP_FROM", "KUBEHOP_TO", "KUBECONFIG")} == {
        "KUBEHOP_EVENT": "before-drain", "KUBEHOP_NODE": "oldversion3",
        "KUBEHOP_HOP": "v1.30.14", "KUBEHOP_STEP": "1.30/oldversion3/cordon",
        "KUBEHOP_RUN": "run-1", "KUBEHOP_FROM": "v1.28.9", "KUBEHOP_TO": "v1.30.14",
        "KUBECONFIG": "/k/config"}
    assert journal.records == [("hook/before-drain/1.30/oldversion3/0", StepStatus.STARTED),
                               ("hook/before-drain/1.30/oldversion3/0", StepStatus.SUCCEEDED)]
    # Journaled as succeeded: a resume does not run it again.
    out.unlink()
    await runner.before("1.30/oldversion3/cordon",
                        Journal({"hook/before-drain/1.30/oldversion3/0"}))
    assert not out.exists()


async def test_a_failing_hook_names_itself_the_node_and_its_last_line():
    runner = HookRunner(PLAN, [Hook("before-drain", "echo checking; echo no quorum >&2; exit 4")],
                        env={"PATH": "/usr/bin:/bin"})
    journal = Journal()
    with pytest.raises(HookFailed) as e:
        await runner.before("1.30/oldversion2/cordon", journal)
    assert e.value.message == ("hook before-drain for node oldversion2 `echo checking; echo no "
                               "quorum >&2; exit 4` exited with 4: no quorum")
    assert e.value.output == "checking\nno quorum"
    assert journal.records[-1] == ("hook/before-drain/1.30/oldversion2/0", StepStatus.FAILED)


async def test_a_hook_past_its_timeout_is_killed_and_fails():
    runner = HookRunner(PLAN, [Hook("finished", "sleep 30")], timeout=0.3,
                        env={"PATH": "/usr/bin:/bin"})
    with pytest.raises(HookFailed, match=r"^hook finished `sleep 30` did not finish within "
                                         r"0\.3 s \(killed\)$"):
        await runner.finish(Journal())
