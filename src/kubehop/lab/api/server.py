"""Start and stop a lab API server in-process.

    async with LabServer(oldversion_spec(), tls=True) as lab:
        lab.write_kubeconfig(tmp_path / "kubeconfig")
        ...  # lab.url, lab.store, lab.api (hooks, version)

Binds loopback on a free port (or the one given); with TLS, a CA and serving certificate are
generated into `state_dir` (a temporary directory when not given) unless `tls_files` are given
(several endpoints of one lab share one CA and serving certificate), and the kubeconfig embeds
the CA. Any bearer token is accepted. `pause()` closes the listening socket and resets every
open connection (a kube-apiserver that died); `resume()` listens on the same port again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import shutil
import ssl
import tempfile
from pathlib import Path
from types import TracebackType

import yaml
from aiohttp import web

from kubehop.lab.api import tls as labtls
from kubehop.lab.api.app import LabApi
from kubehop.lab.api.store import Store
from kubehop.lab.fixtures.cluster import populate
from kubehop.lab.fixtures.specs import ClusterSpec


class LabServer:
    """One API endpoint over a store populated from `spec` (or a given store)."""

    def __init__(
        self,
        spec: ClusterSpec | None = None,
        *,
        store: Store | None = None,
        tls: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: Path | None = None,
        version: str | None = None,
        tls_files: labtls.TlsFiles | None = None,
    ) -> None:
        self.spec = spec
        self.store = store or Store()
        self.tls = tls
        self.host = host
        self.port = port
        self._own_dir = state_dir is None
        self.state_dir = state_dir
        self.api = LabApi(
            self.store,
            version=version or (spec.apiserver_version() if spec else "v1.28.9"),
        )
        self.tls_files: labtls.TlsFiles | None = tls_files
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._ssl_context: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        """The server URL (`https://127.0.0.1:PORT`)."""
        if self._runner is None:
            raise RuntimeError("the lab server is not running")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> LabServer:
        """Populate the store (if a spec was given and the store is empty) and start serving."""
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="kubehop-lab-"))
        if self.spec is not None and not self.store.resources():
            populate(self.spec, self.store)
            gc.freeze()  # the initial world lives as long as the lab: keep it out of GC passes
        ssl_context = None
        if self.tls:
            if self.tls_files is None:
                self.tls_files = labtls.generate(self.state_dir / "pki")
            ssl_context = labtls.server_context(self.tls_files)
        runner = web.AppRunner(self.api.app(), access_log=None, handle_signals=False,
                               shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=ssl_context)
        await site.start()
        self._runner, self._site, self._ssl_context = runner, site, ssl_context
        self.port = runner.addresses[0][1]
        self.api.server_address = f"{self.host}:{self.port}"
        return self

    async def pause(self) -> None:
        """Stop listening (connections are refused) and reset every open connection."""
        site, self._site = self._site, None
        if site is None or self._runner is None:
            return
        await site.stop()
        server = self._runner.server
        for handler in server.connections if server is not None else ():
            if handler.transport is not None:
                handler.transport.abort()

    async def resume(self) -> None:
        """Listen on the same port again (after `pause`)."""
        if self._site is not None or self._runner is None:
            return
        for attempt in range(50):  # the port may linger a moment after the reset connections
            site = web.TCPSite(self._runner, self.host, self.port,
                               ssl_context=self._ssl_context)
            try:
                await site.start()
            except OSError:
                with contextlib.suppress(RuntimeError):  # start() registered it, then failed
                    self._runner._unreg_site(site)
                if attempt == 49:
                    raise
                await asyncio.sleep(0.02)
                continue
            self._site = site
            return

    async def stop(self) -> None:
        """Stop serving (open watches end) and remove a temporary state directory."""
        self._site = None
        runner, self._runner = self._runner, None
        if runner is not None:
            self.store.close_watches()
            await runner.cleanup()
        if self._own_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None

    async def __aenter__(self) -> LabServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def kubeconfig(self, *, token: str = "kubehop-lab-token", name: str = "kubehop-lab") -> dict:
        """A kubeconfig document for this server (token auth, CA embedded)."""
        cluster: dict[str, str] = {"server": self.url}
        if self.tls_files is not None:
            ca = self.tls_files.ca_cert.read_bytes()
            cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": f"{name}-admin", "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
            "current-context": name,
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path, **kw: str) -> Path:
        """Write `kubeconfig()` to `path` (mode 0600) and return the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(**kw), sort_keys=False))
        path.chmod(0o600)
        return path
