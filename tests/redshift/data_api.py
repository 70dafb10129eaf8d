"""The Redshift Data API over PostgreSQL: the operations aws-sdk-redshiftdata calls, in the AWS
JSON 1.1 protocol, with the shapes and errors of botocore's model of the service.

Each ExecuteStatement or BatchExecuteStatement runs in a thread of its own on its own
PostgreSQL connection: autocommit for one statement, one transaction for a batch. Results are
kept as the API returns them (PostgreSQL's text output in `Field`s) for GetStatementResult to
page through. Signatures are not checked.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import psycopg
from psycopg import pq

import compat
import s3copy
import shared

# Types whose values come back as `longValue`, `doubleValue` and `booleanValue`.
LONG_TYPES = {20, 21, 23, 26}
DOUBLE_TYPES = {700, 701}
BOOLEAN_TYPE = 16

# How many statements (with their results) are kept; AWS keeps them for 24 hours.
KEPT_STATEMENTS = 10_000

RUNNING = ("SUBMITTED", "PICKED", "STARTED")

# The stand-in's wording: AWS's for a dropped connection is not documented.
CONNECTION_RESET = "ERROR: Connection reset by peer"


class ApiError(Exception):
    """An error reply: HTTP 400 with `{"__type": kind, "message": …}` and any extra members."""

    def __init__(self, kind: str, message: str, **extra: str):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.extra = extra

    def body(self) -> dict:
        return {"__type": self.kind, "message": self.message, **self.extra}


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def not_null(member: str) -> ApiError:
    # AWS's wording for a missing required member.
    return validation(
        f"1 validation error detected: Value null at '{member}' failed to satisfy constraint: "
        "Member must not be null"
    )


def error_text(message: str, detail: str | None) -> str:
    """An error as the Data API reports it: Redshift's message with any detail below."""
    return f"ERROR: {message}" + (f"\n  Detail: {detail}" if detail else "")


class Failed(Exception):
    """Ends a statement with `status` (FAILED or ABORTED) and `error`."""

    def __init__(self, status: str, error: str):
        super().__init__(error)
        self.status = status
        self.error = error


@dataclass(kw_only=True)
class Progress:
    """Where a statement or a batch has got to."""

    created_at: float
    status: str = "SUBMITTED"
    error: str | None = None
    updated_at: float = 0.0
    started: float | None = None
    ended: float | None = None

    def set(self, status: str, error: str | None = None) -> None:
        now = time.time()
        if status == "STARTED":
            self.started = now
        elif status not in RUNNING:
            self.ended = now
        self.status, self.error, self.updated_at = status, error, now

    def duration(self) -> int:
        """Nanoseconds run so far, -1 (AWS's null) before the start."""
        if self.started is None:
            return -1
        return int(((self.ended or time.time()) - self.started) * 1e9)


@dataclass(kw_only=True)
class Step(Progress):
    """One SQL text: an ExecuteStatement's, or one of a batch's."""

    id: str
    sql: str
    query_id: int = -1
    columns: list[dict] | None = None  # ColumnMetadata, when the statement returned rows
    records: list[list[dict]] = field(default_factory=list)
    result_rows: int = -1
    result_size: int = -1

    def describe(self) -> dict:
        return _present({
            "Id": self.id,
            "Status": self.status,
            "Error": self.error,
            "QueryString": self.sql,
            "HasResultSet": self.columns is not None,
            "ResultRows": self.result_rows,
            "ResultSize": self.result_size,
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at or self.created_at,
            "Duration": self.duration(),
            "RedshiftQueryId": self.query_id,
        })


@dataclass(kw_only=True)
class Run(Progress):
    """An ExecuteStatement or a BatchExecuteStatement and how it goes."""

    id: str
    request: dict  # Database, DbUser and the target, as the caller gave them
    steps: list[Step]
    batch: bool
    pid: int = 0
    cancel_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict:
        if self.batch:
            top = {
                "Id": self.id,
                "Status": self.status,
                "Error": self.error,
                "QueryString": "; ".join(s.sql for s in self.steps),
                "HasResultSet": any(s.columns is not None for s in self.steps),
                "ResultRows": sum(max(s.result_rows, 0) for s in self.steps),
                "ResultSize": sum(max(s.result_size, 0) for s in self.steps),
                "CreatedAt": self.created_at,
                "UpdatedAt": self.updated_at or self.created_at,
                "Duration": self.duration(),
                "SubStatements": [s.describe() for s in self.steps],
            }
        else:
            top = self.steps[0].describe() | {"Id": self.id, "Status": self.status, "Error": self.error}
        return _present(top | self.request | {"RedshiftPid": self.pid, "IsBatchStatement": self.batch})


