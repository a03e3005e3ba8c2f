"""The conformance suite run online (``--url``) against the real peers MLServer 1.7.1 and KServe 0.21.0, each
serving the multiplier and the iris example; each report pinned exactly as measured (tests/peers/FACTS.md, "The
suite's reports"): the status of every requirement, and for each failed one a phrase of why. A release of either
server, or a change of the kit's checks, that moves one verdict fails here, naming the requirement.

Each run is the suite in a subprocess with the project's python, as a user runs it:
``pytest --pyargs conformance.suite --url http://127.0.0.1:PORT --model-name NAME --conformance-report R.json``.

The ``..._over_both_transports`` tests start each peer with its V2 gRPC endpoint too and add ``--grpc
127.0.0.1:GRPC_PORT``: every request goes over both transports, the ``G-*`` requirements are judged (G-AGREE: the
two answers to one request are one answer), and the report is pinned the same way (tests/peers/FACTS.md, "Over
gRPC").
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from peers import servers

pytestmark = pytest.mark.slow

CHECKOUT = servers.CHECKOUT


@dataclasses.dataclass(frozen=True)
class Expected:
    """A report: ``failed`` maps each failed requirement to a phrase its failures contain; ``not_checked`` and
    ``skipped`` name the requirements with those statuses; every other requirement passed."""

    failed: dict[str, str]
    not_checked: frozenset[str] = frozenset()
    skipped: frozenset[str] = frozenset()


def run_suite(server: servers.Server, model_name: str, options: tuple[str, ...], report: Path) -> dict:
    """The suite's report against ``server``; the run's output is in the assertion when there is no report."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-q", "-p", "no:cacheprovider",
         "--url", f"http://{servers.HOST}:{server.port}", "--model-name", model_name,
         "--conformance-report", str(report), "--keep-workspaces", "0", *options],
        cwd=CHECKOUT, capture_output=True, text=True, timeout=600)
    assert report.is_file(), f"no report (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    return json.loads(report.read_text())


def verdicts(report: dict) -> dict[str, tuple[str, str]]:
    """{requirement: (status, its failures or reason as one text)}."""
    return {row["id"]: (row["status"], " | ".join(row["failures"]) or row.get("reason", ""))
            for row in report["requirements"]}


def assert_report(report: dict, expected: Expected, grpc: bool = False) -> None:
    """``grpc``: the run had a gRPC target, so G-* are judged like the rest (else each is skipped)."""
    got = verdicts(report)
    wanted = {rid: "failed" for rid in expected.failed}
    wanted.update({rid: "not-checked" for rid in expected.not_checked})
    wanted.update({rid: "skipped" for rid in expected.skipped})
    if not grpc:
        wanted.update({rid: "skipped" for rid in got if rid.startswith("G-")})  # --url alone: no gRPC target
    statuses = {rid: status for rid, (status, _) in got.items()}
    assert statuses == {rid: wanted.get(rid, "passed") for rid in got}, {
        rid: got[rid] for rid in got if statuses[rid] != wanted.get(rid, "passed")}
    for rid, phrase in expected.failed.items():
        assert phrase in got[rid][1], (rid, got[rid][1])
    if "H-BINARY" in expected.skipped:  # neither peer lists the extension (KServe serves it all the same)
        assert got["H-BINARY"][1] == "the server does not list binary_tensor_data in GET /v2 extensions", got["H-BINARY"]


BATCH_ONLY = frozenset({"P-ENV", "P-OUTDIR", "P-EVERY", "P-NAME", "P-READONLY", "P-EXIT", "P-CONFIG", "P-ISOLATE",
                        "P-TIMELY", "P-OFFLINE"})  # "a V2 server: the batch protocol ... does not apply online"
#: "the server does not list binary_tensor_data in GET /v2 extensions": MLServer lists [], KServe
#: ["model_repository_extension"]
NOT_LISTED = frozenset({"H-BINARY"})
MULTIPLIER_ONLY = frozenset({"M-EVERY", "M-SELECT", "M-SHAPE", "M-DTYPE", "M-VALUE", "M-LAYOUT", "M-EMPTY",
                             "M-FINITE", "M-UNSUPPORTED", "M-MULTIPLIER"})
NO_ID = "F-ID (SHOULD) /id: is '"  # F-ID's SHOULD part: both answer a request without id with a made-up UUID
NOT_ERROR_BODY = 'with a body that is not {"error": string}'  # H-ERROR: FastAPI's 422 {"detail": [...]}
SERVER_ERROR = "status 500 (a server error) for a request the model cannot serve"  # H-ERROR: a bad shape
NULL_VERSIONS = "/versions: None is not of type 'array'"  # H-METADATA: KServe's "versions": null
EMPTY_VERSIONS = "/versions: [] does not hold the model's version '1'"  # H-METADATA (SHOULD): MLServer's []
VERSION_501 = "status 501, body '{\"error\":\"Model versioning not supported yet.\"}'"  # H-UNKNOWN: KServe
# KServe answers "parameters": null on every output (F-SCHEMA); the tensors are still decoded and judged (a
# finding about a tensor's parameters alone blocks nothing else)
NULL_PARAMETERS = "/outputs/0/parameters: None is not of type 'object'"

