"""Online over gRPC: the judge over ModelInfer exchanges (each G-* check, one finding per fault, a non-OK code a
refusal), the kit's gRPC client (never an exception for network trouble, deadlines kept), and the --grpc option's
bad cases. The suite against the reference server over gRPC is tests/test_reference_server.py's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import pytest

pytest.importorskip("grpc", reason="the grpc extra is not installed (pip install -e '.[dev]')")

import grpc  # noqa: E402

from conformance.judge import judge_batch  # noqa: E402
from conformance.odahu.model import Model  # noqa: E402
from conformance.run.workspace import RunResult, Workspace  # noqa: E402
from conformance.transport.exchange import GRPC, HTTP, Exchange  # noqa: E402
from conformance.transport.grpc_v2 import open_inference_pb2 as pb  # noqa: E402
from conformance.transport.grpc_v2 import open_inference_pb2_grpc as pb_grpc  # noqa: E402
from conformance.transport.grpc_v2.client import GrpcClient, GrpcTargetProblem, parse_target  # noqa: E402

MODEL = Model(2, "multiplier", "1")
GOOD = json.dumps({"id": "g", "inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1, 2]}]}).encode()
ANSWER = {"model_name": "multiplier", "model_version": "1", "id": "g",
          "outputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [2, 4]}]}
BOOL = json.dumps({"inputs": [{"name": "b", "shape": [1], "datatype": "BOOL", "data": [True]}]}).encode()
WHERE = "gRPC ModelInfer multiplier"


def judged(exchanges: dict[str, Exchange], requests: dict[str, bytes], down: str | None = None,
           twins: dict[str, Exchange] | None = None):
    root = Path("/nonexistent")
    ws = Workspace(root, root / "input", root / "output", None)
    result = RunResult(0, "", "", 0.1, any(e.timed_out for e in exchanges.values()), True, [], [], [], [], ws,
                       exchanges=exchanges, server_down=down)
    result.twins = twins
    return judge_batch(result, requests, MODEL)


def answer(name: str, code: str | None, decoded: dict | None = None, details: str = "", **extra) -> Exchange:
    return Exchange(name, GRPC, WHERE, code=code, decoded=decoded, details=details, **extra)


# (request, code, decoded answer, details, extra) -> the exact findings: (requirement, level)
CASES = {
    "good OK": (GOOD, "OK", ANSWER, "", {}, []),
    "good OK, wrong values": (GOOD, "OK", {**ANSWER, "outputs": [{**ANSWER["outputs"][0], "data": [2, 5]}]}, "", {},
                              [("M-VALUE", "MUST")]),
    "good OK, raw contents of the wrong size": (GOOD, "OK", None, "", {
        "malformed": "output 'x' (INT32, shape [2]): raw contents of 7 bytes; 2 INT32 elements need 8"},
        [("G-INFER", "MUST")]),
    "refused INVALID_ARGUMENT": (BOOL, "INVALID_ARGUMENT", None, "BOOL is not supported", {}, []),
    "refused FAILED_PRECONDITION": (BOOL, "FAILED_PRECONDITION", None, "BOOL is not supported", {},
                                    [("G-ERROR", "SHOULD")]),
    "refused INTERNAL": (BOOL, "INTERNAL", None, "Traceback ...", {}, [("G-ERROR", "MUST")]),
    "refused UNKNOWN": (BOOL, "UNKNOWN", None, "Exception calling application", {}, [("G-ERROR", "MUST")]),
    "refused without a message": (BOOL, "INVALID_ARGUMENT", None, "", {}, [("G-ERROR", "MUST")]),
    "values where a refusal is owed": (BOOL, "OK", {
        "model_name": "multiplier", "model_version": "1",
        "outputs": [{"name": "b", "shape": [1], "datatype": "BOOL", "data": [True]}]}, "", {},
        [("M-UNSUPPORTED", "MUST")]),
    "good refused": (GOOD, "INVALID_ARGUMENT", None, "no", {}, [("M-VALUE", "MUST")]),
    "good timed out": (GOOD, None, None, "", {"error": "no answer within 1.0 s", "timed_out": True},
                       [("G-TIMELY", "MUST")]),
    "good connection closed": (GOOD, None, None, "", {"error": "the server closed the connection without an answer"},
                               [("G-INFER", "MUST")]),
    "refused connection closed": (BOOL, None, None, "", {"error": "connection refused"}, [("G-ERROR", "MUST")]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_how_each_grpc_answer_is_judged(case):
    """Every code other than OK is a refusal (an error response to the F-*, M-*, B-* checks); what the code and
    message are is G-ERROR's, a response that cannot be read G-INFER's, a deadline passed G-TIMELY's."""
    request, code, decoded, details, extra, expected = CASES[case]
    judgement = judged({"r.json": answer("r.json", code, decoded, details, **extra)}, {"r.json": request})
    assert sorted((f.requirement, f.level) for f in judgement.findings) == sorted(expected), judgement.findings
    checked = judgement.checked_at("r.json")
    assert "G-TIMELY" in checked and not any(r.startswith("H-") for r in checked)
    if code is not None:
        assert ("G-INFER" in checked) == (code == "OK")
        assert ("G-ERROR" in checked) == (code != "OK" or request == BOOL)
    if "malformed" in extra:
        assert "M-VALUE" in judgement.blocked_at("r.json")


