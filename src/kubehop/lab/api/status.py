"""Errors of the lab, each carrying the metav1.Status the API server answers with.

StatusError(code, reason, message)          any failure; `status()` is the JSON body
├── NotFound           404 NotFound          `pods "x" not found`
├── AlreadyExists      409 AlreadyExists     `pods "x" already exists`
├── Conflict           409 Conflict          stale resourceVersion
├── Invalid            422 Invalid           `Pod "x" is invalid: <field>: <problem>`
├── Gone               410 Expired           watch or continue from a compacted resourceVersion
└── BadRequest         400 BadRequest        malformed selectors, bodies, continue tokens
Message wording follows apimachinery `pkg/api/errors/errors.go`.
"""

from __future__ import annotations

from typing import Any


def split_resource(resource: str) -> tuple[str, str]:
    """`deployments.apps` → (`deployments`, `apps`); `pods` → (`pods`, ``)."""
    plural, _, group = resource.partition(".")
    return plural, group


def qualified(resource: str) -> str:
    """How upstream names a resource in messages: `pods`, `deployments.apps`."""
    return resource


class StatusError(Exception):
    """A failure the API server reports as a metav1.Status with an HTTP code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        """The metav1.Status body."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details = dict(self.details or {})
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            body["details"] = details
        return body


def _details(resource: str, name: str) -> dict[str, Any]:
    plural, group = split_resource(resource)
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = plural
    return details


class NotFoundStatus(StatusError):
    """404: the object does not exist."""

    def __init__(self, resource: str, name: str) -> None:
        super().__init__(404, "NotFound", f'{qualified(resource)} "{name}" not found',
                         _details(resource, name))


class AlreadyExists(StatusError):
    """409: create of an existing name."""

    def __init__(self, resource: str, name: str) -> None:
        super().__init__(409, "AlreadyExists", f'{qualified(resource)} "{name}" already exists',
                         _details(resource, name))


class ConflictStatus(StatusError):
    """409: update with a stale resourceVersion (or a failed precondition)."""

    def __init__(self, resource: str, name: str, why: str | None = None) -> None:
        why = why or "the object has been modified; please apply your changes to the latest " \
            "version and try again"
        super().__init__(409, "Conflict",
                         f'Operation cannot be fulfilled on {qualified(resource)} "{name}": {why}',
                         _details(resource, name))


class Invalid(StatusError):
    """422: the object fails validation; `causes` are (field, message) pairs."""

    def __init__(self, resource: str, kind: str, name: str, causes: list[tuple[str, str]]) -> None:
        _, group = split_resource(resource)
        text = ", ".join(f"{f}: {m}" for f, m in causes)
        details: dict[str, Any] = {"name": name}
        if group:
            details["group"] = group
        details["kind"] = kind
        details["causes"] = [
            {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes
        ]
        label = f"{kind}.{group}" if group else kind
        super().__init__(422, "Invalid", f'{label} "{name}" is invalid: {text}', details)


class GoneStatus(StatusError):
    """410 Expired: a resourceVersion older than the retained history."""

    def __init__(self, message: str) -> None:
        super().__init__(410, "Expired", message)


class BadRequest(StatusError):
    """400: a request the server cannot understand."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "BadRequest", message)


def success(details: dict[str, Any] | None = None, code: int = 200) -> dict[str, Any]:
    """A `status: Success` body (eviction answers 201 with one)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": code,
    }
    if details:
        body["details"] = details
    return body
