"""`--notify URL`: a webhook receiver on 127.0.0.1 gets the run's events in order, each with a
Slack-compatible `text`; a receiver that is down costs a warning, never the upgrade."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.integration.upgrade.conftest import TODAY
from tests.integration.upgrade.test_fault import broken_scenario


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.bodies: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/T000/B000/secret"


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # http.server's naming
        length = int(self.headers["Content-Length"])
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_webhook_gets_the_events_in_order(upgrade_lab, receiver):
    up = upgrade_lab("oldversion")
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY,
                      "--notify", receiver.url)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = [(b["event"], b.get("hop")) for b in receiver.bodies]
    assert events == [("started", None), ("hop-finished", "v1.29.15"),
                      ("hop-finished", "v1.30.14"), ("finished", None)]
    assert receiver.bodies[1]["text"].startswith(
        "kubehop v1.28.9 → v1.30.14: hop v1.29.15 finished (")
    assert {b["run"] for b in receiver.bodies} == {receiver.bodies[0]["run"]}


def test_a_halt_names_the_node(upgrade_lab, receiver, tmp_path):
    fault = "\nfaults:\n  - {kind: package-install-fails, node: oldversion3, package: kubelet}\n"
    up = upgrade_lab(broken_scenario(tmp_path, fault))
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY,
                      "--notify", receiver.url)
    assert done.returncode == 3
    events = [b["event"] for b in receiver.bodies]
    assert events[-2:] == ["node-halted", "halted"]
    halted = receiver.bodies[-2]
    assert halted["node"] == "oldversion3"
    assert halted["text"].startswith("kubehop v1.28.9 → v1.30.14: node oldversion3 halted at "
                                     "1.30/oldversion3/kubelet-install: ")


def test_a_receiver_that_is_down_is_a_warning_not_a_halt(upgrade_lab):
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    up = upgrade_lab("oldversion")
    done = up.kubehop("upgrade", "--to", "1.30", "--yes", "--today", TODAY,
                      "--notify", f"http://127.0.0.1:{port}/hooks/secret-token")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"kubehop: warning: notification started to http://127.0.0.1:{port}/… failed: " \
        in done.stderr
    assert "secret-token" not in done.stderr
