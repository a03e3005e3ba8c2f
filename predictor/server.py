#!/usr/bin/env python3
"""Reference V2 inference server: the reference predictor's multiplier model over the Open Inference Protocol's
REST API (KServe V2). Every inference is reference.py's own `serve`; this file adds only HTTP.

    python3 predictor/server.py [--host 127.0.0.1] [--port 8080] [--model DIR] [--grpc-port 8081]

The model folder (--model, else ODAHU_MODEL_PATH, else /mnt/models, where KServe mounts a predictor's model) is
read once at start as reference.py reads it; an unusable one is one line on stderr and exit status 2, as is an
address that cannot be bound. --port 0 takes a free port. When it is listening the server logs one line
("... ready on http://HOST:PORT") on stderr; SIGTERM or SIGINT stops it (exit status 0).

    GET  /v2/health/live, /v2/health/ready                200 {"live": true} / {"ready": true}
    GET  /v2                                              200 {"name", "version", "extensions": ["binary_tensor_data"]}
    GET  /v2/models/NAME[/versions/V]                     200 {"name", "versions": [V], "platform", "inputs": [],
                                                              "outputs": []}   (any tensor is accepted: none listed)
    GET  /v2/models/NAME[/versions/V]/ready               200 {"name", "ready": true}
    POST /v2/models/NAME[/versions/V]/infer               200 the V2 response, or 400 reference.py's error response
                                                              {"error", "id"?} for a request it refuses

With --grpc-port N (8081 is KServe's and MLServer's; 0: a free one) it serves the same model over gRPC too
(grpc_server.py beside it; needs grpcio and the kit installed), and the ready line then ends with "and gRPC on
HOST:PORT".

An unknown model or version is 404 {"error"}; an unknown path 404; a known path with another method 405 (with
Allow). Bodies are application/json, but for the binary tensor data extension (Triton's, which KServe adopted):
an infer body may be a JSON header (its length in the Inference-Header-Content-Length header) followed by the
inputs marked {"parameters": {"binary_data_size": S}} as raw little-endian bytes, in order (BOOL one byte, BYTES
each a 4-byte little-endian length and its bytes); a request asking for binary outputs ("binary_data_output": true
in its parameters, or "binary_data": true in an output's) gets them the same way (application/octet-stream).
Binary data that does not add up (sizes beyond or short of the body, data beside a size, a size that is not
whole elements) is 400 {"error"}. A request body comes with a Content-Length or chunked; at most 1 GiB
(413). Connections are kept alive (HTTP/1.1); each is served on its own thread.
Only the standard library, numpy and PyYAML (through reference.py) are used.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import struct
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import numpy as np
import reference

NAME, VERSION = "odahu-reference", "1"
PLATFORM = "odahu-multiplier"
DEFAULT_MODEL = "/mnt/models"
MAX_BODY = 1 << 30
EXTENSIONS = ["binary_tensor_data"]
BINARY_HEADER = "Inference-Header-Content-Length"
SIZE = "binary_data_size"


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
        return 200, {"name": NAME, "version": VERSION, "extensions": list(EXTENSIONS)}
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


# ------------------------------------------------------------------------------ binary tensor data extension


class BinaryError(Exception):
    """A binary request whose bytes do not add up: 400."""


def split_binary(rest: bytes, sizes: list[tuple[str, int]]) -> list[bytes]:
    """``rest`` (the bytes after the JSON) cut into consecutive chunks of the ``(where, size)`` given, which
    must add up to it exactly."""
    chunks, at = [], 0
    for where, size in sizes:
        if at + size > len(rest):
            raise BinaryError(f"{where}/parameters/{SIZE}: {size} bytes from byte {at} run past the {len(rest)} "
                              f"bytes after the JSON")
        chunks.append(rest[at:at + size])
        at += size
    if at != len(rest):
        raise BinaryError(f"the binary inputs take {at} bytes; {len(rest)} follow the JSON")
    return chunks


def tensor_data(raw: bytes, datatype: object, where: str) -> list:
    """A binary input's elements as JSON values."""
    if datatype == "BYTES":
        values, at = [], 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise BinaryError(f"{where}: a BYTES element's length runs past its {len(raw)} bytes")
            (length,) = struct.unpack_from("<I", raw, at)
            if at + 4 + length > len(raw):
                raise BinaryError(f"{where}: a BYTES element runs past its {len(raw)} bytes")
            values.append(raw[at + 4:at + 4 + length].decode("utf-8", "replace"))
            at += 4 + length
        return values
    dtype = np.dtype(np.uint8) if datatype == "BOOL" else reference.DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise BinaryError(f"{where}/datatype: unknown datatype {str(datatype)[:40]!r}")
    if len(raw) % dtype.itemsize:
        raise BinaryError(f"{where}/parameters/{SIZE}: {len(raw)} bytes are not whole {datatype} elements")
    array = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    if datatype == "BOOL":
        if (array > 1).any():
            raise BinaryError(f"{where}: a BOOL byte is neither 0 nor 1")
        return array.astype(bool).tolist()
    if dtype.kind == "f" and not np.isfinite(array).all():
        raise BinaryError(f"{where}: an element is not finite")
    return array.astype(dtype).tolist()