def test_a_grpc_server_that_stops_after_a_refusal_is_the_refusals_finding():
    exchanges = {"a.json": answer("a.json", "INVALID_ARGUMENT", details="BOOL is not supported"),
                 "b.json": answer("b.json", None, error="connection refused"),
                 "c.json": answer("c.json", None, error="not sent: the server had stopped answering", sent=False)}
    judgement = judged(exchanges, {"a.json": BOOL, "b.json": GOOD, "c.json": GOOD},
                       down="the server stopped answering during the run (gRPC ServerLive: connection refused)")
    assert [(f.requirement, f.file) for f in judgement.findings] == [("G-ERROR", "a.json")]
    assert "after it refused this request (status INVALID_ARGUMENT)" in judgement.findings[0].message
    exchanges["a.json"] = answer("a.json", "OK", ANSWER)
    judgement = judged(exchanges, {"a.json": GOOD, "b.json": GOOD, "c.json": GOOD}, down="it stopped")
    assert [(f.requirement, f.file) for f in judgement.findings] == [("G-HEALTH", "(run)")]


def test_beside_rest_the_grpc_twin_is_judged_for_its_transport_only():
    """With --url and --grpc each request goes over both: the REST answer is judged as always; the gRPC one by
    the G-* checks alone (its values are the agreement's to compare, not judged twice by M-VALUE)."""
    rest = Exchange("r.json", HTTP, "POST /v2/models/multiplier/infer", body=json.dumps(ANSWER).encode(), status=200,
                    headers={"content-type": "application/json"})
    wrong = {**ANSWER, "outputs": [{**ANSWER["outputs"][0], "data": [2, 5]}]}
    judgement = judged({"r.json": rest}, {"r.json": GOOD}, twins={"r.json": answer("r.json", "OK", wrong)})
    assert [f.line() for f in judgement.findings] == [
        "r.json: G-AGREE /outputs/0/data/1: output 'x' element [1]: 5 over gRPC, 4 over REST"]
    assert {"G-INFER", "G-TIMELY", "H-INFER", "M-VALUE"} <= judgement.checked_at("r.json")
    refused = Exchange("r.json", HTTP, "POST /v2/models/multiplier/infer", body=b'{"error": "no BOOL"}', status=400,
                       headers={"content-type": "application/json"})
    judgement = judged({"r.json": refused}, {"r.json": BOOL},
                       twins={"r.json": answer("r.json", "OK", {**ANSWER, "outputs": []})})
    assert [(f.requirement, f.level) for f in judgement.findings] == [("G-ERROR", "MUST")]
    assert "OK with a response for a request the model cannot serve" in judgement.findings[0].message


# ------------------------------------------------------------------------------------------------ the client


class _Servicer(pb_grpc.GRPCInferenceServiceServicer):
    def ServerLive(self, request, context):  # noqa: N802 - the protocol's names
        return pb.ServerLiveResponse(live=True)

    def ModelInfer(self, request, context):  # noqa: N802
        if request.id == "slow":
            time.sleep(3)
        if request.id == "refuse":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "refused: no")
        return pb.ModelInferResponse(model_name="m", id=request.id)


