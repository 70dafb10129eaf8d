"""The HTTP server on the Data API's port: `POST /` with `X-Amz-Target: RedshiftData.<Op>` goes
to the Data API, and `/_standin/…` is the control API tests use to inject faults, read what
happened and change settings:

    POST   /_standin/faults    {"kind", "count", "match", "transport", "seconds"}: adds a fault
    GET    /_standin/faults    the faults, with what remains of their counts
    DELETE /_standin/faults    clears them
    GET    /_standin/events    what happened, oldest first
    DELETE /_standin/events    clears the events (and so the call counts)
    GET    /_standin/calls     Data API calls per operation since the events were cleared
    POST   /_standin/settings  {"page_rows": n}
    GET    /_standin/health    200 when the wire front, the Data API and PostgreSQL answer
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import data_api
import shared

log = logging.getLogger("standin.http")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # SDK clients open connections in bursts

    def __init__(self, port: int, state: shared.Shared, wire_port: int, version: str):
        super().__init__(("127.0.0.1", port), Handler)
        self.state = state
        self.api = data_api.DataApi(state)
        self.wire_port = wire_port
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
        operation = self.headers.get("X-Amz-Target", "").removeprefix("RedshiftData.")
        try:
            request = json.loads(body or b"{}")
            reply = self.server.api.call(operation, request)
            self._reply(200, reply, "application/x-amz-json-1.1")
        except data_api.ApiError as error:
            self._reply(400, error.body(), "application/x-amz-json-1.1")
        except json.JSONDecodeError:
            self._reply(400, {"__type": "SerializationException", "message": "the body is not JSON"},
                        "application/x-amz-json-1.1")
        except Exception:
            log.exception("%s failed", operation)
            self._reply(500, {"__type": "InternalServerException", "message": "the stand-in failed; see its log"},
                        "application/x-amz-json-1.1")

    def _control(self, method: str) -> None:
        state = self.server.state
        resource = self.path.removeprefix("/_standin/").split("?")[0]
        try:
            body = json.loads(self._body() or b"{}")
            match method, resource:
                case "POST", "faults":
                    self._reply(200, state.faults.add(body).describe())
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
                case "POST", "settings":
                    page_rows = body.get("page_rows")
                    if not isinstance(page_rows, int) or page_rows < 1:
                        raise ValueError("page_rows must be a positive integer")
                    state.settings.page_rows = page_rows
                    self._reply(200, {"page_rows": page_rows})
                case "GET", "health":
                    health = {
                        "wire": self._wire_answers(),
                        "data_api": True,
                        "postgres": shared.postgres_reachable(),
                        "version": self.server.version,
                    }
                    self._reply(200 if health["wire"] and health["postgres"] else 503, health)
                case _:
                    self._reply(404, {"error": f"no {method} /_standin/{resource}"})
        except (ValueError, AttributeError) as error:
            self._reply(400, {"error": str(error)})

    def _wire_answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.server.wire_port), timeout=2).close()
            return True
        except OSError:
            return False

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, document, content_type: str = "application/json") -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        log.debug(format, *args)
