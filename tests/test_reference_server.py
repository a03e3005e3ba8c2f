"""predictor/server.py, the reference predictor over the Open Inference Protocol's REST API, run as a subprocess
on a free port (``--port 0``; the ready line names it) with a temporary model folder and talked to with the
standard library: every route's exact status and body, the kit's golden requests answered as the goldens say
(judged by the kit's comparator; an error golden must be a 400 error body), concurrent requests answered exactly as
one at a time, the failures at start, and a clean stop on SIGTERM.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conformance.odahu.model import load_model
from conformance.oracle.compare import compare, explain
from conformance.oracle.sources import expected_of
from conformance.paths import kit_fixtures, kit_model
from conformance.online.binary import every_datatype_request
from conformance.suite.shared import GOOD
from conformance.v2 import binary
from conformance.v2.documents import ERROR, REQUEST, RESPONSE, inspect, load, parse
from peers.servers import Server as PeerServer
from peers.servers import Reply, call, listening_addresses

SERVER = Path(__file__).resolve().parents[1] / "predictor" / "server.py"
PROJECT_YAML = 'model:\n  name: multiplier\n  version: "1"\n'
READY = re.compile(r"^server: model multiplier version 1 ready on http://127\.0\.0\.1:(\d+)$")
START_TIMEOUT = 30.0
INFER = "/v2/models/multiplier/infer"


@dataclass
class Running:
    process: subprocess.Popen
    port: int
    lines: queue.Queue  # the server's stderr lines after the ready line
    ready_seconds: float


def make_model(folder: Path, multiplier: str | None = "2\n", project: str | None = PROJECT_YAML) -> Path:
    folder.mkdir()
    if multiplier is not None:
        (folder / "multiplier.txt").write_text(multiplier)
    if project is not None:
        (folder / "odahuflow.project.yaml").write_text(project)
    return folder


def start(model: Path, program: list[str] | None = None, probe: str = "/v2/health/ready") -> Running:
    """The server (or ``program``: a script and its first arguments, run as server.py is) on a free port, once its
    ready line is out and ``probe`` answers 200."""
    began = time.monotonic()
    env = {key: value for key, value in os.environ.items() if key != "ODAHU_MODEL_PATH"}
    argv = [sys.executable, *(program or [str(SERVER)]), "--port", "0", "--model", str(model)]
    process = subprocess.Popen(argv, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    lines: queue.Queue = queue.Queue()
    stderr = process.stderr
    assert stderr is not None

    def drain() -> None:  # the server's stderr read to its end, so that the pipe never fills
        for line in stderr:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=drain, daemon=True).start()
    try:
        line = lines.get(timeout=START_TIMEOUT)
        match = READY.match(line)
        assert match, f"not the ready line: {line!r}"
        port = int(match.group(1))
        while call(port, "GET", probe, timeout=2).status != 200:
            assert time.monotonic() - began < START_TIMEOUT, "not ready in time"
            time.sleep(0.05)
    except BaseException:
        stop(process)
        raise
    return Running(process, port, lines, time.monotonic() - began)


def stop(process: subprocess.Popen, grace: float = 5.0) -> float:
    """SIGTERM, then SIGKILL after ``grace`` seconds; the seconds the server took to exit on SIGTERM."""
    began = time.monotonic()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return time.monotonic() - began


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start(make_model(tmp_path_factory.mktemp("served") / "model"))
    yield running
    stop(running.process)


def post(port: int, body: bytes | dict, path: str = INFER) -> Reply:
    return call(port, "POST", path, body)


# ---------------------------------------------------------------------------------- binary tensor data


def post_binary(port: int, body: bytes, length: int | str | None) -> tuple[int, str | None, str | None, bytes]:
    """(status, Content-Type, Inference-Header-Content-Length, body) of a binary infer request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/octet-stream"}
        if length is not None:
            headers[binary.HEADER] = str(length)
        connection.request("POST", INFER, body=body, headers=headers)
        response = connection.getresponse()
        return (response.status, response.getheader("Content-Type"), response.getheader(binary.HEADER),
                response.read())
    finally:
        connection.close()


