"""Whole-run fixtures: the network guard (nothing leaves loopback; see netguard/)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NETGUARD_DIR = Path(__file__).parent / "netguard"
sys.path.insert(0, str(NETGUARD_DIR))

import kubehop_netguard  # noqa: E402  (found on the path added above)

_log_dir: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Guard this process, and every Python subprocess through sitecustomize on PYTHONPATH."""
    global _log_dir
    _log_dir = tempfile.mkdtemp(prefix="kubehop-netguard-")
    os.environ[kubehop_netguard.ENABLE_VAR] = "1"
    os.environ[kubehop_netguard.LOG_VAR] = str(Path(_log_dir) / "blocked.log")
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(NETGUARD_DIR), *([path] if path else [])])
    kubehop_netguard.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _log_dir is not None:
        shutil.rmtree(_log_dir, ignore_errors=True)


def _log_size() -> int:
    try:
        return Path(os.environ[kubehop_netguard.LOG_VAR]).stat().st_size
    except (KeyError, OSError):
        return 0


@pytest.fixture(autouse=True)
def _network_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test during which something (this process or a subprocess) tried to reach an
    address outside loopback, even when the code under test caught the refusal."""
    start = _log_size()
    yield
    if request.node.get_closest_marker("netguard_expected"):
        return
    if _log_size() > start:
        with open(os.environ[kubehop_netguard.LOG_VAR], encoding="utf-8") as f:
            f.seek(start)
            refused = f.read().strip()
        pytest.fail(f"tried to leave loopback:\n{refused}", pytrace=False)
