"""What the Athena front's threads share: the faults tests inject and the event log they read.
Every piece sits behind a lock, each call holds it only briefly.

Faults (`POST /_standin/faults`):
  {"kind": "throttle", "count": N[, "match": "<operation>"][, "exception": "TooManyRequestsException"]}
      the next N Athena API calls (whose operation contains `match`) answer ThrottlingException
      (or the exception named)
  {"kind": "iceberg_commit", "count": N, "match": "<substring>"}
      the next N writing queries whose SQL contains `match` end FAILED with ICEBERG_COMMIT_ERROR,
      without running
  {"kind": "slow", "seconds": S[, "count": N][, "match": "<substring>"]}
      the next N matching queries stay RUNNING S seconds before they start on Trino
`match` is a case-insensitive substring; empty matches everything.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

FAULT_KINDS = ("throttle", "iceberg_commit", "slow")
THROTTLE_EXCEPTIONS = ("ThrottlingException", "TooManyRequestsException")


@dataclass
class Fault:
    kind: str
    remaining: int
    match: str
    seconds: float
    exception: str

    def describe(self) -> dict:
        return {"kind": self.kind, "remaining": self.remaining, "match": self.match,
                "seconds": self.seconds, "exception": self.exception}


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, spec: dict) -> Fault:
        """Adds the fault `spec` (the control API's JSON); ValueError says what is wrong."""
        kind = spec.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("count must be a positive integer")
        seconds = spec.get("seconds", 0)
        if kind == "slow" and (not isinstance(seconds, (int, float)) or seconds <= 0):
            raise ValueError("slow needs seconds, a positive number")
        match = spec.get("match", "")
        if not isinstance(match, str):
            raise ValueError("match must be a string")
        exception = spec.get("exception", "ThrottlingException")
        if exception not in THROTTLE_EXCEPTIONS:
            raise ValueError(f"exception must be one of {', '.join(THROTTLE_EXCEPTIONS)}")
        fault = Fault(kind, count, match, float(seconds), exception)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def take(self, kind: str, text: str) -> Fault | None:
        """Uses up one of the first fault of `kind` whose `match` is in `text`."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.kind == kind and fault.match.lower() in text.lower():
                    fault.remaining -= 1
                    return fault
        return None


class Events:
    """What happened, in order, for tests to assert on; the oldest go past 100,000."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: collections.deque[dict] = collections.deque(maxlen=100_000)

    def record(self, kind: str, **fields) -> None:
        event = {"time": time.time(), "kind": kind, **fields}
        with self._lock:
            self._events.append(event)

    def list(self) -> list[dict]:
        with self._lock:
            return list(self._events)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    def calls(self) -> dict[str, int]:
        """API calls per operation since the events were last cleared: Athena's by name
        (`StartQueryExecution`), Glue's with its prefix (`AWSGlue.GetTables`)."""
        with self._lock:
            return dict(collections.Counter(
                e["operation"] if e["service"] == "athena" else f"AWSGlue.{e['operation']}"
                for e in self._events if e["kind"] == "call"
            ))


@dataclass
class Shared:
    faults: Faults
    events: Events
