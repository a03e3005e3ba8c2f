"""The reference V2 server's gRPC half (``inference.GRPCInferenceService``), started by server.py with
``--grpc-port N``: the same model and the same answers as its REST routes (every inference is reference.py's
``serve``), over the Open Inference Protocol's gRPC interface.

    ServerLive, ServerReady            live / ready: true
    ServerMetadata                     {name, version, extensions: []} as GET /v2
    ModelMetadata, ModelReady          the model's, as GET /v2/models/NAME[/versions/V][/ready]; NOT_FOUND for a
                                       model or version it does not serve
    ModelInfer                         the response, its tensors in raw contents when the request's were (or an
                                       output is FP16, which has no typed field), else in the typed contents of
                                       their datatype; INVALID_ARGUMENT with reference.py's error for a request it
                                       refuses, or whose tensors cannot be read; NOT_FOUND for an unknown model

The tensors are read and written here with numpy, apart from the kit's codec (conformance.transport.grpc_v2.codec),
so that the kit's gRPC client is checked against an implementation of its own. The message classes are the kit's
generated stubs (the protocol's interface): the server needs grpcio, protobuf and the kit installed.
"""

from __future__ import annotations

import json
import math
import struct
from concurrent import futures
from typing import Any

import grpc
import numpy as np

import reference
from conformance.transport.grpc_v2 import open_inference_pb2 as pb
from conformance.transport.grpc_v2 import open_inference_pb2_grpc as pb_grpc

MAX_MESSAGE = 1 << 30
#: The typed contents field of each datatype (FP16: raw only).
FIELD = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
         "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
         "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}
#: The little-endian numpy type of each fixed-width datatype.
RAW = {"BOOL": "|b1", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "UINT8": "<u1",
       "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}


class Unreadable(Exception):
    """A request message whose tensors cannot be read (INVALID_ARGUMENT)."""


def _parameter(value: Any) -> object:
    which = value.WhichOneof("parameter_choice")
    return getattr(value, which) if which else None


def _elements(tensor: Any, raw: bytes | None) -> list:
    """A request tensor's flat elements, from its raw entry or its typed contents."""
    datatype = tensor.datatype
    if raw is None:
        field = FIELD.get(datatype)
        held = [f.name for f, _ in tensor.contents.ListFields()]
        if field is None or any(h != field for h in held):
            raise Unreadable(f"input {tensor.name!r}: {datatype} elements are not in "
                             f"{field or 'raw contents'}")
        values = list(getattr(tensor.contents, field))
        return [v.decode("utf-8", "surrogateescape") for v in values] if datatype == "BYTES" else values
    if datatype == "BYTES":
        values, at = [], 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise Unreadable(f"input {tensor.name!r}: raw BYTES contents end inside a length")
            (size,) = struct.unpack_from("<I", raw, at)
            if at + 4 + size > len(raw):
                raise Unreadable(f"input {tensor.name!r}: a raw BYTES element runs past the contents")
            values.append(raw[at + 4:at + 4 + size].decode("utf-8", "surrogateescape"))
            at += 4 + size
        return values
    if datatype not in RAW:
        raise Unreadable(f"input {tensor.name!r}: unknown datatype {datatype!r}")
    width = np.dtype(RAW[datatype]).itemsize
    count = math.prod(tensor.shape) if all(d >= 0 for d in tensor.shape) else -1
    if len(raw) != count * width:
        raise Unreadable(f"input {tensor.name!r}: raw contents of {len(raw)} bytes; shape "
                         f"{list(tensor.shape)} of {datatype} needs {count * width}")
    array = np.frombuffer(raw, dtype=RAW[datatype])
    return (array.astype(np.float64) if datatype.startswith("FP") else array).tolist()


def request_json(message: Any) -> bytes:
    """The JSON request a ModelInferRequest says (flat data), as reference.py reads a request file."""
    raws = list(message.raw_input_contents)
    inputs = message.inputs
    if raws and len(raws) != len(inputs):
        raise Unreadable(f"{len(raws)} raw contents for {len(inputs)} inputs")
    document: dict = {}
    if message.id:
        document["id"] = message.id
    if len(message.parameters):
        document["parameters"] = {k: _parameter(v) for k, v in message.parameters.items()}
    document["inputs"] = []
    for index, tensor in enumerate(inputs):
        made = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape),
                "data": _elements(tensor, raws[index] if raws else None)}
        if len(tensor.parameters):
            made["parameters"] = {k: _parameter(v) for k, v in tensor.parameters.items()}
        document["inputs"].append(made)
    if len(message.outputs):
        document["outputs"] = [{"name": o.name} for o in message.outputs]
    return json.dumps(document, allow_nan=False).encode("utf-8", "surrogateescape")


