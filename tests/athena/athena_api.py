"""Amazon Athena's query API over Trino: the operations aws-sdk-athena calls, in the AWS JSON
1.1 protocol, with the shapes and errors of Athena's model.

Each StartQueryExecution runs in a thread of its own: its SQL is translated (`translate.py`),
each resulting statement runs on Trino in turn, and the last one's rows are kept, as Athena
shows them (`results.py`), for GetQueryResults to page through. Queries, results and
idempotency tokens live in memory; the stand-in writes no result files to S3.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import glue
import results
import shared
import translate
import trino_client

log = logging.getLogger("standin.athena")

WORKGROUPS = {
    "primary": {"location": "s3://strata-athena/results/", "enforce": False},
    "enforced": {"location": "s3://strata-athena/enforced/", "enforce": True},
}
CREATED = 1_700_000_000.0  # when the workgroups were "made", for their CreationTime
ENGINE = {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}
MAX_QUERY_BYTES = 262_144
KEPT_QUERIES = 10_000
FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")

TOO_MANY_PARTITIONS = "HIVE_TOO_MANY_OPEN_PARTITIONS: Exceeded limit of 100 open writers for partitions/buckets"
# Trino's names for it; Athena reports both as its Hive engine's.
_TOO_MANY_PARTITIONS = ("HIVE_TOO_MANY_OPEN_PARTITIONS", "ICEBERG_TOO_MANY_OPEN_PARTITIONS")
# Athena's ErrorCategory: 1 system, 2 user, 3 other.
_CATEGORY = {"USER_ERROR": 2, "INTERNAL_ERROR": 1, "INSUFFICIENT_RESOURCES": 1, "EXTERNAL": 1}


class ApiError(Exception):
    """An error reply: HTTP 400 with `{"__type": kind, "Message": …}` and any extra members."""

    def __init__(self, kind: str, message: str, **extra: str):
        super().__init__(message)
        self.kind, self.message, self.extra = kind, message, extra

    def body(self) -> dict:
        return {"__type": self.kind, "Message": self.message, **self.extra}


def invalid(message: str) -> ApiError:
    return ApiError("InvalidRequestException", message, AthenaErrorCode="INVALID_INPUT")


@dataclass(kw_only=True)
class Query:
    id: str
    sql: str
    context: dict  # QueryExecutionContext as the caller gave it
    workgroup: str
    output_location: str
    statement_type: str
    submitted: float
    state: str = "QUEUED"
    reason: str | None = None
    athena_error: dict | None = None
    started: float | None = None
    completed: float | None = None
    steps: list[str] = field(default_factory=list)  # what ran, translated
    columns: list[dict] = field(default_factory=list)  # ColumnInfo
    rows: list[dict] = field(default_factory=list)  # Rows, the header row first where Athena has one
    update_count: int | None = None
    scanned_bytes: int = 0
    engine_ms: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    statement: trino_client.Statement | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def database(self) -> str:
        return self.context.get("Database") or "default"

    @property
    def catalog(self) -> str:
        return (self.context.get("Catalog") or "awsdatacatalog").lower()

    def finish(self, state: str, reason: str | None = None, athena_error: dict | None = None) -> bool:
        """Ends the query unless it has ended already; whether this call ended it."""
        with self.lock:
            if self.state in FINAL:
                return False
            self.state, self.reason, self.athena_error, self.completed = state, reason, athena_error, time.time()
            return True

    def describe(self) -> dict:
        end = self.completed or time.time()
        status = {"State": self.state, "SubmissionDateTime": self.submitted}
        if self.completed:
            status["CompletionDateTime"] = self.completed
        if self.reason:
            status["StateChangeReason"] = self.reason
        if self.athena_error:
            status["AthenaError"] = self.athena_error
        queued = (self.started or end) - self.submitted
        suffix = "csv" if self.statement_type == "DML" else "txt"
        return {
            "QueryExecutionId": self.id,
            "Query": self.sql,
            "StatementType": self.statement_type,
            "ResultConfiguration": {"OutputLocation": f"{self.output_location.rstrip('/')}/{self.id}.{suffix}"},
            "QueryExecutionContext": self.context,
            "Status": status,
            "Statistics": {
                "EngineExecutionTimeInMillis": self.engine_ms,
                "DataScannedInBytes": self.scanned_bytes,
                "TotalExecutionTimeInMillis": int((end - self.submitted) * 1000),
                "QueryQueueTimeInMillis": int(queued * 1000),
                "ServicePreProcessingTimeInMillis": 0,
                "QueryPlanningTimeInMillis": 0,
                "ServiceProcessingTimeInMillis": 0,
            },
            "WorkGroup": self.workgroup,
            "EngineVersion": ENGINE,
        }


def athena_failure(error: trino_client.TrinoError | glue.GlueFailure) -> tuple[str, dict]:
    """StateChangeReason and AthenaError for a failed statement, as Athena words them."""
    name = error.name
    reason = TOO_MANY_PARTITIONS if name in _TOO_MANY_PARTITIONS else f"{name}: {error.message}"
    kind = getattr(error, "kind", "USER_ERROR")
    return reason, {
        "ErrorCategory": _CATEGORY.get(kind, 3),
        "ErrorType": getattr(error, "code", 0),  # Trino's numeric error code
        # A commit that lost to another writer's may well succeed when run again.
        "Retryable": kind == "INSUFFICIENT_RESOURCES" or name == "ICEBERG_COMMIT_ERROR",
        "ErrorMessage": reason,
    }


class AthenaApi:
    def __init__(self, state: shared.Shared):
        self.state = state
        self.glue = glue.Glue()
        self._lock = threading.Lock()
        self._queries: OrderedDict[str, Query] = OrderedDict()
        self._tokens: dict[str, str] = {}

    def call(self, operation: str, request: dict) -> dict:
        """Answers one API call; ApiError for an error reply."""
        self.state.events.record("call", service="athena", operation=operation)
        fault = self.state.faults.take("throttle", operation)
        if fault:
            self.state.events.record("fault", detail="throttle", operation=operation)
            raise ApiError(fault.exception, "Rate exceeded")
        handler = {
            "StartQueryExecution": self.start_query_execution,
            "GetQueryExecution": self.get_query_execution,
            "BatchGetQueryExecution": self.batch_get_query_execution,
            "GetQueryResults": self.get_query_results,
            "StopQueryExecution": self.stop_query_execution,
            "GetWorkGroup": self.get_work_group,
            "ListWorkGroups": self.list_work_groups,
            "GetDataCatalog": self.get_data_catalog,
            "ListDataCatalogs": self.list_data_catalogs,
        }.get(operation)
        if handler is None:
            raise ApiError("UnknownOperationException", f"the Athena stand-in has no operation {operation}")
        return handler(request)

    # --- queries ---------------------------------------------------------------------------

    def start_query_execution(self, request: dict) -> dict:
        sql = request.get("QueryString")
        if not isinstance(sql, str) or not sql:
            raise invalid("1 validation error detected: Value null at 'queryString' failed to satisfy constraint: "
                          "Member must not be null")
        if len(sql.encode()) > MAX_QUERY_BYTES:
            raise invalid(
                "1 validation error detected: Value at 'queryString' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_QUERY_BYTES}"
            )
        token = request.get("ClientRequestToken")
        if token is not None and not 32 <= len(token) <= 128:
            raise invalid("1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: "
                          "Member must have length greater than or equal to 32")
        name = request.get("WorkGroup") or "primary"
        workgroup = WORKGROUPS.get(name)
        if workgroup is None:
            raise invalid(f"WorkGroup {name} is not found.")
        requested = (request.get("ResultConfiguration") or {}).get("OutputLocation")
        location = workgroup["location"] if workgroup["enforce"] or not requested else requested
        with self._lock:
            if token and token in self._tokens:
                return {"QueryExecutionId": self._tokens[token]}
            query = Query(
                id=str(uuid.uuid4()), sql=sql, context=request.get("QueryExecutionContext") or {},
                workgroup=name, output_location=location, statement_type=translate.statement_type(sql),
                submitted=time.time(),
            )
            self._queries[query.id] = query
            if token:
                self._tokens[token] = query.id
            while len(self._queries) > KEPT_QUERIES:
                self._queries.popitem(last=False)
        threading.Thread(target=self._work, args=(query,), daemon=True).start()
        return {"QueryExecutionId": query.id}

    def _find(self, query_id: str | None) -> Query:
        with self._lock:
            query = self._queries.get(query_id or "")
        if query is None:
            raise invalid(f"QueryExecution {query_id} was not found")
        return query

    def get_query_execution(self, request: dict) -> dict:
        return {"QueryExecution": self._find(request.get("QueryExecutionId")).describe()}

    def batch_get_query_execution(self, request: dict) -> dict:
        ids = request.get("QueryExecutionIds") or []
        if not 1 <= len(ids) <= 50:
            raise invalid("1 validation error detected: Value at 'queryExecutionIds' failed to satisfy constraint: "
                          "Member must have length less than or equal to 50")
        found, missing = [], []
        for query_id in ids:
            try:
                found.append(self._find(query_id).describe())
            except ApiError as error:
                missing.append({"QueryExecutionId": query_id, "ErrorCode": "INVALID_INPUT", "ErrorMessage": error.message})
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def get_query_results(self, request: dict) -> dict:
        query = self._find(request.get("QueryExecutionId"))
        if query.state in ("QUEUED", "RUNNING"):
            raise invalid(f"Query has not yet finished. Current state: {query.state}")
        if query.state != "SUCCEEDED":
            raise invalid(f"Query did not finish successfully. Final query state: {query.state}")
        page_size = request.get("MaxResults", 1000)
        if not isinstance(page_size, int) or not 1 <= page_size <= 1000:
            raise invalid("1 validation error detected: Value at 'maxResults' failed to satisfy constraint: "
                          "Member must have value less than or equal to 1000")
        start = self._offset(query, request.get("NextToken"))
        end = start + page_size
        reply = {
            "ResultSet": {"Rows": query.rows[start:end], "ResultSetMetadata": {"ColumnInfo": query.columns}},
            "UpdateCount": query.update_count or 0,
        }
        if end < len(query.rows):
            reply["NextToken"] = base64.urlsafe_b64encode(f"{query.id}:{end}".encode()).decode()
        return reply

    @staticmethod
    def _offset(query: Query, token: str | None) -> int:
        if not token:
            return 0
        try:
            query_id, _, offset = base64.urlsafe_b64decode(token.encode()).decode().rpartition(":")
            if query_id == query.id and offset.isdigit():
                return int(offset)
        except (ValueError, UnicodeDecodeError):
            pass
        raise invalid("The NextToken is not valid.")

    def stop_query_execution(self, request: dict) -> dict:
        query = self._find(request.get("QueryExecutionId"))
        self.state.events.record("stop", id=query.id, state=query.state)
        query.stopping.set()
        if query.statement:
            query.statement.cancel()
        query.finish("CANCELLED", "Query was cancelled by user")
        return {}

    def _work(self, query: Query) -> None:
        with query.lock:
            query.state, query.started = "RUNNING", time.time()
        error = None
        try:
            self._run(query)
            query.finish("SUCCEEDED")
        except trino_client.Cancelled:
            query.finish("CANCELLED", "Query was cancelled by user")
        except (trino_client.TrinoError, glue.GlueFailure) as failure:
            query.finish("FAILED", *athena_failure(failure))
        except Exception as failure:  # a bug of the stand-in, shown as Athena shows an internal error
            log.exception("query %s failed in the stand-in", query.id)
            error = repr(failure)
            query.finish("FAILED", f"GENERIC_INTERNAL_ERROR: the stand-in failed: {failure!r}",
                         {"ErrorCategory": 1, "ErrorType": 0, "Retryable": False, "ErrorMessage": error})
        self.state.events.record(
            "query", id=query.id, sql=query.sql, translated=query.steps, state=query.state,
            error=query.reason if query.state == "FAILED" else None, workgroup=query.workgroup,
            database=query.database, internal=error,
        )

    def _run(self, query: Query) -> None:
        slow = self.state.faults.take("slow", query.sql)
        if slow:
            self.state.events.record("fault", detail="slow", id=query.id, seconds=slow.seconds)
            if query.stopping.wait(slow.seconds):
                raise trino_client.Cancelled()
        if translate.writes(query.sql) and self.state.faults.take("iceberg_commit", query.sql):
            self.state.events.record("fault", detail="iceberg_commit", id=query.id)
            raise trino_client.TrinoError(
                "ICEBERG_COMMIT_ERROR", f"Failed to commit Iceberg update to table {translate.written_table(query.sql)}",
                "EXTERNAL")
        try:
            steps = translate.translate(query.sql, query.database, self.glue)
        except ValueError as error:
            raise trino_client.TrinoError("SYNTAX_ERROR", f"the stand-in could not read the statement: {error}") from None
        outcome = None
        for step in steps:
            if query.stopping.is_set():
                raise trino_client.Cancelled()
            query.steps.append(step.text())
            if step.glue:
                step.glue(self.glue)
                continue
            statement = trino_client.Statement(step.sql, query.catalog, query.database, step.session)
            query.statement = statement
            if query.stopping.is_set():  # a stop that came before the statement could be seen
                raise trino_client.Cancelled()
            try:
                outcome = statement.run()
            except trino_client.TrinoError as error:
                if error.name != step.ignore:
                    raise
                continue
            query.scanned_bytes += outcome.processed_bytes
            query.engine_ms += outcome.elapsed_ms
            if outcome.columns is not None and step.labels:
                for column, label in zip(outcome.columns, step.labels):
                    column["name"] = label
        if outcome is not None:
            self._keep(query, outcome)

    @staticmethod
    def _keep(query: Query, outcome: trino_client.Outcome) -> None:
        query.update_count = outcome.update_count
        if outcome.columns is None:
            return
        signatures = [c.get("typeSignature") or {"rawType": c["type"]} for c in outcome.columns]
        query.columns = [results.column_info(c) for c in outcome.columns]
        rows = [{"Data": [results.datum(v, s) for v, s in zip(row, signatures)]} for row in outcome.rows]
        if query.statement_type == "DML":
            rows.insert(0, {"Data": [{"VarCharValue": c["name"]} for c in outcome.columns]})
        query.rows = rows

    # --- workgroups and catalogs -----------------------------------------------------------

    def get_work_group(self, request: dict) -> dict:
        name = request.get("WorkGroup")
        workgroup = WORKGROUPS.get(name or "")
        if workgroup is None:
            raise invalid(f"WorkGroup {name} is not found.")
        return {"WorkGroup": {
            "Name": name,
            "State": "ENABLED",
            "Configuration": {
                "ResultConfiguration": {"OutputLocation": workgroup["location"]},
                "EnforceWorkGroupConfiguration": workgroup["enforce"],
                "PublishCloudWatchMetricsEnabled": False,
                "RequesterPaysEnabled": False,
                "EngineVersion": ENGINE,
            },
            "Description": "the Athena stand-in's workgroup",
            "CreationTime": CREATED,
        }}

    def list_work_groups(self, request: dict) -> dict:
        return {"WorkGroups": [
            {"Name": name, "State": "ENABLED", "Description": "the Athena stand-in's workgroup",
             "CreationTime": CREATED, "EngineVersion": ENGINE}
            for name in WORKGROUPS
        ]}

    def get_data_catalog(self, request: dict) -> dict:
        name = request.get("Name") or ""
        if name.lower() != "awsdatacatalog":
            raise invalid(f"Catalog {name} is not found.")
        return {"DataCatalog": {"Name": "AwsDataCatalog", "Type": "GLUE", "Parameters": {"catalog-id": "123456789012"}}}

    def list_data_catalogs(self, request: dict) -> dict:
        return {"DataCatalogsSummary": [{"CatalogName": "AwsDataCatalog", "Type": "GLUE"}]}
