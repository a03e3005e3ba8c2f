#!/usr/bin/env python3
"""Batch predictor for ODAHU: the "iris" example model (softmax regression), Open Inference Protocol (KServe V2).

    ODAHU_MODEL_PATH   the model: weights.json (written by examples/iris/train.py) and odahuflow.project.yaml or
                       .yml (model: {name, version}); model-settings.json is optional (checked when present)
    ODAHU_INPUT_PATH   the requests: every regular file NAME.json directly in it (not recursive), in name order
    ODAHU_OUTPUT_PATH  the responses: created with parents if missing; one NAME.json per request
    IRIS_VARIANT       unset or empty: the correct model; else a deliberately wrong one for the kit's own tests:
                       reordered-features, fp16-probabilities, label-off-by-one, nondeterministic, within-tolerance,
                       any-input-name (takes the first input whatever its name), batch-mean (shifts every
                       answer by a trace of the mean feature of the whole batch: answers depend on the batch),
                       hardcoded-name (model_name "iris", model_version "1", whatever the project file says),
                       jitter-big-batches (answers to requests of more than 8 rows move by 1 to 3 float32 steps,
                       differently every time), crash-on-zero-rows (a request of 0 rows raises, uncaught: the
                       process dies there with a traceback, exit 1), chunked-batches (serves the files in chunks
                       of 100, a smaller batch as one chunk, and loses the remainder of a bigger one)

Request  {id?, parameters?, inputs: [{name: "features", datatype: FP32|FP64, shape: [N, 4], data}],
          outputs?: [{name: "probabilities"|"label", parameters?}]}
Response {model_name, model_version, id?, outputs: [probabilities FP32 [N, 3], label INT64 [N]]}
Error    {error: "one line", id?}   (id: the request's "id" when it is a string and the file parsed as JSON)

The features (flat or nested as the shape, N >= 0) are cast to the request's datatype; probabilities are
softmax(X @ coef.T + intercept) computed in float64 and rounded once to float32 (written as the shortest
decimal that reads back as that float32); label is the class of the largest probability. "outputs" picks and
orders the returned tensors. Anything else (not strict JSON, another input or datatype, a wrong shape or element
count, a non-finite, non-number or boolean element, an unknown output) gets an error response and the batch goes
on. Responses are written atomically (a temporary name in the output folder, then a rename), mode 0644.
Exit status: 0 after the batch (also an empty one); 2 and one line on stderr when the model, the environment or
IRIS_VARIANT is unusable (nothing written); 1 when a response could not be written.
Only the standard library and numpy are needed (PyYAML is used when installed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys

import numpy as np

FEATURES, CLASSES = 4, 3
INPUT_DTYPES = {"FP32": np.float32, "FP64": np.float64}
OUTPUTS = ("probabilities", "label")
VARIANTS = ("reordered-features", "fp16-probabilities", "label-off-by-one", "nondeterministic", "within-tolerance",
            "any-input-name", "batch-mean", "hardcoded-name", "jitter-big-batches", "crash-on-zero-rows",
            "chunked-batches")
CHUNK = 100  # chunked-batches: files per chunk
MAX_DEPTH = 1024  # deepest nesting of arrays and objects accepted


class ConfigError(Exception):
    """The model, the environment or the variant is unusable: exit status 2."""


class RequestError(Exception):
    """This request gets an error response."""


class Model:
    def __init__(self, coef: np.ndarray, intercept: np.ndarray, classes: list[int], name: str, version: str,
                 variant: str) -> None:
        self.coef, self.intercept, self.classes = coef, intercept, np.array(classes, dtype=np.int64)
        self.name, self.version, self.variant = name, version, variant
        self.rng = np.random.default_rng() if variant in ("nondeterministic", "jitter-big-batches") else None  # seeded from the OS
        self.batch_shift = 0.0  # batch-mean: set from the whole batch before any request is answered

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities float32 [N, 3], labels int64 [N]) for features float64 [N, 4]."""
        if self.variant == "reordered-features":
            x = x[:, [1, 0, 2, 3]]
        if self.variant == "crash-on-zero-rows":  # the bug: rows stacked one by one; none raises ValueError
            x = np.stack(list(x))
        z = x @ self.coef.T + self.intercept
        if self.variant == "batch-mean":
            z[:, 0] += self.batch_shift
        z -= z.max(axis=1, keepdims=True) if len(z) else 0.0
        e = np.exp(z)
        p64 = e / e.sum(axis=1, keepdims=True)
        labels = self.classes[np.argmax(p64, axis=1)] if len(p64) else np.zeros(0, dtype=np.int64)
        p = p64.astype(np.float32)
        if self.variant == "fp16-probabilities":
            p = p.astype(np.float16).astype(np.float32)
        elif self.variant == "label-off-by-one":
            labels = labels + 1
        elif self.variant == "within-tolerance":  # 1e-7 is over half a float32 step: every non-zero one moves
            p = (p.astype(np.float64) * (1 + 1e-7)).astype(np.float32)
        elif self.variant == "nondeterministic" or (self.variant == "jitter-big-batches" and len(p) > 8):
            # a random factor 1 +- (1e-7 .. 3e-7): moves by 1 to 3 steps
            assert self.rng is not None
            noise = self.rng.uniform(1e-7, 3e-7, p.shape) * self.rng.choice([-1.0, 1.0], p.shape)
            p = (p.astype(np.float64) * (1 + noise)).astype(np.float32)
        return p, labels


