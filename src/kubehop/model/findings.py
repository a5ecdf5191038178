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
    `subject` names the object (`node/w1`, `apiserver/10.0.0.1:6443`); `message` and `fix`
    are one line each.
    """

    id: str
    severity: Severity
    subject: str
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "severity": str(self.severity),
            "subject": self.subject,
            "message": self.message,
            "fix": self.fix,
        }


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Blocking first, then warnings, then info; stable within a severity."""
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])