@pytest.fixture(scope="module")
def little_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(_Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0).wait()


def test_the_client_answers_with_codes_and_never_raises(little_server):
    client = GrpcClient(f"127.0.0.1:{little_server}", timeout=5)
    try:
        ok = client.infer(pb.ModelInferRequest(model_name="m", id="a"))
        assert (ok.code, ok.response.id, ok.error) == ("OK", "a", None)
        refused = client.infer(pb.ModelInferRequest(model_name="m", id="refuse"))
        assert (refused.code, refused.details, refused.response) == ("INVALID_ARGUMENT", "refused: no", None)
        missing = client.call("ModelMetadata", pb.ModelMetadataRequest(name="m"))  # not implemented by the servicer
        assert missing.code == "UNIMPLEMENTED" and missing.error is None
        began = time.monotonic()
        slow = client.infer(pb.ModelInferRequest(model_name="m", id="slow"), timeout=0.5)
        assert slow.timed_out and slow.code is None and slow.error.startswith("no answer within 0.")
        assert time.monotonic() - began < 2.5
    finally:
        client.close()


def test_nothing_listening_is_one_line_not_an_exception():
    client = GrpcClient("127.0.0.1:1", timeout=5)
    answer = client.live()
    client.close()
    assert (answer.code, answer.error, answer.timed_out) == (None, "connection refused", False)


def test_calls_from_many_threads_share_one_channel(little_server):
    client = GrpcClient(f"127.0.0.1:{little_server}", timeout=5)
    got: list[str] = []

    def one(i: int) -> None:
        got.append(client.infer(pb.ModelInferRequest(model_name="m", id=str(i))).response.id)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert sorted(got, key=int) == [str(i) for i in range(8)]


@pytest.mark.parametrize("target, said", [
    ("http://127.0.0.1:8081", "expected HOST:PORT (no scheme: gRPC is not a URL)"),
    ("127.0.0.1", "expected HOST:PORT"),
    ("127.0.0.1:http", "the port is not a number from 1 to 65535"),
    ("127.0.0.1:70000", "the port is not a number from 1 to 65535"),
])
def test_a_target_that_is_no_host_and_port_is_one_line(target, said):
    with pytest.raises(GrpcTargetProblem) as caught:
        parse_target(target)
    assert str(caught.value) == f"{target!r}: {said}"


def test_ipv6_targets_are_read():
    assert parse_target("[::1]:8081") == ("::1", 8081)


def _suite(*options: str, prelude: str = "") -> subprocess.CompletedProcess:
    script = f"{prelude}import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", script, "--pyargs", "conformance.suite", "-p", "no:cacheprovider",
                           "-q", *options], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("options, said", [
    (["--grpc", "http://127.0.0.1:8081"], "--grpc 'http://127.0.0.1:8081': expected HOST:PORT (no scheme: gRPC is "
                                          "not a URL)"),
    (["--grpc", "127.0.0.1:1"], "the candidate cannot start: nothing answers over gRPC at 127.0.0.1:1: connection "
                                "refused"),
    (["--grpc", "127.0.0.1:1", "--predictor-cmd", "true"], "--grpc names a running server's gRPC endpoint: give it "
                                                           "alone, or with --url (the same server's REST endpoint)"),
    (["--grpc", " "], "--grpc is empty"),
])
def test_bad_grpc_targets_are_one_usage_line(options, said):
    done = _suite(*options)
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"odahu-conformance: {said}" in done.stderr, done.stderr


def test_without_the_grpc_extra_grpc_is_one_line_saying_what_to_install():
    done = _suite("--grpc", "127.0.0.1:8081", prelude="import sys; sys.modules['grpc'] = None\n")
    assert done.returncode == 4, done.stderr
    assert ("ERROR: odahu-conformance: --grpc: a gRPC target needs grpcio and protobuf (grpc cannot be imported): "
            "pip install 'odahu-conformance[grpc]' (grpcio>=1.51.3, protobuf>=4.21.12)") in done.stderr.splitlines()


# ------------------------------------------------------------------------------------------------ --serve


SERVER = Path(__file__).resolve().parents[1] / "predictor" / "server.py"


