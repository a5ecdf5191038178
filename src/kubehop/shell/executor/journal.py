"""The journal store: an SQLite file recording every step of every applied plan.

    journal = Journal.open()                      # $KUBEHOP_STATE_DIR or XDG state dir
    state = journal.begin(cluster, plan)          # the run of this plan on this cluster
    state = journal.record(state, step, StepStatus.STARTED)
    ...
    state = journal.finish(state, RunStatus.SUCCEEDED)

Where: `$KUBEHOP_STATE_DIR/journal.sqlite3` when that is set (tests), else
`$XDG_STATE_HOME/kubehop/` (default `~/.local/state/kubehop/`).

Crash safety: WAL mode, and every write is one transaction (`BEGIN IMMEDIATE … COMMIT`), so a
SIGKILL at any instant leaves either the whole record or none of it. `synchronous=NORMAL`: in WAL
mode a process crash loses nothing committed; only a power loss may drop the last records, and
the resume path checks every step's `expect` anyway. Records are append-only (a trigger refuses
UPDATE), a run's state is replayed from them (`kubehop.model.journal.replay`). Each run also
keeps the node facts its plan was checked against when it began (`baseline_of`, no pods), so
that a resume can check the plan against the planner again (`kubehop.core.plan_verify`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubehop.model.cluster import ClusterState
from kubehop.model.cluster_codec import state_from_dict, state_to_dict
from kubehop.model.errors import OperationError, UsageError
from kubehop.model.journal import (
    RunInfo,
    RunState,
    RunStatus,
    StepRecord,
    StepStatus,
    plan_digest,
    replay,
    run_id,
)
from kubehop.model.plan import Plan

SCHEMA_VERSION = 1
FILE_NAME = "journal.sqlite3"
OUTPUT_TAIL = 2000  # characters of command output kept per failed step
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, cluster TEXT NOT NULL, fingerprint TEXT NOT NULL,
    digest TEXT NOT NULL, from_version TEXT NOT NULL, to_version TEXT NOT NULL,
    steps INTEGER NOT NULL, created REAL NOT NULL, plan TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id),
    step_id TEXT, status TEXT NOT NULL, at REAL NOT NULL, node TEXT,
    attempt INTEGER NOT NULL DEFAULT 1, message TEXT NOT NULL DEFAULT '',
    output TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS records_by_run ON records (run_id, seq);
CREATE TABLE IF NOT EXISTS baselines (
    run_id TEXT PRIMARY KEY REFERENCES runs(id), state TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS baselines_are_immutable BEFORE UPDATE ON baselines
BEGIN SELECT RAISE(ABORT, 'journal baselines are immutable'); END;
CREATE TRIGGER IF NOT EXISTS records_are_immutable BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'journal records are immutable'); END;
CREATE TRIGGER IF NOT EXISTS runs_are_immutable BEFORE UPDATE ON runs
BEGIN SELECT RAISE(ABORT, 'journal runs are immutable'); END;
"""


def state_dir() -> Path:
    """kubehop's state directory (journal, saved plans): `$KUBEHOP_STATE_DIR`, else
    `$XDG_STATE_HOME/kubehop`, else `~/.local/state/kubehop`."""
    override = os.environ.get("KUBEHOP_STATE_DIR")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(base).expanduser() / "kubehop"


def tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    """The last `limit` characters of `text`."""
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


