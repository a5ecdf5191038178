"""Fixtures for the lab fidelity tests: a lab served from a background thread (so tests can run
blocking kubectl processes) and helpers to run kubectl against it."""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubehop.lab.api.server import LabServer
from kubehop.lab.fixtures.specs import oldversion_spec
from tests.integration import kubectl_bin

T = TypeVar("T")
KUBECTL_MINORS = (27, 30, 33, 37)


class LabThread:
    """A LabServer running on its own event loop in a daemon thread."""

    def __init__(self, server: LabServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="lab", daemon=True)

    def __enter__(self) -> LabThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)
            self.loop.close()

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the lab's loop (the store is not thread-safe) and return its result."""
        fut: Future[T] = Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as e:
                fut.set_exception(e)

        self.loop.call_soon_threadsafe(run)
        return fut.result(timeout=30)


@dataclass
class Kubectl:
    """One kubectl binary bound to the lab's kubeconfig and a private HOME/cache."""

    binary: Path
    kubeconfig: Path
    home: Path

    def run(self, *args: str, check: bool = True, stdin: str | None = None) -> str:
        env = {"HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig), "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(
            [str(self.binary), "--cache-dir", str(self.home / "cache"), *args],
            capture_output=True, text=True, env=env, timeout=60, input=stdin, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc.stdout + (proc.stderr if not check else "")


def table_rows(text: str) -> list[dict[str, str]]:
    """Parse kubectl's column output (cells separated by 2+ spaces) into dicts by header."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    starts, pos = [], 0
    for h in header:
        pos = lines[0].index(h, pos)
        starts.append(pos)
        pos += len(h)
    rows = []
    for line in lines[1:]:
        cells = []
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else None
            cells.append(line[start:end].strip())
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabThread]:
    state = tmp_path_factory.mktemp("lab")
    with LabThread(LabServer(oldversion_spec(), tls=True, state_dir=state)) as running:
        running.server.write_kubeconfig(state / "kubeconfig", token="secret-token-never-logged")
        yield running


@pytest.fixture(params=KUBECTL_MINORS, ids=[f"kubectl-1.{m}" for m in KUBECTL_MINORS])
def kubectl(request: pytest.FixtureRequest, lab: LabThread, tmp_path: Path) -> Kubectl:
    binary = kubectl_bin.kubectl(request.param)
    if binary is None:
        pytest.skip(kubectl_bin.skip_reason(request.param))
    assert lab.server.state_dir is not None
    return Kubectl(binary, lab.server.state_dir / "kubeconfig", tmp_path)


def store_call(lab: LabThread, fn: Callable[..., Any], *args: Any) -> Any:
    return lab.call(lambda: fn(*args))