def test_a_served_command_gets_a_grpc_port_too(tmp_path):
    """``serve_command(grpc_port=0)``: a free port other than the REST one, in ``{grpc_port}`` and GRPC_PORT; the
    handle names the endpoint, which answers."""
    from conformance.run import serving
    from test_reference_server import make_model

    model = make_model(tmp_path / "model")
    assert serving.fill(["--a={port}", "--b={grpc_port}", "{model}"], 1, "/m", 2) == ["--a=1", "--b=2", "/m"]
    assert serving.fill(["{grpc_port}"], 1, "/m") == ["{grpc_port}"]  # not asked for gRPC: left alone
    served = serving.serve_command([sys.executable, str(SERVER), "--port", "{port}", "--grpc-port", "{grpc_port}",
                                    "--model", "{model}"], model, grpc_port=0, readonly_host=False)
    try:
        assert served.grpc is not None and served.grpc != served.url.removeprefix("http://")
        client = GrpcClient(served.grpc, timeout=10)
        assert client.live().response.live
        client.close()
    finally:
        served.stop()


@pytest.mark.parametrize("options, said", [
    (["--grpc-port", "auto", "--url", "http://127.0.0.1:1"], "--grpc-port is the gRPC port of a server started by "
                                                              "the kit: give --serve"),
    (["--grpc-port", "0"], "--grpc-port: must be a port from 1 to 65535, got 0"),
])
def test_grpc_port_without_serve_is_one_usage_line(options, said):
    done = _suite(*options)
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"odahu-conformance: {said}" in done.stderr, done.stderr


@pytest.mark.slow
def test_the_suite_serves_the_reference_over_both_transports(tmp_path):
    """``--serve --grpc-port auto``: the kit starts the reference with a gRPC port of its choosing, every request
    goes over REST and gRPC, and the reference passes strictly, G-* included."""
    report = tmp_path / "report.json"
    command = f"{sys.executable} {SERVER} --port {{port}} --grpc-port {{grpc_port}} --model {{model}}"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q", "--serve",
         "--predictor-cmd", command, "--grpc-port", "auto", "--conformance-profile", "dev", "--hypothesis-seed", "1",
         "--conformance-report", str(report), "--workspace-dir", str(tmp_path), "--conformance-strict"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert report.is_file(), done.stdout[-3000:] + done.stderr[-2000:]
    rows = {row["id"]: row for row in json.loads(report.read_text())["requirements"]}
    assert done.returncode == 0, done.stdout[-3000:]
    assert all(rows[r]["status"] == "passed" for r in rows if r.startswith(("G-", "H-", "M-", "F-")))


# ------------------------------------------------------------------------------------------------ G-AGREE


def _rest(document: dict) -> Exchange:
    return Exchange("r.json", HTTP, "POST /v2/models/multiplier/infer", body=json.dumps(document).encode(),
                    status=200, headers={"content-type": "application/json"})


FP16 = json.dumps({"id": "h", "inputs": [{"name": "h", "shape": [2, 2], "datatype": "FP16",
                                          "data": [[1.0, -0.0], [0.5, 2.0]]}]}).encode()
FP16_ANSWER = {"model_name": "multiplier", "model_version": "1", "id": "h",
               "outputs": [{"name": "h", "shape": [2, 2], "datatype": "FP16", "data": [[2.0, -0.0], [1.0, 4.0]]}]}


