"""The iris model as an MLServer 1.7 custom runtime: predictor.py's model behind MLServer's REST (and gRPC) API.

A model folder for ``mlserver start REPOSITORY`` holds this file, ``predictor.py`` next to it and a
model-settings.json such as (name and version as in the model's odahuflow.project.yaml)::

    {"name": "iris", "implementation": "mlserver_runtime.Iris",
     "parameters": {"uri": "/path/to/examples/iris/model", "version": "1"},
     "inputs": [...], "outputs": [...]}           # the signature, copied from examples/iris/model/model-settings.json

(``tests/peers/servers.py`` lays it out so.) ``uri`` is the model folder predictor.py reads: weights.json and
odahuflow.project.yaml. Each request is handed to ``predictor.serve`` as the JSON document MLServer parsed, so
this runtime answers exactly what the batch predictor writes for the same request: the same checks, the same
probabilities (float64 softmax rounded once to float32), the same labels, the same ``outputs`` selection. A
request predictor.py refuses gets MLServer's ``InferenceError``: status 400 and ``{"error": the same line}``.
What MLServer itself does before and after the runtime (its pydantic validation of the body, the ``id`` it
makes up when the request has none, the ``parameters`` it adds) is MLServer's doing.

The model's name and version in the answers are the project file's (predictor.py reads them); MLServer routes
by model-settings.json's, so the two must agree: ``load`` refuses the model when they do not.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from mlserver import MLModel
from mlserver.errors import InferenceError, MLServerError
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput
from mlserver.utils import get_model_uri


def _predictor():
    """examples/iris/predictor.py, from this file's folder (a model folder holds a copy next to this file)."""
    name = "odahu_iris_predictor"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "predictor.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


predictor = _predictor()


class Iris(MLModel):
    async def load(self) -> bool:
        try:
            self.model = predictor.load_model(await get_model_uri(self.settings), "")
        except predictor.ConfigError as error:
            raise MLServerError(f"iris: {error}", status_code=500) from None
        if (self.model.name, self.model.version) != (self.name, self.version):
            raise MLServerError(f"iris: model-settings.json serves {self.name!r} version {self.version!r}, the "
                                f"project file says {self.model.name!r} version {self.model.version!r}", 500)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        answer = predictor.serve(json.dumps(request_document(payload)).encode(), self.model)
        if "error" in answer:
            raise InferenceError(answer["error"])
        return InferenceResponse(model_name=answer["model_name"], model_version=answer["model_version"],
                                 id=answer.get("id"), outputs=[ResponseOutput(**tensor) for tensor in answer["outputs"]])


def request_document(payload: InferenceRequest) -> dict:
    """The V2 request as the client sent it, from MLServer's parsed ``payload``: without the HTTP headers that
    MLServer's REST layer inserts into ``parameters.headers``, and without the fields the client left out."""
    document = payload.model_dump(exclude_none=True)
    parameters = document.get("parameters")
    if isinstance(parameters, dict):
        parameters.pop("headers", None)
        if not parameters:
            del document["parameters"]
    return document
