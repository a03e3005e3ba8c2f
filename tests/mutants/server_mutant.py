#!/usr/bin/env python3
"""Deliberately broken V2 servers, for showing that the online suite rejects each kind of defect.

    python tests/mutants/server_mutant.py --variant NAME [server.py's options: --host, --port, --model]

runs the reference V2 server (predictor/server.py) with exactly one plausible bug, chosen by NAME (see
``VARIANTS``: each names the requirement it breaks); everything else, the ready line on stderr and the stop on
SIGTERM included, is the reference's own. Nothing of server.py is copied: its module-level ``answer`` (what a
routed request gets) and ``Handler`` (how it is written), and for the binary variants ``split_binary`` (where each
binary input's bytes are) or ``output_bytes`` (an output's binary data), are replaced by versions that call the
originals and then spoil their result, or do the one thing wrong, and server.py's ``main`` is run as it is.

"Refused" below means an infer request the reference answers with its 400 error body (reference.py's
RequestError); "big" counts the elements of all the request's input tensors' data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "predictor"))
import reference  # noqa: E402
import server  # noqa: E402

#: variant -> the requirement its bug breaks (what the suite must name), and the bug in one line.
VARIANTS: dict[str, tuple[str, str]] = {
    "error-500": ("H-ERROR", "a refused request gets 500 (its {error} body kept), as servers do for shape mismatches"),
    "error-detail-422": ("H-ERROR", "a refused request gets 422 {detail: [{msg}]} (MLServer's pydantic style)"),
    "error-status-200": ("H-ERROR", "a refused request gets 200 with its {error} body"),
    "text-plain": ("H-INFER", "a successful inference answer carries Content-Type: text/plain"),
    "ignores-outputs": ("M-SELECT", "the request's outputs selection is ignored: every input answered (kserve#3307)"),
    "drops-id": ("F-ID", "no answer to infer carries the request's id"),
    "health-not-ready": ("H-HEALTH", "/v2/health/ready is 503 (live 200) while inference works"),
    "model-ready-404": ("H-READY", "/v2/models/NAME[/versions/V]/ready is 404"),
    "metadata-wrong-name": ("H-METADATA", "the model's metadata names another model"),
    "any-model-name": ("H-UNKNOWN", "infer for any model name is served as the model"),
    "any-version": ("H-UNKNOWN", "infer for any version string is served"),
    "unknown-model-500": ("H-UNKNOWN", "a route naming an unknown model is 500 (a KeyError in the model lookup)"),
    "shared-scratch": ("B-INDEPENDENT", "answers pass through one process-wide buffer, unlocked (triton#7171)"),
    "hangs-on-big": ("H-TIMELY", "a request of over 10,000 elements is never answered"),
    "dies-after-refusal": ("H-ERROR", "the process exits after answering its first refused request (400)"),
    # nondeterminism, but with the multiplier's exact oracle both of two answers are wrong: M-VALUE's, not
    # B-DETERMINISTIC's (a difference findings on both answers explain is not counted again)
    "jitter-big": ("M-VALUE", "float outputs of requests of over 1000 elements get relative noise 1e-6"),
    "hardcoded-multiplier": ("M-MULTIPLIER", "multiplies by 2 whatever multiplier.txt says (never reads it)"),
    # only a server the kit starts (--serve) is seen before it is ready: through --url it passes
    "serves-before-ready": ("H-READY", "/v2/health/ready is 503 until it has answered an inference (kserve#2775)"),
    # the binary tensor data extension (the reference lists it): JSON requests are answered as the reference's
    "binary-big-endian": ("H-BINARY", "binary outputs are written big-endian"),
    "binary-offset-zero": ("H-BINARY", "every binary input is read from the first byte after the JSON (offsets "
                                       "not summed)"),
    "binary-ignores-size": ("H-BINARY", "binary_data_size is ignored: each binary input takes what its shape and "
                                        "datatype need, so sizes beyond the body are not refused"),
}
#: The same for bugs over gRPC only (started with --grpc-port; their REST answers are the reference's):
#: tests/test_grpc_online.py states each one's report.
GRPC_VARIANTS: dict[str, tuple[str, str]] = {
    "grpc-fp16-byte-order": ("G-AGREE", "raw FP16 outputs are written big-endian (each element's two bytes swapped)"),
    "grpc-refusal-internal": ("G-ERROR", "a refused request gets INTERNAL (its message kept)"),
    "grpc-raw-short": ("G-INFER", "raw output contents lose their last byte"),
    "grpc-hangs-on-big": ("G-TIMELY", "a request of over 10,000 elements is answered after 20 s"),
    "grpc-server-not-ready": ("G-HEALTH", "ServerReady says false while inference works"),
    "grpc-model-not-ready": ("G-READY", "ModelReady says false while REST's ready route is 200"),
    "grpc-metadata-platform": ("G-METADATA", "ModelMetadata names another platform than GET /v2/models/NAME"),
    "grpc-any-model": ("G-UNKNOWN", "ModelInfer for any model name or version is served as the model"),
}

#: Set once an inference was answered (serves-before-ready says it is ready only from then on).
INFERRED = threading.Event()
HANG_ABOVE = 10_000
JITTER_ABOVE = 1000
JITTER = 1e-6
SCRATCH_SECONDS = 0.005  # between filling the shared buffer and reading it back: concurrent requests overlap
FLOATS = {"FP16", "FP32", "FP64"}

VARIANT = ""
original_answer = server.answer
original_read_binary = server.read_binary
original_output_bytes = server.output_bytes
original_load_model = reference.load_model
#: shared-scratch's process-wide buffer: the outputs of the request computed last, whoever's they are.
scratch: dict[str, list] = {"outputs": []}


def elements(body: bytes) -> int:
    """How many elements the data of all of the request's input tensors hold (0 when it is not such a request)."""
    def count(data: object) -> int:
        return sum(count(item) for item in data) if isinstance(data, list) else 1

    try:
        inputs = json.loads(body).get("inputs")
        return sum(count(tensor.get("data")) for tensor in inputs if isinstance(tensor.get("data"), list))
    except (ValueError, AttributeError, TypeError, RecursionError):
        return 0


