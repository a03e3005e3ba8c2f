"""The predictors on their own: predictor/fast.py and predictor/reference.py run as subprocesses on temporary
folders.

Every test that takes the ``predictor`` fixture runs on both (their answers must be the same); the others run on
fast.py only (its streaming, chunks and memory). These tests do not use the conformance kit: they pin down known request/response pairs, the error responses,
the model-configuration failures (P-CONFIG) and the file-system protocol (P-OUTDIR, P-READONLY, atomic writes).
At the end, the module is also loaded in-process to hold its fast path (simdjson, streamed) to the exact path
(orjson): which requests it serves, byte for byte as the exact path would, and which it leaves to the exact path;
and its peak memory is measured on a large request. Finally both predictors serve the same batch of corner cases
and must make the same decisions (error or not, id, values).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

PREDICTORS = {name: Path(__file__).resolve().parents[1] / "predictor" / f"{name}.py" for name in ("fast", "reference")}
PREDICTOR = PREDICTORS["fast"]  # what the helpers run; the ``predictor`` fixture switches it for one test
PROJECT_YAML = "model:\n  name: multiplier\n  version: \"1\"\n"


@dataclass
class Run:
    """What one predictor run left behind."""

    returncode: int
    stdout: str
    stderr: str
    output_dir: Path
    files: list[str] = field(default_factory=list)  # every entry of the output folder (sorted)

    def response(self, name: str) -> dict:
        return json.loads((self.output_dir / name).read_bytes())


@pytest.fixture(params=sorted(PREDICTORS))
def predictor(request, monkeypatch) -> Path:
    """Runs the test once per predictor: the helpers below run the one chosen here."""
    monkeypatch.setattr(sys.modules[__name__], "PREDICTOR", PREDICTORS[request.param])
    return PREDICTORS[request.param]


def tensor(name, datatype, shape, data, **extra) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data, **extra}


def prepare(
    tmp_path: Path,
    requests: dict[str, object] | None = None,
    multiplier: str | None = "2\n",
    project: str | None = PROJECT_YAML,
) -> tuple[Path, Path]:
    """Lay out tmp_path/model and tmp_path/input (requests: name -> dict, or str/bytes written verbatim)."""
    model, inputs = tmp_path / "model", tmp_path / "input"
    model.mkdir()
    inputs.mkdir()
    if multiplier is not None:
        (model / "multiplier.txt").write_text(multiplier)
    if project is not None:
        (model / "odahuflow.project.yaml").write_text(project)
    for name, body in (requests or {}).items():
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode()
        (inputs / name).write_bytes(body)
    return model, inputs


def execute(model: Path, inputs: Path, output: Path, predictor: Path | None = None) -> Run:
    """Run the predictor (default: ``PREDICTOR``) with exactly the three ODAHU variables pointing at these folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAHU_")}
    env.update(ODAHU_MODEL_PATH=str(model), ODAHU_INPUT_PATH=str(inputs), ODAHU_OUTPUT_PATH=str(output))
    proc = subprocess.run(
        [sys.executable, str(predictor or PREDICTOR)], env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )
    files = sorted(os.listdir(output)) if output.is_dir() else []
    return Run(proc.returncode, proc.stdout, proc.stderr, output, files)


def run_predictor(
    tmp_path: Path,
    requests: dict[str, object] | None = None,
    multiplier: str | None = "2\n",
    project: str | None = PROJECT_YAML,
    output_subdir: str = "out/responses",
    create_output: bool = False,
) -> Run:
    """prepare() then execute(); the output folder is tmp_path/output_subdir (absent unless create_output)."""
    model, inputs = prepare(tmp_path, requests, multiplier, project)
    output = tmp_path / output_subdir
    if create_output:
        output.mkdir(parents=True)
    return execute(model, inputs, output)


def serve_one(tmp_path: Path, request: object, multiplier: str = "2\n") -> dict:
    """Run one request; the batch must succeed and write exactly that one response."""
    run = run_predictor(tmp_path, {"r.json": request}, multiplier=multiplier)
    assert run.returncode == 0, run.stderr
    assert run.files == ["r.json"]
    return run.response("r.json")


def assert_error(response: dict, request_id: str | None = None) -> None:
    assert set(response) <= {"error", "id"}, response
    assert isinstance(response["error"], str) and response["error"].strip(), response
    assert "\n" not in response["error"]
    assert response.get("id") == request_id


def same_floats(data: list, expected: list, dtype) -> bool:
    """Equal bit for bit after casting both to dtype."""
    got = np.asarray(data, dtype=np.float64).astype(dtype)
    want = np.asarray(expected, dtype=np.float64).astype(dtype)
    return got.shape == want.shape and bool((got.view(f"u{got.itemsize}") == want.view(f"u{want.itemsize}")).all())


# ---------------------------------------------------------------------------------------------------------------
# Known request/response pairs
# ---------------------------------------------------------------------------------------------------------------