def test_binary_tensors_get_the_json_answers(server):
    """Each good request and the request of every datatype (FP16 among them), sent with binary inputs and binary
    outputs asked, get the JSON answer's outputs bit for bit, every one binary, as application/octet-stream with
    the JSON part's length in Inference-Header-Content-Length."""
    for name, raw in [*GOOD, every_datatype_request()]:
        want = parse(post(server.port, raw).body, RESPONSE, name)
        body, length = binary.encode_request(json.loads(raw))
        status, content_type, header, answer = post_binary(server.port, body, length)
        assert (status, content_type) == (200, "application/octet-stream"), answer[:300]
        decoded = binary.decode_response(answer, header)
        assert decoded.problems == [] and decoded.binary == [t.name for t in want.tensors]
        got = inspect(decoded.document, RESPONSE, name)
        assert got.findings == [] and len(got.tensors) == len(want.tensors) > 0
        for mine, theirs in zip(got.tensors, want.tensors):
            assert (mine.name, mine.datatype, mine.shape) == (theirs.name, theirs.datatype, theirs.shape)
            assert np.asarray(mine.values).tobytes() == np.asarray(theirs.values).tobytes()


def test_binary_outputs_are_given_as_asked(server):
    """Per output: an output asked "binary_data": false comes as JSON beside a binary one; binary outputs asked
    of a plain JSON request come binary; a request that asks none is answered in JSON."""
    tensors = [{"name": "a", "shape": [2], "datatype": "INT16", "data": [1, -2]},
               {"name": "b", "shape": [1], "datatype": "FP16", "data": [0.5]}]
    mixed = {"inputs": tensors, "outputs": [{"name": "b", "parameters": {"binary_data": True}},
                                            {"name": "a", "parameters": {"binary_data": False}}]}
    status, _, header, answer = post_binary(server.port, json.dumps(mixed).encode(), None)
    decoded = binary.decode_response(answer, header)
    assert status == 200 and decoded.problems == [] and decoded.binary == ["b"]
    assert [(t["name"], t["data"]) for t in decoded.document["outputs"]] == [("b", [1.0]), ("a", [2, -4])]
    assert answer[int(header):] == np.float16(1.0).tobytes()
    every = {"inputs": tensors, "parameters": {"binary_data_output": True}}
    status, _, header, answer = post_binary(server.port, json.dumps(every).encode(), None)
    assert status == 200 and binary.decode_response(answer, header).binary == ["a", "b"]
    status, content_type, header, answer = post_binary(server.port, json.dumps({"inputs": tensors}).encode(), None)
    assert (status, content_type, header) == (200, "application/json", None)


