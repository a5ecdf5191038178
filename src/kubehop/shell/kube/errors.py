"""Kubernetes API failures, mapped once at the boundary to typed, one-line errors.

OperationError (kubehop.model.errors)
└── ApiError                  a request failed; `.status` is the HTTP code (0: no answer)
    ├── Unreachable           no answer at all (refused, timed out, TLS failed)      0
    ├── Unauthorized          the credentials were rejected                          401
    ├── Forbidden             this user may not do that                              403
    ├── NotFound              no such object (or resource not served)                404
    ├── Conflict              already exists, or a stale resourceVersion             409
    ├── Gone                  a continue token or resourceVersion is too old         410
    ├── TooManyRequests       throttled, or an eviction a PodDisruptionBudget refused 429
    └── ServerError           the apiserver failed (5xx)

Callers `except NotFound:` instead of comparing numbers; `api_error` picks the class from the
status, as client-go's `k8s.io/apimachinery/pkg/api/errors` predicates (`IsNotFound`,
`IsConflict`, `IsGone`, `IsTooManyRequests`, …) read a `Status`. Remote bodies are cut to a tail.
"""

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


class Unreachable(ApiError):
    """The request got no answer (connection refused or reset, timeout, TLS failure)."""


class Unauthorized(ApiError):
    """401: the credentials were rejected."""


class Forbidden(ApiError):
    """403: the user may not make this request (or a namespace is being terminated)."""


class NotFound(ApiError):
    """404: no such object, or the resource is not served."""


class Conflict(ApiError):
    """409: the object already exists, or the write carried a stale resourceVersion."""


class Gone(ApiError):
    """410: a continue token or watch resourceVersion is older than the server keeps."""


class TooManyRequests(ApiError):
    """429: throttled, or an eviction refused by a PodDisruptionBudget."""


class ServerError(ApiError):
    """5xx: the apiserver (or a proxy in front of it) failed."""

    @property
    def transient(self) -> bool:
        """502, 503, 504: a proxy or an apiserver restarting; worth asking again."""
        return self.status in (502, 503, 504)


_BY_STATUS: dict[int, type[ApiError]] = {0: Unreachable, 401: Unauthorized, 403: Forbidden,
                                         404: NotFound, 409: Conflict, 410: Gone,
                                         429: TooManyRequests}


def error_class(status: int) -> type[ApiError]:
    """The ApiError subclass for an HTTP status (ApiError itself for other 4xx)."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)


def status_error(message: str, status: int, reason: str = "",
                 retry_after: float | None = None) -> ApiError:
    """An error of the class `status` calls for, with `message` as it is."""
    return error_class(status)(message, status=status, reason=reason, retry_after=retry_after)


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
    """An ApiError of the status's class saying what failed, on which object, and what to do."""
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
    return status_error(text, status, reason, retry_after)
