"""Map Kubernetes API failures to one-line KubehopErrors at the boundary."""

from __future__ import annotations

import json

from kubehop.model.errors import OperationError

_TAIL = 300  # characters of a remote body kept in a message


class ApiError(OperationError):
    """A Kubernetes API request failed; `status` is the HTTP code (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def status_message(body: bytes) -> tuple[str, str]:
    """The (message, reason) of a Kubernetes `Status` body, or a truncated raw body."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:_TAIL], ""
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        return str(doc.get("message", ""))[:_TAIL], str(doc.get("reason", ""))
    return body.decode("utf-8", "replace").strip()[:_TAIL], ""


def api_error(method: str, path: str, status: int, body: bytes, server: str,
              retry_after: float | None = None) -> ApiError:
    """An ApiError saying what failed, on which object, and what to do about it."""
    message, reason = status_message(body)
    where = f"{method} {path}"
    if status == 401:
        text = (f"unauthorized (401) at {server}: the kubeconfig credentials were rejected; "
                "refresh them or pick another --context")
    elif status == 403:
        text = (f"forbidden (403): {message or where}; grant that permission to this user "
                "(see the README's RBAC section)")
    elif status == 404:
        text = f"not found (404): {message or where}"
    else:
        text = f"{where} failed with {status}{' ' + reason if reason else ''}: {message}"
    return ApiError(text, status=status, reason=reason, retry_after=retry_after)
