"""The test run's network guard: nothing leaves loopback.

Tests, benchmarks and the demo may reach 127.0.0.0/8 and ::1 only (plus Unix sockets). `install()`
wraps the socket calls every Python client ends in — `socket.socket.connect`/`connect_ex`/
`sendto`/`sendmsg` (asyncio, aiohttp, asyncssh, ssl and kubernetes-asyncio all connect through
them) and `socket.getaddrinfo` (a name lookup asks a DNS server) — so that any other destination
raises `NetworkGuardError` before the real call runs: no packet is sent.

Every refusal is also appended to the file `$KUBEHOP_NETGUARD_LOG` (when set), so a refusal that
the code under test catches and turns into an ordinary error still fails the test (tests/conftest.py
reads the file after each test). Subprocesses get the same guard from `sitecustomize.py` beside
this file, enabled by `KUBEHOP_NETGUARD=1` with this directory on `PYTHONPATH`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

ENABLE_VAR = "KUBEHOP_NETGUARD"
LOG_VAR = "KUBEHOP_NETGUARD_LOG"
_LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.ip_address("::1")
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost",
                          "ip6-loopback"})
blocked: list[str] = []  # every refusal in this process, in order


class NetworkGuardError(PermissionError):
    """A connection to an address outside loopback, refused before any packet was sent."""


def allowed_host(host: object) -> bool:
    """Whether `host` (an address literal or a name) is loopback."""
    if host is None:
        return True  # getaddrinfo(None, port): the wildcard / loopback of a bind
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    text = str(host).strip("[]").split("%", 1)[0]
    if text.lower().rstrip(".") in _LOCAL_NAMES or text == "":
        return True
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False  # a name other than localhost would be looked up (DNS) and dialled
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return ip in _LOOPBACK_V4
    return ip == _LOOPBACK_V6


def _refuse(what: str, host: object, port: object) -> NetworkGuardError:
    message = (f"network guard: {what} {host}:{port} refused — tests may only reach "
               f"127.0.0.0/8 and ::1 (pid {os.getpid()})")
    blocked.append(message)
    log = os.environ.get(LOG_VAR)
    if log:
        try:
            with open(log, "a", encoding="utf-8") as f:
                f.write(message + "\n")
        except OSError:
            pass
    return NetworkGuardError(message)


def _check_address(sock: socket.socket, address: Any, what: str) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # Unix sockets, netlink: local by nature
    if isinstance(address, tuple) and address and not allowed_host(address[0]):
        raise _refuse(what, address[0], address[1] if len(address) > 1 else "?")


_installed = False


def install() -> None:
    """Wrap the socket calls (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    cls = socket.socket
    real_connect, real_connect_ex = cls.connect, cls.connect_ex
    real_sendto, real_sendmsg = cls.sendto, cls.sendmsg
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        _check_address(self, address, "connection to")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check_address(self, address, "connection to")
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        _check_address(self, args[-1] if args else None, "datagram to")
        return real_sendto(self, data, *args)

    def sendmsg(self: socket.socket, buffers: Any, ancdata: Any = (), flags: int = 0,
                address: Any = None) -> int:
        if address is not None:
            _check_address(self, address, "datagram to")
            return real_sendmsg(self, buffers, ancdata, flags, address)
        return real_sendmsg(self, buffers, ancdata, flags)

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not allowed_host(host):
            raise _refuse("name lookup of", host, port)
        return real_getaddrinfo(host, port, *args, **kwargs)

    cls.connect = connect  # type: ignore[method-assign]
    cls.connect_ex = connect_ex  # type: ignore[method-assign]
    cls.sendto = sendto  # type: ignore[method-assign,assignment]
    cls.sendmsg = sendmsg  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo


def guarded_env(env: dict[str, str]) -> dict[str, str]:
    """`env` (a subprocess's whole environment) with this process's guard settings added, for
    tests that start Python with an environment of their own."""
    out = dict(env)
    for var in (ENABLE_VAR, LOG_VAR, "PYTHONPATH"):
        if var in os.environ:
            out[var] = os.environ[var]
    return out
