"""Benchmarks keep to the tests' rule: nothing leaves loopback (see tests/netguard).

Imported first by every benchmark: guards this process and, through PYTHONPATH and the
sitecustomize there, every Python subprocess it starts; at exit, any refused attempt (even one
the code under test caught) is printed and the benchmark exits 1.
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
from pathlib import Path

_GUARD_DIR = Path(__file__).resolve().parents[1] / "tests" / "netguard"
sys.path.insert(0, str(_GUARD_DIR))

import kubehop_netguard  # noqa: E402  (found on the path added above)

_log = Path(tempfile.mkdtemp(prefix="kubehop-bench-netguard-")) / "blocked.log"
os.environ[kubehop_netguard.ENABLE_VAR] = "1"
os.environ[kubehop_netguard.LOG_VAR] = str(_log)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(_GUARD_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])
kubehop_netguard.install()


@atexit.register
def _report() -> None:
    refused = _log.read_text() if _log.exists() else ""
    _log.unlink(missing_ok=True)
    _log.parent.rmdir()
    if refused:
        sys.stderr.write(f"benchmark tried to leave loopback:\n{refused}")
        sys.stderr.flush()
        os._exit(1)