@pytest.mark.parametrize("case, grpc, found", [
    ("the same answer", {**FP16_ANSWER, "outputs": [{**FP16_ANSWER["outputs"][0], "data": [2.0, -0.0, 1.0, 4.0]}]},
     []),
    ("a signed zero", {**FP16_ANSWER, "outputs": [{**FP16_ANSWER["outputs"][0], "data": [2.0, 0.0, 1.0, 4.0]}]},
     ["r.json: G-AGREE /outputs/0/data/1: output 'h' element [0, 1]: 0.0 (0x0000) over gRPC, -0.0 (0x8000) over REST"]),
    ("bytes swapped", {**FP16_ANSWER, "outputs": [{**FP16_ANSWER["outputs"][0], "data": [
        7.62939453125e-06, -0.0, 1.0, 4.0]}]},
     ["r.json: G-AGREE /outputs/0/data/0: output 'h' element [0, 0]: 7.62939453125e-06 (0x0080) over gRPC, 2.0 "
      "(0x4000) over REST"]),
    ("another version", {**FP16_ANSWER, "model_version": "2"},
     ["r.json: G-AGREE /model_version: '2' over gRPC, '1' over REST"]),
    ("another shape", {**FP16_ANSWER, "outputs": [{**FP16_ANSWER["outputs"][0], "shape": [4],
                                                   "data": [2.0, -0.0, 1.0, 4.0]}]},
     ["r.json: G-AGREE /outputs/0/shape: [4] over gRPC, [2, 2] over REST"]),
])
def test_one_answer_two_transports(case, grpc, found):
    """G-AGREE names the request and the first element that differs, bit for bit (a NaN or a signed zero too)."""
    judgement = judged({"r.json": _rest(FP16_ANSWER)}, {"r.json": FP16}, twins={"r.json": answer("r.json", "OK", grpc)})
    assert [f.line() for f in judgement.findings] == found
    assert "G-AGREE" in judgement.checked_at("r.json")


def test_an_id_made_up_for_a_request_without_one_is_no_disagreement():
    """MLServer answers a request without id with a made-up UUID over REST and none over gRPC: F-ID's SHOULD
    part judges the REST one; the answers still agree. A request's own id must be echoed alike."""
    made_up = {**ANSWER, "id": "c8592abf-f392-4a16-98ae-2aa32410b574"}
    without = json.dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1, 2]}]}).encode()
    no_id = {key: value for key, value in ANSWER.items() if key != "id"}
    judgement = judged({"r.json": _rest(made_up)}, {"r.json": without}, twins={"r.json": answer("r.json", "OK", no_id)})
    assert [f.requirement for f in judgement.findings] == ["F-ID"] and "G-AGREE" in judgement.checked_at("r.json")
    judgement = judged({"r.json": _rest(ANSWER)}, {"r.json": GOOD}, twins={"r.json": answer("r.json", "OK", no_id)})
    assert [f.line() for f in judgement.findings] == ["r.json: G-AGREE /id: None over gRPC, 'g' over REST"]


def test_a_good_request_refused_over_grpc_alone_is_a_disagreement():
    """MLServer's gRPC refuses a request over its 4 MB message limit that REST serves: not G-ERROR's (a refusal is
    not owed), the two transports' answers differ."""
    judgement = judged({"r.json": _rest(ANSWER)}, {"r.json": GOOD}, twins={"r.json": answer(
        "r.json", "RESOURCE_EXHAUSTED", details="Received message larger than max (7434564 vs. 4194304)")})
    assert [f.line() for f in judgement.findings] == [
        "r.json: G-AGREE: answered with values over REST, refused over gRPC ('Received message larger than max "
        "(7434564 vs. 4194304)')"]
    assert "G-ERROR" not in judgement.checked_at("r.json")


def test_refusals_agree_whatever_their_words_and_a_refusal_against_values_does_not():
    bad = json.dumps({"inputs": [{"name": "a", "shape": [3], "datatype": "INT32", "data": [1, 2]}]}).encode()
    refused = Exchange("r.json", HTTP, "POST /v2/models/multiplier/infer", body=b'{"error": "3 elements needed"}',
                       status=400, headers={"content-type": "application/json"})
    judgement = judged({"r.json": refused}, {"r.json": bad},
                       twins={"r.json": answer("r.json", "INVALID_ARGUMENT", details="shape [3] needs 3 elements")})
    assert judgement.findings == [] and "G-AGREE" in judgement.checked_at("r.json")
    judgement = judged({"r.json": refused}, {"r.json": GOOD},  # a good request refused over REST alone
                       twins={"r.json": answer("r.json", "OK", ANSWER)})
    assert ("G-AGREE", "refused over REST ('3 elements needed'), answered with values over gRPC") in [
        (f.requirement, f.message) for f in judgement.findings]


# ------------------------------------------------------------------------------------------------ gRPC mutants


sys.path.insert(0, str(Path(__file__).parent / "mutants"))
from server_mutant import GRPC_VARIANTS  # noqa: E402

