"""The HTTP server on the Athena front's port. `POST /` with `X-Amz-Target: AmazonAthena.<Op>`
goes to the Athena API; with `X-Amz-Target: AWSGlue.<Op>` it is passed unchanged to moto's
Glue (so strata's Glue client can use this port too and its calls are counted); and
`/_standin/…` is the control API tests use to inject faults and read what happened:

    POST   /_standin/faults    {"kind", "count", "match", "seconds", "exception"}: adds a fault
    GET    /_standin/faults    the faults, with what remains of their counts
    DELETE /_standin/faults    clears them
    GET    /_standin/events    what happened, oldest first
    DELETE /_standin/events    clears the events (and so the call counts)
    GET    /_standin/calls     API calls per operation since the events were cleared
    GET    /_standin/health    200 when the front is up and Trino and moto answer
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import athena_api
import glue
import shared
import trino_client

log = logging.getLogger("standin.http")

JSON_11 = "application/x-amz-json-1.1"
# The request headers moto's Glue reads; the rest (Host, Connection, …) are this hop's.
_FORWARDED = ("Content-Type", "X-Amz-Target", "Authorization", "X-Amz-Date", "X-Amz-Security-Token", "User-Agent")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # SDK clients open connections in bursts

    def __init__(self, port: int, state: shared.Shared, version: str):
        super().__init__(("127.0.0.1", port), Handler)
        self.state = state
        self.api = athena_api.AthenaApi(state)
        self.version = version


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def do_GET(self) -> None:
        self._control("GET")

    def do_DELETE(self) -> None:
        self._control("DELETE")

    def do_POST(self) -> None:
        if self.path.startswith("/_standin/"):
            self._control("POST")
            return
        body = self._body()
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith("AWSGlue."):
            self._glue(target.removeprefix("AWSGlue."), body)
            return
        operation = target.removeprefix("AmazonAthena.")
        try:
            request = json.loads(body or b"{}")
            self._reply(200, self.server.api.call(operation, request), JSON_11)
        except athena_api.ApiError as error:
            self._reply(400, error.body(), JSON_11)
        except json.JSONDecodeError:
            self._reply(400, {"__type": "SerializationException", "Message": "the body is not JSON"}, JSON_11)
        except Exception:
            log.exception("%s failed", operation)
            self._reply(500, {"__type": "InternalServerException", "Message": "the stand-in failed; see its log"}, JSON_11)

    def _glue(self, operation: str, body: bytes) -> None:
        try:
            request = json.loads(body or b"{}")
        except json.JSONDecodeError:
            request = {}
        table_input = request.get("TableInput") or {}
        database_input = request.get("DatabaseInput") or {}
        if "Database" in operation:
            database, table = request.get("Name") or database_input.get("Name"), None
        else:
            database = request.get("DatabaseName")
            table = request.get("TableName") or request.get("Name") or table_input.get("Name")
        self.server.state.events.record("call", service="glue", operation=operation,
                                        DatabaseName=database, TableName=table)
        headers = {k: self.headers[k] for k in _FORWARDED if self.headers.get(k)}
        forward = urllib.request.Request(f"{glue.MOTO_URL}/", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(forward, timeout=60) as reply:
                status, answer, kind = reply.status, reply.read(), reply.headers.get("Content-Type", JSON_11)
        except urllib.error.HTTPError as error:
            status, answer, kind = error.code, error.read(), error.headers.get("Content-Type", JSON_11)
        except OSError as error:
            self._reply(503, {"__type": "ServiceUnavailableException", "Message": f"moto did not answer: {error}"}, JSON_11)
            return
        self._send(status, answer, kind)

    def _control(self, method: str) -> None:
        state = self.server.state
        resource = self.path.removeprefix("/_standin/").split("?")[0]
        try:
            body = json.loads(self._body() or b"{}")
            match method, resource:
                case "POST", "faults":
                    fault = state.faults.add(body)
                    self._reply(200, fault.describe())
                case "GET", "faults":
                    self._reply(200, state.faults.list())
                case "DELETE", "faults":
                    state.faults.clear()
                    self._reply(200, {})
                case "GET", "events":
                    self._reply(200, state.events.list())
                case "DELETE", "events":
                    state.events.clear()
                    self._reply(200, {})
                case "GET", "calls":
                    self._reply(200, state.events.calls())
                case "GET", "health":
                    health = {"front": True, "trino": trino_client.answers(), "moto": _moto_answers(),
                              "version": self.server.version}
                    self._reply(200 if health["trino"] and health["moto"] else 503, health)
                case _:
                    self._reply(404, {"error": f"no {method} /_standin/{resource}"})
        except (ValueError, AttributeError) as error:
            self._reply(400, {"error": str(error)})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, document, content_type: str = "application/json") -> None:
        self._send(status, json.dumps(document).encode(), content_type)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        log.debug(format, *args)


def _moto_answers() -> bool:
    try:
        urllib.request.urlopen(f"{glue.MOTO_URL}/moto-api/", timeout=2).close()
        return True
    except urllib.error.HTTPError:
        return True  # an answer all the same
    except OSError:
        return False
