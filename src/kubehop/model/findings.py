"""Findings: what `check` and the skew engine return instead of printing."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How much a finding matters; `blocking` makes `check` exit 1 and `plan` refuse."""

    BLOCKING = "blocking"
    WARNING = "warning"
    INFO = "info"


SEVERITY_ORDER = {Severity.BLOCKING: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong (or worth knowing) about a cluster.

    `id` is namespaced by area (`skew.kubelet-newer-than-apiserver`, `support.eol`, ...);
    `subject` names the object (`node/w1`, `apiserver/192.0.2.1:6443`); `message` and `fix`
    are one line each. `cause` is the id of another finding that explains this one (a skew
    violation that only a hand-edited manifest makes: `drift.static-pod-image`); fixing that
    one fixes this one.
    """

    id: str
    severity: Severity
    subject: str
    message: str
    fix: str
    cause: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {
            "id": self.id,
            "severity": str(self.severity),
            "subject": self.subject,
            "message": self.message,
            "fix": self.fix,
        }
        if self.cause is not None:
            out["cause"] = self.cause
        return out


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Blocking first, then warnings, then info; stable within a severity."""
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])