def test_int32_times_two(predictor, tmp_path):
    response = serve_one(tmp_path, {"inputs": [tensor("x", "INT32", [2], [10, 20])]})
    assert response == {
        "model_name": "multiplier",
        "model_version": "1",
        "outputs": [{"name": "x", "datatype": "INT32", "shape": [2], "data": [20, 40]}],
    }


def test_id_is_echoed(predictor, tmp_path):
    response = serve_one(tmp_path, {"id": "req-7", "inputs": [tensor("x", "INT32", [1], [5])]})
    assert response["id"] == "req-7"
    assert response["outputs"][0]["data"] == [10]


def test_id_is_echoed_in_error_response(predictor, tmp_path):
    response = serve_one(tmp_path, {"id": "req-8", "inputs": [tensor("x", "BOOL", [1], [True])]})
    assert_error(response, "req-8")


def test_every_tensor_in_order(predictor, tmp_path):
    request = {"inputs": [tensor("a", "INT16", [1], [3]), tensor("b", "FP64", [2], [0.5, -1.25])]}
    response = serve_one(tmp_path, request)
    assert [(o["name"], o["datatype"], o["data"]) for o in response["outputs"]] == [
        ("a", "INT16", [6]),
        ("b", "FP64", [1.0, -2.5]),
    ]


@pytest.mark.parametrize(
    "datatype, data, multiplier, expected",
    [
        ("INT8", [100, -128, 127, -1, 64], "2", [-56, 0, -2, -2, -128]),
        ("UINT8", [200, 255, 0], "2", [144, 254, 0]),
        ("UINT16", [1, 2], "-3", [65533, 65530]),
        ("INT64", [2**62 + 1, -(2**62) - 3], "2", [-(2**63) + 2, 2**63 - 6]),
        ("UINT64", [2**64 - 1, 2**63, 5], "3", [2**64 - 3, 2**63, 15]),
        ("INT32", [7, -7], "0", [0, 0]),
        ("INT32", [1], "4294967297", [1]),  # the multiplier wraps too: 2^32 + 1 == 1 (mod 2^32)
    ],
)
def test_integer_wrap_around(predictor, tmp_path, datatype, data, multiplier, expected):
    response = serve_one(tmp_path, {"inputs": [tensor("x", datatype, [len(data)], data)]}, multiplier)
    assert response["outputs"][0]["data"] == expected


def test_fp16_rounding(predictor, tmp_path):
    data = [0.1, 1.0009765625, 65504.0 / 4, -3.3]
    response = serve_one(tmp_path, {"inputs": [tensor("x", "FP16", [4], data)]}, "3")
    as_fp16 = np.asarray(data, dtype=np.float64).astype(np.float16)
    expected = (as_fp16.astype(np.float64) * 3).astype(np.float16)
    assert same_floats(response["outputs"][0]["data"], expected.tolist(), np.float16)
    # 0.1 in FP16 is 0.0999755859375; times 3, rounded once to FP16, is 0.2998046875 (not 0.3000...)
    assert np.float16(response["outputs"][0]["data"][0]) == np.float16(0.2998046875)


def test_fp32_rounding_and_round_trip(predictor, tmp_path):
    response = serve_one(tmp_path, {"inputs": [tensor("x", "FP32", [3], [0.1, 1e-45, 3.4e38])]}, "-1")
    assert same_floats(response["outputs"][0]["data"], [-0.1, -1e-45, -3.4e38], np.float32)


def test_negative_zero_is_kept(predictor, tmp_path):
    response = serve_one(tmp_path, {"inputs": [tensor("x", "FP64", [2], [-1.5, 1.5])]}, "0")
    data = response["outputs"][0]["data"]
    assert data == [0.0, 0.0] and [np.signbit(v) for v in data] == [True, False]


@pytest.mark.parametrize("multiplier", [2**60 + 1, -(2**60) - 1])  # not exact as doubles: the exact slow path
def test_huge_multiplier_is_rounded_once(predictor, tmp_path, multiplier):
    data = [0.1, -3.7, 1e-300, -0.0, 0.0]
    response = serve_one(tmp_path, {"inputs": [tensor("x", "FP64", [5], data)]}, str(multiplier))
    # int / int true division in Python is correctly rounded
    assert response["outputs"][0]["data"] == [float(Fraction(v) * multiplier) for v in data]
    signs = [bool(np.signbit(v)) for v in response["outputs"][0]["data"][3:]]
    assert signs == ([True, False] if multiplier > 0 else [False, True])


