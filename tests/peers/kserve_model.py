"""The multiplier as a KServe 0.21 Python model server: a ``kserve.Model`` started by ``kserve.ModelServer``.

    python kserve_model.py --model_dir DIR --http_port PORT [--model_name multiplier]
    python kserve_model.py --iris --model_dir examples/iris/model --http_port PORT
    (either with --with_grpc --grpc_port PORT2: gRPC served too, on 127.0.0.1:PORT2)

(DIR holds multiplier.txt.) With ``--iris`` it serves examples/iris/kserve_model.py's model instead (alone, with
the same loopback binding). Every input tensor comes back, under its own name and datatype, decoded with
``InferInput.as_numpy`` and multiplied by the integer in multiplier.txt (kept an array for a scalar tensor: numpy
makes a 0-d array times an int a scalar, which KServe's ``set_data_from_numpy`` refuses). The model checks
nothing itself and ignores the request's ``outputs``: what the tests observe about bad requests and ``outputs``
is KServe's own doing.

``Echo`` (the model "echo", served next to it) answers every input tensor as it came, without decoding it: what
it is refused is what KServe itself refuses before any model code runs.

KServe 0.21 hard-codes its REST host (``0.0.0.0``) and its gRPC address (``[::]``). The tests' servers bind to
loopback only, so this script makes uvicorn's Config bind 127.0.0.1, and starts no gRPC server unless given
``--with_grpc``; then KServe's gRPC server binds 127.0.0.1 on ``--grpc_port`` (its ``[::]`` rewritten).

With ``ODAHU_PEER_NEVER_READY=1`` in its environment the model is registered ready (KServe refuses to start
otherwise) and turns not ready in ``start``, which KServe calls right after registering it: the tests observe
what a server with a registered but not-ready model answers."""

import argparse
import importlib.util
import os
import types
from pathlib import Path

import numpy as np
import uvicorn

import kserve
from kserve import InferOutput, InferRequest, InferResponse
from kserve.protocol.grpc import server as kserve_grpc_server

IRIS_KSERVE = Path(__file__).resolve().parent.parent.parent / "examples" / "iris" / "kserve_model.py"
_Config = uvicorn.Config


def _loopback_config(*args, **kwargs):
    kwargs["host"] = "127.0.0.1"
    return _Config(*args, **kwargs)


uvicorn.Config = _loopback_config  # kserve.protocol.rest.server calls uvicorn.Config(app, host="0.0.0.0", ...)
_aio_server = kserve_grpc_server.aio.server


def _loopback_grpc_server(*args, **kwargs):
    server = _aio_server(*args, **kwargs)
    add_insecure_port = server.add_insecure_port
    server.add_insecure_port = lambda address: add_insecure_port(address.replace("[::]:", "127.0.0.1:"))
    return server


# kserve.protocol.grpc.server calls aio.server(...).add_insecure_port(f"[::]:{port}")
kserve_grpc_server.aio = types.SimpleNamespace(server=_loopback_grpc_server)


class Multiplier(kserve.Model):
    def __init__(self, name: str, model_dir: str):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.multiplier = 0

    def load(self) -> bool:
        self.multiplier = int((self.model_dir / "multiplier.txt").read_text())
        self.ready = True
        return self.ready

    def start(self) -> None:
        if os.environ.get("ODAHU_PEER_NEVER_READY") == "1":
            self.ready = False

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        outputs = []
        for tensor in payload.inputs:
            product = np.asarray(tensor.as_numpy() * self.multiplier)  # a 0-d array times an int is a scalar
            output = InferOutput(name=tensor.name, shape=list(product.shape), datatype=tensor.datatype)
            output.set_data_from_numpy(product, binary_data=False)
            outputs.append(output)
        return InferResponse(response_id=payload.id, model_name=self.name, infer_outputs=outputs)


class Echo(kserve.Model):
    def load(self) -> bool:
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        outputs = [InferOutput(name=tensor.name, shape=tensor.shape, datatype=tensor.datatype, data=tensor.data)
                   for tensor in payload.inputs]
        return InferResponse(response_id=payload.id, model_name=self.name, infer_outputs=outputs)


if __name__ == "__main__":
    own = argparse.ArgumentParser()
    own.add_argument("--model_dir", required=True)
    own.add_argument("--iris", action="store_true")
    own.add_argument("--with_grpc", action="store_true")  # not "--grpc": an abbreviation of KServe's --grpc_*
    known = own.parse_known_args()[0]
    model_dir = known.model_dir
    args = kserve.model_server.args  # KServe's own options (--http_port, --model_name, ...), parsed on import
    if known.iris:
        spec = importlib.util.spec_from_file_location("odahu_iris_kserve", IRIS_KSERVE)
        assert spec is not None and spec.loader is not None
        iris = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(iris)
        iris.serve(model_dir, http_port=args.http_port, enable_grpc=known.with_grpc, grpc_port=args.grpc_port,
                   workers=1)
        raise SystemExit(0)
    model = Multiplier(args.model_name, model_dir)
    model.load()
    echo = Echo("echo")
    echo.load()
    kserve.ModelServer(http_port=args.http_port, enable_grpc=known.with_grpc, grpc_port=args.grpc_port,
                       workers=1).start([model, echo])
