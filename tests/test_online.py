"""The online half: the judge over HTTP exchanges (each H-* check, one finding per fault), the kit's HTTP client,
the `--url` target's bad cases, and the suite against the reference V2 server (predictor/server.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conformance.judge import judge_batch
from conformance.odahu.model import Model
from conformance.run.workspace import RunResult, Workspace
from conformance.transport.exchange import HTTP, Exchange
from conformance.transport.http import HttpClient
from test_reference_server import make_model, start, stop

MODEL = Model(2, "multiplier", "1")
GOOD = json.dumps({"id": "g", "inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1, 2]}]}).encode()
ANSWER = json.dumps({"model_name": "multiplier", "model_version": "1", "id": "g",
                     "outputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [2, 4]}]}).encode()
BOOL = json.dumps({"inputs": [{"name": "b", "shape": [1], "datatype": "BOOL", "data": [True]}]}).encode()
JSON = {"content-type": "application/json"}
ERROR = b'{"error": "BOOL is not supported"}'


def judged(exchanges: dict[str, Exchange], requests: dict[str, bytes], down: str | None = None):
    root = Path("/nonexistent")
    ws = Workspace(root, root / "input", root / "output", None)
    result = RunResult(0, "", "", 0.1, any(e.timed_out for e in exchanges.values()), True, [], [], [], [], ws,
                       exchanges=exchanges, server_down=down)
    return judge_batch(result, requests, MODEL)


def answer(name: str, status: int | None, body: bytes | None = b"", headers: dict | None = None, **extra) -> Exchange:
    return Exchange(name, HTTP, "POST /v2/models/multiplier/infer", body=body, status=status,
                    headers=JSON if headers is None else headers, **extra)


# (request, status, content type, body, extra) -> the exact findings: (requirement, level)
CASES = {
    "good 200": (GOOD, 200, "application/json", ANSWER, {}, []),
    "good 200 text/plain": (GOOD, 200, "text/plain", ANSWER, {}, [("H-INFER", "MUST")]),
    "good 200 with charset": (GOOD, 200, "application/json; charset=utf-8", ANSWER, {}, []),
    "good 201": (GOOD, 201, "application/json", ANSWER, {}, [("H-INFER", "MUST")]),
    "refused 400": (BOOL, 400, "application/json", ERROR, {}, []),
    "refused 500": (BOOL, 500, "application/json", ERROR, {}, [("H-ERROR", "MUST")]),
    "refused 422 detail": (BOOL, 422, "application/json", b'{"detail": [{"msg": "no"}]}', {},
                           [("H-ERROR", "MUST"), ("H-ERROR", "SHOULD")]),
    "refused 400 not JSON": (BOOL, 400, "text/plain", b"Bad Request", {}, [("H-ERROR", "MUST")]),
    "refused 200 error body": (BOOL, 200, "application/json", ERROR, {}, [("H-ERROR", "MUST")]),
    "values where a refusal is owed": (BOOL, 200, "application/json", json.dumps(
        {"model_name": "multiplier", "model_version": "1",
         "outputs": [{"name": "b", "shape": [1], "datatype": "BOOL", "data": [True]}]}).encode(), {},
        [("M-UNSUPPORTED", "MUST")]),
    "good refused 400": (GOOD, 400, "application/json", ERROR, {}, [("M-VALUE", "MUST")]),
    "good 200 not JSON": (GOOD, 200, "application/json", b"{oops", {}, [("F-JSON", "MUST")]),
    "good timed out": (GOOD, None, None, None, {"error": "no answer within 1.0 s", "timed_out": True},
                       [("H-TIMELY", "MUST")]),
    "good connection closed": (GOOD, None, None, None, {"error": "the server closed the connection"},
                               [("H-INFER", "MUST")]),
    "refused connection closed": (BOOL, None, None, None, {"error": "the server closed the connection"},
                                  [("H-ERROR", "MUST")]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_how_each_answer_is_judged(case):
    request, status, content_type, body, extra, expected = CASES[case]
    headers = {"content-type": content_type} if content_type else {}
    judgement = judged({"r.json": answer("r.json", status, body, headers, **extra)}, {"r.json": request})
    assert sorted((f.requirement, f.level) for f in judgement.findings) == sorted(expected), judgement.findings
    if status is not None:  # H-INFER judged on inference responses, H-ERROR on refusals and where one is owed
        checked = judgement.checked_at("r.json")
        served = judgement.responses["r.json"].kind != "error"
        assert "H-TIMELY" in checked and ("H-INFER" in checked) == served
        assert ("H-ERROR" in checked) == (not served or status >= 400 or request == BOOL)


def test_an_unsent_request_is_not_judged():
    judgement = judged({"r.json": answer("r.json", None, None, error="not sent: the run's timeout had passed", sent=False)},
                       {"r.json": GOOD})
    assert judgement.findings == []
    assert "M-VALUE" in judgement.blocked_at("r.json") and "H-TIMELY" not in judgement.checked_at()


def test_a_server_that_stops_after_a_refusal_is_the_refusals_finding():
    exchanges = {"a.json": answer("a.json", 400, ERROR),
                 "b.json": answer("b.json", None, None, error="connection refused"),
                 "c.json": answer("c.json", None, None, error="not sent: the server had stopped answering", sent=False)}
    judgement = judged(exchanges, {"a.json": BOOL, "b.json": GOOD, "c.json": GOOD}, down="the server exited (status 1)")
    assert [(f.requirement, f.file) for f in judgement.findings] == [("H-ERROR", "a.json")]
    assert "stopped answering after it refused this request (status 400)" in judgement.findings[0].message


def test_a_server_that_stops_is_one_finding():
    exchanges = {"a.json": answer("a.json", 200, ANSWER),
                 "b.json": answer("b.json", None, None, error="connection refused"),
                 "c.json": answer("c.json", None, None, error="not sent: the server had stopped answering", sent=False)}
    judgement = judged(exchanges, {"a.json": GOOD, "b.json": GOOD, "c.json": GOOD},
                       down="the server exited (status 1) during the run; output: boom")
    assert [(f.requirement, f.file) for f in judgement.findings] == [("H-HEALTH", "(run)")]
    assert "M-VALUE" in judgement.checked_at("a.json")
    assert "M-VALUE" in judgement.blocked_at("b.json") and "M-VALUE" in judgement.blocked_at("c.json")


# ------------------------------------------------------------------------------------------------ the client


class _Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        if self.path == "/hang":
            threading.Event().wait(5)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def little_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_client_keeps_one_connection_and_bounds_each_wait(little_server):
    client = HttpClient(little_server, timeout=5)
    first = client.post("/x", b"{}")
    connection = client._local.connection
    second = client.post("/x", b"{}")
    assert (first.status, second.status) == (200, 200) and client._local.connection is connection
    hung = client.post("/hang", b"{}", timeout=0.3)
    assert hung.status is None and hung.timed_out and "no answer within" in (hung.error or "")
    assert client.post("/x", b"{}").status == 200  # a new connection after the timeout
    client.close()


def test_the_client_says_nothing_listens():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answer_ = HttpClient(f"http://127.0.0.1:{port}", timeout=2).get("/v2/health/live")
    assert answer_.status is None and answer_.error == "connection refused" and not answer_.timed_out


# ------------------------------------------------------------------------------------- --url, for real


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def reference_server(tmp_path_factory: pytest.TempPathFactory):
    running = start(make_model(tmp_path_factory.mktemp("served") / "model", project="model:\n  name: multiplier\n  version: '1'\n"))
    yield f"http://127.0.0.1:{running.port}"
    stop(running.process)


@pytest.mark.slow
def test_the_reference_server_passes_online(reference_server, tmp_path):
    done = _cli("run", f"--url={reference_server}", "--model", str(Path(__file__).parents[1] / "model"),
                "--report", str(tmp_path / "r.json"), cwd=tmp_path)
    report = json.loads((tmp_path / "r.json").read_text())
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert done.returncode == 0, done.stdout[-3000:]
    assert report["status"] == "passed" and report["candidate"]["kind"] == "url"
    assert all(statuses[r] == "passed" for r in statuses if r.startswith(("H-", "F-")))
    assert all(statuses[r] == "skipped" for r in statuses if r.startswith(("P-", "G-")))  # (G-*: no --grpc target)
    assert statuses["M-MULTIPLIER"] == "skipped"


@pytest.mark.parametrize("args, said", [
    (("--url=http://127.0.0.1:9",), "nothing answers at http://127.0.0.1:9: connection refused"),
    (("--url=https://127.0.0.1:9",), "https is not supported"),
    (("--url=http://127.0.0.1:9", "--cmd", "true"), "--url cannot be combined with --cmd"),
    (("--cmd", "true", "--port", "8080"), "--port is the port a server started by the kit listens on"),
    (("--cmd", "true", "--model-name", "m"), "--model-name and --model-version name the model a server serves"),
    (("--url=",), "--url is empty"),
])
def test_bad_online_targets_are_one_line(args, said, tmp_path):
    done = _cli("run", *args, cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert len(lines) == 1 and said in lines[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr and list(tmp_path.iterdir()) == []


def test_a_wrong_model_name_is_one_line(reference_server, tmp_path):
    done = _cli("run", f"--url={reference_server}", "--model-name", "iris", cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stdout[-2000:] + done.stderr
    assert "does not serve model 'iris'" in lines[0] and "--model-name" in lines[0]


PROJECT = "model:\n  name: multiplier\n  version: '1'\n"


def _failed(report: Path) -> set[str]:
    return {r["id"] for r in json.loads(report.read_text())["requirements"] if r["status"] == "failed"}


@pytest.mark.slow
def test_goldens_recorded_from_a_server_gate_batch_and_online_alike(reference_server, tmp_path):
    """`fixtures record --url` writes goldens from an approved server; they pass the same program in batch and
    online, and fail a wrong one (multiplier 3 for 2) in batch and online with the same requirement."""
    kit = Path(__file__).parents[1]
    recorded = tmp_path / "recorded"
    done = _cli("fixtures", "record", f"--url={reference_server}", "--model", str(kit / "model"),
                "--requests", str(kit / "fixtures" / "input"), "--out", str(recorded), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (recorded / "output").iterdir()) == sorted(p.name for p in (kit / "fixtures" / "input").iterdir())
    wrong = make_model(tmp_path / "wrong", multiplier="3\n", project=PROJECT)
    wrong_server = start(wrong)
    try:
        verdicts = {}
        for name, target, model in (
            ("batch good", ("--cmd", f"{sys.executable} {kit / 'predictor' / 'reference.py'}"), kit / "model"),
            ("online good", (f"--url={reference_server}",), kit / "model"),
            ("batch wrong", ("--cmd", f"{sys.executable} {kit / 'predictor' / 'reference.py'}"), wrong),
            ("online wrong", (f"--url=http://127.0.0.1:{wrong_server.port}",), wrong),
        ):
            report = tmp_path / f"{name.replace(' ', '-')}.json"
            run = _cli("run", *target, "--model", str(model), "--oracle", "recorded", "--fixtures", str(recorded),
                       "--report", str(report), "--profile", "dev", cwd=tmp_path)
            verdicts[name] = (run.returncode, _failed(report))
    finally:
        stop(wrong_server.process)
    assert verdicts["batch good"] == verdicts["online good"] == (0, set())
    assert verdicts["batch wrong"] == verdicts["online wrong"] == (1, {"B-MATCH"})


SERVER = Path(__file__).parents[1] / "predictor" / "server.py"
SERVER_MUTANT = Path(__file__).parent / "mutants" / "server_mutant.py"


def _statuses(report: Path) -> dict[str, str]:
    return {r["id"]: r["status"] for r in json.loads(report.read_text())["requirements"]}


@pytest.mark.slow
@pytest.mark.parametrize("variant, failed", [(None, set()), ("hardcoded-multiplier", {"M-MULTIPLIER"}),
                                             ("serves-before-ready", {"H-READY"})])
def test_a_served_command_is_started_on_each_model(variant, failed, tmp_path):
    """--serve starts the command on the model and on each staged copy (other multipliers, names, versions), so
    M-MULTIPLIER applies; a server that ignores multiplier.txt fails it, and only it; one that answers an
    inference while it says it is not ready fails H-READY, and only it. Nothing is left running."""
    program = f"{SERVER}" if variant is None else f"{SERVER_MUTANT} --variant {variant}"
    report = tmp_path / "r.json"
    before = _matching(f"{sys.executable} {program} --port")  # (this module's own reference server, say)
    done = _cli("run", "--serve", "--cmd", f"{sys.executable} {program} --port {{port}} --model {{model}}",
                "--report", str(report), cwd=tmp_path)
    statuses = _statuses(report)
    assert (done.returncode, {r for r, s in statuses.items() if s == "failed"}) == (1 if failed else 0, failed), \
        done.stdout[-3000:]
    assert "not-checked" not in statuses.values()
    assert statuses["M-MULTIPLIER"] == ("failed" if "M-MULTIPLIER" in failed else "passed")
    assert json.loads(report.read_text())["candidate"]["kind"] == "cmd"
    assert _gone(f"{sys.executable} {program} --port", before)  # every server it started is gone


def _matching(pattern: str) -> set[str]:
    """The live processes whose command line holds ``pattern``."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return {pid for pid in found if _state(pid) not in ("Z", "X", "")}


