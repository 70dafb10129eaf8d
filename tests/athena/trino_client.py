"""A small client of Trino's HTTP protocol for the Athena front: `POST /v1/statement`, then
follow `nextUri` until it ends, collecting columns, rows, the update count and Trino's
statistics; a `DELETE` on the current `nextUri` cancels. One `Statement` per statement.

Numbers in rows keep Trino's own text (Java's rendering of doubles, such as `1.0E10`), which
is how Athena prints them. The client announces no capabilities, so timestamps come back with
three fractional digits (`2024-01-01 00:00:00.000`), as Athena's do.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

URL = f"http://127.0.0.1:{os.environ.get('STANDIN_TRINO_PORT', '8090')}"
USER = "strata"


class TrinoError(Exception):
    """A statement Trino failed: its error name (TABLE_NOT_FOUND, …), message and type."""

    def __init__(self, name: str, message: str, kind: str = "USER_ERROR", code: int = 0):
        super().__init__(f"{name}: {message}")
        self.name, self.message, self.kind, self.code = name, message, kind, code


class Cancelled(Exception):
    """The statement was cancelled before it ended."""


@dataclass
class Outcome:
    columns: list[dict] | None = None  # Trino's column documents, None for a statement without rows
    rows: list[list] = field(default_factory=list)
    update_type: str | None = None
    update_count: int | None = None
    processed_bytes: int = 0
    elapsed_ms: int = 0
    queued_ms: int = 0


def _decode(body: bytes) -> dict:
    return json.loads(body, parse_float=str)


class Statement:
    def __init__(self, sql: str, catalog: str, schema: str, session: dict[str, str] | None = None):
        self.sql = sql
        self.headers = {
            "X-Trino-User": USER,
            "X-Trino-Source": "strata-athena-standin",
            "X-Trino-Catalog": catalog,
            "X-Trino-Schema": schema,
        }
        if session:
            self.headers["X-Trino-Session"] = ",".join(
                f"{k}={urllib.parse.quote(v)}" for k, v in session.items()
            )
        self._next_uri: str | None = None
        self._cancelled = threading.Event()

    def run(self, timeout: float = 600) -> Outcome:
        """Runs the statement to its end; TrinoError when it fails, Cancelled when cancelled."""
        request = urllib.request.Request(f"{URL}/v1/statement", data=self.sql.encode(), headers=self.headers)
        doc = self._fetch(request, timeout)
        outcome = Outcome()
        while True:
            if doc.get("columns") is not None and outcome.columns is None:
                outcome.columns = doc["columns"]
            outcome.rows.extend(doc.get("data") or [])
            stats = doc.get("stats") or {}
            outcome.processed_bytes = int(stats.get("processedBytes") or 0)
            outcome.elapsed_ms = int(stats.get("elapsedTimeMillis") or 0)
            outcome.queued_ms = int(stats.get("queuedTimeMillis") or 0)
            if doc.get("error"):
                error = doc["error"]
                if self._cancelled.is_set() and error.get("errorName") == "USER_CANCELED":
                    raise Cancelled()
                raise TrinoError(error.get("errorName", "GENERIC_INTERNAL_ERROR"), error.get("message", ""),
                                 error.get("errorType", "INTERNAL_ERROR"), int(error.get("errorCode") or 0))
            self._next_uri = doc.get("nextUri")
            if self._next_uri is None:
                break
            if self._cancelled.is_set():
                self.cancel()
                raise Cancelled()
            doc = self._fetch(urllib.request.Request(self._next_uri, headers=self.headers), timeout)
        outcome.update_type = doc.get("updateType")
        if doc.get("updateCount") is not None:
            outcome.update_count = int(doc["updateCount"])
        if outcome.update_type:
            # Writes answer with a one-row `rows` column; Athena shows them as an update count.
            outcome.columns, outcome.rows = None, []
        return outcome

    def cancel(self) -> None:
        """Cancels the statement on Trino; safe from any thread, and more than once."""
        self._cancelled.set()
        uri = self._next_uri
        if uri:
            try:
                urllib.request.urlopen(urllib.request.Request(uri, method="DELETE", headers=self.headers), timeout=10).close()
            except (urllib.error.URLError, OSError):
                pass  # gone already

    def _fetch(self, request: urllib.request.Request, timeout: float) -> dict:
        # Trino answers 503 while it is busy; a client is to wait and ask again.
        for attempt in range(20):
            try:
                with urllib.request.urlopen(request, timeout=timeout) as reply:
                    return _decode(reply.read())
            except urllib.error.HTTPError as error:
                if error.code not in (502, 503, 504) or attempt == 19:
                    if self._cancelled.is_set():
                        raise Cancelled() from None
                    raise TrinoError("GENERIC_INTERNAL_ERROR", f"Trino answered HTTP {error.code}: {error.read()[:500]!r}",
                                     "INTERNAL_ERROR") from None
                self._cancelled.wait(0.1 * (attempt + 1))
        raise AssertionError("unreachable")


def answers() -> bool:
    """Whether Trino runs `select 1`."""
    try:
        outcome = Statement("select 1", "system", "runtime").run(timeout=5)
        return outcome.rows == [[1]]
    except (TrinoError, Cancelled, OSError, ValueError):
        return False