BINARY_INT32 = {"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "parameters": {"binary_data_size": 8}}]}


@pytest.mark.parametrize("head, rest, length, error", [
    (BINARY_INT32, b"\x00" * 4, "auto", "binary data: /inputs/0/parameters/binary_data_size: 8 bytes from byte 0 "
                                        "run past the 4 bytes after the JSON"),
    (BINARY_INT32, b"\x00" * 12, "auto", "binary data: the binary inputs take 8 bytes; 12 follow the JSON"),
    (BINARY_INT32, b"\x00" * 8, "x", "binary data: Inference-Header-Content-Length: not a number of bytes: 'x'"),
    (BINARY_INT32, b"\x00" * 8, 10**6, "binary data: Inference-Header-Content-Length: 1000000 is beyond the body's"),
    ({"inputs": [{**BINARY_INT32["inputs"][0], "data": [1, 2]}]}, b"\x00" * 8, "auto",
     "binary data: /inputs/0: data beside binary_data_size"),
    ({"inputs": [{**BINARY_INT32["inputs"][0], "parameters": {"binary_data_size": 6}}]}, b"\x00" * 6, "auto",
     "binary data: /inputs/0/parameters/binary_data_size: 6 bytes are not whole INT32 elements"),
    ({"inputs": [{**BINARY_INT32["inputs"][0], "parameters": {"binary_data_size": 4}}]}, b"\x00" * 4, "auto",
     "/inputs/0/data: 1 elements, shape [2] needs 2"),  # whole elements, too few: reference.py's own refusal
    ({"inputs": [{**BINARY_INT32["inputs"][0], "datatype": "BOOL", "parameters": {"binary_data_size": 2}}]},
     b"\x01\x00", "auto", "/inputs/0/datatype: BOOL is not supported by the multiplier model"),
])
def test_binary_data_that_does_not_add_up_is_400(server, head, rest, length, error):
    text = json.dumps(head).encode()
    status, content_type, _, answer = post_binary(server.port, text + rest, len(text) if length == "auto" else length)
    assert (status, content_type) == (400, "application/json")
    assert json.loads(answer)["error"].startswith(error), answer


# ------------------------------------------------------------------------------------------- routes


@pytest.mark.parametrize("path, document", [
    ("/v2/health/live", {"live": True}),
    ("/v2/health/ready", {"ready": True}),
    ("/v2", {"name": "odahu-reference", "version": "1", "extensions": ["binary_tensor_data"]}),
    ("/v2/models/multiplier", {"name": "multiplier", "versions": ["1"], "platform": "odahu-multiplier",
                               "inputs": [], "outputs": []}),
    ("/v2/models/multiplier/versions/1", {"name": "multiplier", "versions": ["1"], "platform": "odahu-multiplier",
                                          "inputs": [], "outputs": []}),
    ("/v2/models/multiplier/ready", {"name": "multiplier", "ready": True}),
    ("/v2/models/multiplier/versions/1/ready", {"name": "multiplier", "ready": True}),
])
def test_get_routes(server, path, document):
    reply = call(server.port, "GET", path)
    assert (reply.status, reply.content_type, reply.document) == (200, "application/json", document)


@pytest.mark.parametrize("path", [INFER, "/v2/models/multiplier/versions/1/infer"])
def test_infer_answers_the_v2_response(server, path):
    request = {"id": "r1", "inputs": [{"name": "a", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2], [3, -4]]},
                                      {"name": "b", "shape": [1], "datatype": "FP64", "data": [0.5]}],
               "outputs": [{"name": "b"}]}
    reply = post(server.port, request, path)
    assert (reply.status, reply.content_type) == (200, "application/json")
    assert reply.document == {"model_name": "multiplier", "model_version": "1", "id": "r1",
                              "outputs": [{"name": "b", "datatype": "FP64", "shape": [1], "data": [1.0]}]}