def _gone(pattern: str, before: set[str], within: float = 10.0) -> bool:
    """Whether no process's command line holds ``pattern`` but those of ``before`` (waiting up to ``within``
    seconds: a killed PID namespace's processes are reaped by the kernel after the kill returns)."""
    import time

    deadline = time.monotonic() + within
    while True:
        live = sorted(_matching(pattern) - before)
        if not live:
            return True
        if time.monotonic() > deadline:
            print("left running:", live, [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in live if Path(f"/proc/{pid}").exists()])
            return False
        time.sleep(0.1)


def _state(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


@pytest.mark.parametrize("args, said", [
    (("--cmd", "sleep 30", "--run-timeout", "2"), "the server was not ready within 2 s"),
    (("--cmd", f"{sys.executable} -c \"import sys; print('no model here', file=sys.stderr); sys.exit(3)\""),
     "the server exited with status 3 before it was ready: no model here"),
    (("--cmd", "no-such-program-here {port}"), "no-such-program-here"),
])
def test_a_server_that_cannot_serve_is_one_line(args, said, tmp_path):
    done = _cli("run", "--serve", *args, cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and said in lines[0], done.stdout[-2000:] + done.stderr
    assert "Traceback" not in done.stdout + done.stderr and list(tmp_path.iterdir()) == []


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli("run", "--serve", "--port", str(port), "--cmd", f"{sys.executable} {SERVER} --port {{port}}",
                    cwd=tmp_path)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and f"port {port} is in use" in lines[0], done.stderr


@pytest.mark.slow
def test_a_served_image_passes_and_is_removed(tmp_path):
    """The reference server as an image (tests/test_serving.py builds it from the predictor image, offline),
    started by --serve on an internal network, passes; no container is left."""
    from test_serving import BASE_IMAGE, CONTAINERFILE, TEST_IMAGE

    from helpers import usable_engine

    engine = usable_engine("podman", (BASE_IMAGE,))
    for name in ("server.py", "reference.py"):
        (tmp_path / name).write_bytes((SERVER.parent / name).read_bytes())
    (tmp_path / "Containerfile").write_text(CONTAINERFILE)
    built = subprocess.run([engine, "build", "-q", "--network", "none", "-t", TEST_IMAGE, "-f",
                            str(tmp_path / "Containerfile"), str(tmp_path)], capture_output=True, timeout=300)
    assert built.returncode == 0, built.stderr.decode()
    work = tmp_path / "work"
    work.mkdir()
    report = tmp_path / "r.json"
    done = _cli("run", "--serve", "--image", TEST_IMAGE, "--engine", engine, "--report", str(report), cwd=work)
    assert done.returncode == 0, done.stdout[-3000:]
    assert json.loads(report.read_text())["status"] == "passed"
    containers = subprocess.run([engine, "ps", "-a", "--format", "{{.Image}}"], capture_output=True, text=True)
    assert TEST_IMAGE not in containers.stdout
