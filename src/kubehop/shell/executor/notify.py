"""Webhook notifications (`--notify URL`): a JSON POST per milestone of a run.

Events, in the order they happen: `started`, `hop-finished` (a hop's final gate passed),
`node-halted` (a step on a node failed), `window-closed` (the run stopped at the end of a
maintenance window), `halted`, `finished`. The body carries `event`, `run`, `from`, `to`,
`hop`, `node`, `step`, `message` and a Slack-compatible `text` (one line for people), so a
Slack or Mattermost incoming webhook shows it as is.

Posts go out one at a time, in order, from a background task; a failure (refused, timeout,
non-2xx) is reported through `warn` and never stops the upgrade. `close()` waits (a bounded
time) for the posts still queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from kubehop.model.plan import Plan, StepKind
from kubehop.shell.executor.background import InOrder
from kubehop.shell.executor.events import ProgressEvent

POST_TIMEOUT = 10.0
CLOSE_TIMEOUT = 15.0

Post = Callable[[str, dict[str, Any]], Any]  # async (url, body) → None; raises on failure


async def _aiohttp_post(url: str, body: dict[str, Any]) -> None:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session, \
            session.post(url, json=body) as response:
        if response.status >= 300:
            text = (await response.text())[:200]
            raise RuntimeError(f"HTTP {response.status}: {text}".strip())


def _redact(url: str) -> str:
    """The URL without its path and query (webhook URLs carry their secret there)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.split('/', 1)[0]}/…" if sep else "the webhook"


class Notifier:
    """Turns executor progress events into webhook posts (see the module docstring)."""

    def __init__(self, urls: Sequence[str], plan: Plan, *, warn: Callable[[str], None],
                 post: Post | None = None) -> None:
        self.urls = tuple(urls)
        self.plan = plan
        self.warn = warn
        self.post = post or _aiohttp_post
        self.sent: list[dict[str, Any]] = []
        self._out: InOrder[dict[str, Any]] = InOrder(
            self._send, timeout=CLOSE_TIMEOUT, warn=warn,
            gave_up=f"notifications still unsent after {CLOSE_TIMEOUT:g} s: dropped")
        final: dict[str, str] = {}  # hop → its final gate (the last gate of the hop)
        for s in plan.steps:
            if s.kind is StepKind.GATE and s.hop in plan.hops:
                final[s.hop] = s.id
        self._hop_gates = {gate: hop for hop, gate in final.items()}

    def __call__(self, event: ProgressEvent) -> None:
        body = self._body(event)
        if body is not None:
            self._out.put(body)

    def _body(self, e: ProgressEvent) -> dict[str, Any] | None:
        p = self.plan
        head = f"kubehop {p.from_version} → {p.to_version}"
        if e.kind == "run-started":
            kind, text = "started", f"{head}: started ({e.message})"
        elif e.kind == "wave-finished" and e.step in self._hop_gates:
            hop = self._hop_gates[e.step]
            kind, text = "hop-finished", f"{head}: hop {hop} finished ({e.done}/{e.total} steps)"
        elif e.kind == "step-failed" and e.node:
            kind, text = "node-halted", f"{head}: node {e.node} halted at {e.step}: {e.message}"
        elif e.kind == "run-halted":
            closed = e.message.startswith("halted: maintenance window closed")
            kind = "window-closed" if closed else "halted"
            text = f"{head}: {e.message}"
        elif e.kind == "run-finished":
            kind, text = "finished", f"{head}: finished ({e.message})"
        else:
            return None
        body = {"event": kind, "run": e.run, "from": p.from_version, "to": p.to_version,
                "hop": self._hop_gates.get(e.step or "", e.hop), "node": e.node,
                "step": e.step, "message": e.message, "text": text}
        return {k: v for k, v in body.items() if v is not None}

    async def _send(self, body: dict[str, Any]) -> None:
        for url in self.urls:
            try:
                await asyncio.wait_for(self.post(url, body), POST_TIMEOUT + 1)
            except Exception as e:  # a notification never stops the run
                self.warn(f"notification {body['event']} to {_redact(url)} failed: "
                          f"{type(e).__name__}: {e}"[:300])
        self.sent.append(body)

    async def close(self) -> None:
        """Send what is queued (at most CLOSE_TIMEOUT seconds), then stop."""
        await self._out.close()
