"""Migration records in SQLite: who asked, when, phases, MSPs, bytes, result, error.

Other processes (``lslparmigr`` in another terminal) read the same file while a migration runs.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS migrations (
    id TEXT PRIMARY KEY,
    partition TEXT NOT NULL,
    source_sys TEXT NOT NULL,
    dest_sys TEXT NOT NULL,
    operation TEXT NOT NULL,
    migration_type TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    command TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    source_msp TEXT,
    dest_msp TEXT,
    port INTEGER,
    phases TEXT NOT NULL DEFAULT '[]',
    stats TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS migrations_partition ON migrations(partition, state);
CREATE TABLE IF NOT EXISTS samples (
    migration_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (migration_id, seq)
);
CREATE TABLE IF NOT EXISTS refcodes (
    partition TEXT NOT NULL,
    frame TEXT NOT NULL,
    refcode TEXT NOT NULL,
    t REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS refcodes_partition ON refcodes(partition, t);
"""

# lslparmigr migration_state values
IN_PROGRESS_STATES = ("Migration Starting", "Migration In Progress", "Migration Stopping")
FINAL_STATES = ("Migration Complete", "Migration Failed", "Migration Stopped",
                "Migration Recovered")
# What the listings show for a migration that stopped half way and that only
# ``migrlpar -o r`` closes (see needs_recovery); never stored as a record's state.
RECOVERY_REQUIRED = "Migration Recovery Required"
# Codes of a failed migration that left the partition in no single place.
UNSETTLED_CODES = ("HSCLL414", "HSCLL453")


@dataclass
class MigrationRecord:
    partition: str
    source_sys: str
    dest_sys: str
    operation: str = "m"
    migration_type: str = "active"
    state: str = "Migration Starting"
    requested_by: str = field(default_factory=lambda: _user())
    command: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None
    source_msp: str | None = None
    dest_msp: str | None = None
    port: int | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    result: str | None = None
    error: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def phase(self, name: str, **detail: Any) -> None:
        self.phases.append({"phase": name, "at": time.time(), **detail})
        from lpmlab import log

        log.get("lpmlab.migration").info("phase", migration=self.id, phase=name,
                                         state=self.state, detail=detail)


class LimitReached(Exception):
    """claim_port found a frame's migration limit reached (``args`` = frame, migrations)."""


class MspLimitReached(LimitReached):
    """claim_port found an MSP's configured limit reached (``args`` = MSP, migrations)."""


def controller_alive(rec: MigrationRecord) -> bool:
    """A record left 'in progress' by a controller process that died is not a live migration."""
    pid = rec.stats.get("controller_pid")
    if not pid:
        return True
    try:
        os.kill(int(pid), 0)
        return True
    except OSError:
        return False