@pytest.mark.parametrize("body, error", [
    (b"not json", "request is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    (b"", "request is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    ({"id": "x"}, "/inputs: must be a non-empty array of tensors"),
    ({"id": "x", "inputs": [{"name": "a", "shape": [1], "datatype": "INT33", "data": [1]}]},
     "/inputs/0/datatype: unknown datatype 'INT33'"),
    ({"id": "x", "inputs": [{"name": "a", "shape": [3], "datatype": "INT32", "data": [1, 2]}]},
     "/inputs/0/data: 2 elements, shape [3] needs 3"),
    ({"id": "x", "inputs": [{"name": "a", "shape": [1], "datatype": "BOOL", "data": [True]}]},
     "/inputs/0/datatype: BOOL is not supported by the multiplier model"),
    ({"id": "x", "inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["x"]}]},
     "/inputs/0/datatype: BYTES is not supported by the multiplier model"),
    ({"id": "x", "inputs": [{"name": "a", "shape": [1], "datatype": "FP16", "data": [60000.0]}]},
     "output 'a': a product overflows FP16"),
    ({"id": "x", "inputs": [{"name": "a", "shape": [1], "datatype": "INT8", "data": [1]}], "outputs": [{"name": "z"}]},
     "/outputs/0/name: 'z' is not an input tensor, or is asked twice"),
    (b"[" * 1100 + b"]" * 1100, "request is nested deeper than 1024 levels"),  # the recursion limit is raised
    (b"[" * 5000 + b"]" * 5000, "request is not valid JSON: maximum recursion depth exceeded while decoding a "
                                "JSON array from a unicode string"),
])
def test_an_unservable_request_is_400_with_an_error_body(server, body, error):
    reply = post(server.port, body)
    expected = {"error": error, "id": "x"} if isinstance(body, dict) else {"error": error}
    assert (reply.status, reply.content_type, reply.document) == (400, "application/json", expected)
    assert call(server.port, "GET", "/v2/health/ready").status == 200  # still up


@pytest.mark.parametrize("method, path, error", [
    ("GET", "/v2/models/nope", "model 'nope' not found (this server serves 'multiplier')"),
    ("GET", "/v2/models/nope/ready", "model 'nope' not found (this server serves 'multiplier')"),
    ("POST", "/v2/models/nope/infer", "model 'nope' not found (this server serves 'multiplier')"),
    ("GET", "/v2/models/multiplier/versions/9", "model 'multiplier' has no version '9' (it has '1')"),
    ("GET", "/v2/models/multiplier/versions/9/ready", "model 'multiplier' has no version '9' (it has '1')"),
    ("POST", "/v2/models/multiplier/versions/9/infer", "model 'multiplier' has no version '9' (it has '1')"),
    ("GET", "/v2/nope", "no such path: /v2/nope"),
    ("GET", "/", "no such path: /"),
    ("POST", "/v2/models/multiplier/versions/1/predict", "no such path: /v2/models/multiplier/versions/1/predict"),
])
def test_unknown_models_versions_and_paths_are_404(server, method, path, error):
    reply = call(server.port, method, path, b"{}" if method == "POST" else None)
    assert (reply.status, reply.content_type, reply.document) == (404, "application/json", {"error": error})


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", INFER, "POST"), ("PUT", INFER, "POST"), ("POST", "/v2/health/ready", "GET"),
    ("DELETE", "/v2/models/multiplier", "GET"), ("BREW", "/v2", "GET"),
])
def test_a_known_path_with_another_method_is_405(server, method, path, allowed):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=b"{}" if method != "GET" else None)
        response = connection.getresponse()
        document = json.loads(response.read())
        assert (response.status, response.getheader("Allow")) == (405, allowed)
        assert document == {"error": f"{method} is not allowed here (only {allowed})"}
    finally:
        connection.close()