def _present(document: dict) -> dict:
    """`document` without its empty members, as AWS leaves them out."""
    return {k: v for k, v in document.items() if v is not None}


class DataApi:
    def __init__(self, state: shared.Shared):
        self.state = state
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._query_ids = itertools.count(1000)

    def call(self, operation: str, request: dict) -> dict:
        """Answers one API call; ApiError for an error reply."""
        self.state.events.record("call", "data_api", operation=operation)
        if self.state.faults.take("data_api", operation, ("throttle",)):
            self.state.events.record("fault", "data_api", operation=operation, detail="throttle")
            raise ApiError("ThrottlingException", "Rate exceeded")
        handler = {
            "ExecuteStatement": self.execute_statement,
            "BatchExecuteStatement": self.batch_execute_statement,
            "DescribeStatement": self.describe_statement,
            "GetStatementResult": self.get_statement_result,
            "CancelStatement": self.cancel_statement,
        }.get(operation)
        if handler is None:
            raise ApiError("UnknownOperationException", f"the Redshift stand-in has no operation {operation}")
        return handler(request)

    def execute_statement(self, request: dict) -> dict:
        if not request.get("Sql"):
            raise not_null("sql")
        return self._start(request, [request["Sql"]], batch=False)

    def batch_execute_statement(self, request: dict) -> dict:
        sqls = request.get("Sqls")
        if not sqls:
            raise not_null("sqls")
        if not isinstance(sqls, list) or len(sqls) > 40 or not all(isinstance(s, str) and s for s in sqls):
            raise validation(
                "1 validation error detected: Value at 'sqls' failed to satisfy constraint: "
                "Member must have length less than or equal to 40"
            )
        return self._start(request, sqls, batch=True)

    def _start(self, request: dict, sqls: list[str], batch: bool) -> dict:
        target = {k: request[k] for k in ("ClusterIdentifier", "WorkgroupName", "SecretArn") if request.get(k)}
        # AWS's rules, in the stand-in's words: a cluster or a workgroup, or a secret naming one;
        # a cluster without DbUser or secret connects as the caller's IAM identity.
        if "ClusterIdentifier" in target and "WorkgroupName" in target:
            raise validation("ClusterIdentifier and WorkgroupName cannot both be specified.")
        if not target:
            raise validation("Either ClusterIdentifier, WorkgroupName or SecretArn is required.")
        if not request.get("Database"):
            raise not_null("database")
        now = time.time()
        run_id = str(uuid.uuid4())
        steps = [
            Step(id=f"{run_id}:{n}" if batch else run_id, sql=sql, created_at=now)
            for n, sql in enumerate(sqls, start=1)
        ]
        identity = {"Database": request["Database"], "DbUser": request.get("DbUser")}
        run = Run(id=run_id, request=_present(identity | target), steps=steps, batch=batch, created_at=now)
        with self._lock:
            self._runs[run_id] = run
            while len(self._runs) > KEPT_STATEMENTS:
                self._runs.popitem(last=False)
        threading.Thread(target=self._work, args=(run,), daemon=True).start()
        return {"Id": run_id, "CreatedAt": now, **run.request}

    def _find(self, request: dict) -> tuple[Run, Step | None]:
        """The run an Id names, and the step when it names a batch's sub-statement."""
        statement_id = request.get("Id")
        if not statement_id:
            raise not_null("id")
        run_id, _, number = statement_id.partition(":")
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or (number and not (number.isdigit() and run.batch and 1 <= int(number) <= len(run.steps))):
            raise ApiError("ResourceNotFoundException", "Query does not exist.", ResourceId=statement_id)
        return run, run.steps[int(number) - 1] if number else None

    def describe_statement(self, request: dict) -> dict:
        run, step = self._find(request)
        if step:
            return step.describe() | run.request | {"RedshiftPid": run.pid, "IsBatchStatement": False}
        return run.describe()

    def get_statement_result(self, request: dict) -> dict:
        run, step = self._find(request)
        if step is None:
            if run.batch:
                raise validation("Use the Id of one of the batch's sub-statements, as <Id>:<n>.")
            step = run.steps[0]
        if step.status != "FINISHED" or step.columns is None:
            raise ApiError(
                "ResourceNotFoundException",
                "Query does not have result. Please check query status with DescribeStatement.",
                ResourceId=request["Id"],
            )
        token = request.get("NextToken") or "0"
        if not token.isdigit():
            raise validation("The NextToken is not valid.")
        start = int(token)
        end = start + self.state.settings.page_rows
        page = {
            "Records": step.records[start:end],
            "ColumnMetadata": step.columns,
            "TotalNumRows": len(step.records),
        }
        if end < len(step.records):
            page["NextToken"] = str(end)
        return page

    def cancel_statement(self, request: dict) -> dict:
        run, _ = self._find(request)
        if run.status not in RUNNING:
            raise validation(
                f"Could not cancel a query that is already in {run.status} state with ID: {request['Id']}"
            )
        run.cancel_requested = True
        self.state.events.record("cancel", "data_api", id=request["Id"])
        threading.Thread(target=self._cancel, args=(run,), daemon=True).start()
        return {"Status": True}

    def _cancel(self, run: Run) -> None:
        """Cancels the run's statement until the run ends: a single pg_cancel_backend could
        land between two statements and be lost (each step checks `cancel_requested` first)."""
        deadline = time.monotonic() + 30
        while not run.done.is_set() and time.monotonic() < deadline:
            if run.pid and any(step.status == "STARTED" for step in run.steps):
                try:
                    shared.cancel_backend(run.pid)
                except psycopg.Error:
                    pass
            run.done.wait(0.1)

    def _work(self, run: Run) -> None:
        run.set("PICKED")
        try:
            with shared.connect(run.request["Database"]) as conn:
                run.pid = conn.info.backend_pid
                shared.ensure_catalog(conn)
                run.set("STARTED")
                if run.batch:
                    conn.execute("begin")
                for step in run.steps:
                    self._run_step(conn, run, step)
                if run.batch:
                    conn.execute("commit")
            run.set("FINISHED")
        except Failed as failure:
            # Those that had not started end with the run.
            for step in run.steps:
                if step.status == "SUBMITTED":
                    step.set("ABORTED")
            run.set(failure.status, failure.error)
        except psycopg.Error as error:
            run.set("FAILED", error_text(str(error).strip(), None))
        finally:
            run.done.set()

    def _run_step(self, conn: psycopg.Connection, run: Run, step: Step) -> None:
        step.query_id = next(self._query_ids)
        step.set("STARTED")
        try:
            cursor = None
            for statement in compat.translate(step.sql, in_transaction=run.batch):
                if run.cancel_requested:
                    self._fail(step, "ABORTED", error_text("canceling statement due to user request", None))
                self.state.events.record("statement", "data_api", sql=statement.original, id=step.id)
                fault = self.state.statement_fault("data_api", statement.original)
                if fault and fault.kind == "drop_connection":
                    conn.close()
                    self._fail(step, "FAILED", CONNECTION_RESET)
                if fault and fault.kind == "slow":
                    conn.execute("select pg_sleep(%s)", (fault.seconds,))
                if fault and fault.kind == "error1023":
                    raise compat.error_1023()
                if statement.error:
                    raise statement.error
                cursor = self._copy(conn, statement.copy) if statement.copy else conn.execute(statement.sql)
            if cursor is not None:
                self._keep_result(conn, cursor, step)
            step.set("FINISHED")
        except compat.RedshiftError as error:
            self._fail(step, "FAILED", error_text(error.message, error.detail))
        except psycopg.Error as error:
            aborted = run.cancel_requested and isinstance(error, psycopg.errors.QueryCanceled)
            message = error_text(error.diag.message_primary or str(error), error.diag.message_detail)
            self._fail(step, "ABORTED" if aborted else "FAILED", message)

    @staticmethod
    def _fail(step: Step, status: str, error: str) -> None:
        step.set(status, error)
        raise Failed(status, error)

    def _copy(self, conn: psycopg.Connection, spec: compat.CopyFromS3) -> psycopg.Cursor:
        probe = conn.execute(spec.probe_sql())
        data, rows = s3copy.load(spec, [column.type_code for column in probe.description])
        cursor = conn.cursor()
        try:
            with cursor.copy(spec.copy_sql()) as copy:
                copy.write(data)
        except psycopg.Error as error:
            if (error.sqlstate or "")[:2] not in ("22", "23"):  # the data's fault, not the statement's
                raise
            reason = error.diag.message_primary or str(error)
            if error.diag.context:
                reason += f" ({error.diag.context})"
            raise compat.load_failure(spec.table, reason) from None
        self.state.events.record("copy", "data_api", s3=spec.url, rows=rows)
        return cursor

    @staticmethod
    def _keep_result(conn: psycopg.Connection, cursor: psycopg.Cursor, step: Step) -> None:
        result = cursor.pgresult
        if result is None or result.status != pq.ExecStatus.TUPLES_OK:
            step.result_rows = cursor.rowcount
            return
        types = [result.ftype(c) for c in range(result.nfields)]
        size = 0
        for r in range(result.ntuples):
            row = []
            for c, oid in enumerate(types):
                value = result.get_value(r, c)
                size += len(value or b"")
                row.append(_field(value, oid))
            step.records.append(row)
        step.columns = _column_metadata(conn, result)
        step.result_rows, step.result_size = result.ntuples, size


