"""The Session owns the run: one API client per command, and the options it was given reach
every plan it makes (also the one made again when a plan no longer fits the cluster)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date
from importlib import resources
from typing import Any

import pytest

from kubehop.cli import app
from kubehop.model.cluster import ClusterState
from kubehop.model.errors import OperationError
from kubehop.model.plan import PlanOptions
from kubehop.shell.kube import requests as rq
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.requests import Request
from kubehop.shell.session import QuietUi, Session, SessionOptions, planning
from kubehop.shell.session.fingerprint import check_fingerprint
from tests.release_pins import FRESH
from tests.unit.core.plan_strategies import oldversion_state

TODAY = str(FRESH)  # within 60 days of the shipped data: no staleness warning


class FakeClient:
    """Answers the one request a session makes itself (the cluster's identity)."""

    server = "https://127.77.0.1:6443"

    def __init__(self) -> None:
        self.closed = False

    async def get_json(self, request: Request) -> Any:
        if request == rq.get_namespace("kube-system"):
            return {"metadata": {"uid": "uid-1"}}
        raise KeyError(request)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> dict[str, Any]:
    """A fake cluster behind `KubeClient.connect`: counts the clients, serves `state`."""
    monkeypatch.setenv("KUBEHOP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("KUBEHOP_RELEASE_DATA", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    seen: dict[str, Any] = {"clients": [], "observed_with": [], "state": oldversion_state()}

    async def connect(kubeconfig: str | None = None, context: str | None = None,
                      **kw: Any) -> FakeClient:
        client = FakeClient()
        seen["clients"].append(client)
        return client

    async def observe(client: Any, **kw: Any) -> ClusterState:
        seen["observed_with"].append(client)
        return seen["state"]

    monkeypatch.setattr(KubeClient, "connect", connect)
    monkeypatch.setattr("kubehop.shell.observe.cluster.observe", observe)
    return seen


def test_one_upgrade_opens_exactly_one_api_client(cluster, monkeypatch, capsys):
    executed = []

    async def execute(session: Session, journal: Any, identity: str, plan: Any, settings: Any,
                      **kw: Any) -> None:
        # What the executor does with the session's client: the lock, then a second look.
        executed.append((await session.client(), identity))
        await check_fingerprint(session, plan, None)

    monkeypatch.setattr("kubehop.shell.session.apply.execute", execute)
    with pytest.raises(SystemExit) as exc:
        app.main(["upgrade", "--to", "1.30", "--yes", "--today", TODAY])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    assert "Upgrade plan: v1.28.9 → v1.30.14" in out
    (client,) = cluster["clients"]
    assert len(cluster["observed_with"]) >= 2  # planned, then looked at again
    assert all(c is client for c in cluster["observed_with"])
    assert executed == [(client, "kube-system:uid-1")]
    assert client.closed


def test_check_and_plan_open_one_client_each(cluster, capsys):
    for args in (["check", "--to", "1.30", "--today", TODAY],
                 ["plan", "--to", "1.30", "--today", TODAY]):
        with pytest.raises(SystemExit):
            app.main(args)
    capsys.readouterr()
    assert len(cluster["clients"]) == 2
    assert all(c.closed for c in cluster["clients"])


def test_planning_again_keeps_release_data_and_today(cluster, monkeypatch, tmp_path):
    """A plan that no longer fits is planned again to say how: with the user's --release-data
    and --today, not the shipped data and the system date."""
    data_file = tmp_path / "releases.yaml"
    data_file.write_text(resources.files("kubehop.data").joinpath("releases.yaml")
                         .read_text(encoding="utf-8"))
    day = FRESH
    session = Session(SessionOptions(release_data=str(data_file), today=day), QuietUi())
    plan = session.plan(oldversion_state(), "1.30", PlanOptions())
    made_with = []
    real = planning.make_plan

    def spy(state: ClusterState, to: str, options: PlanOptions, data: Any, when: date,
            warn: Any) -> Any:
        made_with.append((to, options, data.source, when))
        return real(state, to, options, data, when, warn)

    monkeypatch.setattr(planning, "make_plan", spy)
    st = oldversion_state()
    cluster["state"] = dataclasses.replace(st, nodes=(
        dataclasses.replace(st.nodes[0], schedulable=False), *st.nodes[1:]))

    async def refused() -> None:
        async with session:
            await check_fingerprint(session, plan, None)

    with pytest.raises(OperationError, match="the cluster changed since this plan was made"):
        asyncio.run(refused())
    assert made_with == [("v1.30.14", plan.strategy, str(data_file), day)]
    assert len(cluster["clients"]) == 1