def load_model(model_dir: str, variant: str) -> Model:
    """The model from its folder, or ConfigError."""
    path = os.path.join(model_dir, "weights.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing (write it with examples/iris/train.py --out FOLDER)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {one_line(e)}") from None
    try:
        weights = json.loads(raw.decode("utf-8"), parse_constant=reject_constant)
    except (ValueError, RecursionError) as e:
        raise ConfigError(f"{path}: not JSON: {one_line(e)}") from None
    if not isinstance(weights, dict):
        raise ConfigError(f"{path}: must be a JSON object with coef, intercept and classes")
    coef = number_array(weights.get("coef"), (CLASSES, FEATURES), f"{path}: coef")
    intercept = number_array(weights.get("intercept"), (CLASSES,), f"{path}: intercept")
    classes = weights.get("classes")
    if not (isinstance(classes, list) and len(classes) == CLASSES and all(type(c) is int for c in classes)
            and len(set(classes)) == CLASSES):
        raise ConfigError(f"{path}: classes must be {CLASSES} distinct integers, got {str(classes)[:60]}")
    settings = os.path.join(model_dir, "model-settings.json")
    if os.path.exists(settings):  # optional; a broken one means a broken model folder
        try:
            with open(settings, "rb") as f:
                if not isinstance(json.loads(f.read().decode("utf-8"), parse_constant=reject_constant), dict):
                    raise ValueError("not a JSON object")
        except (OSError, ValueError, RecursionError) as e:
            raise ConfigError(f"{settings}: unusable: {one_line(e)}") from None
    name, version = load_project(model_dir)
    if variant == "hardcoded-name":  # the name and version it was written for, whatever the project file says
        name, version = "iris", "1"
    return Model(coef, intercept, classes, name, version, variant)