def read_binary(body: bytes, header: str | None) -> tuple[bytes, tuple[bool, dict[str, bool]]]:
    """(the JSON request a request with binary inputs stands for, which outputs it asks as binary: (for all, by
    name)). A body that is not a JSON object with inputs is passed on as it is, for reference.serve to refuse."""
    length = len(body)
    if header is not None:
        if not header.strip().isdigit():
            raise BinaryError(f"{BINARY_HEADER}: not a number of bytes: {header[:40]!r}")
        length = int(header)
        if length > len(body):
            raise BinaryError(f"{BINARY_HEADER}: {length} is beyond the body's {len(body)} bytes")
    head, rest = body[:length], body[length:]
    try:
        doc, duplicate, huge = reference.parse(head)
    except reference.RequestError:
        return head, (False, {})
    if duplicate or huge or not isinstance(doc, dict):
        return head, (False, {})
    parameters = doc.get("parameters")
    every = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    by_name = {wanted["name"]: wanted["parameters"]["binary_data"] is True for wanted in doc.get("outputs") or []
               if isinstance(wanted, dict) and isinstance(wanted.get("name"), str)
               and isinstance(wanted.get("parameters"), dict) and "binary_data" in wanted["parameters"]}
    inputs = doc.get("inputs")
    marked = [(i, t) for i, t in enumerate(inputs if isinstance(inputs, list) else [])
              if isinstance(t, dict) and isinstance(t.get("parameters"), dict) and SIZE in t["parameters"]]
    sizes = []
    for i, tensor in marked:
        size = tensor["parameters"][SIZE]
        if type(size) is not int or size < 0:
            raise BinaryError(f"/inputs/{i}/parameters/{SIZE}: not a number of bytes")
        if "data" in tensor:
            raise BinaryError(f"/inputs/{i}: data beside {SIZE}")
        sizes.append((f"/inputs/{i}", size))
    for (i, tensor), chunk in zip(marked, split_binary(rest, sizes)):
        tensor["data"] = tensor_data(chunk, tensor.get("datatype"), f"/inputs/{i}")
        del tensor["parameters"][SIZE]
        if not tensor["parameters"]:
            del tensor["parameters"]
    return (json.dumps(doc).encode() if marked else head), (every, by_name)


def output_bytes(tensor: dict) -> bytes:
    """An output's data (flat, as reference.serve writes it) as binary data."""
    dtype = reference.DTYPES[tensor["datatype"]]
    return np.array(tensor["data"], dtype=dtype).astype(dtype.newbyteorder("<")).tobytes()


def write_binary(document: dict, wanted: tuple[bool, dict[str, bool]]) -> tuple[bytes, int] | None:
    """(body, its JSON part's length) of a response with the outputs ``wanted`` as binary data; None when no
    output is."""
    every, by_name = wanted
    outputs, chunks = [], []
    for tensor in document["outputs"]:
        if by_name.get(tensor["name"], every):
            raw = output_bytes(tensor)
            chunks.append(raw)
            tensor = {key: value for key, value in tensor.items() if key != "data"}
            tensor["parameters"] = {SIZE: len(raw)}
        outputs.append(tensor)
    if not chunks:
        return None
    head = reference.encode({**document, "outputs": outputs})
    return head + b"".join(chunks), len(head)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a Content-Length
    # One send per answer (http.server flushes after each request) and no Nagle delay: written as status line,
    # headers and body in separate sends, an answer waits for the client's delayed ACK (40 ms a request).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server_version = f"{NAME}/{VERSION}"
    server: Server
    #: the request's binary outputs asked, (for all, by name); None: a plain JSON request
    binary: tuple[bool, dict[str, bool]] | None = None

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_"):  # every method is routed (http.server answers 501 for a do_X it lacks)
            return self.handle_any
        raise AttributeError(name)

    def handle_any(self) -> None:
        self.binary = None
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
        header = self.headers.get(BINARY_HEADER)
        if routed[0] == "infer" and (header is not None or b"binary_data" in body):
            try:
                body, self.binary = read_binary(body, header)
            except BinaryError as e:
                self.reply(400, {"error": f"binary data: {reference.one_line(e)}"})
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
        written = write_binary(document, self.binary) if status == 200 and self.binary and "outputs" in document else None
        content_type = "application/json"
        if written is not None:
            body, length = written
            content_type = "application/octet-stream"
            headers = [*(headers or []), (BINARY_HEADER, str(length))]
        else:
            body = reference.encode(document)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
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