def test_a_chunked_body_is_read(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    request = b'{"id": "c", "inputs": [{"name": "a", "shape": [2], "datatype": "UINT8", "data": [7, 200]}]}'
    try:
        for _ in range(2):  # and the connection is still good for the next request
            connection.request("POST", INFER, body=iter([request[:10], request[10:50], request[50:]]),
                               encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
            response = connection.getresponse()
            assert (response.status, json.loads(response.read())) == (200, {
                "model_name": "multiplier", "model_version": "1", "id": "c",
                "outputs": [{"name": "a", "datatype": "UINT8", "shape": [2], "data": [14, 144]}]})
    finally:
        connection.close()


@pytest.mark.parametrize("headers, status, error", [
    (b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "malformed chunked body: a chunk size is not hexadecimal"),
    (b"Transfer-Encoding: gzip\r\n\r\n", 501, "Transfer-Encoding 'gzip' is not supported (only chunked)"),
    (b"Content-Length: -5\r\n\r\n", 400, "Content-Length is not a number: '-5'"),
    (b"Content-Length: 1073741825\r\n\r\n", 413, "request body over 1073741824 bytes"),
])
def test_a_body_that_cannot_be_read_is_refused_and_the_connection_closed(server, headers, status, error):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\n" + headers)
        reply = b""
        while chunk := raw.recv(65536):  # the server closes the connection after its answer
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status) and b"Connection: close" in head
    assert json.loads(body) == {"error": error}


def test_it_listens_on_loopback_only(server):
    addresses = listening_addresses(PeerServer("reference", server.port, server.process, Path(os.devnull), 0.0))
    assert {str(address) for address in addresses} == {"127.0.0.1"}


def test_a_kept_alive_connection_is_not_slowed_by_delayed_acks(server):
    """50 small requests one after the other on one connection take well under a second: an answer written in
    several sends would wait for the client's delayed ACK (Nagle), some 40 ms a request, 2 s in all."""
    body = json.dumps({"inputs": [{"name": "a", "shape": [1], "datatype": "INT32", "data": [1]}]}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        began = time.monotonic()
        for _ in range(50):
            connection.request("POST", INFER, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            assert (response.status, json.loads(response.read())["outputs"][0]["data"]) == (200, [2])
        assert time.monotonic() - began < 1.0
    finally:
        connection.close()


# ------------------------------------------------------------------------------------------- goldens


def golden_names() -> list[str]:
    return sorted(path.name for path in (kit_fixtures() / "input").glob("*.json"))


def test_the_golden_requests_get_the_golden_responses(server):
    """Every golden request POSTed: a golden error is a 400 error body, a golden response a 200 the kit's
    comparator finds nothing wrong with (values bit for bit in their datatype, names, shapes, id, model)."""
    model = load_model(kit_model())
    problems = []
    for name in golden_names():
        raw = (kit_fixtures() / "input" / name).read_bytes()
        request = parse(raw, REQUEST, name)
        golden = load(kit_fixtures() / "output" / name, RESPONSE)
        assert not golden.findings, name
        reply = post(server.port, raw)
        actual = parse(reply.body, RESPONSE, name)
        status = 400 if golden.kind == ERROR else 200
        if (reply.status, reply.content_type) != (status, "application/json"):
            problems.append(f"{name}: {reply.status} {reply.content_type}, expected {status}")
        findings = compare(actual, expected_of(golden, request, model), request)  # type: ignore[arg-type]
        if findings or actual.findings:
            problems.append("\n".join(f.line() for f in findings + actual.findings) + "\n"
                            + explain(actual, expected_of(golden, request, model)))  # type: ignore[arg-type]
    assert not problems, "\n".join(problems)
    assert len(golden_names()) >= 50


def test_concurrent_requests_get_the_one_at_a_time_answers(server):
    """8 threads, each on its own kept-alive connection, send 10 golden requests each (every thread a different
    rotation, so different requests are in flight together): every answer is byte for byte the one it got alone."""
    bodies = {name: (kit_fixtures() / "input" / name).read_bytes() for name in golden_names()}
    alone = {name: (reply.status, reply.body) for name, reply in ((n, post(server.port, b)) for n, b in bodies.items())}
    names = list(bodies)

    def client(worker: int) -> list[tuple[str, int, bytes]]:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        answers = []
        try:
            for i in range(10):
                name = names[(worker * 7 + i * 5) % len(names)]
                connection.request("POST", INFER, body=bodies[name], headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                answers.append((name, response.status, response.read()))
        finally:
            connection.close()
        return answers

    with ThreadPoolExecutor(8) as pool:
        results = [answer for answers in pool.map(client, range(8)) for answer in answers]
    assert len(results) == 80
    assert [(name, status, body) for name, status, body in results if (status, body) != alone[name]] == []


# ------------------------------------------------------------------------------------------- start and stop


def test_sigterm_stops_it_within_seconds_and_leaves_no_process(tmp_path):
    running = start(make_model(tmp_path / "model"))
    idle = socket.create_connection(("127.0.0.1", running.port))  # a kept-alive connection must not hold it up
    try:
        assert post(running.port, {"inputs": [{"name": "a", "shape": [1], "datatype": "INT8", "data": [3]}]}).status == 200
        seconds = stop(running.process, grace=5.0)
    finally:
        idle.close()
    assert running.process.returncode == 0
    assert seconds < 3.0
    with pytest.raises(ProcessLookupError):
        os.killpg(running.process.pid, 0)  # nothing left in its process group
    with pytest.raises(OSError):
        call(running.port, "GET", "/v2/health/live", timeout=2)


def run_briefly(args: list[str], env_model: str | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "ODAHU_MODEL_PATH"}
    if env_model is not None:
        env["ODAHU_MODEL_PATH"] = env_model
    return subprocess.run([sys.executable, str(SERVER), *args], env=env, capture_output=True, text=True,
                          timeout=30, check=False)


@pytest.mark.parametrize("multiplier, project, message", [
    (None, PROJECT_YAML, "multiplier.txt: missing (the model needs a multiplier.txt holding an integer)"),
    ("two\n", PROJECT_YAML, "multiplier.txt: not a base-10 integer: 'two'"),
    ("2\n", None, "odahuflow.project.yaml: missing (needs model: {name, version})"),
])
def test_an_unusable_model_is_one_line_and_exit_2(tmp_path, multiplier, project, message):
    model = make_model(tmp_path / "model", multiplier, project)
    run = run_briefly(["--port", "0", "--model", str(model)])
    assert run.returncode == 2
    assert run.stderr.splitlines() == [f"server: {model}/{message}"]


def test_the_model_folder_from_the_environment_then_the_default(tmp_path):
    run = run_briefly(["--port", "0"], env_model=str(tmp_path / "nowhere"))
    assert (run.returncode, run.stderr.splitlines()) == (2, [
        f"server: {tmp_path}/nowhere/multiplier.txt: missing (the model needs a multiplier.txt holding an integer)"])
    if Path("/mnt/models/multiplier.txt").exists():
        pytest.skip("/mnt/models holds a model on this machine")
    run = run_briefly(["--port", "0"])
    assert (run.returncode, run.stderr.splitlines()) == (2, [
        "server: /mnt/models/multiplier.txt: missing (the model needs a multiplier.txt holding an integer)"])


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path):
    model = make_model(tmp_path / "model")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_briefly(["--port", str(port), "--model", str(model)])
    assert run.returncode == 2
    assert run.stderr.splitlines() == [f"server: cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use"]


def test_the_model_comes_from_its_folder(tmp_path):
    """Another multiplier, name and version: the answers and routes follow the folder, not the kit's model."""
    model = make_model(tmp_path / "model", "-3\n", "model:\n  name: triple\n  version: 7\n")
    env = {key: value for key, value in os.environ.items() if key != "ODAHU_MODEL_PATH"}
    env["ODAHU_MODEL_PATH"] = str(model)
    process = subprocess.Popen([sys.executable, str(SERVER), "--port", "0"], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stderr is not None
    try:
        line = process.stderr.readline().rstrip("\n")
        match = re.fullmatch(r"server: model triple version 7 ready on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))
        reply = post(port, {"inputs": [{"name": "a", "shape": [2], "datatype": "INT8", "data": [1, 50]}]},
                     "/v2/models/triple/versions/7/infer")
        assert (reply.status, reply.document) == (200, {"model_name": "triple", "model_version": "7", "outputs": [
            {"name": "a", "datatype": "INT8", "shape": [2], "data": [-3, 106]}]})  # -150 wraps to 106
        assert call(port, "GET", "/v2/models/multiplier").status == 404
    finally:
        stop(process)


# ------------------------------------------------------------------------------------------- gRPC (--grpc-port)


GRPC_READY = re.compile(r"^server: model multiplier version 1 ready on http://127\.0\.0\.1:(\d+) and gRPC on "
                        r"127\.0\.0\.1:(\d+)$")


@dataclass
class RunningBoth:
    process: subprocess.Popen
    port: int
    grpc_port: int


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBoth]:
    """The server with ``--grpc-port 0``: REST and gRPC on free ports, one model."""
    pytest.importorskip("grpc", reason="the grpc extra is not installed (pip install -e '.[dev]')")
    model = make_model(tmp_path_factory.mktemp("served-both") / "model")
    env = {key: value for key, value in os.environ.items() if key != "ODAHU_MODEL_PATH"}
    process = subprocess.Popen([sys.executable, str(SERVER), "--port", "0", "--grpc-port", "0", "--model", str(model)],
                               env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    assert process.stderr is not None
    try:
        line = process.stderr.readline().rstrip("\n")
        match = GRPC_READY.match(line)
        assert match, f"not the ready line: {line!r}"
        yield RunningBoth(process, int(match.group(1)), int(match.group(2)))
    finally:
        stop(process)


def _grpc(both: RunningBoth):
    from conformance.transport.grpc_v2.client import GrpcClient

    return GrpcClient(f"127.0.0.1:{both.grpc_port}", timeout=30)


def test_grpc_health_metadata_and_readiness_say_what_rest_says(both):
    from conformance.transport.grpc_v2 import open_inference_pb2 as pb

    client = _grpc(both)
    try:
        assert client.call("ServerLive", pb.ServerLiveRequest()).response.live
        assert client.call("ServerReady", pb.ServerReadyRequest()).response.ready
        server = client.call("ServerMetadata", pb.ServerMetadataRequest()).response
        # binary_tensor_data is HTTP's own: listed over REST alone
        assert {"name": server.name, "version": server.version, "extensions": list(server.extensions)} == \
            {**call(both.port, "GET", "/v2").document, "extensions": []}
        for version in ("", "1"):
            model = client.call("ModelMetadata", pb.ModelMetadataRequest(name="multiplier", version=version)).response
            assert {"name": model.name, "versions": list(model.versions), "platform": model.platform, "inputs": [],
                    "outputs": []} == call(both.port, "GET", "/v2/models/multiplier").document
            assert client.call("ModelReady", pb.ModelReadyRequest(name="multiplier", version=version)).response.ready
        for name, version, said in (("nope", "", "model 'nope' not found (this server serves 'multiplier')"),
                                    ("multiplier", "9", "model 'multiplier' has no version '9' (it has '1')")):
            for method, request in (("ModelMetadata", pb.ModelMetadataRequest(name=name, version=version)),
                                    ("ModelReady", pb.ModelReadyRequest(name=name, version=version)),
                                    ("ModelInfer", pb.ModelInferRequest(model_name=name, model_version=version))):
                answer = client.call(method, request)
                assert (answer.code, answer.details) == ("NOT_FOUND", said), method
    finally:
        client.close()


def _flat(data: object) -> list:
    if not isinstance(data, list):
        return [data]
    return [item for part in data for item in _flat(part)]


def _bits(document: dict) -> str:
    """A response as JSON with flat data, floats spelled as Python spells them (so -0.0 is not 0.0)."""
    outputs = [{**tensor, "data": [repr(v) if isinstance(v, float) else v for v in _flat(tensor["data"])]}
               for tensor in document.get("outputs", [])]
    return json.dumps({**document, "outputs": outputs}, sort_keys=True)


@pytest.mark.parametrize("raw", [False, True], ids=["typed", "raw"])
def test_grpc_answers_every_golden_request_as_rest_does(both, raw):
    """Every golden request a message can say (typed contents, or raw), sent over gRPC: a golden refused over
    REST (400) is INVALID_ARGUMENT with a message (its words may differ: a message's data is flat, so a misnested
    request's count is what is wrong with it there); an answer is the REST answer, every element bit for bit."""
    from conformance.transport.grpc_v2 import codec

    client = _grpc(both)
    sent = 0
    differ = []
    try:
        for name in golden_names():
            raw_body = (kit_fixtures() / "input" / name).read_bytes()
            try:
                message = codec.request_message(raw_body, "multiplier", raw=True if raw else None)
            except codec.Inexpressible:
                continue
            if codec.faithful(raw_body, message) is not None:
                continue
            sent += 1
            rest = post(both.port, raw_body)
            answer = client.infer(message)
            if rest.status == 400:
                if answer.code != "INVALID_ARGUMENT" or not answer.details:
                    differ.append(f"{name}: {answer.code} {answer.details!r}; REST: 400 {rest.document['error']!r}")
                continue
            if answer.code != "OK":
                differ.append(f"{name}: {answer.code} {answer.details!r}; REST: {rest.status}")
                continue
            assert (len(answer.response.raw_output_contents) > 0) == (raw or any(
                o.datatype == "FP16" for o in answer.response.outputs)), name  # raw answers raw; FP16 always raw
            if _bits(codec.response_document(answer.response)) != _bits(rest.document):
                differ.append(f"{name}: {codec.response_document(answer.response)} != {rest.document}")
    finally:
        client.close()
    assert differ == []
    assert sent >= 40


def test_grpc_raw_fp16_is_little_endian_and_exact(both):
    from conformance.transport.grpc_v2 import open_inference_pb2 as pb

    message = pb.ModelInferRequest(model_name="multiplier")
    message.inputs.add(name="h", datatype="FP16", shape=[3])
    message.raw_input_contents.append(b"\x00\x3c\x01\x00\x00\x80")  # 1.0, the smallest subnormal, -0.0
    client = _grpc(both)
    try:
        answer = client.infer(message)
    finally:
        client.close()
    assert answer.code == "OK", answer.details
    assert list(answer.response.raw_output_contents) == [b"\x00\x40\x02\x00\x00\x80"]  # 2.0, twice it, -0.0


@pytest.mark.parametrize("raw, said", [
    (b"\x00" * 5, "input 'h': raw contents of 5 bytes; shape [3] of FP16 needs 6"),
    (None, "input 'h': FP16 elements are not in raw contents"),
])
def test_grpc_tensors_that_cannot_be_read_are_invalid_argument(both, raw, said):
    from conformance.transport.grpc_v2 import open_inference_pb2 as pb

    message = pb.ModelInferRequest(model_name="multiplier")
    tensor = message.inputs.add(name="h", datatype="FP16", shape=[3])
    if raw is None:
        tensor.contents.fp32_contents.extend([1.0, 2.0, 3.0])
    else:
        message.raw_input_contents.append(raw)
    client = _grpc(both)
    try:
        answer = client.infer(message)
        assert (answer.code, answer.details) == ("INVALID_ARGUMENT", said)
        assert client.live().response.live  # still up
    finally:
        client.close()


def test_a_grpc_port_in_use_is_one_line_and_exit_2(tmp_path):
    pytest.importorskip("grpc", reason="the grpc extra is not installed (pip install -e '.[dev]')")
    model = make_model(tmp_path / "model")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_briefly(["--port", "0", "--grpc-port", str(port), "--model", str(model)])
    assert run.returncode == 2
    assert run.stderr.splitlines() == [f"server: cannot listen on 127.0.0.1:{port} for gRPC (in use, or not an "
                                       f"address of this host)"], run.stderr


def _suite_report(tmp: Path, *target: str) -> tuple[int, dict | None, str]:
    report = tmp / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q", *target,
         "--conformance-profile", "dev", "--conformance-report", str(report), "--hypothesis-seed", "1",
         "--workspace-dir", str(tmp), "--conformance-strict"],
        cwd=tmp, capture_output=True, text=True, timeout=600)
    return done.returncode, json.loads(report.read_text()) if report.is_file() else None, done.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("transports", ["grpc", "rest and grpc"])
def test_the_suite_passes_the_reference_over_grpc(both, tmp_path, transports):
    """The whole suite, strictly: over gRPC alone (every F-*, M-*, B-* and G-* requirement passed, the REST ones
    skipped as having no target), and over both (every H-* and G-* requirement passed)."""
    target = ["--grpc", f"127.0.0.1:{both.grpc_port}"]
    if transports != "grpc":
        target += ["--url", f"http://127.0.0.1:{both.port}"]
    status, report, output = _suite_report(tmp_path, *target)
    assert report is not None, output
    rows = {row["id"]: row for row in report["requirements"]}
    assert (status, report["status"], report["candidate"]["kind"]) == (
        0, "passed", "grpc" if transports == "grpc" else "url"), output
    skipped = {rid for rid, row in rows.items() if row["status"] == "skipped"}
    expected = {rid for rid in rows if rid.startswith("P-")} | {"M-MULTIPLIER", "B-MATCH", "B-SIGNATURE"}
    if transports == "grpc":
        expected |= {rid for rid in rows if rid.startswith("H-")} | {"G-AGREE"}  # (one transport: nothing to agree with)
        assert all("no REST target" in rows[rid]["reason"] for rid in rows if rid.startswith("H-"))
    assert skipped == expected
    assert {rid for rid, row in rows.items() if row["status"] == "passed"} == set(rows) - expected
