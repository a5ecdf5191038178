"""kubeadm run as a transient systemd unit (`systemd-run`), outliving the session that started
it, and the `kubeadm-createjob-fails` fault on kubeadm's CreateJob health check."""

from kubehop.lab.node.services import running_units

from .test_kubeadm import install_kubeadm

N = "oldversion1"
UNIT = "kubehop-kubeadm"
RUN = (f"sudo systemd-run --unit={UNIT} --remain-after-exit "
       "-- kubeadm upgrade apply -y v1.29.15")
SHOW = f"systemctl show --property=ActiveState,SubState,Result,ExecMainStatus {UNIT}.service"


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


async def test_systemd_run_starts_kubeadm_in_the_background_and_keeps_its_outcome(lab):
    await install_kubeadm(lab, N, "1.29", 15)
    started = await lab.sh(N, RUN)
    assert started.exit_code == 0
    assert started.stderr == f"Running as unit: {UNIT}.service\n"
    # The command that started it has returned; kubeadm still runs, writing its log.
    assert running_units(lab.agents.host(N)) == [UNIT]
    assert props(await lab.ok(N, SHOW)) == {"ActiveState": "active", "SubState": "running",
                                            "Result": "success", "ExecMainStatus": "0"}
    again = await lab.sh(N, RUN)
    assert again.exit_code == 1
    assert f"Unit {UNIT}.service was already loaded" in again.stderr
    await lab.agents.idle()
    assert props(await lab.ok(N, SHOW)) == {"ActiveState": "active", "SubState": "exited",
                                            "Result": "success", "ExecMainStatus": "0"}
    invocation = (await lab.ok(N, f"systemctl show -p InvocationID --value {UNIT}")).strip()
    log = await lab.ok(N, f"sudo journalctl -q -o cat _SYSTEMD_INVOCATION_ID={invocation}")
    assert log == await lab.ok(N, f"sudo journalctl --unit={UNIT} --no-pager -o cat")
    assert "[upgrade/staticpods] Waiting for the kubelet to restart the component" in log
    assert 'SUCCESS! Your cluster was upgraded to "v1.29.15"' in log
    assert lab.agents.apiserver_version(N) == "v1.29.15"
    # A unit that was never started reads as not loaded: inactive, dead.
    gone = props(await lab.ok(N, SHOW.replace(UNIT, "kubehop-other")))
    assert (gone["ActiveState"], gone["SubState"]) == ("inactive", "dead")


async def test_a_failed_unit_keeps_its_exit_status_until_reset(lab):
    started = await lab.sh(N, RUN.replace("v1.29.15", "v1.31.0"))  # too far for kubeadm 1.28
    assert started.exit_code == 0
    await lab.agents.idle()
    assert props(await lab.ok(N, SHOW)) == {"ActiveState": "failed", "SubState": "failed",
                                            "Result": "exit-code", "ExecMainStatus": "1"}
    assert "[upgrade/version] FATAL" in await lab.ok(N, f"sudo journalctl -u {UNIT} -o cat")
    assert await lab.ok(N, f"journalctl -u {UNIT} -q -o cat") == ""  # not root: nothing
    assert (await lab.sh(N, f"systemctl reset-failed {UNIT}")).exit_code == 1  # needs root
    await lab.ok(N, f"sudo systemctl reset-failed {UNIT}")
    assert props(await lab.ok(N, SHOW))["SubState"] == "dead"
    # The journal keeps the output of the unloaded unit.
    assert "[upgrade/version] FATAL" in await lab.ok(N, f"sudo journalctl -u {UNIT} -o cat")


async def test_createjob_fault_fails_the_first_runs_then_passes(lab):
    lab.agents.cluster.inject("kubeadm-createjob-fails", N, {"times": "2"})
    for _ in range(2):
        r = await lab.sh(N, "sudo kubeadm upgrade plan")
        assert r.exit_code == 2
        assert ('[upgrade/health] FATAL: [preflight] Some fatal errors occurred:\n'
                '\t[ERROR CreateJob]: Job "upgrade-health-check" in the namespace "kube-system" '
                'did not complete in 15s: no condition of type Complete\n') in r.stderr
    assert "Upgrade to the latest" in await lab.ok(N, "sudo kubeadm upgrade plan")
    # `always` fails every run; the check can be ignored by name.
    lab.agents.cluster.inject("kubeadm-createjob-fails", N, {"times": "always"})
    assert (await lab.sh(N, "sudo kubeadm upgrade plan")).exit_code == 2
    await lab.ok(N, "sudo kubeadm upgrade plan --ignore-preflight-errors=CreateJob")
