"""The SSH inventory: node → host, port, user, identity file, jump host, sudo.

    apiVersion: kubehop.dev/v1
    kind: SSHInventory
    knownHosts: ~/.ssh/known_hosts          # optional; the user's known_hosts otherwise
    defaults: {user: ubuntu, identityFile: ~/.ssh/cluster, sudo: true}   # optional
    nodes:
      cp1: {host: 192.0.2.10, port: 22, user: ubuntu, identityFile: ..., jumpHost: admin@bastion:22}

Every field is optional. A node's own fields win over `defaults`; what neither sets comes from
`~/.ssh/config` or SSH's defaults (port 22, the current user, the user's keys). A node missing
from `nodes` is reached at the address its caller gives (its InternalIP), else by its name.
Relative paths are relative to the inventory file; `~` is expanded. Problems are `UsageError`s
(exit 2) naming the file, the field and what is wrong.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from kubehop.model.errors import UsageError

API_VERSION = "kubehop.dev/v1"
KIND = "SSHInventory"
TOP_KEYS = ("apiVersion", "kind", "knownHosts", "defaults", "nodes")
ENTRY_KEYS = ("host", "port", "user", "identityFile", "jumpHost", "sudo")
DEFAULT_KEYS = tuple(k for k in ENTRY_KEYS if k != "host")
_HOST_RE = re.compile(r"[A-Za-z0-9_.:%-]+|\[[0-9A-Fa-f:.%]+\]")
_USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
_JUMP_RE = re.compile(r"(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]\s]+\]|[^:@\s]+)(?::(?P<port>\d+))?")


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One node's SSH settings as written; None: not set here."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    identity_file: Path | None = None
    jump_host: str | None = None  # [user@]host[:port]
    sudo: bool | None = None

    def over(self, base: NodeEntry) -> NodeEntry:
        """These settings, with what they leave unset taken from `base`."""
        return NodeEntry(**{f.name: getattr(self, f.name) if getattr(self, f.name) is not None
                            else getattr(base, f.name) for f in dataclasses.fields(self)})


@dataclass(frozen=True, slots=True)
class JumpHost:
    """An SSH hop in front of a node (OpenSSH's ProxyJump)."""

    host: str
    port: int | None = None
    user: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}" + (
            f":{self.port}" if self.port else "")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How to reach one node: its inventory entry over the defaults, resolved."""

    node: str
    host: str
    port: int | None  # None: ~/.ssh/config's Port, else 22
    user: str | None  # None: ~/.ssh/config's User, else the current user
    identity_file: Path | None  # None: ~/.ssh/config's IdentityFile and the default keys
    jump_host: JumpHost | None
    sudo: bool  # prefix `sudo -n` to privileged commands when the user is not root

    @property
    def target(self) -> str:
        """`user@host:port` as far as known, for messages."""
        return f"{self.user + '@' if self.user else ''}{self.host}" + (
            f":{self.port}" if self.port else "")


@dataclass(frozen=True, slots=True)
class Inventory:
    """A parsed SSH inventory (`Inventory()` is the empty one: everything defaulted)."""

    source: str = "<no inventory>"
    known_hosts: Path | None = None  # None: ~/.ssh/known_hosts
    defaults: NodeEntry = NodeEntry()
    nodes: Mapping[str, NodeEntry] = field(default_factory=dict)

    def names_host(self, node: str) -> bool:
        """Whether the inventory (the node's entry or `defaults`) gives `node` a host."""
        return bool(self.nodes.get(node, NodeEntry()).over(self.defaults).host)

    def endpoint(self, node: str, address: str | None = None) -> Endpoint:
        """Where `node` is reached; `address` (its InternalIP) when the inventory names no host."""
        entry = self.nodes.get(node, NodeEntry()).over(self.defaults)
        return Endpoint(node=node, host=entry.host or address or node, port=entry.port,
                        user=entry.user, identity_file=entry.identity_file,
                        jump_host=parse_jump_host(entry.jump_host) if entry.jump_host else None,
                        sudo=True if entry.sudo is None else entry.sudo)


def parse_jump_host(text: str) -> JumpHost:
    """`[user@]host[:port]` → JumpHost (ValueError when malformed)."""
    m = _JUMP_RE.fullmatch(text.strip())
    if not m or (m.group("port") and not 0 < int(m.group("port")) < 65536):
        raise ValueError(f"expected [user@]host[:port], got {text!r}")
    return JumpHost(m.group("host").strip("[]"), int(m.group("port")) if m.group("port") else None,
                    m.group("user"))


class _Parser:
    def __init__(self, source: str, base_dir: Path | None) -> None:
        self.source = source
        self.base_dir = base_dir

    def fail(self, path: str, problem: str) -> NoReturn:
        raise UsageError(f"SSH inventory {self.source}: {path or 'document'}: {problem}")

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}" if path else str(key),
                          f"unknown field (known: {', '.join(allowed)})")
        return value

    def text(self, value: Any, path: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected a non-empty string, got {value!r}")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(path, f"{value!r} is not valid here")
        return value

    def path(self, value: Any, path: str) -> Path:
        p = Path(self.text(value, path)).expanduser()
        return p if p.is_absolute() or self.base_dir is None else self.base_dir / p

    def entry(self, value: Any, path: str, allowed: tuple[str, ...]) -> NodeEntry:
        doc = self.mapping(value, path, allowed)
        port = doc.get("port")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                 or not 0 < port < 65536):
            self.fail(f"{path}.port", f"expected a port number 1-65535, got {port!r}")
        sudo = doc.get("sudo")
        if sudo is not None and not isinstance(sudo, bool):
            self.fail(f"{path}.sudo", f"expected true or false, got {sudo!r}")
        jump = doc.get("jumpHost")
        if jump is not None:
            try:
                parse_jump_host(self.text(jump, f"{path}.jumpHost"))
            except ValueError as e:
                self.fail(f"{path}.jumpHost", str(e))
        get = doc.get
        return NodeEntry(
            host=self.text(get("host"), f"{path}.host", _HOST_RE) if get("host") is not None
            else None,
            port=port,
            user=self.text(get("user"), f"{path}.user", _USER_RE) if get("user") is not None
            else None,
            identity_file=self.path(get("identityFile"), f"{path}.identityFile")
            if get("identityFile") is not None else None,
            jump_host=jump, sudo=sudo)


