"""The real V2 peers MLServer 1.7.1 and KServe 0.21.0 serve the iris example (examples/iris/mlserver_runtime.py,
examples/iris/kserve_model.py) as the batch predictor does: every golden request of examples/iris/fixtures gets
over REST the recorded answer, within the kit's default tolerance for the FP32 probabilities (rtol 1e-5), exactly
otherwise, except for what each server itself adds or drops, pinned here as observed (tests/peers/FACTS.md):
MLServer adds ``"parameters": {}``, KServe ``"parameters": null`` (on each output too); both make up an ``id``
(a UUID) when the request has none; neither echoes the id in an error body, which is 400 ``{"error": the
predictor's line}``. A golden the server answered otherwise fails here, naming the file.
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import pytest

from peers import servers

pytestmark = pytest.mark.slow

FIXTURES = servers.IRIS / "fixtures"
GOLDENS = sorted(path.name for path in (FIXTURES / "input").glob("*.json"))
RTOL = 1e-5
JSON = "application/json"


@pytest.fixture(scope="module", params=("mlserver", "kserve"))
def iris(request):
    with servers.serving(request.param, "iris") as server:
        yield server


def expected_from_peer(peer: str, request: dict, golden: dict, answer: dict) -> tuple[int, dict]:
    """(status, document) the peer owes ``request`` whose batch golden is ``golden``; ``answer`` supplies only the
    id the server made up (checked to be a UUID)."""
    if "error" in golden:
        return 400, {"error": golden["error"]}  # the server's error body: no id
    expected = dict(golden)
    if "id" not in request:
        made_up = answer.get("id")
        assert isinstance(made_up, str) and uuid.UUID(made_up), answer
        expected["id"] = made_up
    if peer == "mlserver":
        expected["parameters"] = {}
    else:
        expected["parameters"] = None
        expected["outputs"] = [{**tensor, "parameters": None} for tensor in golden["outputs"]]
    return 200, expected


def close(actual: object, expected: object) -> bool:
    """``actual`` equals ``expected``, floats within RTOL (the same keys, the same types otherwise)."""
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return math.isclose(actual, expected, rel_tol=RTOL, abs_tol=0.0)
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            close(actual[key], expected[key]) for key in expected)
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            close(a, e) for a, e in zip(actual, expected))
    return type(actual) is type(expected) and actual == expected


def test_the_model_is_served_under_the_project_files_name_and_version(iris):
    assert (servers.IRIS_NAME, servers.IRIS_VERSION) == ("iris", "1")
    reply = servers.call(iris.port, "GET", f"/v2/models/{servers.IRIS_NAME}/ready")
    assert reply.status == 200
    metadata = servers.call(iris.port, "GET", f"/v2/models/{servers.IRIS_NAME}").document
    assert metadata["name"] == "iris"
    declared = json.loads((servers.IRIS_MODEL / "model-settings.json").read_text())
    # both declare the signature; MLServer keeps each tensor's parameters, KServe's metadata has none
    assert [{k: t[k] for k in ("name", "datatype", "shape")} for t in metadata["inputs"] + metadata["outputs"]] == [
        {k: t[k] for k in ("name", "datatype", "shape")} for t in declared["inputs"] + declared["outputs"]]
    assert metadata["versions"] == {"mlserver": [], "kserve": None}[iris.name]  # neither lists version "1"


def test_every_golden_request_gets_the_recorded_answer(iris):
    wrong = []
    for name in GOLDENS:
        raw = (FIXTURES / "input" / name).read_bytes()
        request, golden = json.loads(raw), json.loads((FIXTURES / "output" / name).read_text())
        reply = servers.call(iris.port, "POST", f"/v2/models/{servers.IRIS_NAME}/infer", raw)
        answer = reply.document
        status, expected = expected_from_peer(iris.name, request, golden, answer or {})
        if (reply.status, reply.content_type) != (status, JSON) or not close(answer, expected):
            wrong.append(f"{name}: {reply.status} {reply.body[:300]!r}, expected {status} {expected}")
    assert not wrong, "\n".join(wrong)
    assert len(GOLDENS) == 18


def test_a_request_out_of_the_goldens_is_answered_as_the_batch_predictor_answers_it(iris, tmp_path):
    """Not only the recorded requests: FP64 nested data, outputs picked, and a refusal, each checked against
    predictor.py run as a batch on the same request."""
    requests = {
        "nested.json": {"id": "n", "inputs": [{"name": "features", "datatype": "FP64", "shape": [2, 4],
                                               "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}],
                        "outputs": [{"name": "probabilities"}]},
        "wrong-name.json": {"id": "w", "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4],
                                                   "data": [1, 2, 3, 4]}]},
    }
    batch = _batch_answers(requests, tmp_path)
    for name, request in requests.items():
        reply = servers.call(iris.port, "POST", f"/v2/models/{servers.IRIS_NAME}/infer", request)
        status, expected = expected_from_peer(iris.name, request, batch[name], reply.document or {})
        assert (reply.status, reply.content_type) == (status, JSON), reply
        assert close(reply.document, expected), (name, reply.body, expected)


def _batch_answers(requests: dict[str, dict], tmp_path: Path) -> dict[str, dict]:
    import os
    import subprocess
    import sys

    (tmp_path / "in").mkdir()
    for name, request in requests.items():
        (tmp_path / "in" / name).write_text(json.dumps(request))
    env = {**os.environ, "ODAHU_MODEL_PATH": str(servers.IRIS_MODEL), "ODAHU_INPUT_PATH": str(tmp_path / "in"),
           "ODAHU_OUTPUT_PATH": str(tmp_path / "out")}
    env.pop("IRIS_VARIANT", None)
    subprocess.run([sys.executable, str(servers.IRIS / "predictor.py")], env=env, check=True,
                   capture_output=True, timeout=60)
    return {name: json.loads((tmp_path / "out" / name).read_text()) for name in requests}


def test_serving_skips_with_the_reason_when_the_venv_cannot_be_made(monkeypatch):
    from peers import venvs

    monkeypatch.setattr(venvs, "_failures", {"kserve": "kserve 0.21.0: pip install failed (exit 1): no network"})
    with pytest.raises(pytest.skip.Exception, match="no network"):
        with servers.serving("kserve", "iris"):
            pass
