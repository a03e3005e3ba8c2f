"""What the real V2 servers MLServer 1.7.1 and KServe 0.21.0 answer over REST, pinned as observed.

Groundwork for issue 16 (gating a V2 server online): its requirements and SPEC cite these facts
(tests/peers/FACTS.md), so a new release of either server that answers differently fails here first. Each peer
runs in its own cached venv (tests/peers/venvs.py; the tests skip, with pip's reason, where it cannot be
installed) and serves the multiplier (model/multiplier.txt) on 127.0.0.1 (tests/peers/servers.py). Both models
decode with the server's own codec and check nothing themselves, so what a bad request gets is the server's doing.

Each assertion is the observed answer: status, content type and body. Where it departs from the Open Inference
Protocol, a comment says how. The spec's words: an error is "an HTTP error status (typically 400)" with
``{"error": $string}``; health is a status code (200 true, 4xx false) whose JSON section shows
``{"live": $bool}`` (for ready too, a typo); a served request gets 200 and ``{model_name, model_version?, id?,
parameters?, outputs}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from peers import servers, venvs

pytestmark = pytest.mark.slow

PEERS = ("mlserver", "kserve")
JSON = "application/json"
GOOD = {"id": "r1", "inputs": [{"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2]}]}
INFER = "/v2/models/multiplier/infer"


def _serve(name: str, tmp_path_factory: pytest.TempPathFactory, never_ready: bool = False) -> Iterator[servers.Server]:
    try:
        python = venvs.ensure(venvs.PEERS[name])
    except venvs.PeerUnavailable as error:
        pytest.skip(str(error))
    server = servers.start(name, python, tmp_path_factory.mktemp(name), never_ready=never_ready)
    try:
        yield server
    finally:
        servers.stop(server)


@pytest.fixture(scope="module", params=PEERS)
def peer(request, tmp_path_factory):
    """A running peer serving the multiplier, ready."""
    yield from _serve(request.param, tmp_path_factory)


@pytest.fixture(scope="module", params=PEERS)
def unready_peer(request, tmp_path_factory):
    """A running peer whose only model is not ready (see ODAHU_PEER_NEVER_READY in the model files)."""
    yield from _serve(request.param, tmp_path_factory, never_ready=True)


def observed(server: servers.Server, method: str, path: str, body: bytes | dict | None = None,
             content_type: str = JSON) -> tuple:
    """(status, content type, body): the body parsed as JSON when it is JSON, else its bytes."""
    reply = servers.call(server.port, method, path, body, content_type)
    document = reply.document
    return reply.status, reply.content_type, (reply.body if document is None else document)


def pydantic_detail(body: Any) -> list[tuple[str, list]]:
    """The (type, loc) pairs of a FastAPI/pydantic 422 body ``{"detail": [...]}``, whatever its messages say."""
    assert set(body) == {"detail"}, body
    return [(item["type"], item["loc"]) for item in body["detail"]]


# ---------------------------------------------------------------------------------------------------- health


def test_live(peer):
    assert observed(peer, "GET", "/v2/health/live") == {
        "mlserver": (200, None, b""),  # the status alone: no body, no content type
        "kserve": (200, JSON, {"live": True}),
    }[peer.name]


def test_ready(peer):
    assert observed(peer, "GET", "/v2/health/ready") == {
        "mlserver": (200, None, b""),
        "kserve": (200, JSON, {"ready": True}),  # not the spec's {"live": ...} typo
    }[peer.name]


def test_a_model_that_is_not_ready(unready_peer):
    answers = [observed(unready_peer, "GET", "/v2/health/live"),
               observed(unready_peer, "GET", "/v2/health/ready"),
               observed(unready_peer, "GET", "/v2/models/multiplier/ready"),
               observed(unready_peer, "POST", INFER, GOOD)]
    assert answers == {
        "mlserver": [(200, None, b""),
                     (400, None, b""),  # 4xx false, as the spec's health text says
                     (400, None, b""),
                     (400, JSON, {"error": "Model multiplier is not ready yet."})],
        # KServe's server readiness does not look at its models: ready while its only model is not. The model's
        # readiness and an inference are 503 (a 5xx for a state, not a 4xx); no inference is served before ready.
        "kserve": [(200, JSON, {"live": True}),
                   (200, JSON, {"ready": True}),
                   (503, JSON, {"error": "Model with name multiplier is not ready."}),
                   (503, JSON, {"error": "Model with name multiplier is not ready."})],
    }[unready_peer.name]


# -------------------------------------------------------------------------------------------------- metadata


def test_server_metadata(peer):
    assert observed(peer, "GET", "/v2") == {
        "mlserver": (200, JSON, {"name": "mlserver", "version": "1.7.1", "extensions": []}),
        "kserve": (200, JSON, {"name": "kserve", "version": "0.21.0", "extensions": ["model_repository_extension"]}),
    }[peer.name]


def test_model_metadata(peer):
    assert observed(peer, "GET", "/v2/models/multiplier") == {
        # The model has version "1" (model-settings.json) yet "versions" is empty; "parameters" is an extra key.
        # inputs/outputs are empty: the runtime declares no signature.
        "mlserver": (200, JSON, {"name": "multiplier", "versions": [], "platform": "", "inputs": [], "outputs": [],
                                 "parameters": {}}),
        # "versions": null where the spec's schema says an array of strings (optional).
        "kserve": (200, JSON, {"name": "multiplier", "versions": None, "platform": "", "inputs": [], "outputs": []}),
    }[peer.name]


def test_versioned_model_metadata(peer):
    assert observed(peer, "GET", "/v2/models/multiplier/versions/1") == {
        "mlserver": (200, JSON, {"name": "multiplier", "versions": [], "platform": "", "inputs": [], "outputs": [],
                                 "parameters": {}}),
        "kserve": (501, JSON, {"error": "Model versioning not supported yet."}),  # every versioned route: 501
    }[peer.name]


def test_model_ready(peer):
    answers = [observed(peer, "GET", "/v2/models/multiplier/ready"),
               observed(peer, "GET", "/v2/models/multiplier/versions/1/ready")]
    assert answers == {
        "mlserver": [(200, None, b""), (200, None, b"")],
        "kserve": [(200, JSON, {"name": "multiplier", "ready": True}),
                   (501, JSON, {"error": "Model versioning not supported yet."})],
    }[peer.name]


# ----------------------------------------------------------------------------------------------------- infer


def test_infer_a_good_request(peer):
    assert observed(peer, "POST", INFER, GOOD) == {
        # NumpyCodec (the docs' way to write a runtime) answers a [2] tensor with shape [2, 1]: a batch axis is
        # added. "parameters": {} at the top and {"content_type": "np"} on each output are extra keys.
        "mlserver": (200, JSON, {"model_name": "multiplier", "model_version": "1", "id": "r1", "parameters": {},
                                 "outputs": [{"name": "a", "shape": [2, 1], "datatype": "INT32",
                                              "parameters": {"content_type": "np"}, "data": [2, 4]}]}),
        # model_version and parameters are null, not absent: the spec's schema has them optional strings/objects.
        "kserve": (200, JSON, {"model_name": "multiplier", "model_version": None, "id": "r1", "parameters": None,
                               "outputs": [{"name": "a", "shape": [2], "datatype": "INT32", "parameters": None,
                                            "data": [2, 4]}]}),
    }[peer.name]


def test_infer_on_the_versioned_route(peer):
    status, content_type, body = observed(peer, "POST", "/v2/models/multiplier/versions/1/infer", GOOD)
    if peer.name == "mlserver":
        assert (status, content_type, body) == observed(peer, "POST", INFER, GOOD)
    else:
        assert (status, content_type, body) == (501, JSON, {"error": "Model versioning not supported yet."})


def test_a_request_without_an_id(peer):
    status, content_type, body = observed(peer, "POST", INFER, {"inputs": GOOD["inputs"]})
    if peer.name == "mlserver":
        # MLServer makes up an id (a UUID) for a request that has none; the spec makes the response's id optional.
        assert (status, content_type, len(body["id"]), body["outputs"][0]["data"]) == (200, JSON, 36, [2, 4])
    else:
        # The model echoes the request's id (response_id=payload.id), None here; KServe's own response model then
        # refuses its answer (id must be a string): 500 (the kserve#3094 kind of defect). The error text is
        # pydantic's report, a link to its docs included.
        assert (status, content_type, set(body)) == (500, JSON, {"error"})
        assert body["error"].startswith("ValidationError : 1 validation error for InferenceResponse\nid\n")


def test_outputs_selection(peer):
    second = {"name": "b", "shape": [1], "datatype": "FP32", "data": [0.5]}
    request = {"id": "r2", "inputs": [GOOD["inputs"][0], second],
               "outputs": [{"name": "b"}]}
    status, _, body = observed(peer, "POST", INFER, request)
    # Neither server applies "outputs": both tensors come back although only "b" was asked for (kserve#3307 holds
    # for KServe; MLServer leaves it to the runtime as well).
    assert (status, [output["name"] for output in body["outputs"]]) == (200, ["a", "b"])


def test_a_bad_datatype(peer):
    status, content_type, body = observed(
        peer, "POST", INFER, {"inputs": [{"name": "a", "shape": [2], "datatype": "INT33", "data": [1, 2]}]})
    if peer.name == "mlserver":
        # 422 and FastAPI's {"detail": [...]}, not {"error": string}: the request model refuses it.
        assert (status, content_type, pydantic_detail(body)) == (
            422, JSON, [("enum", ["body", "inputs", 0, "datatype"])])
    else:
        # 400 {"error"}: only because the model decodes the input (InferInput.as_numpy); the message names None.
        assert (status, content_type, body) == (400, JSON, {"error": "invalid datatype None in the input"})


def test_a_shape_that_does_not_match_the_data(peer):
    assert observed(peer, "POST", INFER,
                    {"inputs": [{"name": "a", "shape": [3], "datatype": "INT32", "data": [1, 2]}]}) == {
        # 5xx for the client's error, and no JSON at all: the reshape error escapes the handler.
        "mlserver": (500, "text/plain; charset=utf-8", b"Internal Server Error"),
        # 5xx, with the Python exception as the error text.
        "kserve": (500, JSON, {"error": "ValueError : cannot reshape array of size 2 into shape (3,)"}),
    }[peer.name]


def test_a_request_that_is_not_json(peer):
    status, content_type, body = observed(peer, "POST", INFER, b"not json")
    # Both: 422 with FastAPI's {"detail": [...]}, not 400 {"error": string}.
    assert (status, content_type, pydantic_detail(body)) == (422, JSON, [("json_invalid", ["body", 0])])


def test_a_request_without_inputs(peer):
    status, content_type, body = observed(peer, "POST", INFER, {"id": "x"})
    assert (status, content_type, pydantic_detail(body)) == {
        "mlserver": (422, JSON, [("missing", ["body", "inputs"])]),
        # KServe's body is a union of the V2 request and raw bytes: pydantic reports both branches.
        "kserve": (422, JSON, [("missing", ["body", "InferenceRequest", "inputs"]), ("bytes_type", ["body", "bytes"])]),
    }[peer.name]


def test_an_unknown_model(peer):
    answers = [observed(peer, "POST", "/v2/models/nope/infer", GOOD),
               observed(peer, "GET", "/v2/models/nope"),
               observed(peer, "GET", "/v2/models/nope/ready")]
    error = {"mlserver": "Model nope not found", "kserve": "Model with name nope does not exist."}[peer.name]
    assert answers == [(404, JSON, {"error": error})] * 3


def test_an_unknown_version(peer):
    answers = [observed(peer, "POST", "/v2/models/multiplier/versions/9/infer", GOOD),
               observed(peer, "GET", "/v2/models/multiplier/versions/9")]
    assert answers == {
        "mlserver": [(404, JSON, {"error": "Model multiplier with version 9 not found"})] * 2,
        "kserve": [(501, JSON, {"error": "Model versioning not supported yet."})] * 2,  # 5xx, whatever the version
    }[peer.name]


def test_still_healthy_after_the_bad_requests(peer):
    for body in (b"not json", {"inputs": [{"name": "a", "shape": [3], "datatype": "INT32", "data": [1, 2]}]}):
        servers.call(peer.port, "POST", INFER, body)
    assert observed(peer, "GET", "/v2/health/ready")[0] == 200
    assert observed(peer, "POST", INFER, GOOD)[0] == 200


def test_the_server_listens_on_loopback_only(peer):
    addresses = servers.listening_addresses(peer)
    assert addresses and all(address.is_loopback for address in addresses), addresses


# ------------------------------------------- what the server checks itself: the "echo" model decodes nothing


def echo_request(**tensor: Any) -> dict:
    return {"id": "e", "inputs": [{"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2], **tensor}]}


def echoed(**tensor: Any) -> dict:
    """What a peer answers with echo when it lets the tensor through as it came."""
    return {"model_name": "echo", "id": "e", "parameters": {},
            "outputs": [{"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2], **tensor}]}


def test_what_the_server_checks_before_and_after_the_model(peer):
    answers = [observed(peer, "POST", "/v2/models/echo/infer", echo_request(**tensor)) for tensor in (
        {"datatype": "INT33"}, {"shape": [3]}, {"data": [1.5, "x"]}, {"datatype": "INT8", "data": [1, 300]})]
    if peer.name == "mlserver":
        # Only the datatype's name is checked (422, by the request model). A shape that does not match the data and
        # elements that are not of the datatype come back as they came: MLServer validates no tensor.
        assert [(status, body if status == 200 else pydantic_detail(body)) for status, _, body in answers] == [
            (422, [("enum", ["body", "inputs", 0, "datatype"])]),
            (200, echoed(shape=[3])),  # no "model_version": the echo model has none, and the key is left out
            (200, echoed(data=[1.5, "x"])),
            (200, echoed(datatype="INT8", data=[1, 300]))]
    else:
        # KServe decodes every output it serialises (InferResponse.to_rest -> as_numpy), so the server refuses
        # the echoed tensor even though the model decoded nothing: 400 for the datatype, 500 for the rest.
        assert answers == [
            (400, JSON, {"error": "invalid datatype in the input"}),
            (500, JSON, {"error": "ValueError : cannot reshape array of size 2 into shape (3,)"}),
            (500, JSON, {"error": "ValueError : invalid literal for int() with base 10: 'x'"}),
            (500, JSON, {"error": "OverflowError : Python integer 300 out of bounds for int8"})]


def test_an_element_not_of_its_datatype(peer):
    assert observed(peer, "POST", INFER, echo_request(data=[1.5, "x"])) == {
        "mlserver": (500, "text/plain; charset=utf-8", b"Internal Server Error"),  # NumpyCodec's error escapes
        "kserve": (500, JSON, {"error": "ValueError : invalid literal for int() with base 10: 'x'"}),
    }[peer.name]


def test_fp16_over_json(peer):
    status, content_type, body = observed(peer, "POST", INFER, echo_request(datatype="FP16", data=[1.5, 2]))
    if peer.name == "mlserver":
        assert (status, body["outputs"][0]["datatype"], body["outputs"][0]["data"]) == (200, "FP16", [3.0, 4.0])
    else:
        # A valid V2 request refused with 400: KServe takes FP16 only as binary tensor data.
        assert (status, content_type, body) == (400, JSON, {
            "error": "Sending FP16 data via JSON is not supported. Please use the binary data format for input a"})


def test_a_negative_dimension(peer):
    status, _, body = observed(peer, "POST", INFER, echo_request(shape=[-1]))
    # Neither refuses it: numpy's reshape reads -1 as "whatever is left", and the answer has the actual shape.
    assert (status, body["outputs"][0]["shape"], body["outputs"][0]["data"]) == {
        "mlserver": (200, [2, 1], [2, 4]),
        "kserve": (200, [2], [2, 4]),
    }[peer.name]
