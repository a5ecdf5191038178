"""The upgrade Lease against the lab's API: held and renewed, another run refused by name, a
stale lease taken over (after its TTL, or at once when its holder process is gone), released at
the end, and a lost lease noticed."""

from __future__ import annotations

import asyncio

import pytest

from kubehop.lab.lab import Lab
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.lock import LeaseLock, LeaseView, LockHeld, holder_identity, micro_time

PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kubehop-upgrade"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client(tmp_path):
    async with Lab("oldversion", time_scale=0.01, ssh=False, state_dir=tmp_path / "lab") as lab:
        c = await KubeClient.connect(str(lab.kubeconfig_path))
        try:
            yield c
        finally:
            await c.close()


async def lease(client: KubeClient) -> LeaseView | None:
    from kubehop.shell.kube.errors import ApiError

    try:
        return LeaseView.from_object(await client.get_json(PATH))
    except ApiError as e:
        if e.status == 404:
            return None
        raise


def lock(client, run, clock, **kw) -> LeaseLock:
    identity = kw.pop("identity", None) or holder_identity(run, user="ops", host="box", pid=4242)
    return LeaseLock(client, run, clock=clock, identity=identity, **kw)


async def test_held_while_running_and_released_at_the_end(client):
    clock = Clock()
    async with lock(client, "run-a", clock, renew_every=0.05) as held:
        view = await lease(client)
        assert view.holder == "ops@box/4242 run-a"
        assert view.duration == 30
        first = view.renewed
        clock.now += 5
        await asyncio.sleep(0.3)
        assert (await lease(client)).renewed == pytest.approx(first + 5, abs=0.01)
        assert held.held
        assert held.taken_over is None
    assert await lease(client) is None


async def test_another_run_is_refused_naming_the_holder(client):
    clock = Clock()
    async with lock(client, "run-a", clock):
        clock.now += 10
        other = lock(client, "run-b", clock, identity="ann@laptop/77 run-b")
        with pytest.raises(LockHeld, match=r"ops@box/4242 run-a, renewed 10 s ago.*20 s"):
            await other.acquire()
    assert await lease(client) is None


async def test_a_lease_not_renewed_is_taken_over_after_its_ttl(client):
    clock = Clock()
    dead = lock(client, "run-a", clock)
    await dead.acquire()  # never renewed, never released: a crashed kubehop elsewhere
    clock.now += 29
    with pytest.raises(LockHeld):
        await lock(client, "run-b", clock, identity="ann@laptop/77 run-b").acquire()
    clock.now += 2
    taker = lock(client, "run-b", clock, identity="ann@laptop/77 run-b")
    await taker.acquire()
    assert taker.taken_over == "expired: ops@box/4242 run-a"
    view = await lease(client)
    assert view.holder == "ann@laptop/77 run-b"
    assert view.transitions == 1
    # The old holder finds out at its next renewal and stops.
    assert await dead.renew() is False
    assert dead.lost.is_set()
    await dead.release()  # leaves the new holder's lease alone
    assert (await lease(client)).holder == "ann@laptop/77 run-b"
    await taker.release()
    assert await lease(client) is None


async def test_a_killed_holder_on_this_host_is_taken_over_at_once(client):
    import socket

    clock = Clock()
    host = socket.gethostname()
    killed = lock(client, "run-a", clock, identity=holder_identity("run-a", host=host, pid=999999))
    await killed.acquire()
    gone = {999999}
    again = lock(client, "run-a", clock, identity=holder_identity("run-a", host=host),
                 process_gone=lambda pid: pid in gone)
    await again.acquire()
    assert again.taken_over.startswith("holder process gone")
    await again.release()


async def test_racing_for_a_stale_lease_only_one_wins(client):
    clock = Clock()
    await lock(client, "run-a", clock).acquire()
    clock.now += 60
    racers = [lock(client, f"run-{i}", clock, identity=f"u@h{i}/1 run-{i}") for i in range(4)]
    results = await asyncio.gather(*(r.acquire() for r in racers), return_exceptions=True)
    winners = [r for r, res in zip(racers, results, strict=True) if res is None]
    assert len(winners) == 1
    assert all(isinstance(res, LockHeld) for res in results if res is not None)
    assert (await lease(client)).holder == winners[0].identity


async def test_a_lease_with_no_holder_is_free(client):
    clock = Clock()
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "kubehop-upgrade", "namespace": "kube-system"},
            "spec": {"leaseDurationSeconds": 30, "renewTime": micro_time(clock.now)}}
    await client.request("POST", PATH.rsplit("/", 1)[0], body=body)
    taker = lock(client, "run-b", clock)
    await taker.acquire()
    assert taker.taken_over == "released: "
    await taker.release()
