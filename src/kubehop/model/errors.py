"""The one error hierarchy of kubehop, drawn once.

KubehopError                  root; `exit_code` tells the CLI how to leave
├── UsageError                exit 2: bad flags, bad version strings, unreadable files
│   └── VersionError          a version string that does not parse
├── OperationError            exit 1: an operation failed, the cluster is in a safe state
│   └── FindingsError         a plan refused because blocking findings remain
└── HaltedError               exit 3: halted mid-upgrade, journal kept, `kubehop apply` resumes

Messages are one line: what happened, to which object, and how to fix it.
"""

from __future__ import annotations


class KubehopError(Exception):
    """Root of every error kubehop reports to its user."""

    exit_code: int = 1


class UsageError(KubehopError):
    """The user asked for something malformed (flags, versions, files)."""

    exit_code = 2


class VersionError(UsageError, ValueError):
    """A version string that does not parse."""


class OperationError(KubehopError):
    """An operation failed; the cluster was left in a safe state."""

    exit_code = 1


class FindingsError(OperationError):
    """Planning refused: the cluster has blocking findings the user did not ignore (exit 1, as
    `kubehop check` exits 1 on them: the cluster's state, not the command line, is at fault)."""


class HaltedError(KubehopError):
    """An upgrade halted mid-way; its journal is kept so `kubehop apply` can resume."""

    exit_code = 3
