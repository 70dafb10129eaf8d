"""The wire front: a PostgreSQL protocol (v3) proxy in front of the real PostgreSQL that makes
it answer like Redshift.

Each client connection gets its own backend connection. Messages pass through as they are,
except: the startup phase (no TLS, cancel requests recorded and passed on), simple queries
(`Q`) and prepares (`P`), whose SQL goes through `compat.translate`, and ErrorResponses that
the stand-in raised itself, which lose PostgreSQL's traces of it. Faults and COPY from S3 apply
to simple queries, which is how clients run statements; a prepare is not a run.

When a query needs more than one exchange with PostgreSQL (a fault's `pg_sleep`, a COPY from
S3, a statement after those) the session runs them "privately": the backend's answers go to
the session instead of the client, which is sent the outcome and one ReadyForQuery at the end.
"""

from __future__ import annotations

import asyncio
import logging

import compat
import s3copy
import shared

log = logging.getLogger("standin.wire")

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

# Backend message types the proxy looks at.
COPY_IN = ord("G")
ERROR = ord("E")
READY = ord("Z")
ROW_DESCRIPTION = ord("T")

CHUNK = 1 << 16  # bytes per read from PostgreSQL, and per CopyData the proxy sends


async def serve(port: int, state: shared.Shared) -> asyncio.Server:
    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await Session(reader, writer, state).run()

    return await asyncio.start_server(session, "127.0.0.1", port)


def message(kind: bytes, body: bytes) -> bytes:
    return kind + (len(body) + 4).to_bytes(4, "big") + body


def query_message(sql: str) -> bytes:
    return message(b"Q", sql.encode() + b"\0")


def error_fields(raw: bytes) -> dict[str, str]:
    """An ErrorResponse's fields by their one-letter codes."""
    return {
        chr(field[0]): field[1:].decode(errors="replace")
        for field in raw[5:].split(b"\0")
        if field
    }


def error_message(fields: dict[str, str]) -> bytes:
    body = b"".join(code.encode() + value.encode() + b"\0" for code, value in fields.items())
    return message(b"E", body + b"\0")


def redshift_error(error: compat.RedshiftError) -> bytes:
    fields = {"S": "ERROR", "V": "ERROR", "C": error.sqlstate, "M": error.message}
    if error.detail:
        fields["D"] = error.detail
    return error_message(fields)


def column_types(row_description: bytes) -> list[int]:
    """The type oids in a RowDescription."""
    count = int.from_bytes(row_description[5:7], "big")
    types, offset = [], 7
    for _ in range(count):
        offset = row_description.index(b"\0", offset) + 1  # past the column's name
        types.append(int.from_bytes(row_description[offset + 6:offset + 10], "big"))
        offset += 18
    return types


class Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: shared.Shared):
        self.client_reader = reader
        self.client_writer = writer
        self.state = state
        self.backend_reader: asyncio.StreamReader | None = None
        self.backend_writer: asyncio.StreamWriter | None = None
        self.database = ""
        self.catalog_ready = False
        # The transaction status of the last ReadyForQuery: I (idle), T (in a block), E (failed).
        self.status = "I"
        # Requests sent to PostgreSQL (startup, Q, Sync) not yet answered with ReadyForQuery.
        self.outstanding = 1
        self.idle = asyncio.Event()
        # Set while the session runs a private exchange: backend messages go here.
        self.private: asyncio.Queue[bytes] | None = None
        # The error to send in place of the next ErrorResponse, for a refused prepare.
        self.replacement: bytes | None = None

    async def run(self) -> None:
        try:
            startup = await self._startup()
            if startup is None:
                return
            self.backend_reader, self.backend_writer = await asyncio.open_connection(
                shared.POSTGRES["host"], shared.POSTGRES["port"]
            )
            self.backend_writer.write(startup)
            pump = asyncio.create_task(self._pump())
            try:
                await self._serve_client()
            finally:
                pump.cancel()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("wire session failed")
        finally:
            self._close()

    def _close(self) -> None:
        self.client_writer.close()
        if self.backend_writer:
            self.backend_writer.close()

    async def _startup(self) -> bytes | None:
        """The client's startup message, once TLS is declined; None for a cancel request."""
        while True:
            head = await self.client_reader.readexactly(4)
            body = await self.client_reader.readexactly(int.from_bytes(head, "big") - 4)
            code = int.from_bytes(body[:4], "big")
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.client_writer.write(b"N")
                continue
            if code == CANCEL_REQUEST:
                pid = int.from_bytes(body[4:8], "big")
                self.state.events.record("cancel", "wire", pid=pid)
                _, writer = await asyncio.open_connection(shared.POSTGRES["host"], shared.POSTGRES["port"])
                writer.write(head + body)
                await writer.drain()
                writer.close()
                return None
            words = body[4:].split(b"\0")
            parameters = dict(zip(words[0::2], words[1::2]))
            self.database = (parameters.get(b"database") or parameters.get(b"user", b"")).decode()
            return head + body

    async def _serve_client(self) -> None:
        reader = self.client_reader
        while True:
            head = await reader.readexactly(5)
            body = await reader.readexactly(int.from_bytes(head[1:5], "big") - 4)
            kind = head[:1]
            if kind == b"Q":
                if not await self._query(body[:-1].decode()):
                    return
                continue
            raw = head + body
            if kind == b"P":
                raw = await self._prepare(body)
            elif kind == b"S":
                self._expect_ready()
            self.backend_writer.write(raw)
            await self.backend_writer.drain()
            if kind == b"X":
                return

    def _expect_ready(self) -> None:
        self.outstanding += 1
        self.idle.clear()

    async def _settled(self) -> None:
        """Waits for the answers to what was sent before, so `status` is current."""
        await self.idle.wait()

    async def _pump(self) -> None:
        """Backend to client, watching ReadyForQuery and errors, whole chunks at a time."""
        buffer = bytearray()
        try:
            while chunk := await self.backend_reader.read(CHUNK):
                buffer += chunk
                out = bytearray()
                start = position = 0
                while len(buffer) - position >= 5:
                    end = position + 1 + int.from_bytes(buffer[position + 1:position + 5], "big")
                    if end > len(buffer):
                        break
                    kind = buffer[position]
                    if self.private is not None or kind in (ERROR, READY):
                        out += buffer[start:position]
                        raw = bytes(buffer[position:end])
                        if kind == READY:
                            self._ready(chr(raw[5]))
                        if self.private is not None:
                            self.private.put_nowait(raw)
                        else:
                            out += self._to_client(raw)
                        start = end
                    position = end
                out += buffer[start:position]
                del buffer[:position]
                if out:
                    self.client_writer.write(out)
                    await self.client_writer.drain()
        finally:
            if self.private is not None:
                self.private.put_nowait(b"")
            self.client_writer.close()

    def _ready(self, status: str) -> None:
        self.status = status
        self.replacement = None
        self.outstanding = max(0, self.outstanding - 1)
        if self.outstanding == 0:
            self.idle.set()

    def _to_client(self, raw: bytes) -> bytes:
        if raw[0] != ERROR:
            return raw
        if self.replacement:
            raw, self.replacement = self.replacement, None
            return raw
        if b"standin.raise_error" in raw:
            # Redshift's error, not the PL/pgSQL function's: no context, file, line or routine.
            fields = error_fields(raw)
            return error_message({k: v for k, v in fields.items() if k not in "WFLR"})
        return raw

    async def _prepare(self, body: bytes) -> bytes:
        """A Parse with its SQL translated; a refused one fails as PostgreSQL would fail it."""
        name, sql, rest = body.split(b"\0", 2)
        await self._settled()
        statements = compat.translate(sql.decode(), self.status != "I")
        for statement in statements:
            self.state.events.record("statement", "wire", sql=statement.original, detail="prepare")
        refusal = next((s.error for s in statements if s.error), None)
        if any(s.copy for s in statements):
            refusal = compat.RedshiftError(
                "0A000", "the Redshift stand-in runs COPY from S3 in simple queries only"
            )
        if refusal:
            # A statement that fails at parse time, whose error the pump then replaces.
            self.replacement = redshift_error(refusal)
            text = "standin refused this statement"
        else:
            text = "; ".join(s.sql for s in statements) or sql.decode()
            await self._ensure_catalog(text)
        return message(b"P", name + b"\0" + text.encode() + b"\0" + rest)

    async def _ensure_catalog(self, sql: str) -> None:
        if self.catalog_ready or "standin." not in sql:
            return

        def ensure() -> None:
            with shared.connect(self.database) as conn:
                shared.ensure_catalog(conn)

        await asyncio.to_thread(ensure)
        self.catalog_ready = True

    async def _query(self, sql: str) -> bool:
        """Runs a simple query; False when a fault dropped the connection."""
        await self._settled()
        statements = compat.translate(sql, self.status != "I")
        plan = []
        for statement in statements:
            self.state.events.record("statement", "wire", sql=statement.original)
            fault = self.state.statement_fault("wire", statement.original)
            if fault and fault.kind == "error1023":
                statement, fault = statement.refused(compat.error_1023()), None
            plan.append((statement, fault))
        if not plan:
            self._expect_ready()
            self.backend_writer.write(query_message(sql))
            return True
        if all(s.copy is None and f is None for s, f in plan):
            # One round trip, as the client sent it: PostgreSQL runs a multi-statement query
            # as one implicit transaction, and stops at the first error.
            text = ";\n".join(s.text() for s, _ in plan)
            await self._ensure_catalog(text)
            self._expect_ready()
            self.backend_writer.write(query_message(text))
            return True
        return await self._query_in_steps(plan)

    async def _query_in_steps(self, plan: list) -> bool:
        answers: list[bytes] = []
        ready = b""
        for statement, fault in plan:
            if fault and fault.kind == "drop_connection":
                self._close()
                return False
            # In a failed transaction pg_sleep fails at once: the statement goes on undelayed.
            if fault and fault.kind == "slow" and self.status != "E":
                sleep = await self._private(f"select pg_sleep({fault.seconds})")
                if any(m[0] == ERROR for m in sleep):
                    # Cancelled while sleeping: the statement does not run.
                    answers += [m for m in sleep if m[0] == ERROR]
                    ready = sleep[-1]
                    break
            if statement.copy:
                replies = await self._copy(statement.copy)
            else:
                await self._ensure_catalog(statement.text())
                replies = await self._private(statement.text())
            answers += replies[:-1]
            ready = replies[-1]
            if any(m[0] == ERROR for m in replies):
                break
        self.client_writer.write(b"".join(self._to_client(m) for m in answers) + ready)
        await self.client_writer.drain()
        return True

    async def _private(self, sql: str, copy_data: bytes = b"") -> list[bytes]:
        """Runs `sql` on the backend, the client seeing nothing; the answers up to and
        including ReadyForQuery. A COPY FROM STDIN is sent `copy_data`."""
        queue = self.private = asyncio.Queue()
        try:
            self._expect_ready()
            self.backend_writer.write(query_message(sql))
            answers = []
            while raw := await queue.get():
                if raw[0] == COPY_IN:
                    for offset in range(0, len(copy_data), CHUNK):
                        self.backend_writer.write(message(b"d", copy_data[offset:offset + CHUNK]))
                        await self.backend_writer.drain()
                    self.backend_writer.write(message(b"c", b""))
                    continue
                answers.append(raw)
                if raw[0] == READY:
                    return answers
            raise ConnectionResetError("PostgreSQL closed the connection")
        finally:
            self.private = None

    async def _copy(self, spec: compat.CopyFromS3) -> list[bytes]:
        """Loads from S3 on this session's backend, so the load joins its transaction."""
        probe = await self._private(spec.probe_sql())
        if any(m[0] == ERROR for m in probe):
            return [m for m in probe if m[0] in (ERROR, READY)]
        types = next(column_types(m) for m in probe if m[0] == ROW_DESCRIPTION)
        try:
            data, rows = await asyncio.to_thread(s3copy.load, spec, types)
        except compat.RedshiftError as error:
            await self._ensure_catalog(error.sql())
            return await self._private(error.sql())
        answers = await self._private(spec.copy_sql(), data)
        failure = next((m for m in answers if m[0] == ERROR), None)
        if failure:
            fields = error_fields(failure)
            if fields.get("C", "")[:2] in ("22", "23"):  # the data's fault, not the statement's
                reason = fields.get("M", "") + (f" ({fields['W']})" if "W" in fields else "")
                answers = [redshift_error(compat.load_failure(spec.table, reason)), answers[-1]]
        else:
            self.state.events.record("copy", "wire", s3=spec.url, rows=rows)
        return answers