def _field(value: bytes | None, oid: int) -> dict:
    if value is None:
        return {"isNull": True}
    if oid in LONG_TYPES:
        return {"longValue": int(value)}
    if oid in DOUBLE_TYPES and math.isfinite(number := float(value)):
        return {"doubleValue": number}
    if oid == BOOLEAN_TYPE:
        return {"booleanValue": value == b"t"}
    return {"stringValue": value.decode()}


_CHARACTER_TYPES = {"varchar", "bpchar", "text", "char", "name"}
_SIGNED_TYPES = {"int2", "int4", "int8", "float4", "float8", "numeric", "money"}
# Digits of the fixed-size numbers, reported as their precision (as JDBC drivers do).
_PRECISION = {"int2": 5, "int4": 10, "int8": 19, "float4": 8, "float8": 17, "bool": 1}


def _column_metadata(conn: psycopg.Connection, result: pq.PGresult) -> list[dict]:
    count = range(result.nfields)
    catalog = conn.execute(
        """
        select t.typname, n.nspname, c.relname, a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
        from unnest(%s::oid[], %s::oid[], %s::int2[]) with ordinality as col(type, rel, num, i)
        join pg_type t on t.oid = col.type
        left join pg_class c on c.oid = col.rel
        left join pg_namespace n on n.oid = c.relnamespace
        left join pg_attribute a on a.attrelid = col.rel and a.attnum = col.num
        left join pg_attrdef d on d.adrelid = col.rel and d.adnum = col.num
        order by col.i
        """,
        ([result.ftype(c) for c in count], [result.ftable(c) for c in count], [result.ftablecol(c) for c in count]),
    ).fetchall()
    columns = []
    for c, (type_name, schema, table, not_null, default) in zip(count, catalog):
        modifier = result.fmod(c)
        precision, scale = _PRECISION.get(type_name, 0), 0
        if type_name == "numeric" and modifier >= 4:
            precision, scale = (modifier - 4) >> 16, (modifier - 4) & 0xFFFF
        elif type_name in ("varchar", "bpchar") and modifier >= 4:
            precision = modifier - 4
        name = result.fname(c).decode()
        columns.append(_present({
            "name": name,
            "label": name,
            "typeName": type_name,
            # JDBC's codes: 0 no nulls, 1 nullable, 2 unknown (a computed column).
            "nullable": 2 if not_null is None else int(not not_null),
            "precision": precision,
            "scale": scale,
            "length": precision if type_name in _CHARACTER_TYPES else 0,
            "isCaseSensitive": type_name in _CHARACTER_TYPES,
            "isCurrency": type_name == "money",
            "isSigned": type_name in _SIGNED_TYPES,
            "schemaName": schema or "",
            "tableName": table or "",
            "columnDefault": default,
        }))
    return columns
