"""One request and the answer to it, whatever carried them: the unit the judge examines.

A batch run answers with files (paired with their requests by :func:`conformance.judge.pair_responses`); a V2
server answers each POST with a status, headers and a body, and each gRPC ModelInfer with a status code and a
message. Each becomes an :class:`Exchange`: the judge reads its answer as a V2 document and each transport's own
requirements read what the transport observed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conformance.v2.documents import RESPONSE, Document, inspect, load, parse

BATCH, HTTP, GRPC = "batch", "http", "grpc"


@dataclass
class Exchange:
    """A request (``name``, as the suite calls it) and what came back.

    ``request`` holds the bytes sent (online; a batch's requests are files in its workspace). ``where`` says where
    the answer was found (the response file's name; ``POST /v2/models/m/infer``). The answer
    is in ``body`` (bytes, online) or in the file at ``path`` (batch, read once by :meth:`document`). ``status``
    and ``headers`` are HTTP's (looked up by lower-cased name), ``seconds`` how long the answer took, ``error`` why no
    answer came (connection refused or reset, the run's timeout passed), one line."""

    name: str
    transport: str
    where: str
    body: bytes | None = None
    request: bytes | None = None
    path: Path | None = None
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    timed_out: bool = False
    sent: bool = True  # False: the request was never sent (``error`` says why)
    #: gRPC: the status code's name (``OK``, ``INVALID_ARGUMENT``...; None when no answer came) and message, the
    #: answer decoded into the JSON document form (``OK`` and readable; :meth:`answer_bytes` spells it as JSON),
    #: or why its tensors cannot be read (one line)
    code: str | None = None
    details: str = ""
    decoded: dict | None = None
    malformed: str | None = None

    @property
    def answered(self) -> bool:
        """Whether an answer came back (a file, an HTTP status, a gRPC status code)."""
        return self.error is None and (self.path is not None or self.body is not None or self.code is not None)

    def answer_bytes(self) -> bytes:
        """The answer's bytes as they came (a batch's file read now; a gRPC answer as the JSON of its decoded
        form); empty when no answer came."""
        if self.decoded is not None:
            import json

            return json.dumps(self.decoded).encode()
        if self.body is not None:
            return self.body
        return self.path.read_bytes() if self.path is not None else b""

    def document(self, label: str) -> Document:
        """The answer read strictly as a V2 response or error document, its findings filed under ``label``."""
        if self.path is not None:
            return load(self.path, RESPONSE, label=label)
        if self.decoded is not None:  # (gRPC: no JSON text was sent, so none is judged)
            return inspect(self.decoded, RESPONSE, label)
        return parse(self.body or b"", RESPONSE, label)
