"""The SSH inventory: the lab's format, defaults, and one-line errors naming file and field."""

import getpass
from pathlib import Path

import pytest
import yaml

from kubehop.model.errors import UsageError
from kubehop.shell.transports.inventory import (
    Inventory,
    JumpHost,
    load_inventory,
    parse_inventory,
    parse_jump_host,
)


def write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def test_the_labs_inventory_format_is_read(tmp_path):
    key = tmp_path / "ssh" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("key")
    # As kubehop.lab.node.sshd.NodeSSH.write_inventory writes it.
    path = write(tmp_path, {
        "apiVersion": "kubehop.dev/v1", "kind": "SSHInventory",
        "knownHosts": str(tmp_path / "ssh" / "known_hosts"),
        "nodes": {"oldversion1": {"host": "127.0.0.1", "port": 40001, "user": "kubehop",
                                  "identityFile": str(key), "sudo": True}}})
    inventory = load_inventory(path)
    assert inventory.known_hosts == tmp_path / "ssh" / "known_hosts"
    ep = inventory.endpoint("oldversion1", "127.77.0.10")
    assert (ep.node, ep.host, ep.port, ep.user, ep.identity_file, ep.jump_host, ep.sudo) == \
        ("oldversion1", "127.0.0.1", 40001, "kubehop", key, None, True)
    assert ep.target == "kubehop@127.0.0.1:40001"


def test_defaults_apply_under_node_fields_and_paths_resolve(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "cluster").write_text("key")
    inventory = load_inventory(write(tmp_path, {
        "knownHosts": "kh",
        "defaults": {"user": "ubuntu", "identityFile": "keys/cluster", "port": 2222,
                     "jumpHost": "admin@bastion.example:2200", "sudo": True},
        "nodes": {"w1": {"host": "127.77.0.21", "user": "root", "sudo": False},
                  "w2": {"jumpHost": "[fd00::1]"}}}))
    assert inventory.known_hosts == tmp_path / "kh"
    w1 = inventory.endpoint("w1", "127.77.9.9")
    assert (w1.host, w1.port, w1.user, w1.sudo) == ("127.77.0.21", 2222, "root", False)
    assert w1.identity_file == tmp_path / "keys" / "cluster"
    assert w1.jump_host == JumpHost("bastion.example", 2200, "admin")
    w2 = inventory.endpoint("w2", "127.77.0.22")
    assert (w2.host, w2.user, w2.jump_host) == ("127.77.0.22", "ubuntu", JumpHost("fd00::1"))
    absent = inventory.endpoint("w3", "127.77.0.23")
    assert (absent.host, absent.port, absent.user) == ("127.77.0.23", 2222, "ubuntu")


def test_a_node_absent_everywhere_uses_its_address_then_its_name():
    empty = Inventory()
    ep = empty.endpoint("w1", "127.77.0.21")
    assert (ep.host, ep.port, ep.user, ep.identity_file, ep.sudo) == \
        ("127.77.0.21", None, None, None, True)
    assert empty.endpoint("w1").host == "w1"
    assert empty.known_hosts is None
    assert ep.target == "127.77.0.21"
    assert getpass.getuser()  # None means SSH's own default: the current user


@pytest.mark.parametrize(("doc", "message"), [
    ({"kind": "Inventory"}, "kind: expected SSHInventory, got 'Inventory'"),
    ({"apiVersion": "v2"}, "apiVersion: expected kubehop.dev/v1, got 'v2'"),
    ({"nodez": {}}, "nodez: unknown field (known: apiVersion, kind, knownHosts, defaults, nodes)"),
    ({"nodes": ["w1"]}, "nodes: expected a mapping of node name to settings, got list"),
    ({"nodes": {"w1": {"port": "22"}}}, "nodes.w1.port: expected a port number 1-65535, got '22'"),
    ({"nodes": {"w1": {"port": 70000}}}, "nodes.w1.port: expected a port number 1-65535"),
    ({"nodes": {"w1": {"sudo": "yes"}}}, "nodes.w1.sudo: expected true or false, got 'yes'"),
    ({"nodes": {"w1": {"hostname": "x"}}}, "nodes.w1.hostname: unknown field (known: host, "),
    ({"nodes": {"w1": {"host": "a b"}}}, "nodes.w1.host: 'a b' is not valid here"),
    ({"nodes": {"w1": {"user": ""}}}, "nodes.w1.user: expected a non-empty string, got ''"),
    ({"nodes": {"w1": {"jumpHost": "a@b:x"}}}, "nodes.w1.jumpHost: expected [user@]host[:port]"),
    ({"defaults": {"host": "x"}}, "defaults.host: unknown field"),
    ({"nodes": {"w1": "127.77.0.1"}}, "nodes.w1: expected a mapping, got str"),
])
def test_problems_name_the_file_and_field(doc, message):
    with pytest.raises(UsageError) as caught:
        parse_inventory(doc, "inv.yaml")
    assert str(caught.value).startswith(f"SSH inventory inv.yaml: {message}")
    assert caught.value.exit_code == 2


def test_unreadable_files_and_bad_yaml_and_missing_keys_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match=r"cannot read SSH inventory .*nope.yaml: No such file"):
        load_inventory(tmp_path / "nope.yaml")
    with pytest.raises(UsageError, match=r"inventory.yaml:3: not valid YAML: "):
        load_inventory(write(tmp_path, "nodes:\n  w1: {host: [\n"))
    with pytest.raises(UsageError, match=r"nodes.w1.identityFile: .*missing does not exist"):
        load_inventory(write(tmp_path, {"nodes": {"w1": {"identityFile": "missing"}}}))


def test_empty_file_is_an_empty_inventory(tmp_path):
    inventory = load_inventory(write(tmp_path, ""))
    assert inventory.nodes == {}
    assert inventory.endpoint("w1", "127.77.0.1").host == "127.77.0.1"


@pytest.mark.parametrize(("text", "jump"), [
    ("bastion", JumpHost("bastion")),
    ("ops@bastion:2200", JumpHost("bastion", 2200, "ops")),
    ("[fd00::1]:22", JumpHost("fd00::1", 22)),
])
def test_jump_host_syntax(text, jump):
    assert parse_jump_host(text) == jump
    assert str(parse_jump_host(str(jump))) == str(jump)
