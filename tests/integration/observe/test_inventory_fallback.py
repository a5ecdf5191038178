"""A node missing from the SSH inventory is reached at its InternalIP — said once per node, and
on the lab that address is on loopback."""

from __future__ import annotations

import ipaddress

import asyncssh
import yaml

from tests.integration.observe.test_check import by_id, check


def test_check_warns_of_the_internalip_fallback_and_dials_loopback(lab_factory, cli_env, capsys,
                                                                     monkeypatch):
    lt = lab_factory("oldversion", ssh=True)
    inventory = yaml.safe_load(lt.lab.inventory_path.read_text())
    del inventory["nodes"]["oldversion3"]
    lt.lab.inventory_path.write_text(yaml.safe_dump(inventory))
    dialled: list[tuple[str, int]] = []
    real_connect = asyncssh.connect

    async def spy(host, port=22, **kwargs):
        dialled.append((host, port))
        return await real_connect(host, port, **kwargs)

    monkeypatch.setattr(asyncssh, "connect", spy)
    _code, findings, _err = check(capsys, lt.lab)
    found = by_id(findings)
    (fallback,) = found["node.inventory-fallback"]
    assert fallback["severity"] == "warning"
    assert fallback["subject"] == "node/oldversion3"
    assert "InternalIP 127.77.0.12" in fallback["message"]
    assert "add oldversion3 to the SSH inventory" in fallback["fix"]
    # The listed nodes are dialled where the inventory says; the missing one at its InternalIP,
    # a loopback address (nothing of ours listens there, so its facts are unreadable).
    hosts = {host for host, _ in dialled}
    assert "127.77.0.12" in hosts
    assert all(ipaddress.ip_address(h).is_loopback for h in hosts)
    assert [f["subject"] for f in found["packages.unreadable"]] == ["node/oldversion3"]