def parse_inventory(doc: Any, source: str, base_dir: Path | None = None) -> Inventory:
    """Validate an inventory document (already YAML-decoded); `source` names it in errors."""
    p = _Parser(source, base_dir)
    top = p.mapping(doc, "", TOP_KEYS)
    if top.get("apiVersion", API_VERSION) != API_VERSION:
        p.fail("apiVersion", f"expected {API_VERSION}, got {top['apiVersion']!r}")
    if top.get("kind", KIND) != KIND:
        p.fail("kind", f"expected {KIND}, got {top['kind']!r}")
    known = p.path(top["knownHosts"], "knownHosts") if top.get("knownHosts") is not None else None
    defaults = p.entry(top.get("defaults"), "defaults", DEFAULT_KEYS)
    nodes_doc = top.get("nodes") or {}
    if not isinstance(nodes_doc, dict):
        p.fail("nodes", f"expected a mapping of node name to settings, got "
                        f"{type(nodes_doc).__name__}")
    nodes = {}
    for name, value in nodes_doc.items():
        if not isinstance(name, str) or not name:
            p.fail("nodes", f"node names must be strings, got {name!r}")
        nodes[name] = p.entry(value, f"nodes.{name}", ENTRY_KEYS)
    return Inventory(source=source, known_hosts=known, defaults=defaults, nodes=nodes)


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate the inventory file at `path`; its identity files must be readable."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read SSH inventory {path}: {e.strerror or e}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UsageError(f"SSH inventory {path}{at}: not valid YAML: {problem}") from None
    inventory = parse_inventory(doc, str(path), path.parent)
    for where, entry in [("defaults", inventory.defaults),
                         *((f"nodes.{n}", e) for n, e in inventory.nodes.items())]:
        if entry.identity_file is not None and not entry.identity_file.is_file():
            raise UsageError(f"SSH inventory {path}: {where}.identityFile: "
                             f"{entry.identity_file} does not exist")
    return inventory