def test_fp32_huge_multiplier_has_no_double_rounding(predictor, tmp_path):
    # 1.0 x (2^55 + 2^31 + 1) lies just above the midpoint between the FP32 neighbours 2^55 and 2^55 + 2^32,
    # so it rounds up; rounding to FP64 first lands exactly on the midpoint and ties to even (2^55): wrong.
    response = serve_one(tmp_path, {"inputs": [tensor("x", "FP32", [2], [1.0, -1.0])]}, str(2**55 + 2**31 + 1))
    expected = [float(2**55 + 2**32), -float(2**55 + 2**32)]
    assert same_floats(response["outputs"][0]["data"], expected, np.float32)
    assert not same_floats(response["outputs"][0]["data"], [2.0**55, -(2.0**55)], np.float32)


def test_nested_input_scalar_and_empty_tensors(predictor, tmp_path):
    request = {
        "inputs": [
            tensor("n", "INT32", [2, 2], [[1, 2], [3, 4]]),
            tensor("s", "FP64", [], [2.5]),
            tensor("e", "UINT8", [2, 0], []),
            tensor("e2", "INT8", [2, 0], [[], []]),
        ]
    }
    outputs = serve_one(tmp_path, request)["outputs"]
    assert [(o["name"], o["shape"], o["data"]) for o in outputs] == [
        ("n", [2, 2], [2, 4, 6, 8]),
        ("s", [], [5.0]),
        ("e", [2, 0], []),
        ("e2", [2, 0], []),
    ]


def test_outputs_selects_and_orders(predictor, tmp_path):
    request = {
        "inputs": [tensor("a", "INT32", [1], [1]), tensor("b", "INT32", [1], [2]), tensor("c", "INT32", [1], [3])],
        "outputs": [{"name": "c"}, {"name": "a"}],
    }
    assert [(o["name"], o["data"]) for o in serve_one(tmp_path, request)["outputs"]] == [("c", [6]), ("a", [2])]


def test_unselected_tensor_is_not_computed(predictor, tmp_path):
    request = {
        "inputs": [tensor("big", "FP16", [1], [60000.0]), tensor("ok", "FP16", [1], [1.5])],
        "outputs": [{"name": "ok"}],
    }
    assert serve_one(tmp_path, request)["outputs"] == [{"name": "ok", "datatype": "FP16", "shape": [1], "data": [3.0]}]


def test_colon_in_strings_is_not_a_duplicate(predictor, tmp_path):
    request = {"id": "a:b:{c}", "parameters": {"k:1": "v:2"}, "inputs": [tensor("x:y", "INT8", [1], [1])]}
    response = serve_one(tmp_path, request)
    assert response["id"] == "a:b:{c}" and response["outputs"][0]["name"] == "x:y"


def test_huge_number_in_parameters_is_valid(predictor, tmp_path):
    raw = '{"parameters": {"p": 1e400, "q": 123456789012345678901234567890}, "inputs": [%s]}' % json.dumps(
        tensor("x", "INT32", [1], [4])
    )
    assert serve_one(tmp_path, raw)["outputs"][0]["data"] == [8]


def test_nul_in_keys_is_served(predictor, tmp_path):
    # simdjson looks keys up as C strings: the predictor must not confuse "a\u0000b" with "a" (or "data\u0000"
    # with "data").
    raw = (
        '{"parameters": {"a\\u0000b": 1}, "inputs": [{"name": "x", "datatype": "INT32", "shape": [2], '
        '"data\\u0000": [7, 7], "data": [1, 2]}]}'
    )
    assert serve_one(tmp_path, raw)["outputs"][0]["data"] == [2, 4]


def test_integer_tokens_in_float_tensors(predictor, tmp_path):
    # "-0" is the integer 0 (so +0.0), and integers beyond 64 bits are rounded once to the datatype.
    raw = '{"inputs": [{"name": "x", "datatype": "FP64", "shape": [3], "data": [-0, -0.0, %d]}]}' % (3**50)
    data = serve_one(tmp_path, raw, multiplier="1")["outputs"][0]["data"]
    assert data == [0.0, 0.0, float(3**50)]
    assert [bool(np.signbit(v)) for v in data[:2]] == [False, True]


@pytest.mark.parametrize("datatype", ["INT8", "UINT16", "INT32", "UINT64", "INT64", "FP16", "FP32", "FP64"])
@pytest.mark.parametrize("nested", [False, True])
def test_large_tensor_in_many_pieces(predictor, tmp_path, datatype, nested):
    """Tensors far larger than one chunk (CHUNK elements), flat and nested, are multiplied element for element."""
    rng = np.random.default_rng(7)
    dtype = np.dtype(datatype.lower().replace("fp", "float"))
    if dtype.kind == "f":
        values = (rng.standard_normal(30_000) * 100).astype(dtype)
    else:
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, 30_000, dtype=dtype, endpoint=True)
    data = values.reshape(3, 100, 100).tolist() if nested else values.tolist()
    response = serve_one(tmp_path, {"inputs": [tensor("x", datatype, [3, 100, 100], data)]}, multiplier="-3")
    if dtype.kind == "f":
        expected = (values.astype(np.float64) * -3).astype(dtype)
        assert same_floats(response["outputs"][0]["data"], expected.tolist(), dtype)
    else:
        bits, low = 8 * dtype.itemsize, int(np.iinfo(dtype).min)
        assert response["outputs"][0]["data"] == [(v * -3 - low) % 2**bits + low for v in values.tolist()]