def _flat(data: object) -> list:
    return np.asarray(data, dtype=object).reshape(-1).tolist() if isinstance(data, list) else [data]


def response_message(response: dict, raw: bool) -> Any:
    """The ModelInferResponse of reference.py's response: raw contents when ``raw`` or an output is FP16."""
    message = pb.ModelInferResponse(model_name=response["model_name"], model_version=response.get("model_version", ""))
    if "id" in response:
        message.id = response["id"]
    raw = raw or any(o["datatype"] == "FP16" for o in response["outputs"])
    for output in response["outputs"]:
        tensor = message.outputs.add(name=output["name"], datatype=output["datatype"], shape=output["shape"])
        values = _flat(output["data"])
        if raw:
            little = RAW[output["datatype"]]  # (FP: the exact float64 values rounded to the datatype: exact)
            array = (np.array(values, dtype=np.float64).astype(little) if output["datatype"].startswith("FP")
                     else np.array(values, dtype=little))
            message.raw_output_contents.append(array.tobytes())
        else:
            getattr(tensor.contents, FIELD[output["datatype"]]).extend(values)
    return message


class Servicer(pb_grpc.GRPCInferenceServiceServicer):
    """The six calls, on ``model`` (multiplier, name, version)."""

    def __init__(self, model: tuple[int, str, str], name: str, version: str, platform: str):
        self.model, self.name, self.version, self.platform = model, name, version, platform

    def _known(self, name: str, version: str, context: grpc.ServicerContext) -> None:
        _, model_name, model_version = self.model
        if name != model_name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"model {name!r} not found (this server serves {model_name!r})")
        if version and version != model_version:
            context.abort(grpc.StatusCode.NOT_FOUND, f"model {name!r} has no version {version!r} (it has "
                                                     f"{model_version!r})")

    def ServerLive(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 - the protocol's names
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return pb.ServerReadyResponse(ready=True)

    def ServerMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return pb.ServerMetadataResponse(name=self.name, version=self.version, extensions=[])

    def ModelReady(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self._known(request.name, request.version, context)
        return pb.ModelReadyResponse(ready=True)

    def ModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self._known(request.name, request.version, context)
        return pb.ModelMetadataResponse(name=self.model[1], versions=[self.model[2]], platform=self.platform)

    def ModelInfer(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self._known(request.model_name, request.model_version, context)
        try:
            body = request_json(request)
        except (Unreadable, ValueError) as e:  # ValueError: a non-finite float in typed contents
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, reference.one_line(e))
        multiplier, name, version = self.model
        response = reference.serve(body, multiplier, name, version)
        if "error" in response:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, response["error"])
        return response_message(response, raw=len(request.raw_input_contents) > 0)


def start(host: str, port: int, model: tuple[int, str, str], name: str, version: str, platform: str) -> tuple[grpc.Server, int]:
    """A started gRPC server on ``host:port`` (0: a free port) and the port it listens on; OSError when it
    cannot listen there."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.so_reuseport", 0)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(model, name, version, platform), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # grpcio 1.5x returns 0 where later ones raise
        bound = 0
    if bound == 0:
        raise OSError(f"cannot listen on {address} for gRPC (in use, or not an address of this host)")
    server.start()
    return server, bound