def without_selection(body: bytes) -> bytes:
    """The request with its "outputs" removed, when it is strict JSON the reference would read; else as it is."""
    try:
        doc, duplicate, huge = reference.parse(body)
    except reference.RequestError:
        return body
    if duplicate or huge or not isinstance(doc, dict) or "outputs" not in doc:
        return body
    del doc["outputs"]
    return json.dumps(doc).encode()


def jittered(document: dict) -> dict:
    """Every float output times (1 + a random relative error of at most JITTER), in its own datatype."""
    for tensor in document.get("outputs", []):
        if tensor["datatype"] in FLOATS:
            dtype = reference.DTYPES[tensor["datatype"]]
            values = np.array(tensor["data"], dtype=np.float64)
            noise = np.array([1 + random.uniform(-JITTER, JITTER) for _ in range(values.size)])
            tensor["data"] = (values * noise).astype(dtype).tolist()
    return document


def answer(what: str, name: str | None, version: str | None, body: bytes,
           model: tuple[int, str, str]) -> tuple[int, dict]:
    """server.answer with VARIANT's bug."""
    model_name = model[1]
    if VARIANT == "any-model-name" and what == "infer":
        name = model_name
    if VARIANT == "any-version" and what == "infer":
        version = None
    if VARIANT == "unknown-model-500" and name is not None and name != model_name:
        raise KeyError(name)  # server.Handler answers 500 "internal error: KeyError: ..."
    if VARIANT == "health-not-ready" and what == "ready":
        return 503, {"ready": False}
    if VARIANT == "serves-before-ready" and what == "ready" and not INFERRED.is_set():
        return 503, {"ready": False}
    if VARIANT == "model-ready-404" and what == "model-ready":
        return 404, {"error": f"model {name!r} is not ready"}
    if what == "infer" and VARIANT == "ignores-outputs":
        body = without_selection(body)
    if what == "infer" and VARIANT == "hangs-on-big" and elements(body) > HANG_ABOVE:
        threading.Event().wait()  # forever; server.Handler's threads are daemons, so SIGTERM still stops it
    status, document = original_answer(what, name, version, body, model)
    if what == "infer" and status == 200:
        INFERRED.set()
    if VARIANT == "metadata-wrong-name" and what == "model" and status == 200:
        document["name"] = "model"
    if what != "infer":
        return status, document
    if VARIANT == "drops-id":
        document.pop("id", None)
    if status == 400 and VARIANT == "error-500":
        status = 500
    if status == 400 and VARIANT == "error-detail-422":
        status, document = 422, {"detail": [{"msg": document["error"]}]}
    if status == 400 and VARIANT == "error-status-200":
        status = 200
    if status == 200 and "outputs" in document:
        if VARIANT == "jitter-big" and elements(body) > JITTER_ABOVE:
            document = jittered(document)
        if VARIANT == "shared-scratch":
            scratch["outputs"] = document["outputs"]
            time.sleep(SCRATCH_SECONDS)
            document["outputs"] = scratch["outputs"]
    return status, document


def output_bytes_big_endian(tensor: dict) -> bytes:
    """server.output_bytes with each element's bytes reversed."""
    raw = original_output_bytes(tensor)
    size = reference.DTYPES[tensor["datatype"]].itemsize
    return b"".join(raw[at:at + size][::-1] for at in range(0, len(raw), size))


def split_binary_at_zero(rest: bytes, sizes: list[tuple[str, int]]) -> list[bytes]:
    """Each input's bytes from the start of ``rest``."""
    return [rest[:size] for _, size in sizes]