@pytest.mark.parametrize("last", [128, 1.5, True, "1", None, [1]], ids=repr)
def test_bad_last_element_of_a_large_tensor(predictor, tmp_path, last):
    """A problem in the last of many chunks: an error response, nothing of the half-written response left."""
    data = [i % 100 for i in range(20_000)] + [last]
    run = run_predictor(tmp_path, {"r.json": {"inputs": [tensor("x", "INT8", [20_001], data)]}})
    assert run.returncode == 0 and run.files == ["r.json"]
    assert_error(run.response("r.json"))


def test_product_overflow_in_a_later_tensor(predictor, tmp_path):
    first = tensor("a", "FP32", [10_000], [1.5] * 10_000)
    second = tensor("b", "FP32", [10_000], [1.0] * 9_999 + [3e38])
    assert_error(serve_one(tmp_path, {"inputs": [first, second]}))


# ---------------------------------------------------------------------------------------------------------------
# Error responses
# ---------------------------------------------------------------------------------------------------------------

ONE = json.dumps(tensor("x", "INT32", [1], [1]))


@pytest.mark.parametrize(
    "request_body",
    [
        pytest.param({"inputs": [tensor("x", "INT32", [1], [1])], "outputs": [{"name": "nope"}]}, id="unknown-output"),
        pytest.param({"inputs": [tensor("x", "BOOL", [2], [True, False])]}, id="bool"),
        pytest.param({"inputs": [tensor("x", "BYTES", [1], ["abc"])]}, id="bytes"),
        pytest.param('{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [NaN]}]}', id="nan-token"),
        pytest.param('{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [-Infinity]}]}', id="inf-token"),
        pytest.param('{"inputs": [%s], "inputs": [%s]}' % (ONE, ONE), id="duplicate-top-key"),
        pytest.param('{"inputs": [{"name": "x", "name": "y", "shape": [1], "datatype": "INT8", "data": [1]}]}', id="duplicate-tensor-key"),
        pytest.param({"inputs": [tensor("x", "INT32", [3], [1, 2])]}, id="bad-count"),
        pytest.param({"inputs": [tensor("x", "INT32", [2, 2], [[1, 2, 3, 4]])]}, id="bad-nesting"),
        pytest.param({"inputs": [tensor("x", "INT32", [2], [1, 2.0])]}, id="float-in-int"),
        pytest.param({"inputs": [tensor("x", "INT32", [2], [1, True])]}, id="bool-in-int"),
        pytest.param({"inputs": [tensor("x", "FP32", [2], [1.0, False])]}, id="bool-in-float"),
        pytest.param({"inputs": [tensor("x", "INT8", [1], [128])]}, id="int8-out-of-range"),
        pytest.param({"inputs": [tensor("x", "UINT64", [1], [2**64])]}, id="uint64-out-of-range"),
        pytest.param({"inputs": [tensor("x", "FP16", [1], [70000])]}, id="fp16-out-of-range"),
        pytest.param('{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1e400]}]}', id="fp64-1e400"),
        pytest.param({"inputs": [tensor("x", "FP16", [1], [40000.0])]}, id="product-overflows"),
        pytest.param(
            {"inputs": [tensor("x", "FP16", [1], [1e5]), tensor("y", "FP16", [1], [1.0])], "outputs": [{"name": "y"}]},
            id="unselected-input-out-of-range",
        ),
        pytest.param({"inputs": [tensor("x", "INT32", [1], [1]), tensor("x", "INT32", [1], [2])]}, id="duplicate-input"),
        pytest.param({"inputs": []}, id="no-inputs"),
        pytest.param({"inputs": [tensor("x", "INT33", [1], [1])]}, id="unknown-datatype"),
        pytest.param({"inputs": [tensor("x", "INT32", [-1], [1])]}, id="negative-shape"),
        pytest.param([1, 2], id="not-an-object"),
        pytest.param("{not json", id="broken-json"),
        pytest.param(b'{"inputs": "\xff"}', id="invalid-utf8"),
        pytest.param('{"id": "\\ud800", "inputs": [%s]}' % ONE, id="lone-surrogate"),
        pytest.param(b"\xef\xbb\xbf" + ('{"inputs": [%s]}' % ONE).encode(), id="byte-order-mark"),
        pytest.param('{"parameters": {"p": 1, "p": 2}, "inputs": [%s]}' % ONE, id="duplicate-parameter-key"),
        pytest.param({"inputs": [tensor("x", "INT32", [2], [[1, 2], []])]}, id="array-hidden-in-flat-data"),
        pytest.param({"inputs": [tensor("x", "INT32", [2, 2], [[1, 2], [3]])]}, id="ragged-rows"),
        pytest.param({"inputs": [tensor("x", "INT32", [2, 1], [[[1]], [[2]]])]}, id="nested-deeper-than-shape"),
        pytest.param({"inputs": [tensor("x", "INT64", [1], [2**63])]}, id="int64-out-of-range"),
        pytest.param({"inputs": [tensor("x", "INT32", [1], [2**70])]}, id="int-beyond-64-bits"),
        pytest.param({"inputs": [tensor("x", "FP32", [2], [1.0, "2"])]}, id="string-in-float"),
        pytest.param({"inputs": [tensor("x", "FP32", [2], [1.0, None])]}, id="null-in-float"),
    ],
)
def test_error_response(predictor, tmp_path, request_body):
    assert_error(serve_one(tmp_path, request_body))