def needs_recovery(rec: MigrationRecord) -> bool:
    """The migration stopped half way and its copies wait for ``migrlpar -o r``: its
    controller died while it was in progress, or it failed and left the partition in no
    single place (post-copy halves, HSCLL414)."""
    if rec.state in IN_PROGRESS_STATES:
        return not controller_alive(rec)
    if rec.state != "Migration Failed" or rec.stats.get("recovered"):
        return False
    told = str(rec.stats.get("hmc_error") or "")
    return bool(rec.stats.get("postcopy_failed")) or told.startswith(UNSETTLED_CODES)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class MigrationStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.row_factory = sqlite3.Row
        return db

    @staticmethod
    def _row(rec: MigrationRecord) -> dict[str, Any]:
        row = dict(rec.__dict__)
        row["phases"] = json.dumps(rec.phases)
        row["stats"] = json.dumps(rec.stats)
        return row

    def save(self, rec: MigrationRecord) -> None:
        row = self._row(rec)
        cols = ",".join(row)
        marks = ",".join(f":{k}" for k in row)
        with self._db() as db:
            db.execute(f"INSERT OR REPLACE INTO migrations ({cols}) VALUES ({marks})", row)

    @staticmethod
    def _record(row: sqlite3.Row) -> MigrationRecord:
        d = dict(row)
        d["phases"] = json.loads(d["phases"])
        d["stats"] = json.loads(d["stats"])
        return MigrationRecord(**d)

    def claim_port(self, rec: MigrationRecord, ports: range | None, *,
                   limits: Mapping[str, int],
                   msp_limits: Mapping[str, int] | None = None) -> int | None:
        """Atomically give ``rec`` a free destination port and store it; None when no port is
        free. Raises LimitReached(frame, busy) when a frame of ``limits`` (frame -> maximum)
        already takes part in that many other migrations, MspLimitReached(msp, busy) when an
        MSP of ``msp_limits`` (VIOS name -> its num_active_migrations_configured) already
        carries that many as source or destination MSP. ``ports=None`` stores the record
        within the limits without a port (the destination's HMC gives it one, or an inactive
        migration needs none); then the return value is 0.

        BEGIN IMMEDIATE serialises concurrent migrlpar processes on the SQLite file.
        """
        marks = ",".join("?" * len(IN_PROGRESS_STATES))
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(f"SELECT * FROM migrations WHERE state IN ({marks})",
                              IN_PROGRESS_STATES).fetchall()
            live = [r for r in (self._record(x) for x in rows)
                    if r.id != rec.id and controller_alive(r)]
            for frame, limit in limits.items():
                busy = sum(1 for r in live if frame in (r.source_sys, r.dest_sys))
                if busy >= limit:
                    db.execute("ROLLBACK")
                    raise LimitReached(frame, busy)
            for msp, limit in (msp_limits or {}).items():
                busy = sum(1 for r in live if msp in (r.source_msp, r.dest_msp))
                if busy >= limit:
                    db.execute("ROLLBACK")
                    raise MspLimitReached(msp, busy)
            port = 0
            if ports is not None:
                used = {r.port for r in live if r.dest_sys == rec.dest_sys}
                found = next((p for p in ports if p not in used), None)
                if found is None:
                    db.execute("ROLLBACK")
                    return None
                port = rec.port = found
            row = self._row(rec)
            cols = ",".join(row)
            db.execute(f"INSERT OR REPLACE INTO migrations ({cols}) VALUES "
                       f"({','.join(':' + k for k in row)})", row)
            db.execute("COMMIT")
            return port
        finally:
            db.close()

    def set_state(self, mid: str, state: str) -> None:
        with self._db() as db:
            db.execute("UPDATE migrations SET state=? WHERE id=?", (state, mid))

    def get(self, mid: str) -> MigrationRecord | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM migrations WHERE id=?", (mid,)).fetchone()
        return self._record(row) if row else None

    def active(self) -> list[MigrationRecord]:
        marks = ",".join("?" * len(IN_PROGRESS_STATES))
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM migrations WHERE state IN ({marks})",
                              IN_PROGRESS_STATES).fetchall()
        return [self._record(r) for r in rows]

    def unfinished(self) -> list[MigrationRecord]:
        """Migrations in progress (alive or not) and failed ones left for recovery: every
        record a partition's listings show it migrating under."""
        marks = ",".join("?" * len(IN_PROGRESS_STATES))
        with self._db() as db:
            rows = db.execute(f"SELECT * FROM migrations WHERE state IN ({marks}) OR "
                              "(state='Migration Failed' AND "
                              "json_extract(stats, '$.recovered') IS NULL) "
                              "ORDER BY started", IN_PROGRESS_STATES).fetchall()
        recs = [self._record(r) for r in rows]
        return [r for r in recs if r.state in IN_PROGRESS_STATES or needs_recovery(r)]

    def latest(self, partition: str | None = None, limit: int = 50) -> list[MigrationRecord]:
        with self._db() as db:
            if partition:
                rows = db.execute("SELECT * FROM migrations WHERE partition=? ORDER BY started "
                                  "DESC LIMIT ?", (partition, limit)).fetchall()
            else:
                rows = db.execute("SELECT * FROM migrations ORDER BY started DESC LIMIT ?",
                                  (limit,)).fetchall()
        return [self._record(r) for r in rows]

    def add_samples(self, mid: str, samples: list[dict[str, Any]]) -> None:
        """Append telemetry samples of migration ``mid`` (numbered in arrival order)."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT COALESCE(MAX(seq), -1) FROM samples WHERE migration_id=?",
                             (mid,)).fetchone()
            start = int(row[0]) + 1
            db.executemany("INSERT INTO samples (migration_id, seq, t, kind, data) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(mid, start + i, float(s.get("t", 0.0)), str(s.get("kind", "")),
                             json.dumps(s)) for i, s in enumerate(samples)])
            db.execute("COMMIT")

    def samples(self, mid: str) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT data FROM samples WHERE migration_id=? ORDER BY seq",
                              (mid,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def latest_sample(self, mid: str, *, with_field: str = "data_processed") \
            -> dict[str, Any] | None:
        """The newest sample of ``mid`` that carries ``with_field`` (live bytes): samples of a
        burst of iteration events may carry only their time and number."""
        with self._db() as db:
            row = db.execute("SELECT data FROM samples WHERE migration_id=? AND "
                             "json_extract(data, ?) IS NOT NULL ORDER BY seq DESC LIMIT 1",
                             (mid, f"$.{with_field}")).fetchone()
        return json.loads(row[0]) if row else None

    def note_refcode(self, partition: str, frame: str, refcode: str, t: float) -> float:
        """Record ``refcode`` as the partition's code unless it is already its latest one;
        return the time the code was first seen."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT refcode, t FROM refcodes WHERE partition=? ORDER BY t "
                             "DESC LIMIT 1", (partition,)).fetchone()
            if row is not None and row[0] == refcode:
                db.execute("COMMIT")
                return float(row[1])
            db.execute("INSERT INTO refcodes (partition, frame, refcode, t) VALUES (?, ?, ?, ?)",
                       (partition, frame, refcode, t))
            db.execute("COMMIT")
            return t

    def refcodes(self, partition: str, limit: int) -> list[tuple[str, float]]:
        """The partition's codes as this HMC saw them change, newest first."""
        with self._db() as db:
            rows = db.execute("SELECT refcode, t FROM refcodes WHERE partition=? ORDER BY t "
                              "DESC LIMIT ?", (partition, limit)).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    def find(self, ref: str) -> MigrationRecord | None:
        """A migration by ID (or a unique ID prefix), or a partition's latest migration."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM migrations WHERE id LIKE ? ORDER BY started DESC",
                              (ref.replace("%", "") + "%",)).fetchall()
            if len(rows) == 1:
                return self._record(rows[0])
            row = db.execute("SELECT * FROM migrations WHERE partition=? ORDER BY started "
                             "DESC LIMIT 1", (ref,)).fetchone()
        return self._record(row) if row else None