MUTANT = Path(__file__).parent / "mutants" / "server_mutant.py"
BOTH_READY = r"^server: model multiplier version 1 ready on http://127\.0\.0\.1:(\d+) and gRPC on 127\.0\.0\.1:(\d+)$"
#: Skipped in every run over both transports: the batch protocol, the fixed model, the multiplier's B-* pair.
BOTH_SKIPPED = {"P-ENV", "P-OUTDIR", "P-EVERY", "P-NAME", "P-READONLY", "P-EXIT", "P-CONFIG", "P-ISOLATE", "P-TIMELY",
                "P-OFFLINE", "M-MULTIPLIER", "B-MATCH", "B-SIGNATURE"}
#: run (variant, or variant@grpc: over gRPC alone) -> the requirements its report fails; every other one passes,
#: none is not-checked. Over both transports each fails its own G-* requirement alone.
GRPC_EXPECTED: dict[str, set[str]] = {
    "grpc-fp16-byte-order": {"G-AGREE"},  # every gRPC answer is readable; its FP16 values differ from REST's
    "grpc-fp16-byte-order@grpc": {"M-VALUE", "F-TYPED"},  # alone its values are wrong, some swapped into NaN
    "grpc-refusal-internal": {"G-ERROR"},  # (its refusals are not compared again: G-ERROR's finding explains them)
    "grpc-raw-short": {"G-INFER"},  # raw answers (FP16 requests) cannot be read; typed ones agree
    "grpc-hangs-on-big": {"G-TIMELY"},  # with --run-timeout 8
    "grpc-server-not-ready": {"G-HEALTH"},
    "grpc-model-not-ready": {"G-READY"},
    "grpc-metadata-platform": {"G-METADATA"},
    "grpc-any-model": {"G-UNKNOWN"},
}
GRPC_EXTRA = {"grpc-hangs-on-big": ["--run-timeout", "8"]}


def start_both(model: Path, variant: str | None) -> tuple[subprocess.Popen, int, int]:
    """The reference server (or a mutant) on ``model`` with --port 0 --grpc-port 0: (process, REST port, gRPC port)."""
    program = [str(MUTANT), "--variant", variant] if variant else [str(SERVER)]
    process = subprocess.Popen([sys.executable, *program, "--port", "0", "--grpc-port", "0", "--model", str(model)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    assert process.stderr is not None
    match = re.match(BOTH_READY, process.stderr.readline().rstrip("\n"))
    if not match:
        process.kill()
        raise AssertionError("no ready line")
    return process, int(match.group(1)), int(match.group(2))


def run_suite(tmp: Path, model: Path, target: list[str], *extra: str) -> tuple[int, dict | None, str]:
    report = tmp / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider", "-q", *target,
         "--model", str(model), "--conformance-profile", "dev", "--hypothesis-seed", "1", "--conformance-report",
         str(report), "--workspace-dir", str(tmp), *extra], cwd=tmp, capture_output=True, text=True, timeout=600)
    return done.returncode, json.loads(report.read_text()) if report.is_file() else None, done.stdout[-3000:]


@pytest.fixture(scope="module")
def grpc_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, dict | None, str]]:
    """Every gRPC mutant's suite report (over both transports; ``@grpc``: over gRPC alone), two at a time."""
    from test_reference_server import make_model, stop

    def one(run: str) -> tuple[str, tuple[int, dict | None, str]]:
        variant, _, alone = run.partition("@")
        tmp = tmp_path_factory.mktemp(run.replace("@", "-at-"))
        model = make_model(tmp / "model")
        process, port, grpc_port = start_both(model, variant)
        target = ["--grpc", f"127.0.0.1:{grpc_port}"] + ([] if alone else ["--url", f"http://127.0.0.1:{port}"])
        try:
            return run, run_suite(tmp, model, target, *GRPC_EXTRA.get(variant, []))
        finally:
            stop(process)

    with futures.ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, GRPC_EXPECTED))


def test_every_grpc_variant_has_a_stated_report():
    assert {run.partition("@")[0] for run in GRPC_EXPECTED} == set(GRPC_VARIANTS)


