"""The multiplier as an MLServer 1.7 custom runtime, written the way MLServer's docs show one.

Loaded by MLServer from the model folder (model-settings.json: ``"implementation": "mlserver_runtime.Multiplier"``,
``parameters.uri``: multiplier.txt). Every input tensor comes back, under its own name, decoded with MLServer's
NumpyCodec and multiplied by the integer in multiplier.txt (numpy keeps the tensor's dtype). The runtime checks
nothing itself and ignores the request's ``outputs``: what the tests observe about bad requests and ``outputs``
is MLServer's own doing.

``Echo`` (the model "echo") answers every input tensor as it came, without decoding it: what it is refused is what
MLServer itself refuses before any model code runs.

With ``ODAHU_PEER_NEVER_READY=1`` in its environment, ``load`` reads the multiplier and returns False: MLServer
then serves the model as not ready (the tests observe what a not-ready server answers)."""

import os
from pathlib import Path

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput
from mlserver.utils import get_model_uri


class Multiplier(MLModel):
    async def load(self) -> bool:
        self.multiplier = int(Path(await get_model_uri(self.settings)).read_text())
        return os.environ.get("ODAHU_PEER_NEVER_READY") != "1"

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        outputs = [NumpyCodec.encode_output(name=tensor.name, payload=NumpyCodec.decode_input(tensor) * self.multiplier)
                   for tensor in payload.inputs]
        return InferenceResponse(model_name=self.name, model_version=self.version, id=payload.id, outputs=outputs)


class Echo(MLModel):
    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        outputs = [ResponseOutput(name=tensor.name, shape=tensor.shape, datatype=tensor.datatype, data=tensor.data)
                   for tensor in payload.inputs]
        return InferenceResponse(model_name=self.name, model_version=self.version, id=payload.id, outputs=outputs)