def number_array(value: object, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        if not all(type(x) in (int, float) for x in np.array(value, dtype=object).ravel()):
            raise ValueError
        array = np.array(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        array = None
    if array is None or array.shape != shape or not np.isfinite(array).all():
        raise ConfigError(f"{where}: must be finite numbers of shape {list(shape)}")
    return array


def load_project(model_dir: str) -> tuple[str, str]:
    """(model name, model version) from odahuflow.project.yaml or .yml, or ConfigError."""
    paths = [os.path.join(model_dir, f"odahuflow.project.{ext}") for ext in ("yaml", "yml")]
    path = next((p for p in paths if os.path.isfile(p)), None)
    if path is None:
        raise ConfigError(f"{paths[0]}: missing (needs model: {{name, version}})")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {one_line(e)}") from None
    try:
        import yaml  # absent in the image: then the two keys are read by hand
    except ImportError:
        model = tiny_yaml_model(text)
    else:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not YAML: {one_line(e)}") from None
        model = doc.get("model") if isinstance(doc, dict) else None
    if not isinstance(model, dict):
        raise ConfigError(f"{path}: needs a 'model' mapping with 'name' and 'version'")
    name, version = model.get("name"), model.get("version")
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        version = str(version)  # `version: 1` is the string "1"
    for key, value in (("name", name), ("version", version)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: model.{key} must be a non-empty string, got {value!r}")
    return str(name), str(version)


def tiny_yaml_model(text: str) -> dict | None:
    """model.name and model.version from the usual shapes of the project file (block or flow mapping) without
    PyYAML: `model:` then indented `name: X` / `version: "1"` lines, or `model: {name: X, version: "1"}`."""
    lines = [line.split(" #")[0].rstrip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    for i, line in enumerate(lines):
        top = re.fullmatch(r"model\s*:\s*(.*)", line)
        if not top:
            continue
        if top.group(1).startswith("{") and top.group(1).endswith("}"):
            items = [item.split(":", 1) for item in top.group(1)[1:-1].split(",") if ":" in item]
        else:
            items = []
            for child in lines[i + 1:]:
                if child and not child[0].isspace():
                    break
                if ":" in child:
                    items.append(child.split(":", 1))
        return {key.strip(): scalar(value.strip()) for key, value in items}
    return None


def scalar(token: str) -> object:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    if re.fullmatch(r"[+-]?[0-9]+", token):
        return int(token)
    if re.fullmatch(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", token):
        return float(token)
    return None if token in ("", "~", "null") else token


def reject_constant(token: str) -> None:
    raise ValueError(f"{token} is not a JSON number")


def parse(raw: bytes) -> tuple[object, bool]:
    """(document, has a duplicate key) for strict JSON (no NaN/Infinity, valid UTF-8), or RequestError.
    A duplicate key is refused too, but after the id is known (the last copy wins), as predictor/reference.py."""
    seen = {"duplicate": False}

    def pairs(items: list) -> dict:
        result = dict(items)
        seen["duplicate"] |= len(result) != len(items)
        return result

    try:
        text = raw.decode("utf-8")
        doc = json.loads(text, parse_constant=reject_constant, object_pairs_hook=pairs)
        if "\\u" in text:  # a lone surrogate escape ("\\ud800") parses, but is no text: it cannot be written back
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as e:  # (UnicodeEncodeError and UnicodeDecodeError are ValueErrors)
        raise RequestError(f"request is not strict JSON: {one_line(e)}") from None
    return doc, seen["duplicate"]


def check_parameters(value: object, where: str) -> None:
    if not isinstance(value, dict):
        raise RequestError(f"{where}: parameters must be an object")
    for key, item in value.items():
        if not isinstance(item, (str, int, float)):  # bool is an int
            raise RequestError(f"{where}/{key}: a parameter must be a string, number or boolean")


def features(doc: object, variant: str = "") -> np.ndarray:
    """The request's features as float64 [N, 4] (after the cast to the request's datatype), or RequestError."""
    if not isinstance(doc, dict):
        raise RequestError("request must be a JSON object")
    if "id" in doc and not isinstance(doc["id"], str):
        raise RequestError("/id: must be a string")
    if "parameters" in doc:
        check_parameters(doc["parameters"], "/parameters")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise RequestError("/inputs: must be an array of exactly one tensor, 'features'")
    tensor = inputs[0]
    if not isinstance(tensor, dict) or not {"name", "shape", "datatype", "data"} <= tensor.keys():
        raise RequestError("/inputs/0: a tensor must be an object with name, shape, datatype and data")
    if tensor["name"] != "features" and variant != "any-input-name":
        raise RequestError(f"/inputs/0/name: must be 'features', got {str(tensor['name'])[:40]!r}")
    if tensor["datatype"] not in INPUT_DTYPES:
        raise RequestError(f"/inputs/0/datatype: must be FP32 or FP64, got {str(tensor['datatype'])[:40]!r}")
    shape = tensor["shape"]
    if not (isinstance(shape, list) and len(shape) == 2 and all(type(n) is int for n in shape)
            and shape[0] >= 0 and shape[1] == FEATURES):
        raise RequestError(f"/inputs/0/shape: must be [N, {FEATURES}] with N >= 0, got {str(shape)[:40]}")
    if "parameters" in tensor:
        check_parameters(tensor["parameters"], "/inputs/0/parameters")
    data = tensor["data"]
    if not isinstance(data, list):
        raise RequestError("/inputs/0/data: must be an array")
    if any(type(row) is list for row in data):  # nested: exactly [N][4]
        if len(data) != shape[0] or not all(type(row) is list and len(row) == FEATURES for row in data):
            raise RequestError(f"/inputs/0/data: not nested as shape {shape}")
        data = [x for row in data for x in row]
    elif len(data) != shape[0] * FEATURES:
        raise RequestError(f"/inputs/0/data: {len(data)} elements, shape {shape} needs {shape[0] * FEATURES}")
    for j, x in enumerate(data):
        if type(x) not in (int, float):  # bool, string, null, object, deeper array
            raise RequestError(f"/inputs/0/data: element {j} ({json.dumps(x)[:40]}) is not a number")
    try:
        with np.errstate(over="ignore"):
            x = np.array(data, dtype=np.float64).astype(INPUT_DTYPES[tensor["datatype"]])
    except OverflowError:  # an integer beyond the double range
        x = np.array([math.inf])
    if not np.isfinite(x).all():
        raise RequestError(f"/inputs/0/data: an element is not finite in {tensor['datatype']}")
    return x.astype(np.float64).reshape(shape[0], FEATURES)


def selected_outputs(doc: dict) -> list[str]:
    outputs = doc.get("outputs", [])
    if not isinstance(outputs, list):
        raise RequestError("/outputs: must be an array")
    names: list[str] = []
    for i, output in enumerate(outputs):
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise RequestError(f"/outputs/{i}: must be an object with a string 'name'")
        if "parameters" in output:
            check_parameters(output["parameters"], f"/outputs/{i}/parameters")
        if output["name"] not in OUTPUTS or output["name"] in names:
            raise RequestError(f"/outputs/{i}/name: {output['name'][:40]!r} is not an output of the model "
                               f"({', '.join(OUTPUTS)}), or is asked twice")
        names.append(output["name"])
    return names or list(OUTPUTS)


def serve(raw: bytes, model: Model) -> dict:
    """The response (or error response) to one request file's bytes."""
    request_id = None
    try:
        doc, duplicate = parse(raw)
        if isinstance(doc, dict) and isinstance(doc.get("id"), str):
            request_id = doc["id"]
        if duplicate:
            raise RequestError("request is not strict JSON: an object has a duplicate key")
        x = features(doc, model.variant)
        assert isinstance(doc, dict)
        names = selected_outputs(doc)
        probabilities, labels = model.predict(x)
        tensors = {
            "probabilities": {"name": "probabilities", "datatype": "FP32", "shape": [len(x), CLASSES],
                              "data": [float(str(p)) for p in probabilities.ravel()]},  # shortest float32 text
            "label": {"name": "label", "datatype": "INT64", "shape": [len(x)], "data": labels.tolist()},
        }
        response = {"model_name": model.name, "model_version": model.version, "id": request_id,
                    "outputs": [tensors[name] for name in names]}
        return {key: value for key, value in response.items() if value is not None}
    except RequestError as e:
        return {"error": one_line(e)} if request_id is None else {"error": one_line(e), "id": request_id}


def run_batch(model_dir: str, input_dir: str, output_dir: str, variant: str) -> int:
    model = load_model(model_dir, variant)
    try:
        with os.scandir(input_dir) as entries:
            names = sorted(e.name for e in entries if e.name.endswith(".json") and e.is_file())
    except OSError as e:
        raise ConfigError(f"{input_dir}: cannot list the requests: {one_line(e)}") from None
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{output_dir}: cannot create the output folder: {one_line(e)}") from None
    if variant == "batch-mean":  # a look at the whole batch first (the bug: statistics across requests)
        means = []
        for name in names:
            try:
                with open(os.path.join(input_dir, name), "rb") as f:
                    doc, _ = parse(f.read())
                means.append(float(features(doc).mean()))
            except Exception:  # noqa: BLE001 - a request it cannot read just does not count
                continue
        model.batch_shift = 1e-6 * float(np.mean(means)) if means and not any(np.isnan(means)) else 0.0
    if variant == "chunked-batches":  # whole chunks of CHUNK files only (at least one): the remainder is lost
        names = names[:max(1, len(names) // CHUNK) * CHUNK]
    errors = unwritten = 0
    for name in names:
        try:
            with open(os.path.join(input_dir, name), "rb") as f:
                response = serve(f.read(), model)
        except OSError as e:
            response = {"error": f"cannot read the request: {one_line(e)}"}
        except Exception as e:  # a bug must not cost the rest of the batch its responses
            if variant == "crash-on-zero-rows":
                raise  # this variant has no such guard: the exception ends the process
            response = {"error": f"internal error: {type(e).__name__}: {one_line(e)}"}
        body = json.dumps(response, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        temporary = os.path.join(output_dir, f".{name}.partial")  # not *.json: the platform never takes it
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o644)  # whatever the umask
                f.write(body)
            os.replace(temporary, os.path.join(output_dir, name))
        except OSError as e:
            unwritten += 1
            print(f"{name}: cannot write the response: {one_line(e)}", file=sys.stderr)
            continue
        if "error" in response:
            errors += 1
            print(f"{name}: error: {response['error']}")
    print(f"{len(names)} request(s): {len(names) - errors - unwritten} served, {errors} error response(s), "
          f"{unwritten} not written" + (f" (variant {variant})" if variant else ""))
    return 1 if unwritten else 0


def one_line(value: object) -> str:
    return " ".join(str(value).split())


def main(argv: list[str] | None = None) -> int:
    parts = __doc__.split("\n\n")  # --help: the first line and the variables
    argparse.ArgumentParser(prog="predictor.py", description=parts[0], epilog=parts[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), MAX_DEPTH + 500))
    variables = ("ODAHU_MODEL_PATH", "ODAHU_INPUT_PATH", "ODAHU_OUTPUT_PATH")
    try:
        variant = os.environ.get("IRIS_VARIANT", "")
        if variant and variant not in VARIANTS:
            raise ConfigError(f"IRIS_VARIANT={variant[:40]!r} is unknown (known: {', '.join(VARIANTS)})")
        missing = [name for name in variables if not os.environ.get(name)]
        if missing:
            raise ConfigError(f"{missing[0]} is not set (see --help)")
        model_dir, input_dir, output_dir = (os.environ[name] for name in variables)
        return run_batch(model_dir, input_dir, output_dir, variant)
    except ConfigError as e:
        print(f"predictor: {one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
