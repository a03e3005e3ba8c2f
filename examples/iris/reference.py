"""Reference answers of the "iris" example model, for the kit's python:MODULE:FUNCTION mode (reference:answer).

    answer(request, model) -> the V2 response body the model owes the request, or {"error": "..."}

It shares no code with predictor.py on purpose: the model is rebuilt as a scikit-learn LogisticRegression from
MODEL/weights.json (coef_, intercept_, classes_) and answers with its predict_proba (cast to float32) and predict.
model_name and model_version come from MODEL/odahuflow.project.yaml (or .yml). Importing this module does nothing
but import numpy; scikit-learn and PyYAML are imported on the first call.

Usage from a checkout:  python -c "import sys; sys.path.insert(0, 'examples/iris'); import reference"
"""

from __future__ import annotations

import functools
import json
import math
import pathlib
from typing import Any

import numpy as np

OUTPUT_NAMES = ["probabilities", "label"]
DTYPES = {"FP32": np.float32, "FP64": np.float64}


def answer(request: dict, model: pathlib.Path) -> dict:
    """The response the iris model owes `request` (a parsed V2 request), or {"error": ...} (with the request's
    string id) for a request it refuses."""
    folder = pathlib.Path(model)
    request_id = request.get("id") if isinstance(request, dict) and isinstance(request.get("id"), str) else None
    try:
        x, names = _check(request)
    except ValueError as e:
        refusal: dict[str, Any] = {"error": " ".join(str(e).split())}
        if request_id is not None:
            refusal["id"] = request_id
        return refusal
    classifier, name, version = _load(*_key(folder))
    if len(x):
        probabilities = classifier.predict_proba(x).astype(np.float32)
        labels = classifier.predict(x).astype(np.int64)
    else:
        probabilities, labels = np.zeros((0, 3), dtype=np.float32), np.zeros(0, dtype=np.int64)
    tensors = {
        "probabilities": {"name": "probabilities", "datatype": "FP32", "shape": [len(x), 3],
                          "data": [float(p) for p in probabilities.ravel()]},  # the float32 values, exactly
        "label": {"name": "label", "datatype": "INT64", "shape": [len(x)], "data": [int(v) for v in labels]},
    }
    response: dict[str, Any] = {"model_name": name, "model_version": version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = [tensors[n] for n in names]
    return response


def _check(request: object) -> tuple[np.ndarray, list[str]]:
    """(features as float64 [N, 4] after the cast to the request's datatype, output names) or ValueError."""
    if not isinstance(request, dict):
        raise ValueError("the request is not a JSON object")
    if "id" in request and not isinstance(request["id"], str):
        raise ValueError("id must be a string")
    for where, params in [("request", request.get("parameters", {}))] + [
            (f"tensor {i}", t.get("parameters", {})) for i, t in enumerate(request.get("inputs") or [])
            if isinstance(t, dict)] + [
            (f"output {i}", o.get("parameters", {})) for i, o in enumerate(request.get("outputs") or [])
            if isinstance(o, dict)]:
        if not isinstance(params, dict) or any(not isinstance(v, (str, int, float)) for v in params.values()):
            raise ValueError(f"{where}: parameters must map names to strings, numbers or booleans")
    inputs = request.get("inputs")
    if not (isinstance(inputs, list) and len(inputs) == 1 and isinstance(inputs[0], dict)):
        raise ValueError("the model takes exactly one input tensor")
    tensor = inputs[0]
    missing = {"name", "shape", "datatype", "data"} - set(tensor)
    if missing:
        raise ValueError(f"the input tensor lacks {sorted(missing)}")
    if tensor["name"] != "features":
        raise ValueError("the input must be named 'features'")
    if tensor["datatype"] not in DTYPES:
        raise ValueError("features must be FP32 or FP64")
    shape = tensor["shape"]
    if not (type(shape) is list and len(shape) == 2 and type(shape[0]) is int and shape[0] >= 0
            and type(shape[1]) is int and shape[1] == 4):
        raise ValueError("features must have shape [N, 4]")
    rows = shape[0]
    data = tensor["data"]
    if type(data) is not list:
        raise ValueError("data must be an array")
    nested = any(type(item) is list for item in data)
    if nested:
        if len(data) != rows or any(type(row) is not list or len(row) != 4 for row in data):
            raise ValueError("nested data does not match the shape")
        flat = [value for row in data for value in row]
    else:
        flat = list(data)
        if len(flat) != 4 * rows:
            raise ValueError("the number of elements does not match the shape")
    if any(type(value) not in (int, float) for value in flat):
        raise ValueError("every element must be a number (not a boolean)")
    values = [float(v) if type(v) is float or abs(v) < 2**1024 else math.inf for v in flat]
    with np.errstate(over="ignore"):
        x = np.asarray(values, dtype=np.float64).astype(DTYPES[tensor["datatype"]])
    if not np.all(np.isfinite(x)):
        raise ValueError("every element must be finite in the tensor's datatype")
    outputs = request.get("outputs", [])
    if type(outputs) is not list:
        raise ValueError("outputs must be an array")
    names = []
    for output in outputs:
        if not isinstance(output, dict) or output.get("name") not in OUTPUT_NAMES or output["name"] in names:
            raise ValueError("outputs must name 'probabilities' or 'label', each at most once")
        names.append(output["name"])
    return x.astype(np.float64).reshape(rows, 4), names or list(OUTPUT_NAMES)


def _key(folder: pathlib.Path) -> tuple[str, int, int]:
    """The cache key of a model folder: its weights' path, mtime and size (a retrained model is reloaded)."""
    stat = (folder / "weights.json").stat()
    return str(folder.resolve()), stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=8)
def _load(folder_name: str, mtime_ns: int, size: int) -> tuple[Any, str, str]:
    """(a fitted LogisticRegression, model name, model version) for the model folder."""
    from sklearn.linear_model import LogisticRegression

    folder = pathlib.Path(folder_name)
    weights = json.loads((folder / "weights.json").read_text(encoding="utf-8"))
    classifier = LogisticRegression()
    classifier.coef_ = np.array(weights["coef"], dtype=np.float64)
    classifier.intercept_ = np.array(weights["intercept"], dtype=np.float64)
    classifier.classes_ = np.array(weights["classes"])
    classifier.n_features_in_ = classifier.coef_.shape[1]
    if classifier.coef_.shape != (3, 4) or classifier.intercept_.shape != (3,) or len(classifier.classes_) != 3:
        raise ValueError(f"{folder}/weights.json: wrong shapes")
    name, version = _project(folder)
    return classifier, name, version


def _project(folder: pathlib.Path) -> tuple[str, str]:
    import yaml

    path = next((folder / f"odahuflow.project.{ext}" for ext in ("yaml", "yml")
                 if (folder / f"odahuflow.project.{ext}").is_file()), folder / "odahuflow.project.yaml")
    meta = yaml.safe_load(path.read_text(encoding="utf-8"))["model"]
    return str(meta["name"]), str(meta["version"])
