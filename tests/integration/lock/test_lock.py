"""The upgrade Lease against the lab's API: held and renewed, another run refused by name, a
stale lease taken over (after its TTL, or at once when its holder process is gone — judged by
machine, boot, PID namespace, PID and start time), released at the end, and a lost lease
noticed before the next mutating step (a takeover, a broken lock, an outage longer than the
lease)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from kubehop.lab.lab import Lab
from kubehop.shell.executor.lock import (
    LeaseLock,
    LeaseView,
    LockHeld,
    ProcessKey,
    holder_identity,
    holder_process,
    micro_time,
    process_running,
    this_process,
)
from kubehop.shell.kube.client import KubeClient
from kubehop.shell.kube.errors import ApiError

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


BOX = ProcessKey(4242, start=1, pidns="4026531836", boot="b-1", machine="m-1")


def lock(client, run, clock, process: ProcessKey = BOX, **kw) -> LeaseLock:
    identity = kw.pop("identity", None) or \
        holder_identity(run, user="ops", host="box", process=process)
    kw.setdefault("running", lambda key: True)
    return LeaseLock(client, run, clock=clock, identity=identity, process=process, **kw)


async def test_held_while_running_and_released_at_the_end(client):
    clock = Clock()
    async with lock(client, "run-a", clock, renew_every=0.05) as held:
        view = await lease(client)
        assert view.holder == "ops@box/4242 run-a boot=b-1 pidns=4026531836 start=1 machine=m-1"
        assert view.duration == 30
        first = view.renewed
        clock.now += 5
        await asyncio.sleep(0.3)
        assert (await lease(client)).renewed == pytest.approx(first + 5, abs=0.01)
        assert held.held
        assert held.taken_over is None
    assert await lease(client) is None


HOLDER_A = "ops@box/4242 run-a boot=b-1 pidns=4026531836 start=1 machine=m-1"


async def test_another_run_is_refused_naming_the_holder_and_how_to_break_the_lock(client):
    clock = Clock()
    async with lock(client, "run-a", clock):
        clock.now += 10
        other = lock(client, "run-b", clock, identity="ann@laptop/77 run-b")
        with pytest.raises(LockHeld) as exc:
            await other.acquire()
    assert str(exc.value) == (
        "another kubehop run holds the upgrade lock (Lease kube-system/kubehop-upgrade): "
        f"{HOLDER_A}, renewed 10 s ago; "
        "wait for it to finish (`kubehop status` on its machine), or if it died, retry after "
        "its lease expires (20 s); if it is certainly gone and its lease does not expire, "
        "break the lock with `kubectl -n kube-system delete lease kubehop-upgrade`")
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
    assert taker.taken_over == f"expired: {HOLDER_A}"
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


# --- who may take a live-looking lease early --------------------------------------------------


def test_the_holder_identity_names_the_process_uniquely():
    me = this_process()
    identity = holder_identity("run-a", user="ops", host="box", process=me)
    assert identity.startswith(f"ops@box/{me.pid} run-a boot=")
    assert holder_process(identity) == me
    assert holder_process("ann@laptop/77 run-b") == ProcessKey(77)  # an older kubehop: no key
    assert holder_process("leader-election-id") is None


async def test_a_run_in_another_pid_namespace_is_not_taken_over_early(client):
    """The same hostname and user, a PID not visible here: a run in another container."""
    clock = Clock()
    me = this_process()
    host = socket.gethostname()
    elsewhere = ProcessKey(999_999, start=5, pidns="4026532999", boot=me.boot, machine=me.machine)
    assert me.pidns != elsewhere.pidns
    await lock(client, "run-a", clock, process=elsewhere,
               identity=holder_identity("run-a", user="ops", host=host, process=elsewhere),
               running=process_running).acquire()
    clock.now += 5
    second = LeaseLock(client, "run-a", clock=clock, process=me,
                       identity=holder_identity("run-a", user="ops", host=host, process=me))
    with pytest.raises(LockHeld, match=rf": ops@{host}/999999 run-a .*pidns=4026532999"):
        await second.acquire()
    clock.now += 26  # its lease expired: now it may be taken
    await second.acquire()
    assert second.taken_over.startswith(f"expired: ops@{host}/999999 run-a ")


async def test_a_vm_clone_with_the_same_machine_id_is_not_taken_over_early(client):
    clock = Clock()
    me = this_process()
    clone = ProcessKey(me.pid, start=me.start, pidns=me.pidns, boot="another-boot",
                       machine=me.machine)
    await lock(client, "run-a", clock, process=clone).acquire()
    with pytest.raises(LockHeld):
        await LeaseLock(client, "run-a", clock=clock, process=me).acquire()


async def test_a_killed_holder_in_this_pid_namespace_is_taken_over_at_once(client):
    clock = Clock()
    me = this_process()
    proc = await asyncio.create_subprocess_exec("sleep", "60")
    stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1]
    victim = ProcessKey(proc.pid, start=int(stat.split()[19]), pidns=me.pidns, boot=me.boot,
                        machine=me.machine)
    assert process_running(victim)
    await lock(client, "run-a", clock, process=victim).acquire()
    view = await lease(client)
    assert view.free_for("me", clock.now, me, process_running) is None  # it still runs
    proc.kill()
    await proc.wait()
    assert not process_running(victim)
    again = LeaseLock(client, "run-a", clock=clock, process=me)
    await again.acquire()  # at once: its lease is 0 s old
    assert again.taken_over.startswith(f"holder process gone: ops@box/{proc.pid} run-a")
    await again.release()


async def test_a_reused_pid_does_not_keep_a_dead_holders_lease(client):
    clock = Clock()
    me = this_process()
    earlier = ProcessKey(me.pid, start=me.start - 1, pidns=me.pidns, boot=me.boot,
                         machine=me.machine)  # our PID, but a process that started before us
    await lock(client, "run-a", clock, process=earlier).acquire()
    again = LeaseLock(client, "run-a", clock=clock, process=me)
    await again.acquire()
    assert again.taken_over.startswith("holder process gone")


# --- noticing a lost lease before the next mutating step ----------------------------------------


async def test_confirm_sees_a_takeover_before_the_next_renewal(client):
    clock = Clock()
    async with lock(client, "run-a", clock, renew_every=3600) as held:
        assert await held.confirm() is None
        view = await lease(client)
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "kubehop-upgrade", "namespace": "kube-system",
                             "resourceVersion": view.resource_version},
                "spec": {"holderIdentity": "ann@laptop/77 run-b", "leaseDurationSeconds": 30,
                         "renewTime": micro_time(clock.now)}}
        await client.request("PUT", PATH, body=body)
        why = await held.confirm()
        assert why == ("another kubehop run took over the upgrade lock "
                       "(Lease kube-system/kubehop-upgrade): ann@laptop/77 run-b")
        assert held.lost.is_set()
        assert held.lost_reason == why
    assert (await lease(client)).holder == "ann@laptop/77 run-b"  # not released by the loser


async def test_confirm_sees_a_broken_lock(client):
    clock = Clock()
    async with lock(client, "run-a", clock, renew_every=3600) as held:
        await client.request("DELETE", PATH)  # `kubectl -n kube-system delete lease ...`
        why = await held.confirm()
        assert why.startswith("the upgrade lock (Lease kube-system/kubehop-upgrade) was deleted")
        assert await held.renew() is False


async def test_after_an_outage_longer_than_the_lease_a_taken_lease_is_lost(client):
    clock = Clock()
    async with lock(client, "run-a", clock, renew_every=3600) as held:
        clock.now += 45  # no renewal got through for 45 s; another run took the lease
        other = lock(client, "run-b", clock, identity="ann@laptop/77 run-b")
        await other.acquire()
        clock.now += 1
        why = await held.confirm()
        assert why.endswith("(Lease kube-system/kubehop-upgrade): ann@laptop/77 run-b")
    assert (await lease(client)).holder == "ann@laptop/77 run-b"


async def test_after_an_outage_longer_than_the_lease_an_untouched_lease_is_renewed(client):
    clock = Clock()
    async with lock(client, "run-a", clock, renew_every=3600) as held:
        clock.now += 45
        assert await held.confirm() is None
        assert (await lease(client)).renewed == pytest.approx(clock.now, abs=0.01)


class Unreachable:
    """A client whose apiserver stops answering once `down` is set."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.down = False

    async def request(self, *args, **kw):
        if self.down:
            raise ApiError("cannot reach https://127.0.0.1:6443: ConnectionRefusedError")
        return await self.client.request(*args, **kw)

    async def get_json(self, *args, **kw):
        if self.down:
            raise ApiError("cannot reach https://127.0.0.1:6443: ConnectionRefusedError")
        return await self.client.get_json(*args, **kw)


async def test_an_apiserver_unreachable_for_longer_than_the_lease_loses_it(client):
    clock = Clock()
    flaky = Unreachable(client)
    held = lock(flaky, "run-a", clock)
    await held.acquire()
    flaky.down = True
    clock.now += 20
    assert await held.confirm() is None  # not expired yet: nobody else may take it
    clock.now += 15
    why = await held.confirm()
    assert why.startswith("could not renew the upgrade lock (Lease kube-system/kubehop-upgrade) "
                          "for 35 s, longer than its 30 s lease, so another run may hold it now")
    assert held.lost.is_set()


async def test_concurrent_confirms_share_one_request(client):
    class Counting(Unreachable):
        gets = 0

        async def get_json(self, *args, **kw):
            Counting.gets += 1
            return await super().get_json(*args, **kw)

    clock = Clock()
    held = lock(Counting(client), "run-a", clock)
    await held.acquire()
    assert await asyncio.gather(*(held.confirm() for _ in range(50))) == [None] * 50
    assert Counting.gets == 1
    await held.release()
