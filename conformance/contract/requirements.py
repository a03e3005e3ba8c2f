"""The contract's requirements: fixed IDs, levels and one-line titles.

Every finding the kit reports names one of these IDs. ``M-*`` are the multiplier model's behaviour; ``B-*`` are
behaviour requirements of any model (the expected answers from recorded goldens or a reference function, the
declared signature, determinism and batch independence). ``H-*`` are a V2 server's own (online: status codes,
health, metadata); ``G-*`` its own over gRPC (``--grpc``); the batch ``P-*`` ones do not apply to a server, nor
the ``H-*`` and ``G-*`` ones to a batch predictor. Four requirements carry a SHOULD part beside their MUST
(``P-NAME``: same file name; ``F-MODEL``: ``model_version``; ``P-CONFIG``: a one-line reason; ``P-EXIT``: nothing
left running once the main process exits); findings for those parts carry level ``SHOULD``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

#: How binding a requirement (or one part of it) is.
Level = Literal["MUST", "SHOULD"]
MUST: Final = "MUST"
SHOULD: Final = "SHOULD"
#: Every level, strongest first.
LEVELS: tuple[Level, ...] = (MUST, SHOULD)


@dataclass(frozen=True)
class Requirement:
    """One requirement of the contract: its fixed ID, its level and a one-line title."""

    id: str
    level: Level
    title: str


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("P-ENV", MUST, "read ODAHU_MODEL_PATH, ODAHU_INPUT_PATH, write ODAHU_OUTPUT_PATH"),
    Requirement("P-OUTDIR", MUST, "create the output folder when absent; work when present"),
    Requirement("P-EVERY", MUST, "exactly one response file per request file"),
    Requirement("P-NAME", MUST, "only *.json files directly in the output folder (SHOULD: same name as the request)"),
    Requirement("P-READONLY", MUST, "input and model folders left byte-for-byte unchanged"),
    Requirement("P-EXIT", MUST, "exit 0 after a processed batch, including an empty one"),
    Requirement("P-CONFIG", MUST, "unusable model: non-zero exit, no responses (SHOULD: a one-line reason)"),
    Requirement("P-ISOLATE", MUST, "one unservable request does not stop the others"),
    Requirement("P-TIMELY", MUST, "finish within the run's timeout"),
    Requirement("P-OFFLINE", MUST, "need no network"),
    Requirement("F-JSON", MUST, "strict UTF-8 JSON, one top-level object, no NaN/Infinity, no duplicate keys"),
    Requirement("F-SCHEMA", MUST, "an inference response or an error response per the protocol"),
    Requirement("F-ID", MUST, "echo the request's id"),
    Requirement("F-MODEL", MUST, "model_name is the model's name (SHOULD: model_version is its version)"),
    Requirement("F-COUNT", MUST, "element count equals the product of shape; nested data matches the shape"),
    Requirement("F-TYPED", MUST, "every element representable in the declared datatype"),
    Requirement("M-EVERY", MUST, "one output per input tensor, same name, same order"),
    Requirement("M-SELECT", MUST, "requested outputs only, in the requested order; unknown name is an error"),
    Requirement("M-SHAPE", MUST, "output shape equals input shape"),
    Requirement("M-DTYPE", MUST, "output datatype equals input datatype"),
    Requirement("M-VALUE", MUST, "each element equals input x multiplier in the tensor's datatype"),
    Requirement("M-LAYOUT", MUST, "accept nested and flat input data"),
    Requirement("M-EMPTY", MUST, "zero-size tensors and scalars work"),
    Requirement("M-FINITE", MUST, "a float product overflowing to +-inf gets an error response"),
    Requirement("M-UNSUPPORTED", MUST, "BOOL and BYTES inputs get an error response"),
    Requirement("M-MULTIPLIER", MUST, "the multiplier is read from the model at run time"),
    Requirement("B-MATCH", MUST, "responses match the expected answers (recorded goldens or a reference function) "
                                 "within tolerance; errors stay errors"),
    Requirement("B-SIGNATURE", MUST, "a request following the declared input signature gets outputs following the "
                                     "declared output signature"),
    Requirement("B-DETERMINISTIC", MUST, "the same request gets the same response (twice in a batch, in two runs)"),
    Requirement("B-INDEPENDENT", MUST, "a request's response does not depend on the other files in its batch"),
    Requirement("H-HEALTH", MUST, "online: /v2/health/live and /v2/health/ready answer 200 while the server serves"),
    Requirement("H-READY", MUST, "online: /v2/models/{name}[/versions/{v}]/ready answers 200"),
    Requirement("H-METADATA", MUST, "online: server and model metadata are valid and name the model "
                                    "(SHOULD: they agree with its signature and its answers)"),
    Requirement("H-INFER", MUST, "online: an inference response comes with status 200 and application/json"),
    Requirement("H-ERROR", MUST, "online: a refusal is a 4xx with {\"error\": string}, never 5xx or 200, and the "
                                 "server serves on (SHOULD: status 400)"),
    Requirement("H-UNKNOWN", MUST, "online: an unknown model or version gets a 4xx with {\"error\": string}"),
    Requirement("H-TIMELY", MUST, "online: every request answered within the run's timeout"),
    Requirement("H-BINARY", MUST, "online, where the server lists binary_tensor_data: binary tensors get the JSON "
                                  "answers, bit for bit; sizes beyond the body get a 4xx (SHOULD: outputs binary "
                                  "when asked)"),
    Requirement("G-INFER", MUST, "gRPC: a served request gets OK and a response whose tensors can be read"),
    Requirement("G-ERROR", MUST, "gRPC: a refusal names the request's fault with a message, never a server-fault "
                                 "code (SHOULD: INVALID_ARGUMENT)"),
    Requirement("G-TIMELY", MUST, "gRPC: every call answered within its deadline (the run's timeout)"),
    Requirement("G-HEALTH", MUST, "gRPC: ServerLive and ServerReady say true while the server serves"),
    Requirement("G-READY", MUST, "gRPC: ModelReady says true for the served model, as REST's ready route says"),
    Requirement("G-METADATA", MUST, "gRPC: server and model metadata name the model and say what REST's say "
                                    "(SHOULD: versions holds the model's)"),
    Requirement("G-UNKNOWN", MUST, "gRPC: an unknown model or version gets NOT_FOUND or INVALID_ARGUMENT with a "
                                   "message"),
    Requirement("G-AGREE", MUST, "one answer, two transports: REST and gRPC answer every request alike, bit for bit"),
    Requirement("K-SERVICE", MUST, "InferenceService manifest is valid"),
    Requirement("K-JOB", MUST, "InferenceJob manifest is valid"),
    Requirement("K-META", MUST, "odahuflow.project.yaml has a non-empty model name and version"),
    Requirement("K-GOLDEN", MUST, "every golden pair is valid and equals the oracle"),
)

BY_ID: dict[str, Requirement] = {r.id: r for r in REQUIREMENTS}


def level_of(requirement_id: str) -> Level:
    """The level of ``requirement_id``; raises KeyError for an ID the contract does not have."""
    return BY_ID[requirement_id].level
