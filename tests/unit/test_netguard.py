"""The test run's network guard (tests/netguard): only loopback, refused before any packet."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap

import aiohttp
import asyncssh
import kubehop_netguard
import pytest
from kubehop_netguard import NetworkGuardError, allowed_host

pytestmark = pytest.mark.netguard_expected
# The addresses issue #13 names: nothing dials them, the guard refuses before the socket call
# (a test that reached the network would fail with another error than NetworkGuardError).
OUTSIDE = ["10.0.0.1", "192.0.2.1"]


@pytest.mark.parametrize("host", OUTSIDE)
def test_plain_socket_refused_before_connecting(host):
    with pytest.raises(NetworkGuardError, match=f"{host}:9 refused"):
        socket.create_connection((host, 9), timeout=5)
    assert any(host in line for line in kubehop_netguard.blocked)


@pytest.mark.parametrize("host", OUTSIDE)
async def test_asyncio_aiohttp_and_asyncssh_refused(host):
    with pytest.raises(NetworkGuardError):
        await asyncio.open_connection(host, 6443)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.get(f"https://{host}:6443/version")
        assert isinstance(caught.value.os_error, NetworkGuardError)
    with pytest.raises(NetworkGuardError):
        await asyncssh.connect(host, 22, known_hosts=None, connect_timeout=5)


def test_name_lookups_refused_but_localhost_allowed():
    with pytest.raises(NetworkGuardError, match=r"name lookup of example\.com"):
        socket.getaddrinfo("example.com", 443)
    assert socket.getaddrinfo("localhost", 443)


@pytest.mark.parametrize(("host", "ok"), [
    ("127.0.0.1", True), ("127.77.0.12", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("localhost", True), (None, True), ("198.51.100.7", False), ("203.0.113.7", False),
    ("::ffff:192.0.2.1", False), ("fd00::1", False), ("oldversion3", False), ("0.0.0.0", False),
])
def test_allowed_hosts(host, ok):
    assert allowed_host(host) is ok


def test_loopback_still_connects():
    server = socket.create_server(("127.0.0.1", 0))
    try:
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    finally:
        server.close()


@pytest.mark.parametrize("host", OUTSIDE)
def test_subprocess_guarded_too(host):
    """A Python subprocess inherits the guard (sitecustomize on PYTHONPATH)."""
    code = textwrap.dedent(f"""
        import socket
        try:
            socket.create_connection(({host!r}, 9), timeout=5)
        except Exception as e:
            print(type(e).__name__, e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.startswith("NetworkGuardError"), out
    assert f"{host}:9 refused" in out


def test_kubehop_subprocess_to_outside_apiserver_refused(tmp_path):
    """kubehop started as a command is guarded: a kubeconfig naming 192.0.2.1 never connects."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(textwrap.dedent("""
        apiVersion: v1
        kind: Config
        clusters: [{name: c, cluster: {server: "https://192.0.2.1:6443",
                                       insecure-skip-tls-verify: true}}]
        users: [{name: u, user: {token: x}}]
        contexts: [{name: c, context: {cluster: c, user: u}}]
        current-context: c
    """))
    proc = subprocess.run([sys.executable, "-m", "kubehop", "--kubeconfig", str(kubeconfig),
                           "versions"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    with open(kubehop_netguard.os.environ[kubehop_netguard.LOG_VAR], encoding="utf-8") as f:
        assert "192.0.2.1:6443 refused" in f.read()
