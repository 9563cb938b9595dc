"""HTTP front of the sandbox: a threaded HTTP/1.1 server with keep-alive.

Order of work per API request: number it (running due scheduled mutations), rate limit, fault
decision, API key, answer, latency. Admin requests (``/_sandbox/...``) skip all of it.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cc_sandbox import admin
from cc_sandbox.app import DENIED, Answer, App, error, route
from cc_sandbox.faults import choose_fault, latency_seconds, retry_after

_HTML_ERROR = (
    b"<!DOCTYPE html><html><head><title>Runtime Error</title></head><body>"
    b"<h1>Server Error in '/CCSWeb' Application.</h1><h2><i>Runtime Error</i></h2>"
    b"<p>An application error occurred on the server.</p></body></html>"
)
_GATEWAY = {
    502: b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
    b"</body></html>",
    503: b"<html><head><title>503 Service Unavailable</title></head><body>"
    b"<h1>Service Unavailable</h1></body></html>",
}


class SandboxHTTPServer(ThreadingHTTPServer):
    """A threaded server that knows its :class:`App`."""

    daemon_threads = True
    allow_reuse_address = True
    # Benchmarks open many connections at once; the default backlog of 5 refuses some.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App) -> None:
        super().__init__(address, Handler)
        self.app = app

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """Stay quiet when a client drops its keep-alive connection; report anything else."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class Handler(BaseHTTPRequestHandler):
    """One connection; several requests when the client keeps it alive."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for the
    # client's delayed ACK (40 ms a response).
    disable_nagle_algorithm = True
    server: SandboxHTTPServer
    server_version = "Microsoft-IIS/10.0"

    def version_string(self) -> str:
        """The ``Server`` header: what a CC tenant behind IIS sends."""
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        """Stay quiet: a benchmark makes millions of requests."""

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        """Serve a GET."""
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        """Serve a POST (admin API; the CC endpoints here are read-only)."""
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        """Refuse a PUT."""
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        """Refuse a DELETE."""
        self._dispatch("DELETE")

    # ------------------------------------------------------------------------------ dispatch

    def _read_body(self) -> bytes:
        # Always drain the body, or the next request on a kept-alive connection is garbage.
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        path = url.path
        if path.lower().startswith("/ccsweb/"):
            path = path[len("/ccsweb") :]
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            status, payload = admin.handle(self.server.app, method, path, body)
            self._send(Answer(status, json.dumps(payload).encode()))
            return
        self._api(method, path, url)

    def _api(self, method: str, path: str, url: Any) -> None:
        app = self.server.app
        index = app.next_request()
        spec, parent_id = route(path)
        name = spec.name if spec is not None else "_unknown"
        cfg = app.config
        bucket = app.bucket
        if bucket is not None:
            wait = bucket.take()
            if wait:
                seconds = retry_after(wait)
                answer = error(
                    429, f"Rate limit exceeded. Retry after {seconds} seconds.",
                    (("Retry-After", str(seconds)),),
                )
                app.stats.record(name, 429, len(answer.body), None)
                self._send(answer)
                return
        fault = choose_fault(app.rates, app.tenant.seed, index) if app.rates else None
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        link_base = f"http://{host}{url.path}"
        answer = self._answer(app, method, spec, parent_id, url, link_base)
        if fault in ("http_500", "http_502", "http_503", "html"):
            answer = _fault_answer(fault)
        delay = latency_seconds(
            app.tenant.seed, index, cfg.latency_ms, cfg.jitter_ms, cfg.skip_latency_ms, answer.skip
        )
        if fault == "slow":
            delay += cfg.slow_seconds
        if delay > 0:
            time.sleep(delay)  # in this handler's thread: other clients are not held up
        # Counted before sending: a client that reads the stats after its answer sees itself.
        if fault == "reset":
            app.stats.record(name, None, 0, fault)
            self._reset()
            return
        sent = len(answer.body) // 2 if fault == "truncated" else len(answer.body)
        app.stats.record(name, answer.status, sent, fault)
        self._send(answer, truncate=fault == "truncated")

    def _answer(
        self, app: App, method: str, spec: Any, parent_id: int | None, url: Any, link_base: str
    ) -> Answer:
        if not app.authorised(self.headers.get(app.config.api_key_header)):
            return DENIED
        if spec is None:
            return error(404, f"No HTTP resource was found that matches the request URI "
                              f"'{link_base}'.")
        if method != "GET":
            return error(405, f"The requested resource does not support http method '{method}'.")
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        answer = app.answer(spec, parent_id, params, link_base)
        if app.config.pretty and answer.status == 200:
            body = json.dumps(json.loads(answer.body), indent=2, ensure_ascii=False).encode()
            answer = dataclasses.replace(answer, body=body)
        return answer

    # ------------------------------------------------------------------------------- writing

    def _send(self, answer: Answer, truncate: bool = False) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for key, value in answer.headers:
            self.send_header(key, value)
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if truncate:
            # Headers promise the whole body; the connection dies halfway, as behind a bad proxy.
            self.wfile.write(answer.body[: len(answer.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self._reset()
        else:
            self.wfile.write(answer.body)

    def _reset(self) -> None:
        """Drop the connection with a TCP RST and no answer."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.connection.close()
        except OSError:
            pass


def _fault_answer(kind: str) -> Answer:
    if kind == "http_500":
        return error(500, "An error has occurred.")
    if kind == "html":
        return Answer(200, _HTML_ERROR, content_type="text/html; charset=utf-8")
    status = 502 if kind == "http_502" else 503
    return Answer(status, _GATEWAY[status], content_type="text/html")