def test_bad_request_does_not_stop_the_batch(predictor, tmp_path):
    good = {"inputs": [tensor("x", "INT32", [1], [21])]}
    run = run_predictor(tmp_path, {"a.json": good, "b.json": "{broken", "c.json": good})
    assert run.returncode == 0
    assert run.files == ["a.json", "b.json", "c.json"]
    assert run.response("a.json")["outputs"][0]["data"] == [42] == run.response("c.json")["outputs"][0]["data"]
    assert_error(run.response("b.json"))
    assert "Traceback" not in run.stderr + run.stdout


# ---------------------------------------------------------------------------------------------------------------
# Model configuration (P-CONFIG) and the file-system protocol
# ---------------------------------------------------------------------------------------------------------------

REQUEST = {"x.json": {"inputs": [tensor("x", "INT32", [1], [1])]}}


@pytest.mark.parametrize(
    "multiplier, project",
    [
        pytest.param(None, PROJECT_YAML, id="no-multiplier.txt"),
        pytest.param("two\n", PROJECT_YAML, id="word"),
        pytest.param("2.5\n", PROJECT_YAML, id="fraction"),
        pytest.param("", PROJECT_YAML, id="empty"),
        pytest.param("0x10", PROJECT_YAML, id="hex"),
        pytest.param("2", None, id="no-project-yaml"),
        pytest.param("2", "model:\n  name: multiplier\n", id="no-version"),
        pytest.param("2", "model: [unclosed\n", id="broken-yaml"),
    ],
)
def test_unusable_model(predictor, tmp_path, multiplier, project):
    run = run_predictor(tmp_path, REQUEST, multiplier=multiplier, project=project)
    assert run.returncode != 0
    lines = (run.stderr + run.stdout).strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert run.files == []


def test_multiplier_whitespace_and_yaml_number_version(predictor, tmp_path):
    run = run_predictor(
        tmp_path, REQUEST, multiplier="  -3 \n\n", project="model:\n  name: multiplier\n  version: 1\n"
    )
    assert run.returncode == 0, run.stderr
    response = run.response("x.json")
    assert response["model_version"] == "1" and response["outputs"][0]["data"] == [-3]


def test_empty_input_folder(predictor, tmp_path):
    run = run_predictor(tmp_path, {})
    assert run.returncode == 0, run.stderr
    assert run.files == []


def test_output_folder_created_with_parents(predictor, tmp_path):
    run = run_predictor(tmp_path, REQUEST, output_subdir="a/b/c")
    assert run.returncode == 0 and run.files == ["x.json"]


def test_output_folder_may_exist(predictor, tmp_path):
    run = run_predictor(tmp_path, REQUEST, create_output=True)
    assert run.returncode == 0 and run.files == ["x.json"]


