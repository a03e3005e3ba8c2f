#!/usr/bin/env python3
"""Reference V2 inference server: the reference predictor's multiplier model over the Open Inference Protocol's
REST API (KServe V2). Every inference is reference.py's own `serve`; this file adds only HTTP.

    python3 predictor/server.py [--host 127.0.0.1] [--port 8080] [--model DIR] [--grpc-port 8081]

The model folder (--model, else ODAHU_MODEL_PATH, else /mnt/models, where KServe mounts a predictor's model) is
read once at start as reference.py reads it; an unusable one is one line on stderr and exit status 2, as is an
address that cannot be bound. --port 0 takes a free port. When it is listening the server logs one line
("... ready on http://HOST:PORT") on stderr; SIGTERM or SIGINT stops it (exit status 0).

    GET  /v2/health/live, /v2/health/ready                200 {"live": true} / {"ready": true}
    GET  /v2                                              200 {"name", "version", "extensions": []}
    GET  /v2/models/NAME[/versions/V]                     200 {"name", "versions": [V], "platform", "inputs": [],
                                                              "outputs": []}   (any tensor is accepted: none listed)
    GET  /v2/models/NAME[/versions/V]/ready               200 {"name", "ready": true}
    POST /v2/models/NAME[/versions/V]/infer               200 the V2 response, or 400 reference.py's error response
                                                              {"error", "id"?} for a request it refuses

With --grpc-port N (8081 is KServe's and MLServer's; 0: a free one) it serves the same model over gRPC too
(grpc_server.py beside it; needs grpcio and the kit installed), and the ready line then ends with "and gRPC on
HOST:PORT".

An unknown model or version is 404 {"error"}; an unknown path 404; a known path with another method 405 (with
Allow). Bodies are application/json. A request body comes with a Content-Length or chunked; at most 1 GiB
(413). Connections are kept alive (HTTP/1.1); each is served on its own thread.
Only the standard library, numpy and PyYAML (through reference.py) are used.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import reference

NAME, VERSION = "odahu-reference", "1"
PLATFORM = "odahu-multiplier"
DEFAULT_MODEL = "/mnt/models"
MAX_BODY = 1 << 30


class Server(ThreadingHTTPServer):
    """The HTTP server holding the model: (multiplier, name, version)."""

    daemon_threads = True  # an idle kept-alive connection must not hold up the stop

    def __init__(self, address: tuple[str, int], model: tuple[int, str, str]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.model = model
        super().__init__(address, Handler)


def route(path: str) -> tuple[str, str | None, str | None] | None:
    """(what, model name, model version) that a request path names, or None for no route. ``what`` is one of
    server, live, ready, model, model-ready, infer."""
    parts = [unquote(part) for part in urlsplit(path).path.split("/")]
    if parts[:2] != ["", "v2"]:
        return None
    rest = parts[2:]
    fixed = {(): "server", ("health", "live"): "live", ("health", "ready"): "ready"}.get(tuple(rest))
    if fixed:
        return fixed, None, None
    if len(rest) < 2 or rest[0] != "models":
        return None
    name, version, rest = rest[1], None, rest[2:]
    if len(rest) >= 2 and rest[0] == "versions":
        version, rest = rest[1], rest[2:]
    what = {(): "model", ("ready",): "model-ready", ("infer",): "infer"}.get(tuple(rest))
    return (what, name, version) if what else None


def answer(what: str, name: str | None, version: str | None, body: bytes,
           model: tuple[int, str, str]) -> tuple[int, dict]:
    """(HTTP status, JSON document) for a routed request, its method already the right one."""
    multiplier, model_name, model_version = model
    if what == "server":
        return 200, {"name": NAME, "version": VERSION, "extensions": []}
    if what in ("live", "ready"):
        return 200, {what: True}
    if name != model_name:
        return 404, {"error": f"model {name!r} not found (this server serves {model_name!r})"}
    if version is not None and version != model_version:
        return 404, {"error": f"model {name!r} has no version {version!r} (it has {model_version!r})"}
    if what == "model":
        return 200, {"name": model_name, "versions": [model_version], "platform": PLATFORM,
                     "inputs": [], "outputs": []}
    if what == "model-ready":
        return 200, {"name": model_name, "ready": True}
    response = reference.serve(body, multiplier, model_name, model_version)
    return (400 if "error" in response else 200), response


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a Content-Length
    # One send per answer (http.server flushes after each request) and no Nagle delay: written as status line,
    # headers and body in separate sends, an answer waits for the client's delayed ACK (40 ms a request).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server_version = f"{NAME}/{VERSION}"
    server: Server

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_"):  # every method is routed (http.server answers 501 for a do_X it lacks)
            return self.handle_any
        raise AttributeError(name)

    def handle_any(self) -> None:
        body = self.read_body()
        if body is None:
            return
        routed = route(self.path)
        if routed is None:
            self.reply(404, {"error": f"no such path: {self.path[:200]}"})
            return
        allowed = "POST" if routed[0] == "infer" else "GET"
        if self.command != allowed:
            self.reply(405, {"error": f"{self.command} is not allowed here (only {allowed})"}, [("Allow", allowed)])
            return
        try:
            status, document = answer(*routed, body, self.server.model)
        except Exception as e:  # a bug answers 500 and the server goes on
            status, document = 500, {"error": f"internal error: {type(e).__name__}: {reference.one_line(e)}"}
        self.reply(status, document)

    def read_body(self) -> bytes | None:
        """The request's body (empty when it has none); None when it cannot be read (answered, connection closed)."""
        encoding = self.headers.get("Transfer-Encoding", "").strip().lower()
        if encoding == "chunked":
            return self.read_chunked()
        if encoding:
            self.send_error(501, f"Transfer-Encoding {encoding[:40]!r} is not supported (only chunked)")
            return None
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit():
            self.send_error(400, f"Content-Length is not a number: {length[:40]!r}")
            return None
        if int(length) > MAX_BODY:
            self.send_error(413, f"request body over {MAX_BODY} bytes")
            return None
        return self.rfile.read(int(length))

    def read_chunked(self) -> bytes | None:
        """A chunked body (RFC 9112 7.1: chunk sizes in hex, extensions and trailers ignored)."""
        chunks, total = [], 0
        while True:
            size = self.rfile.readline(1024).split(b";")[0].strip()
            if not size or not all(c in b"0123456789abcdefABCDEF" for c in size):
                self.send_error(400, "malformed chunked body: a chunk size is not hexadecimal")
                return None
            total += int(size, 16)
            if total > MAX_BODY:
                self.send_error(413, f"request body over {MAX_BODY} bytes")
                return None
            if int(size, 16) == 0:
                break
            chunks.append(self.rfile.read(int(size, 16)))
            self.rfile.readline(1024)  # the CRLF after the chunk
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):  # trailers, up to the empty line
            pass
        return b"".join(chunks)

    def reply(self, status: int, document: dict, headers: list[tuple[str, str]] | None = None) -> None:
        body = reference.encode(document)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers or []:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A refusal by http.server itself (bad request line, headers too long) or by read_body: JSON too, and
        the connection closed (the rest of what the client sent cannot be trusted)."""
        self.close_connection = True
        self.reply(code, {"error": message or HTTPStatus(code).phrase}, [("Connection", "close")])

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # no line per request: the ready line and errors only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="server.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: a free one)")
    parser.add_argument("--model", help=f"model folder (default: $ODAHU_MODEL_PATH, else {DEFAULT_MODEL})")
    parser.add_argument("--grpc-port", type=int, default=None,
                        help="serve gRPC too, on this port (0: a free one; KServe's is 8081)")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), reference.MAX_DEPTH + 500))  # as reference.main does
    folder = args.model or os.environ.get("ODAHU_MODEL_PATH") or DEFAULT_MODEL
    try:
        model = reference.load_model(folder)
    except reference.ConfigError as e:
        print(f"server: {reference.one_line(e)}", file=sys.stderr)
        return 2
    try:
        httpd = Server((args.host, args.port), model)
    except (OSError, OverflowError) as e:
        print(f"server: cannot listen on {args.host}:{args.port}: {reference.one_line(e)}", file=sys.stderr)
        return 2

    shown = f"[{args.host}]" if ":" in args.host else args.host
    grpc_server, also = None, ""
    if args.grpc_port is not None:
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # gRPC's own log lines: the server says what went wrong
        try:
            import grpc_server as grpc_half

            grpc_server, grpc_port = grpc_half.start(args.host, args.grpc_port, model, NAME, VERSION, PLATFORM)
        except ImportError as e:
            httpd.server_close()
            print(f"server: --grpc-port needs grpcio, protobuf and the kit installed ({reference.one_line(e)})",
                  file=sys.stderr)
            return 2
        except OSError as e:
            httpd.server_close()
            print(f"server: {reference.one_line(e)}", file=sys.stderr)
            return 2
        also = f" and gRPC on {shown}:{grpc_port}"

    def stop(signum: int, frame: object) -> None:  # shutdown() waits for serve_forever: not on its own thread
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"server: model {model[1]} version {model[2]} ready on http://{shown}:{httpd.server_port}{also}",
          file=sys.stderr, flush=True)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
        if grpc_server is not None:
            grpc_server.stop(1.0).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