def read_binary_by_shape(body: bytes, header: str | None) -> tuple[bytes, tuple[bool, dict[str, bool]]]:
    """server.read_binary of the request with each binary input's binary_data_size replaced by the bytes its
    shape and datatype take."""
    if header is None or not header.strip().isdigit() or int(header) > len(body):
        return original_read_binary(body, header)
    try:
        doc = json.loads(body[:int(header)])
        for tensor in doc["inputs"]:
            if "binary_data_size" in tensor.get("parameters", {}):
                size = int(np.prod(tensor["shape"])) * reference.DTYPES[tensor["datatype"]].itemsize
                tensor["parameters"]["binary_data_size"] = size
    except (ValueError, KeyError, TypeError, AttributeError):
        return original_read_binary(body, header)
    head = json.dumps(doc).encode()
    return original_read_binary(head + body[int(header):], str(len(head)))


class Handler(server.Handler):
    """server.Handler with the variants' bugs in how an answer is written."""

    plain = False

    def reply(self, status: int, document: dict, headers: list[tuple[str, str]] | None = None) -> None:
        self.plain = VARIANT == "text-plain" and status == 200 and self.command == "POST"
        super().reply(status, document, headers)
        if VARIANT == "dies-after-refusal" and status == 400:
            self.wfile.flush()  # the refusal is answered, correctly; then the process is gone
            os._exit(1)

    def send_header(self, keyword: str, value: str) -> None:
        if self.plain and keyword.lower() == "content-type":
            value = "text/plain"
        super().send_header(keyword, value)


def load_model_with_two(model_dir: str) -> tuple[int, str, str]:
    """The model's name and version from its folder, and 2 for the multiplier: multiplier.txt is never read."""
    with tempfile.TemporaryDirectory() as copy:
        for project in ("odahuflow.project.yaml", "odahuflow.project.yml"):
            if os.path.isfile(os.path.join(model_dir, project)):
                Path(copy, project).write_bytes(Path(model_dir, project).read_bytes())
        Path(copy, "multiplier.txt").write_text("2\n")
        try:
            return original_load_model(copy)
        except reference.ConfigError as e:
            raise reference.ConfigError(str(e).replace(copy, model_dir)) from None


def break_grpc(variant: str) -> None:
    """grpc_server (the reference's gRPC half) with ``variant``'s bug: its ``response_message`` or its
    ``Servicer`` replaced by versions that call the originals and then spoil their result."""
    import grpc
    import grpc_server

    original_message = grpc_server.response_message

    def spoiled(response: dict, raw: bool) -> object:
        message = original_message(response, raw)
        for index, output in enumerate(message.outputs):
            if index >= len(message.raw_output_contents):
                break
            contents = message.raw_output_contents[index]
            if variant == "grpc-fp16-byte-order" and output.datatype == "FP16":
                message.raw_output_contents[index] = np.frombuffer(contents, dtype="<f2").astype(">f2").tobytes()
            if variant == "grpc-raw-short" and contents:
                message.raw_output_contents[index] = contents[:-1]
        return message

    class Refusing:
        """A servicer context whose INVALID_ARGUMENT aborts are INTERNAL ones."""

        def __init__(self, context: Any):
            self.context = context

        def abort(self, code: grpc.StatusCode, details: str) -> None:
            self.context.abort(grpc.StatusCode.INTERNAL if code == grpc.StatusCode.INVALID_ARGUMENT else code, details)

    class Servicer(grpc_server.Servicer):
        def _known(self, name: str, version: str, context: Any) -> None:
            if variant != "grpc-any-model":
                super()._known(name, version, context)

        def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
            answer = super().ServerReady(request, context)
            answer.ready = variant != "grpc-server-not-ready"
            return answer

        def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
            answer = super().ModelReady(request, context)
            answer.ready = variant != "grpc-model-not-ready"
            return answer

        def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
            answer = super().ModelMetadata(request, context)
            if variant == "grpc-metadata-platform":
                answer.platform = "another-platform"
            return answer

        def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
            if variant == "grpc-hangs-on-big" and sum(math.prod(t.shape) for t in request.inputs) > HANG_ABOVE:
                time.sleep(20)  # (not forever: the gRPC server's worker threads are joined at exit)
            if variant == "grpc-refusal-internal":
                context = Refusing(context)
            return super().ModelInfer(request, context)

    grpc_server.response_message = spoiled
    grpc_server.Servicer = Servicer  # type: ignore[misc]


def main(argv: list[str] | None = None) -> int:
    global VARIANT
    parser = argparse.ArgumentParser(prog="server_mutant.py", add_help=False)
    parser.add_argument("--variant", choices=sorted({**VARIANTS, **GRPC_VARIANTS}), required=True)
    known, rest = parser.parse_known_args(argv)
    VARIANT = known.variant
    server.answer = answer
    server.Handler = Handler  # type: ignore[misc]  # server.Server hands its connections to the module's Handler
    if VARIANT == "hardcoded-multiplier":
        reference.load_model = load_model_with_two
    if VARIANT == "binary-big-endian":
        server.output_bytes = output_bytes_big_endian
    if VARIANT == "binary-offset-zero":
        server.split_binary = split_binary_at_zero
    if VARIANT == "binary-ignores-size":
        server.read_binary = read_binary_by_shape
    if VARIANT in GRPC_VARIANTS and "--grpc-port" in rest:
        break_grpc(VARIANT)
    return server.main(rest)


if __name__ == "__main__":
    sys.exit(main())
