"""What the stand-in's fronts share in its one process: injected faults, the event log, the
settings, and access to the PostgreSQL underneath (connections, the `standin` catalog objects
each database gets on first use, cancelling a backend).

Everything here is called from the wire front's event loop and from the Data API's threads,
so every piece of state sits behind a lock and each call holds it only briefly.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from dataclasses import dataclass

import psycopg

import compat

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}

FAULT_KINDS = ("error1023", "drop_connection", "slow", "throttle")
STATEMENT_FAULTS = ("error1023", "drop_connection", "slow")
TRANSPORTS = ("wire", "data_api", "any")


@dataclass
class Fault:
    kind: str
    remaining: int
    match: re.Pattern[str]
    transport: str
    seconds: float

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "match": self.match.pattern,
            "transport": self.transport,
            "seconds": self.seconds,
        }


class Faults:
    """Faults to inject, each good for its next `count` matching statements or calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, spec: dict) -> Fault:
        """Adds the fault `spec` (the control API's JSON); ValueError says what is wrong."""
        kind = spec.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        count = spec.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise ValueError("count must be a positive integer")
        transport = spec.get("transport", "any")
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
        if kind == "throttle" and transport == "wire":
            raise ValueError("throttle applies to Data API calls only")
        seconds = spec.get("seconds", 0)
        if kind == "slow" and (not isinstance(seconds, (int, float)) or seconds <= 0):
            raise ValueError("slow needs seconds, a positive number")
        try:
            match = re.compile(spec.get("match", ""), re.I)
        except re.error as error:
            raise ValueError(f"match is not a regular expression: {error}") from None
        fault = Fault(kind, count, match, transport, float(seconds))
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def take(self, transport: str, text: str, kinds: tuple[str, ...]) -> Fault | None:
        """Uses up one of the first fault of `kinds` that matches `text` on `transport`."""
        with self._lock:
            for fault in self._faults:
                if (
                    fault.remaining > 0
                    and fault.kind in kinds
                    and fault.transport in (transport, "any")
                    and fault.match.search(text)
                ):
                    fault.remaining -= 1
                    return fault
        return None


class Events:
    """What happened, in order, for tests to assert on; the oldest go past 100,000."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: collections.deque[dict] = collections.deque(maxlen=100_000)

    def record(self, kind: str, transport: str, **fields) -> None:
        event = {"time": time.time(), "transport": transport, "kind": kind, **fields}
        with self._lock:
            self._events.append(event)

    def list(self) -> list[dict]:
        with self._lock:
            return list(self._events)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    def calls(self) -> dict[str, int]:
        """Data API calls per operation since the events were last cleared."""
        with self._lock:
            return dict(collections.Counter(
                e["operation"] for e in self._events if e["kind"] == "call"
            ))


@dataclass
class Settings:
    page_rows: int = 1000  # rows per GetStatementResult page, as on AWS


@dataclass
class Shared:
    faults: Faults
    events: Events
    settings: Settings

    def statement_fault(self, transport: str, statement: str) -> Fault | None:
        """The fault to inject into this statement, if any, recorded as an event."""
        fault = self.faults.take(transport, statement, STATEMENT_FAULTS)
        if fault:
            self.events.record("fault", transport, sql=statement, detail=fault.kind)
        return fault


def connect(database: str) -> psycopg.Connection:
    return psycopg.connect(**POSTGRES, dbname=database, autocommit=True, connect_timeout=10)


def cancel_backend(pid: int) -> None:
    with connect("postgres") as conn:
        conn.execute("select pg_cancel_backend(%s)", (pid,))


def postgres_reachable() -> bool:
    try:
        with connect("postgres") as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False


# Databases, by name and oid, whose `standin` schema this process has seen up to date: a
# database dropped and made again under the same name gets a new oid, and so a new schema.
_catalog_ready: set[tuple[str, int]] = set()
_catalog_lock = threading.Lock()


def ensure_catalog(conn: psycopg.Connection) -> None:
    """Makes the `standin` schema in `conn`'s database unless it is there and current.
    `conn` must be in autocommit mode and outside a transaction."""
    oid = conn.execute("select oid from pg_database where datname = current_database()").fetchone()[0]
    key = (conn.info.dbname, oid)
    with _catalog_lock:
        if key in _catalog_ready:
            return
    with conn.transaction():
        # Serializes the stand-in's connections, and other stand-in processes, on this database.
        conn.execute("select pg_advisory_xact_lock(hashtext('strata-standin-catalog'))")
        current = conn.execute(
            "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = 'standin'"
        ).fetchone()
        if not current or current[0] != compat.CATALOG_VERSION:
            conn.execute("drop schema if exists standin cascade")
            conn.execute(compat.CATALOG_SQL)
            conn.execute(f"comment on schema standin is {compat.quote_literal(compat.CATALOG_VERSION)}")
    with _catalog_lock:
        _catalog_ready.add(key)