MULTIPLIER = {
    # the runtime decodes and encodes with NumpyCodec and checks nothing: MLServer's own checks are what refuse
    "mlserver": Expected(
        failed={"F-ID": NO_ID,
                "F-SCHEMA": "tensor name 'a' repeats",  # the outputs of a request with two inputs named 'a'
                "F-TYPED": "None: FP16 takes JSON numbers",  # an FP16 infinity answered as null
                "H-ERROR": SERVER_ERROR,
                "H-METADATA": EMPTY_VERSIONS,
                "M-FINITE": "overflows to infinity), got outputs",
                "M-SELECT": "differ from the expected",  # `outputs` ignored (kserve#3307's kind)
                "M-SHAPE": "is [4, 1], the input's is [4]",  # NumpyCodec adds a batch axis
                "M-UNSUPPORTED": "BOOL is not supported by the multiplier), got outputs"},
        skipped=BATCH_ONLY | NOT_LISTED | {"M-MULTIPLIER", "B-MATCH", "B-SIGNATURE"}),
    "kserve": Expected(
        failed={"F-SCHEMA": "/model_version: None is not of type 'string'",  # (only F-SCHEMA's: not also F-MODEL's)
                "H-ERROR": SERVER_ERROR,
                "H-METADATA": NULL_VERSIONS,
                "H-UNKNOWN": VERSION_501,
                # a request without id: the model echoes None and KServe's own response model refuses it (500)
                "M-EMPTY": "validation error for InferenceResponse",
                "M-LAYOUT": "validation error for InferenceResponse",
                "M-FINITE": "Sending FP16 data via JSON is not supported",  # a valid FP16 request refused
                "M-VALUE": "Sending FP16 data via JSON is not supported",
                "M-SELECT": "differ from the expected",
                "M-UNSUPPORTED": "BYTES is not supported by the multiplier), got outputs"},
        skipped=BATCH_ONLY | NOT_LISTED | {"M-MULTIPLIER", "B-MATCH", "B-SIGNATURE"}),
}

IRIS_PYTHON = ("--model", str(servers.IRIS_MODEL), "--oracle", f"python:{servers.IRIS / 'reference.py'}:answer")
IRIS_RECORDED = ("--model", str(servers.IRIS_MODEL), "--oracle", "recorded", "--fixtures-dir",
                 str(servers.IRIS / "fixtures"))
IRIS = {
    # predictor.py's own checks behind each server: only what the server adds or refuses before it fails
    "mlserver": Expected(failed={"F-ID": NO_ID, "H-ERROR": NOT_ERROR_BODY, "H-METADATA": EMPTY_VERSIONS}),
    "kserve": Expected(
        failed={"F-ID": NO_ID,  # the model's UUID: KServe's response model refuses a null id
                "F-SCHEMA": NULL_PARAMETERS,
                "H-ERROR": NOT_ERROR_BODY, "H-METADATA": NULL_VERSIONS, "H-UNKNOWN": VERSION_501}),
}


@pytest.mark.parametrize("peer", ["mlserver", "kserve"])
def test_the_multiplier_on_a_peer(peer, tmp_path):
    with servers.serving(peer, "multiplier") as server:
        report = run_suite(server, servers.MODEL_NAME, (), tmp_path / "report.json")
    assert_report(report, MULTIPLIER[peer])


@pytest.mark.parametrize("peer", ["mlserver", "kserve"])
def test_iris_on_a_peer_against_scikit_learn(peer, tmp_path):
    with servers.serving(peer, "iris") as server:
        report = run_suite(server, servers.IRIS_NAME, IRIS_PYTHON, tmp_path / "report.json")
    expected = IRIS[peer]
    assert_report(report, Expected(expected.failed, expected.not_checked,
                                   BATCH_ONLY | NOT_LISTED | MULTIPLIER_ONLY | {"K-GOLDEN"}))  # no goldens given


@pytest.mark.parametrize("peer", ["mlserver", "kserve"])
def test_iris_on_a_peer_against_the_recorded_goldens(peer, tmp_path):
    with servers.serving(peer, "iris") as server:
        report = run_suite(server, servers.IRIS_NAME, IRIS_RECORDED, tmp_path / "report.json")
    expected = IRIS[peer]
    assert_report(report, Expected(expected.failed, expected.not_checked, BATCH_ONLY | NOT_LISTED | MULTIPLIER_ONLY))


def test_mlserver_on_the_versioned_routes_gets_the_same_report(tmp_path):
    """``--model-version 1``: every route with ``/versions/1``. MLServer serves them as the unversioned ones (its
    metadata lists ``"versions": []`` all the same: H-METADATA's SHOULD part)."""
    with servers.serving("mlserver", "multiplier") as server:
        report = run_suite(server, servers.MODEL_NAME, ("--model-version", servers.MLSERVER_MODEL_VERSION),
                           tmp_path / "report.json")
    assert_report(report, MULTIPLIER["mlserver"])


