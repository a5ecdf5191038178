"""The cluster API facade: raw requests with retries, paged lists as raw bytes, watches.

Large lists are read as raw pages (limit 500 + continue, as kubectl) and left as bytes, so that
callers decode them with msgspec into small structs (`kubehop.shell.kube.wire`) instead of the
typed models. Requests are built by `kubehop.shell.kube.requests`; failures raise the typed
errors of `kubehop.shell.kube.errors`. This package is the only place kubernetes_asyncio is
imported (an import-linter contract).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration

from kubehop.shell.kube import requests as rq
from kubehop.shell.kube.config import load_configuration
from kubehop.shell.kube.errors import ApiError, Gone, Unreachable, api_error
from kubehop.shell.kube.requests import PAGE_LIMIT, Request
from kubehop.shell.kube.wire import list_head

__all__ = ["PAGE_LIMIT", "KubeClient", "RetryPolicy", "unreachable_message"]
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for 429/5xx/connection errors; a server's Retry-After wins when given."""

    attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, 30.0)
        backoff = min(self.max_delay, self.base_delay * 2**attempt)
        return backoff * (0.5 + random.random() / 2)  # jitter: many clients must not sync up


_RETRYABLE = {429, 500, 502, 503, 504}
Sleep = Callable[[float], Awaitable[None]]