class Journal:
    """The SQLite journal (see the module docstring); one connection, used from one thread."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                             (str(SCHEMA_VERSION),))
            (version,) = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except (OSError, sqlite3.Error) as e:
            raise OperationError(f"cannot open the kubehop journal {path}: {e}; check the "
                                 "directory's permissions or set KUBEHOP_STATE_DIR") from None
        if int(version) != SCHEMA_VERSION:
            raise OperationError(f"the kubehop journal {path} has schema {version}, this "
                                 f"kubehop reads {SCHEMA_VERSION}: use a matching kubehop")

    @classmethod
    def open(cls, path: Path | None = None) -> Journal:
        return cls(path or state_dir() / FILE_NAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing: one transaction each --------------------------------------------------------

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise OperationError(f"cannot write the kubehop journal {self.path}: {e}") from None
        return int(cur.lastrowid or 0)

    def begin(self, cluster: str, plan: Plan, baseline: ClusterState | None = None
              ) -> RunState:
        """The run of `plan` on `cluster`: created (with its plan, and `baseline`, the state
        it was verified against) when new, else as recorded; either way marked running."""
        document = plan.to_dict()
        digest = plan_digest(document)
        rid = run_id(cluster, plan.fingerprint, digest)
        if self.find(rid) is None:
            self._write("INSERT OR IGNORE INTO runs VALUES (?,?,?,?,?,?,?,?,?)",
                        (rid, cluster, plan.fingerprint, digest, plan.from_version,
                         plan.to_version, len(plan.steps), self._clock(),
                         json.dumps(document, separators=(",", ":"))))
            if baseline is not None:
                self._write("INSERT OR IGNORE INTO baselines VALUES (?,?)",
                            (rid, json.dumps(state_to_dict(baseline), separators=(",", ":"))))
        state = self.find(rid)
        assert state is not None
        return self.set_status(state, RunStatus.RUNNING)

    def record(self, state: RunState, step_id: str, status: StepStatus, *,
               node: str | None = None, message: str = "", output: str = "") -> RunState:
        """Append one step record; returns the new state (ValueError for a forbidden
        transition, before anything is written)."""
        attempt = state.attempts(step_id) + (status is StepStatus.STARTED)
        probe = StepRecord(state.last_seq + 1, step_id, status, self._clock(), node,
                           max(attempt, 1), message, tail(output))
        state.with_record(probe)  # validate first
        seq = self._write("INSERT INTO records (run_id, step_id, status, at, node, attempt, "
                          "message, output) VALUES (?,?,?,?,?,?,?,?)",
                          (state.run.id, step_id, str(status), probe.at, node, probe.attempt,
                           message, probe.output))
        return state.with_record(StepRecord(seq, step_id, status, probe.at, node, probe.attempt,
                                            message, probe.output))

    def set_status(self, state: RunState, status: RunStatus, message: str = "") -> RunState:
        """Append a run-level record (running, halted, interrupted, succeeded)."""
        at = self._clock()
        seq = self._write("INSERT INTO records (run_id, step_id, status, at, message) "
                          "VALUES (?,NULL,?,?,?)", (state.run.id, str(status), at, message))
        return state.with_status(status, at, seq, message)

    # --- reading ------------------------------------------------------------------------------

    def _info(self, row: tuple[Any, ...]) -> RunInfo:
        return RunInfo(id=row[0], cluster=row[1], fingerprint=row[2], digest=row[3],
                       from_version=row[4], to_version=row[5], steps=int(row[6]),
                       created=float(row[7]))

    def find(self, rid: str) -> RunState | None:
        """The run `rid` replayed from its records; None when there is none."""
        row = self._db.execute("SELECT id, cluster, fingerprint, digest, from_version, "
                               "to_version, steps, created FROM runs WHERE id=?",
                               (rid,)).fetchone()
        if row is None:
            return None
        records: list[Any] = []
        for seq, step, status, at, node, attempt, message, output in self._db.execute(
                "SELECT seq, step_id, status, at, node, attempt, message, output FROM records "
                "WHERE run_id=? ORDER BY seq", (rid,)):
            if step is None:
                records.append((seq, at, RunStatus(status), message))
            else:
                records.append(StepRecord(seq, step, StepStatus(status), at, node, attempt,
                                          message, output))
        return replay(self._info(row), records)

    def plan_of(self, rid: str) -> Plan:
        """The plan a run applies, as it was recorded when the run began."""
        row = self._db.execute("SELECT plan FROM runs WHERE id=?", (rid,)).fetchone()
        if row is None:
            raise OperationError(f"no run {rid} in the kubehop journal {self.path}")
        return Plan.from_dict(json.loads(row[0]))

    def baseline_of(self, rid: str) -> ClusterState | None:
        """The state run `rid`'s plan was verified against when it began (None: a run
        recorded by a kubehop that kept none)."""
        row = self._db.execute("SELECT state FROM baselines WHERE run_id=?", (rid,)).fetchone()
        if row is None:
            return None
        try:
            return state_from_dict(json.loads(row[0]))
        except (UsageError, ValueError) as e:
            raise OperationError(f"the kubehop journal {self.path} holds an unreadable "
                                 f"starting state for run {rid}: {e}") from None

    def runs(self, cluster: str | None = None) -> list[str]:
        """Run ids, the most recently active first (of `cluster`, or of every cluster)."""
        where, args = ("WHERE r.cluster=?", (cluster,)) if cluster else ("", ())
        rows = self._db.execute(
            f"SELECT r.id FROM runs r LEFT JOIN records c ON c.run_id = r.id {where} "
            "GROUP BY r.id ORDER BY MAX(COALESCE(c.seq, 0)) DESC, r.created DESC", args)
        return [r[0] for r in rows]

    def latest(self, cluster: str | None = None, *, unfinished: bool = False
               ) -> RunState | None:
        """The most recently active run (of `cluster`), or the most recent unfinished one."""
        for rid in self.runs(cluster):
            state = self.find(rid)
            if state is not None and not (unfinished and state.status.finished):
                return state
        return None