def test_kserve_on_the_versioned_routes_serves_nothing(tmp_path):
    """``--model-version 1``: KServe answers every versioned route 501 "Model versioning not supported yet.", so
    no inference is ever served. Requirements judged on an inference's outputs are not-checked, H-INFER too (no
    inference response was ever seen); the requests owed an answer fail with that 501, and those owed a refusal
    fail H-ERROR with it (a 5xx): M-UNSUPPORTED itself passes (a refusal came), as B-DETERMINISTIC and
    B-INDEPENDENT do (the same 501 each time)."""
    with servers.serving("kserve", "multiplier") as server:
        report = run_suite(server, servers.MODEL_NAME, ("--model-version", "1"), tmp_path / "report.json")
    versioning = "Model versioning not supported yet."
    assert_report(report, Expected(
        failed={"H-READY": "versions/1/ready: H-READY: status 501", "H-METADATA": "status 501",
                "H-ERROR": "status 501 (a server error)", "H-UNKNOWN": VERSION_501,
                **{rid: f"error response '{versioning}' to a request the model serves"
                   for rid in ("M-EMPTY", "M-FINITE", "M-LAYOUT", "M-SELECT", "M-VALUE")}},
        not_checked=frozenset({"F-COUNT", "F-MODEL", "F-TYPED", "M-DTYPE", "M-EVERY", "M-SHAPE", "H-INFER"}),
        skipped=BATCH_ONLY | NOT_LISTED | {"M-MULTIPLIER", "B-MATCH", "B-SIGNATURE"}))


def grpc_target(server: servers.Server) -> tuple[str, ...]:
    assert server.grpc_port is not None
    return ("--grpc", f"{servers.HOST}:{server.grpc_port}")


#: G-UNKNOWN over gRPC: KServe serves a version it does not have with OK (REST: 501)
UNKNOWN_VERSION_OK = "version odahu-conformance-no-such-version: G-UNKNOWN: status OK; expected NOT_FOUND"
#: G-ERROR over gRPC as H-ERROR over REST: the runtime's values where a refusal is owed
SERVED_OVER_GRPC = "OK with a response for a request the model cannot serve (M-FINITE: output 'h'"
#: over both transports: REST's failures, plus what gRPC adds (tests/peers/FACTS.md, "Over gRPC")
MULTIPLIER_BOTH = {
    "mlserver": dataclasses.replace(MULTIPLIER["mlserver"], failed={
        **MULTIPLIER["mlserver"].failed, "G-ERROR": SERVED_OVER_GRPC,
        # large.json (7.4 MB) served over REST, refused by gRPC's default 4 MB message limit
        "G-AGREE": "large.json: G-AGREE: answered with values over REST, refused over gRPC ('SERVER: Received "
                   "message larger than max (7434564 vs. 4194304)')"}),
    "kserve": dataclasses.replace(MULTIPLIER["kserve"], failed={
        **MULTIPLIER["kserve"].failed, "G-ERROR": SERVED_OVER_GRPC,
        "G-UNKNOWN": UNKNOWN_VERSION_OK,
        # FP16 in JSON refused over REST, served over gRPC (typed fp16 contents)
        "G-AGREE": "G-AGREE: refused over REST ('Sending FP16 data via JSON is not supported. Please use the "
                   "binary data format for input"}),
}


@pytest.mark.parametrize("peer", ["mlserver", "kserve"])
def test_the_multiplier_on_a_peer_over_both_transports(peer, tmp_path):
    """KServe started with its gRPC server (patched to bind loopback as its REST one is), MLServer on its
    grpc_port; both still listen on 127.0.0.1 alone."""
    with servers.serving(peer, "multiplier", grpc=True) as server:
        assert {str(address) for address in servers.listening_addresses(server)} == {servers.HOST}
        report = run_suite(server, servers.MODEL_NAME, grpc_target(server), tmp_path / "report.json")
    assert_report(report, MULTIPLIER_BOTH[peer], grpc=True)


#: iris over both transports: each peer's gRPC answers agree with its REST ones (G-AGREE passes)
IRIS_BOTH = {"mlserver": IRIS["mlserver"],
             "kserve": Expected(failed={**IRIS["kserve"].failed, "G-UNKNOWN": UNKNOWN_VERSION_OK})}


@pytest.mark.parametrize("peer", ["mlserver", "kserve"])
def test_iris_on_a_peer_over_both_transports(peer, tmp_path):
    with servers.serving(peer, "iris", grpc=True) as server:
        report = run_suite(server, servers.IRIS_NAME, (*grpc_target(server), *IRIS_PYTHON), tmp_path / "report.json")
    assert_report(report, Expected(IRIS_BOTH[peer].failed, skipped=BATCH_ONLY | NOT_LISTED | MULTIPLIER_ONLY
                                   | {"K-GOLDEN"}), grpc=True)
