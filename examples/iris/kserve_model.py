"""The iris model as a KServe 0.21 Python model: predictor.py's model in a ``kserve.Model``, served by
``kserve.ModelServer`` over V2 REST.

    python examples/iris/kserve_model.py --model_dir examples/iris/model [--http_port 8080] [KServe's options]

``--model_dir`` is the model folder predictor.py reads (weights.json, odahuflow.project.yaml); the model is
served under the project file's name (``--model_name`` is ignored) and answers with its version; its metadata
declares the signature of the folder's model-settings.json. Each request
is handed to ``predictor.serve`` as the V2 JSON document KServe parsed, so this model answers exactly what the
batch predictor writes for the same request: the same checks, probabilities, labels and ``outputs`` selection.
A request predictor.py refuses gets KServe's ``InvalidInput``: status 400 and ``{"error": the same line}``.
A request without ``id`` is answered with a new UUID as its id, as KServe's own custom-model examples do
(KServe's response model refuses a null id: tests/peers/FACTS.md). What KServe does before and after the model
(its body validation, versioned routes, re-encoding each output tensor from numpy) is KServe's doing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import kserve
from kserve import InferOutput, InferRequest, InferResponse
from kserve.errors import InvalidInput
from kserve.utils.utils import generate_uuid


def _predictor():
    """examples/iris/predictor.py, from this file's folder."""
    name = "odahu_iris_predictor"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "predictor.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


predictor = _predictor()


class Iris(kserve.Model):
    """The model in ``model_dir``, named as its project file says (``predictor.ConfigError`` when unusable)."""

    def __init__(self, model_dir: str):
        self.model = predictor.load_model(model_dir, "")
        super().__init__(self.model.name)
        settings = Path(model_dir) / "model-settings.json"  # optional; predictor.load_model checked it is JSON
        self.signature = json.loads(settings.read_text()) if settings.is_file() else {}

    def get_input_types(self) -> list[dict]:
        """The declared inputs (model-settings.json), for KServe's model metadata."""
        return tensor_types(self.signature.get("inputs"))

    def get_output_types(self) -> list[dict]:
        return tensor_types(self.signature.get("outputs"))

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        answer = predictor.serve(json.dumps(request_document(payload)).encode(), self.model)
        if "error" in answer:
            raise InvalidInput(answer["error"])
        outputs = [InferOutput(name=t["name"], shape=t["shape"], datatype=t["datatype"], data=t["data"])
                   for t in answer["outputs"]]
        return InferResponse(response_id=answer.get("id") or generate_uuid(), model_name=answer["model_name"],
                             model_version=answer["model_version"], infer_outputs=outputs)


def tensor_types(declared: object) -> list[dict]:
    """``{name, datatype, shape}`` of each declared tensor (their ``parameters`` are not V2 metadata)."""
    if not isinstance(declared, list):
        return []
    return [{key: tensor[key] for key in ("name", "datatype", "shape")} for tensor in declared]


def request_document(payload: InferRequest) -> dict:
    """The V2 request as the client sent it, from KServe's parsed ``payload`` (absent fields left out; KServe
    gives an absent tensor ``parameters`` as ``{}``)."""
    document: dict = {}
    if payload.id is not None:
        document["id"] = payload.id
    if payload.parameters:
        document["parameters"] = dict(payload.parameters)
    document["inputs"] = []
    for tensor in payload.inputs:
        item = {"name": tensor.name, "shape": tensor.shape, "datatype": tensor.datatype, "data": tensor.data}
        if tensor.parameters:
            item["parameters"] = dict(tensor.parameters)
        document["inputs"].append(item)
    if payload.request_outputs is not None:
        document["outputs"] = [{"name": output.name, **({"parameters": dict(output.parameters)}
                                                        if output.parameters else {})}
                               for output in payload.request_outputs]
    return document


def serve(model_dir: str, **options) -> None:
    """Serve the iris model in ``model_dir`` until stopped (``options``: kserve.ModelServer's, whose defaults
    are KServe's command-line options)."""
    model = Iris(model_dir)
    model.load()
    kserve.ModelServer(**options).start([model])


def main(argv: list[str] | None = None) -> None:
    own = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    own.add_argument("--model_dir", required=True, help="the iris model folder (weights.json, project file)")
    args, _ = own.parse_known_args(argv)  # the rest are KServe's own (kserve.model_server.args, parsed on import)
    serve(args.model_dir)


if __name__ == "__main__":
    main()