def test_every_grpc_requirement_has_a_broken_server_that_fails_it():
    from conformance.contract.requirements import REQUIREMENTS

    grpc_requirements = {r.id for r in REQUIREMENTS if r.id.startswith("G-")}
    assert grpc_requirements <= {GRPC_VARIANTS[run][0] for run in GRPC_EXPECTED if "@" not in run}
    assert all(GRPC_EXPECTED[variant] == {requirement} for variant, (requirement, _) in GRPC_VARIANTS.items())


def test_every_grpc_variant_is_named_in_the_spec_under_its_requirement():
    from conformance.paths import PACKAGE

    named = {}
    for section in re.split(r"^### ", (PACKAGE / "SPEC.md").read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]:
        for listed in re.findall(r"gRPC server mutants? \(`tests/test_grpc_online.py`\): (.*?)\.(?:\s|$)", section,
                                 flags=re.DOTALL):
            for variant in re.findall(r"`([a-z][a-z0-9-]*)`", listed):
                named[variant] = section.split(" ", 1)[0]
    assert named == {variant: requirement for variant, (requirement, _) in GRPC_VARIANTS.items()}


@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(GRPC_EXPECTED))
def test_a_grpc_mutants_report_is_exactly_the_stated_one(grpc_verdicts, run):
    status, report, output = grpc_verdicts[run]
    assert report is not None, output
    rows = {row["id"]: row for row in report["requirements"]}
    found: dict[str, set[str]] = {}
    for rid, row in rows.items():
        found.setdefault(row["status"], set()).add(rid)
    failed = GRPC_EXPECTED[run]
    skipped = set(BOTH_SKIPPED)
    if run.endswith("@grpc"):
        skipped |= {rid for rid in rows if rid.startswith("H-")} | {"G-AGREE"}
    assert (status, report["status"]) == (1, "failed"), output
    assert found.get("failed") == failed and "not-checked" not in found, (found, output)
    assert found["skipped"] == skipped
    assert found["passed"] == set(rows) - failed - skipped
    requirement = GRPC_VARIANTS[run.partition("@")[0]][0]
    if requirement in failed:  # the requirement the bug is about fails at MUST, named in its first finding
        assert rows[requirement]["failed_level"] == "MUST"
        assert rows[requirement]["failures"][0].split(": ", 2)[1].startswith(requirement)


@pytest.mark.slow
def test_the_byte_order_finding_names_the_request_and_the_element(grpc_verdicts):
    _, report, output = grpc_verdicts["grpc-fp16-byte-order"]
    assert report is not None, output
    (row,) = [row for row in report["requirements"] if row["id"] == "G-AGREE"]
    assert re.search(r"^dtype-fp16\.json: G-AGREE /outputs/0/data/0: output 'values' element \[0\]: \S+ \(0x00c2\) "
                     r"over gRPC, -3\.0 \(0xc200\) over REST$", row["failures"][0]), row


def test_the_byte_order_mutant_differs_from_the_reference_only_in_raw_fp16_over_grpc(tmp_path):
    from conformance.transport.grpc_v2 import codec
    from peers.servers import call
    from test_reference_server import make_model, stop

    request = {"inputs": [{"name": "h", "shape": [2], "datatype": "FP16", "data": [1.0, 3.0]},
                          {"name": "f", "shape": [1], "datatype": "FP32", "data": [1.5]}]}
    seen = {}
    for variant in ("grpc-fp16-byte-order", None):
        process, port, grpc_port = start_both(make_model(tmp_path / f"model-{variant}"), variant)
        try:
            client = GrpcClient(f"127.0.0.1:{grpc_port}", timeout=10)
            got = client.infer(codec.request_message(request, "multiplier"))
            client.close()
            seen[variant] = (call(port, "POST", "/v2/models/multiplier/infer", request).body,
                             list(got.response.raw_output_contents))
        finally:
            stop(process)
    (rest, raw), (reference_rest, reference_raw) = seen["grpc-fp16-byte-order"], seen[None]
    assert rest == reference_rest
    assert reference_raw == [b"\x00\x40\x00\x46", b"\x00\x00\x40\x40"]  # 2.0 and 6.0 little-endian; FP32 3.0
    assert raw == [b"\x40\x00\x46\x00", b"\x00\x00\x40\x40"]  # FP16 swapped, FP32 untouched