def test_only_json_files_directly_in_the_input_folder(predictor, tmp_path):
    model, inputs = prepare(tmp_path, dict(REQUEST, **{"y.json": REQUEST["x.json"], "notes.txt": "not a request"}))
    (inputs / "sub").mkdir()
    (inputs / "sub" / "deep.json").write_text(json.dumps(REQUEST["x.json"]))
    run = execute(model, inputs, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert run.files == ["x.json", "y.json"]


def snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_input_and_model_unchanged_and_no_temp_files(predictor, tmp_path):
    requests = {f"r{i}.json": {"id": str(i), "inputs": [tensor("x", "FP32", [2], [i, 0.5])]} for i in range(5)}
    requests["bad.json"] = "{"
    model, inputs = prepare(tmp_path, requests)
    before = {"input": snapshot(inputs), "model": snapshot(model)}
    run = execute(model, inputs, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert {"input": snapshot(inputs), "model": snapshot(model)} == before
    assert sorted(os.listdir(model)) == ["multiplier.txt", "odahuflow.project.yaml"]
    assert sorted(os.listdir(inputs)) == sorted(requests)
    assert run.files == sorted(requests)  # no .partial or other leftovers
    assert run.response("r3.json")["outputs"][0]["data"] == [6.0, 1.0]


def test_help(predictor, tmp_path):
    proc = subprocess.run([sys.executable, str(PREDICTOR), "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert "ODAHU_MODEL_PATH" in proc.stdout and "ODAHU_OUTPUT_PATH" in proc.stdout


def test_missing_environment_is_one_line(predictor, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAHU_")}
    proc = subprocess.run([sys.executable, str(PREDICTOR)], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "ODAHU_MODEL_PATH" in proc.stderr


# ---------------------------------------------------------------------------------------------------------------
# The fast path (simdjson, streamed) against the exact path (orjson), in-process; peak memory
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module():
    spec = importlib.util.spec_from_file_location("reference_predictor", PREDICTOR)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def both_paths(module, tmp_path: Path, request: object, multiplier: int = 3) -> tuple[bool, bytes, bytes]:
    """(whether the fast path served the request, what it wrote, what the exact path writes)."""
    _, inputs = prepare(tmp_path, {"r.json": request})
    path = inputs / "r.json"
    fast, exact = io.BytesIO(), io.BytesIO()
    served = module.stream_response(fast, str(path), module.simdjson.Parser(), multiplier, "multiplier", "1")
    response = module.predict(functools.partial(module.read_file, str(path)), multiplier, "multiplier", "1")
    module.write_response(exact, response)
    return served, fast.getvalue(), exact.getvalue()


LARGE = (np.random.default_rng(3).standard_normal(20_000) * 1e3).tolist()
SERVED_ON_THE_FAST_PATH = {
    "int32": {"inputs": [tensor("x", "INT32", [2], [10, -20])]},
    "every-datatype": {
        "id": "all",
        "inputs": [
            tensor(d, d, [2], [1, 100]) for d in ("INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "INT64")
        ] + [tensor("UINT64", "UINT64", [2], [2**64 - 1, 2**63]), tensor("FP16", "FP16", [2], [0.1, -3.3]),
             tensor("FP32", "FP32", [2], [1e-45, 3e38 / 4]), tensor("FP64", "FP64", [3], [0.1, -0.0, 5e-324])],
    },
    "integer-tokens-in-float": '{"inputs": [{"name": "x", "datatype": "FP64", "shape": [3], '
    '"data": [-0, 9223372036854775807, 18446744073709551615]}]}',
    "nested-and-empty": {
        "inputs": [tensor("n", "INT16", [2, 2], [[1, 2], [3, 4]]), tensor("s", "FP32", [], [2.5]),
                   tensor("e", "UINT8", [2, 0], [[], []]), tensor("f", "INT8", [0, 3], [])]
    },
    "selection": {
        "inputs": [tensor("a", "INT32", [1], [1]), tensor("b", "FP16", [1], [1.5]), tensor("c", "INT8", [1], [3])],
        "outputs": [{"name": "c", "parameters": {"binary_data": False}}, {"name": "a"}],
        "parameters": {"s": "x", "n": 1.5, "b": True},
    },
    "names-and-escapes": {"id": "a\"b\\c\u2028\U0001F600", "inputs": [tensor("\u00e9/\"", "INT32", [1], [1])]},
    "pretty-printed": json.dumps({"inputs": [tensor("x", "FP64", [2, 1], [[1.5], [2.0]])]}, indent=4),
    "large-flat": {"inputs": [tensor("x", "FP64", [20_000], LARGE)]},
    "large-nested": {"inputs": [tensor("x", "FP32", [200, 100], [LARGE[i : i + 100] for i in range(0, 20_000, 100)])]},
}


@pytest.mark.parametrize("multiplier", [3, -1, 2**60 + 1])
@pytest.mark.parametrize("name", sorted(SERVED_ON_THE_FAST_PATH))
def test_fast_path_serves_like_the_exact_path(module, tmp_path, name, multiplier):
    served, fast, exact = both_paths(module, tmp_path, SERVED_ON_THE_FAST_PATH[name], multiplier)
    if exact.startswith(b'{"error"'):  # a product overflows (2^60 + 1 times a float): the exact path names it
        assert not served and multiplier == 2**60 + 1
    else:
        assert served and fast == exact


LEFT_TO_THE_EXACT_PATH = {
    "byte-order-mark": b"\xef\xbb\xbf" + json.dumps(SERVED_ON_THE_FAST_PATH["int32"]).encode(),
    "nul-in-a-key": '{"p\\u0000": 1, "inputs": [%s]}' % ONE,
    "duplicate-key": '{"parameters": {"p": 1, "p": 1}, "inputs": [%s]}' % ONE,
    "boolean-in-data": {"inputs": [tensor("x", "FP32", [2], [1.0, True])]},
    "string-in-data": {"inputs": [tensor("x", "INT32", [2], [1, "2"])]},
    "array-hidden-in-flat-data": {"inputs": [tensor("x", "INT32", [2], [[1, 2], []])]},
    "ragged-rows": {"inputs": [tensor("x", "INT32", [2, 2], [[1, 2], [3]])]},
    "integer-beyond-64-bits": {"inputs": [tensor("x", "FP64", [1], [2**64])]},
    "number-beyond-double": '{"parameters": {"p": 1e400}, "inputs": [%s]}' % ONE,
    "out-of-range": {"inputs": [tensor("x", "INT8", [20_000], [1] * 19_999 + [128])]},
    "product-overflows": {"inputs": [tensor("x", "FP16", [1], [40000.0])]},
    "unselected-input-out-of-range": {
        "inputs": [tensor("x", "FP16", [1], [1e5]), tensor("y", "FP16", [1], [1.0])], "outputs": [{"name": "y"}]
    },
    "schema": {"inputs": [tensor("x", "INT33", [1], [1])]},
    "not-json": "{not json",
}


@pytest.mark.parametrize("name", sorted(LEFT_TO_THE_EXACT_PATH))
def test_fast_path_leaves_doubts_to_the_exact_path(module, tmp_path, name):
    served, _, exact = both_paths(module, tmp_path, LEFT_TO_THE_EXACT_PATH[name])
    assert not served
    valid = name in ("nul-in-a-key", "integer-beyond-64-bits", "number-beyond-double")
    assert exact.startswith(b'{"error"') != valid


#: Runs a program and prints its peak RSS in KiB. A child's peak RSS counts the memory of the process that forked
#: it (up to exec), so the predictor is started from this small interpreter, not from the (large) test process.
PEAK_RSS = """
import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss(model: Path, inputs: Path, output: Path) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODAHU_")}
    env.update(ODAHU_MODEL_PATH=str(model), ODAHU_INPUT_PATH=str(inputs), ODAHU_OUTPUT_PATH=str(output))
    argv = [sys.executable, "-I", "-S", "-c", PEAK_RSS, sys.executable, str(PREDICTOR)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    returncode, kib = proc.stdout.split()[-2:]
    assert returncode == "0", proc.stderr
    return int(kib) * 1024


def test_peak_memory_of_a_large_request(tmp_path):
    """Above the predictor's idle footprint, a large request costs about what simdjson's parse takes (the file
    and 24 bytes per number): no Python object per element, no whole tensor, no whole response in memory."""
    rng = np.random.default_rng(5)
    values = rng.standard_normal(300_000) * 10.0 ** rng.uniform(-3, 3, 300_000)
    model, inputs = prepare(tmp_path, {"big.json": {"inputs": [tensor("x", "FP64", [300_000], values.tolist())]}})
    (tmp_path / "empty").mkdir()
    idle = peak_rss(model, tmp_path / "empty", tmp_path / "out-idle")
    peak = peak_rss(model, inputs, tmp_path / "out")
    size = (inputs / "big.json").stat().st_size
    assert peak - idle < size + 24 * 300_000 + 2 * 2**20, (peak - idle) / size
    response = json.loads((tmp_path / "out" / "big.json").read_bytes())
    assert response["outputs"][0]["data"] == (values * 2).tolist()


# ---------------------------------------------------------------------------------------------------------------
# fast.py and reference.py make the same decisions on corner cases
# ---------------------------------------------------------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


CORNER_CASES = {
    "depth-1024": '{"id": "d", "x": %s, "inputs": [%s]}' % (nested(1022), ONE),  # 1 + 1022 + 1 levels: accepted
    "depth-1025": '{"id": "d", "x": %s, "inputs": [%s]}' % (nested(1024), ONE),  # refused by both
    "deep-data": {"inputs": [tensor("x", "INT8", [1] * 899, json.loads(nested(899).replace("[]", "[7]")))]},
    "duplicate-key-keeps-id": '{"id": "d", "inputs": [%s], "inputs": [%s]}' % (ONE, ONE),
    "duplicate-key-and-1e400-no-id": '{"id": "d", "p": 1e400, "inputs": [%s], "inputs": [%s]}' % (ONE, ONE),
    "1e400-in-unknown-key": '{"id": "d", "p": [1e400, -1e999], "inputs": [%s]}' % ONE,
    "huge-integer-parameter": '{"id": "d", "parameters": {"p": %s}, "inputs": [%s]}' % ("9" * 5000, ONE),
    "lone-surrogate-in-unknown-key": '{"id": "d", "x": {"\\udc00": 1}, "inputs": [%s]}' % ONE,
    "surrogate-pair": '{"id": "\\ud83d\\ude00", "inputs": [%s]}' % ONE,
    "unknown-output-keeps-id": {"id": "d", "inputs": [tensor("x", "INT32", [1], [1])], "outputs": [{"name": "y"}]},
    "empty-outputs-is-all": {"inputs": [tensor("x", "INT32", [1], [1]), tensor("y", "INT8", [1], [2])], "outputs": []},
    "null-outputs": {"inputs": [tensor("x", "INT32", [1], [1])], "outputs": None},
    "big-integers-in-float-data": '{"inputs": [{"name": "x", "datatype": "FP64", "shape": [5], "data": '
    "[18446744073709551616, %d, %d, -0, %d]}]}" % (3**50, -(2**70), 10**308),
    "integer-beyond-double-in-data": '{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [%d]}]}'
    % 10**309,
    "big-integer-in-shape": '{"inputs": [{"name": "x", "datatype": "INT8", "shape": [18446744073709551616], '
    '"data": []}]}',
    "largest-shape-entry": {"inputs": [tensor("x", "INT8", [2**64 - 1, 0], [])]},
    "fp16-limits": {"inputs": [tensor("x", "FP16", [3], [65519, -65519.0, 6e-8])]},
    "fp16-beyond": {"inputs": [tensor("x", "FP16", [1], [65520])]},
    "datatype-not-a-string-keeps-id": {"id": "d", "inputs": [tensor("x", ["INT8"], [1], [1])]},
    "float-shape": {"inputs": [tensor("x", "INT8", [1.0], [1])]},
    "bool-shape": {"inputs": [tensor("x", "INT8", [True], [1])]},
    "id-not-a-string": {"id": 7, "inputs": [tensor("x", "INT8", [1], [1])]},
    "null-parameter": {"parameters": {"p": None}, "inputs": [tensor("x", "INT8", [1], [1])]},
    "output-parameters": {"inputs": [tensor("x", "INT8", [1], [1])], "outputs": [{"name": "x", "parameters": 1}]},
    "output-twice": {"inputs": [tensor("x", "INT8", [1], [1])], "outputs": [{"name": "x"}, {"name": "x"}]},
    "mixed-nesting": {"inputs": [tensor("x", "INT32", [2, 2], [[1, 2], 3, 4])]},
    "scalar-nested": {"inputs": [tensor("x", "INT32", [], [[1]])]},
    "empty-shape-and-nesting": {"inputs": [tensor("x", "INT32", [0, 3], [[]])]},
    "unknown-keys-anything": {"inputs": [tensor("x", "UINT64", [2], [2**64 - 1, 0], extra={"a": [None, {}]})],
                              "junk": {"k": [True, None, 1.5, "s"]}},
    "pretty": json.dumps({"id": "p", "inputs": [tensor("x", "FP32", [2, 1], [[0.1], [-3.4e38]])]}, indent=3),
    "trailing-garbage": '{"inputs": [%s]} x' % ONE,
    "two-documents": '{"inputs": [%s]}{}' % ONE,
    "nan-in-unknown-key": '{"id": "d", "x": NaN, "inputs": [%s]}' % ONE,
    "control-character": '{"id": "a\tb", "inputs": [%s]}' % ONE,
    "empty-file": "",
    "null": "null",
}


def same_decisions(fast: dict, reference: dict) -> bool:
    """Both errors with the same id, or the same response with floats equal bit for bit in their datatype."""
    if "error" in fast or "error" in reference:
        return "error" in fast and "error" in reference and fast.get("id") == reference.get("id")
    if {k: v for k, v in fast.items() if k != "outputs"} != {k: v for k, v in reference.items() if k != "outputs"}:
        return False
    if [len(fast["outputs"]), *(len(o) for o in fast["outputs"])] != [
        len(reference["outputs"]), *(len(o) for o in reference["outputs"])
    ]:
        return False
    for a, b in zip(fast["outputs"], reference["outputs"]):
        if [a[k] for k in ("name", "datatype", "shape")] != [b[k] for k in ("name", "datatype", "shape")]:
            return False
        if a["datatype"].startswith("FP"):
            if not same_floats(a["data"], b["data"], np.dtype(a["datatype"].lower().replace("fp", "float"))):
                return False
        elif a["data"] != b["data"]:
            return False
    return True


@pytest.mark.parametrize("multiplier", ["3", "-1", "0", str(2**60 + 1), str(-(2**200) - 7), "9" * 5000])
def test_fast_and_reference_make_the_same_decisions(tmp_path, multiplier):
    corner = dict(CORNER_CASES, **{f"values-{k}": v for k, v in SERVED_ON_THE_FAST_PATH.items()},
                  **{f"doubt-{k}": v for k, v in LEFT_TO_THE_EXACT_PATH.items()})
    model, inputs = prepare(tmp_path, {f"{name}.json": body for name, body in corner.items()}, multiplier=multiplier)
    runs = {name: execute(model, inputs, tmp_path / name, path) for name, path in PREDICTORS.items()}
    assert all(run.returncode == 0 for run in runs.values()), {k: r.stderr for k, r in runs.items()}
    assert runs["fast"].files == runs["reference"].files == sorted(f"{name}.json" for name in corner)
    differing = [f for f in runs["fast"].files if not same_decisions(runs["fast"].response(f),
                                                                     runs["reference"].response(f))]
    assert not differing, {f: (runs["fast"].response(f), runs["reference"].response(f)) for f in differing}
