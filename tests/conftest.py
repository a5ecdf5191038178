"""Whole-run hooks: the network guard (nothing leaves loopback; see netguard/), and the order and
grouping that let `make test` run the suite on several pytest-xdist workers."""

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
# The modules with the longest tests or test groups (15 to 70 s each, serially, on the 2-core
# machine, 2026-12), started first so that with `pytest -n N` they run side by side while the
# short tests fill the other workers.
LONGEST = ("tests/integration/openssh_apply/", "tests/integration/lab/test_kubectl_drain.py",
           "tests/integration/upgrade/test_resume.py",
           "tests/integration/upgrade/test_gates_unreachable.py",
           "tests/integration/upgrade/test_upgrade_paths.py",
           "tests/integration/upgrade/test_hooks.py",
           "tests/integration/upgrade/test_kubeadm_detached.py",
           "tests/integration/upgrade/test_windows.py", "tests/integration/upgrade/test_upgrade.py",
           "tests/integration/apt/", "tests/integration/chaos/",
           "tests/unit/core/test_planner.py")  # Hypothesis: 25 s without an example database
SHARED_SCOPES = frozenset({"package", "module", "class"})


def pytest_configure(config: pytest.Config) -> None:
    """Guard this process, and every Python subprocess through sitecustomize on PYTHONPATH.

    Each process of the run (the xdist controller and every worker) keeps its own refusal log,
    so a refusal in one worker's test never fails a test running at the same time in another."""
    global _log_dir
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    _log_dir = tempfile.mkdtemp(prefix=f"kubehop-netguard-{worker}-")
    os.environ[kubehop_netguard.ENABLE_VAR] = "1"
    os.environ[kubehop_netguard.LOG_VAR] = str(Path(_log_dir) / "blocked.log")
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if path[:1] != [str(NETGUARD_DIR)]:  # an xdist worker inherits the controller's
        os.environ["PYTHONPATH"] = os.pathsep.join([str(NETGUARD_DIR), *path])
    kubehop_netguard.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _log_dir is not None:
        shutil.rmtree(_log_dir, ignore_errors=True)


def _rank(nodeid: str, slow: bool) -> int:
    """The `LONGEST` modules in their order, then modules with a slow test, the other
    integration tests, the lab's own tests, and the rest (unit tests: milliseconds each)."""
    for i, prefix in enumerate(LONGEST):
        if nodeid.startswith(prefix):
            return i
    if slow:
        return len(LONGEST)
    if nodeid.startswith("tests/integration/"):
        return len(LONGEST) + 1
    return len(LONGEST) + (2 if nodeid.startswith("tests/lab/") else 3)


def _shares_a_fixture(item: pytest.Item) -> bool:
    """Whether `item` uses a fixture of this suite that outlives one test (a module's lab)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(d.baseid and d.scope in SHARED_SCOPES
               for defs in info.name2fixturedefs.values() for d in defs)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest modules first, each module kept whole (a module-scoped fixture is set up once);
    tests that share a module-scoped fixture go to one xdist worker together (`--dist
    loadgroup`: the group is named after the module), so a module's lab starts once."""
    module = {id(item): item.nodeid.split("::", 1)[0] for item in items}
    slow = {module[id(item)] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: _rank(module[id(item)], module[id(item)] in slow))
    for item in items:
        if _shares_a_fixture(item):
            item.add_marker(pytest.mark.xdist_group(module[id(item)]))


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