class KubeClient:
    """Narrow, async access to one cluster's API."""

    def __init__(self, api_client: ApiClient, *, retry: RetryPolicy | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.api = api_client
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._watch_api: ApiClient | None = None

    @classmethod
    async def connect(cls, kubeconfig: str | None = None, context: str | None = None,
                      **kwargs: Any) -> KubeClient:
        cfg = await load_configuration(kubeconfig, context)
        return cls(ApiClient(configuration=cfg), **kwargs)

    def for_endpoint(self, endpoint: str, *, retry: RetryPolicy | None = None) -> KubeClient:
        """A client of one apiserver (`host:port`), with this client's credentials and CA;
        one attempt per request unless `retry` says otherwise. The caller closes it."""
        cfg = copy.copy(self.configuration)  # shallow: shares credentials and their refresh
        cfg.host = f"{urlsplit(self.server).scheme or 'https'}://{endpoint}"
        return KubeClient(ApiClient(configuration=cfg), retry=retry or RetryPolicy(attempts=1),
                          sleep=self._sleep)

    @property
    def configuration(self) -> Configuration:
        return self.api.configuration

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    @property
    def netloc(self) -> str:
        """`host:port` of the kubeconfig's server."""
        return urlsplit(self.server).netloc

    async def close(self) -> None:
        if self._watch_api is not None:
            await self._watch_api.close()
            self._watch_api = None
        await self.api.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: Any = None, content_type: str = "application/json",
                      accept: str = "application/json", retry: bool = True,
                      timeout: float | None = 60.0) -> bytes:
        """One API call; returns the raw body of a 2xx answer, else raises ApiError.

        `retry=False` for calls whose refusal means something (an eviction's 429 is a PDB
        saying no: the drain decides what to do, not the transport).
        """
        attempts = self.retry.attempts if retry else 1
        last: ApiError | None = None
        for attempt in range(attempts):
            try:
                status, data, retry_after = await self._once(
                    method, path, params, body, content_type, accept, timeout)
            except ApiError as e:  # no answer at all
                last = e
                retry_after = None
            else:
                if 200 <= status < 300:
                    return data
                last = api_error(method, path, status, data, self.server, retry_after)
                if status not in _RETRYABLE:
                    raise last
            if attempt + 1 < attempts:
                await self._sleep(self.retry.delay(attempt, retry_after))
        assert last is not None
        raise last

    async def send(self, request: Request, *, retry: bool = True,
                   timeout: float | None = 60.0) -> bytes:
        """`request` (built by kubehop.shell.kube.requests); the raw body of a 2xx answer."""
        return await self.request(request.method, request.path, params=request.query or None,
                                  body=request.body, content_type=request.content_type,
                                  accept=request.accept, retry=retry, timeout=timeout)

    async def _once(self, method: str, path: str, params: dict[str, Any] | None, body: Any,
                    content_type: str, accept: str,
                    timeout: float | None) -> tuple[int, bytes, float | None]:
        headers = {"Accept": accept}
        if body is not None:
            # JSON bodies go as Python objects (the client serialises them); others as bytes.
            headers["Content-Type"] = content_type
        try:
            resp = await self.api.call_api(
                path, method, query_params=list((params or {}).items()),
                header_params=headers, body=body, auth_settings=["BearerToken"],
                _preload_content=False, _request_timeout=timeout,
            )
            async with resp:
                data = await resp.read()
                retry_after = _parse_retry_after(resp.headers.get("Retry-After"))
                return resp.status, data, retry_after
        except aiohttp.ClientConnectorCertificateError as e:
            raise Unreachable(
                f"the API server at {self.server} presented a certificate that is not trusted "
                f"({e.certificate_error}); check certificate-authority-data in the kubeconfig"
            ) from e
        except aiohttp.ClientSSLError as e:
            raise Unreachable(f"TLS handshake with {self.server} failed: {e}") from e
        except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError) as e:
            raise Unreachable(unreachable_message(self.server, e)) from e

    async def watch(self, path: str | Request, params: dict[str, str] | None = None, *,
                    timeout: float) -> AsyncIterator[bytes]:
        """The non-empty lines of a watch (`watch=true` is added), until the server ends it.

        Watches use a connection pool of their own, without a limit: over HTTP/1.1 each holds a
        connection for minutes, and a drain of 100 nodes opens more than the request pool's
        100 connections, which would leave evictions waiting behind watches."""
        if self._watch_api is None:
            cfg = copy.copy(self.configuration)
            cfg.connection_pool_maxsize = 0  # aiohttp: no limit
            self._watch_api = ApiClient(configuration=cfg)
        request = _as_request(path, params)
        path = request.path
        query = dict(request.query, watch="true")
        try:
            resp = await self._watch_api.call_api(
                path, "GET", query_params=list(query.items()),
                header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
                _preload_content=False, _request_timeout=(10, timeout))
        except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError) as e:
            raise Unreachable(f"cannot watch {path} at {self.server}: {type(e).__name__}: {e}") \
                from e
        async with resp:
            if resp.status != 200:
                raise api_error("GET", path, resp.status, await resp.read(), self.server)
            while line := await resp.content.readline():
                if line.strip():
                    yield line

    async def get_json(self, path: str | Request, params: dict[str, Any] | None = None) -> Any:
        if isinstance(path, Request):
            return json.loads(await self.send(path))
        return json.loads(await self.request("GET", path, params=params))

    async def list_pages(self, path: str | Request, params: dict[str, Any] | None = None,
                         limit: int = PAGE_LIMIT) -> AsyncIterator[bytes]:
        """Yield each raw page of a list (limit + continue), for msgspec decoding."""
        request = _as_request(path, params)
        token = ""
        while True:
            page = await self.send(rq.page(request, token, limit))
            yield page
            token = list_head.decode(page).metadata.continue_
            if not token:
                return

    async def list_items(self, path: str | Request, params: dict[str, Any] | None,
                         decode: Callable[[bytes], list[T]],
                         limit: int = PAGE_LIMIT) -> list[T]:
        """Every item of a paged list, each page decoded by `decode`. A continue token that
        expired (410 Gone: the apiserver restarted, or the list outlived etcd's compaction)
        starts the list over in one unpaged request, as client-go's pager does
        (kubernetes/kubernetes staging/src/k8s.io/client-go/tools/pager/pager.go,
        FullListIfExpired)."""
        request = _as_request(path, params)
        out: list[T] = []
        paged = False
        try:
            async for page in self.list_pages(request, None, limit):
                out += decode(page)
                paged = True
        except Gone:
            if not paged:
                raise
            return decode(await self.send(request))
        return out


def _as_request(path: str | Request, params: dict[str, Any] | None) -> Request:
    if isinstance(path, Request):
        return path
    return Request("GET", path, tuple((k, str(v)) for k, v in (params or {}).items()))


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def unreachable_message(server: str, error: BaseException) -> str:
    """One line for a request that got no answer: the server, the reason, what to check."""
    os_error = getattr(error, "os_error", None)  # aiohttp.ClientConnectorError
    errno = getattr(os_error, "errno", None) or getattr(error, "errno", None)
    if isinstance(errno, int) and errno:
        why = os.strerror(errno).lower()
    elif isinstance(error, TimeoutError):
        why = "timed out"
    else:
        why = f"{type(error).__name__}: {error}".rstrip(": ")
    return (f"cannot reach the Kubernetes API at {server}: {why}; check the server of the "
            "kubeconfig context and that the cluster (or `kubehop lab up`) is running")
