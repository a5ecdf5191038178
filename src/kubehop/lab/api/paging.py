"""Pages of a list: the result type and the opaque continue token (shaped like upstream's:
base64 JSON holding the list's resourceVersion and the key to start after)."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubehop.lab.api.status import BadRequest

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)


@dataclass(slots=True)
class ListResult:
    """One page of a list: items (stored dicts, read-only), the list's resourceVersion, the
    continue token ("" on the last page) and, for unfiltered lists, how many items remain."""

    items: list[Obj]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


def encode_continue(rv: int, key: Key) -> str:
    """An opaque continue token, shaped like upstream's (base64 JSON with rv and start key)."""
    start = f"{key[0]}/{key[1]}\x00" if key[0] else f"{key[1]}\x00"
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, Key]:
    """Parse a continue token; malformed → BadRequest like upstream."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError("unsupported version")
        start = str(data["start"]).rstrip("\x00")
        ns, _, name = start.rpartition("/")
        return int(data["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise BadRequest(f"continue key is not valid: {e}") from e


def bisect_after(keys: Iterable[Key], after: Key) -> int:
    """Index of the first key after `after` in sorted `keys`."""
    seq = keys if isinstance(keys, list) else list(keys)
    return bisect.bisect_right(seq, after)
