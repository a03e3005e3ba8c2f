#!/usr/bin/env python3
"""Reference batch predictor for ODAHU: the "multiplier" model over the Open Inference Protocol (KServe V2).

How ODAHU runs it (one InferenceJob = one pod; this program is the "run the predictor image" step):

    ODAHU_MODEL_PATH   folder holding the model: multiplier.txt (a base-10 integer) and
                       odahuflow.project.yaml (model: {name, version})
    ODAHU_INPUT_PATH   folder of requests: every NAME.json directly in it (not recursive)
    ODAHU_OUTPUT_PATH  folder for responses (created with parents if missing): one NAME.json per request

For each request every input tensor (or the tensors named in "outputs") is multiplied by the integer in
multiplier.txt, computed in the tensor's own datatype (integers wrap around like numpy does; floats are
rounded once to the datatype). A request that cannot be served gets an error response {"error": "..."}.

Exit status: 0 after a processed batch (also when the input folder is empty); 2 with one line on stderr
when the model or the environment is unusable (then no response file is written); 1 when a response could
not be written (disk full, permissions).

Design notes for people copying this file:
- One request at a time: memory is bounded by the largest request, not by the batch.
- Fast path: orjson parses, numpy converts and multiplies, orjson writes numpy arrays directly.
  Cheap whole-array checks (inferred dtype kind, min/max, isfinite) replace per-element Python loops;
  an exact pure-Python path takes over only when a cheap check cannot decide.
- Strict JSON: orjson rejects NaN/Infinity and invalid UTF-8; duplicate object keys (which orjson silently
  collapses) are detected by counting (see ``_has_duplicate_keys``).
- Responses are written atomically: a temporary name that does not end in ".json", then os.replace, so
  the platform never uploads a half-written file.

Only the standard library, numpy, orjson and PyYAML are used.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import sys
from fractions import Fraction

import numpy as np
import orjson
import yaml

MULTIPLIER_FILE = "multiplier.txt"
PROJECT_FILES = ("odahuflow.project.yaml", "odahuflow.project.yml")
ENV_MODEL, ENV_INPUT, ENV_OUTPUT = "ODAHU_MODEL_PATH", "ODAHU_INPUT_PATH", "ODAHU_OUTPUT_PATH"

#: Numeric datatypes of the protocol and their numpy dtypes. BOOL and BYTES are valid datatypes that
#: this model does not support (a request using them gets an error response).
NUMERIC_DTYPES = {
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
UNSUPPORTED_DTYPES = ("BOOL", "BYTES")
MAX_SHAPE_ENTRY = (1 << 64) - 1

#: IEEE binary formats: (precision in bits including the hidden bit, minimum normal exponent, maximum exponent).
FLOAT_FORMATS = {2: (11, -14, 15), 4: (24, -126, 127), 8: (53, -1022, 1023)}

USAGE_EPILOG = f"""\
environment (all three required; the names are the ones the ODAHU operator sets):
  {ENV_MODEL}   model folder: {MULTIPLIER_FILE} and odahuflow.project.yaml
  {ENV_INPUT}   folder of request files (*.json, not recursive); left unchanged
  {ENV_OUTPUT}  folder for response files (created if missing)

exit status:
  0  batch processed (bad requests get {{"error": ...}} responses)
  1  a response file could not be written
  2  unusable model or environment (one line on stderr, no response written)

example:
  {ENV_MODEL}=model {ENV_INPUT}=requests {ENV_OUTPUT}=responses python predictor.py
"""


class ConfigError(Exception):
    """The model or the environment is unusable: the whole run stops with exit status 2."""


class RequestError(Exception):
    """This one request cannot be served: it gets an error response and the batch goes on."""


# --------------------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------------------


def load_model(model_dir: str) -> tuple[int, str, str]:
    """Read the model folder: return (multiplier, model name, model version) or raise ConfigError."""
    path = os.path.join(model_dir, MULTIPLIER_FILE)
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing (the model needs a {MULTIPLIER_FILE} holding an integer)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {_one_line(e)}") from None
    digits = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]+", digits):
        shown = digits if len(digits) <= 40 else digits[:40] + "..."
        raise ConfigError(f"{path}: not a base-10 integer: {shown!r}")
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # the multiplier may have any number of digits
    try:
        multiplier = int(digits)
    finally:
        sys.set_int_max_str_digits(limit)

    name, version = _load_project(model_dir)
    return multiplier, name, version


def _load_project(model_dir: str) -> tuple[str, str]:
    """Read ``model.name`` and ``model.version`` from odahuflow.project.yaml (or .yml)."""
    for file_name in PROJECT_FILES:
        path = os.path.join(model_dir, file_name)
        if os.path.isfile(path):
            break
    else:
        raise ConfigError(f"{os.path.join(model_dir, PROJECT_FILES[0])}: missing (needs model: {{name, version}})")
    try:
        with open(path, "rb") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read: {_one_line(e)}") from None
    model = doc.get("model") if isinstance(doc, dict) else None
    if not isinstance(model, dict):
        raise ConfigError(f"{path}: needs a 'model' mapping with 'name' and 'version'")
    name, version = model.get("name"), model.get("version")
    # A YAML number such as `version: 1` is read as the string "1".
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        version = str(version)
    for key, value in (("name", name), ("version", version)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: model.{key} must be a non-empty string, got {value!r}")
    return name, version


# --------------------------------------------------------------------------------------------------------------
# Strict JSON
# --------------------------------------------------------------------------------------------------------------


def parse_request(raw: bytes) -> tuple[object, bool]:
    """Parse strict JSON. Return (document, duplicates_checked).

    orjson is tried first. It rejects a few valid documents (numbers such as 1e400 that overflow a double,
    which the protocol allows in ``parameters``), so when it fails the standard library decides, with
    NaN/Infinity tokens and duplicate keys rejected there. ``duplicates_checked`` tells whether duplicate
    keys were already ruled out (stdlib path) or still need ``_has_duplicate_keys`` (orjson path).
    """
    try:
        return orjson.loads(raw), False
    except orjson.JSONDecodeError as first_error:
        orjson_error = first_error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(f"request is not valid UTF-8: {_one_line(e)}") from None
    try:
        doc = _stdlib_loads(text)
    except RequestError:
        raise
    except (ValueError, RecursionError):
        # Report orjson's message: it is the more precise one (line and column).
        raise RequestError(f"request is not valid JSON: {_one_line(orjson_error)}") from None
    if _has_lone_surrogate(doc):
        raise RequestError("request is not valid JSON text: a string holds an unpaired UTF-16 surrogate escape")
    return doc, True


def _stdlib_loads(text: str) -> object:
    def reject_constant(token: str) -> None:
        raise RequestError(f"request is not strict JSON: {token} is not a JSON number")

    def no_duplicates(pairs: list) -> dict:
        result = dict(pairs)
        if len(result) != len(pairs):
            seen = set()
            for key, _ in pairs:
                if key in seen:
                    raise RequestError(f"request is not strict JSON: duplicate key {key!r}")
                seen.add(key)
        return result

    def parse_int(token: str) -> int | float:
        # Integers too long for int() (over 4300 digits) are far out of every datatype's range;
        # as floats they become inf and are rejected wherever a tensor element or shape would use them.
        return int(token) if len(token) <= 4000 else float(token)

    return json.loads(text, parse_constant=reject_constant, object_pairs_hook=no_duplicates, parse_int=parse_int)


def _has_lone_surrogate(doc: object) -> bool:
    """True if any string (or key) holds a lone surrogate, which is not encodable as UTF-8."""
    stack = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _has_duplicate_keys(read, colons: int, doc: dict) -> bool:
    """Exact duplicate-key check for a document parsed by orjson (which keeps the last of duplicates).

    Every key/value pair in the text has its own ':' outside strings, so
    ``colons in the text >= pairs in the text >= keys that survived parsing``. When the first and last
    are equal, no pair was collapsed: no duplicates, decided without a second parse. Otherwise (a ':' or
    a duplicate somewhere) the standard library re-parses ``read()`` with a hook that sees every pair.
    Tensor ``data`` is not walked when counting keys: its Python types are checked separately.
    """
    if colons == _count_keys(doc):
        return False
    try:
        _stdlib_loads(read().decode("utf-8"))
    except RequestError:
        return True
    return False


def _count_keys(doc: dict) -> int:
    total = 0
    stack: list = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            total += len(value)
            if value is doc:
                for tensor in value["inputs"]:  # validated: a list of tensor objects
                    total += len(tensor)
                    stack.extend(v for k, v in tensor.items() if k != "data")
                stack.extend(v for k, v in value.items() if k != "inputs")
            else:
                stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return total


# --------------------------------------------------------------------------------------------------------------
# Request validation
# --------------------------------------------------------------------------------------------------------------


def _check_parameters(value: object, where: str) -> None:
    """``parameters``: an object whose values are strings, numbers or booleans."""
    if not isinstance(value, dict):
        raise RequestError(f"{where}: parameters must be an object")
    for key, item in value.items():
        if not isinstance(item, (str, int, float)):  # bool is an int subclass
            raise RequestError(f"{where}/{key}: a parameter must be a string, number or boolean")


def validate_request(doc: object) -> tuple[list, list]:
    """Check the request's structure (not the tensor data). Return (inputs, names of the tensors to return)."""
    if not isinstance(doc, dict):
        raise RequestError("request must be a JSON object")
    if "id" in doc and not isinstance(doc["id"], str):
        raise RequestError("/id: must be a string")
    if "parameters" in doc:
        _check_parameters(doc["parameters"], "/parameters")

    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError("/inputs: must be a non-empty array of tensors")
    names = set()
    for i, tensor in enumerate(inputs):
        where = f"/inputs/{i}"
        if not isinstance(tensor, dict):
            raise RequestError(f"{where}: a tensor must be an object")
        for key in ("name", "shape", "datatype", "data"):
            if key not in tensor:
                raise RequestError(f"{where}: missing '{key}'")
        name = tensor["name"]
        if not isinstance(name, str) or not name:
            raise RequestError(f"{where}/name: must be a non-empty string")
        if name in names:
            raise RequestError(f"{where}/name: duplicate input name {name!r}")
        names.add(name)
        shape = tensor["shape"]
        if not isinstance(shape, list) or not all(type(n) is int and 0 <= n <= MAX_SHAPE_ENTRY for n in shape):
            raise RequestError(f"{where}/shape: must be an array of integers 0..2^64-1")
        datatype = tensor["datatype"]
        if datatype in UNSUPPORTED_DTYPES:
            raise RequestError(f"{where}/datatype: {datatype} is not supported by the multiplier model")
        if datatype not in NUMERIC_DTYPES:
            raise RequestError(f"{where}/datatype: unknown datatype {datatype!r}")
        if "parameters" in tensor:
            _check_parameters(tensor["parameters"], f"{where}/parameters")
        if not isinstance(tensor["data"], list):
            raise RequestError(f"{where}/data: must be an array")

    outputs = doc.get("outputs", [])
    if not isinstance(outputs, list):
        raise RequestError("/outputs: must be an array")
    if not outputs:
        return inputs, [t["name"] for t in inputs]
    selected = []
    for i, output in enumerate(outputs):
        where = f"/outputs/{i}"
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise RequestError(f"{where}: must be an object with a string 'name'")
        if "parameters" in output:
            _check_parameters(output["parameters"], f"{where}/parameters")
        name = output["name"]
        if name in selected:
            raise RequestError(f"{where}/name: {name!r} is requested twice")
        if name not in names:
            raise RequestError(f"{where}/name: {name!r} is not an input tensor")
        selected.append(name)
    return inputs, selected


# --------------------------------------------------------------------------------------------------------------
# Tensor data -> numpy
# --------------------------------------------------------------------------------------------------------------


def tensor_array(tensor: dict, where: str) -> np.ndarray:
    """Return the tensor's data as a flat numpy array of its datatype, or raise RequestError.

    Fast path: ``set(map(type, elements))`` tells exactly which Python types occur (bools are ``bool``, not
    ``int`` here, while numpy would silently turn them into 1/0), then ``np.fromiter(elements, dtype)``
    converts and min/max (integers) or isfinite (floats) check the range on the whole array at once.
    Whenever the fast path cannot decide, ``_tensor_array_exact`` checks element by element.
    """
    data, shape, dtype = tensor["data"], tensor["shape"], NUMERIC_DTYPES[tensor["datatype"]]
    types = set(map(type, data))
    if list in types:  # nested data: flatten it level by level, checking every length against the shape
        data = _nested_leaves(data, shape)
        if data is None:
            return _tensor_array_exact(tensor["data"], shape, dtype, where)
        types = set(map(type, data))
    elif len(data) != math.prod(shape):
        raise RequestError(f"{where}/data: {len(data)} elements, shape {shape} needs {math.prod(shape)}")
    if not data:
        return np.zeros(0, dtype)

    if dtype.kind in "iu":
        if types != {int}:
            return _tensor_array_exact(tensor["data"], shape, dtype, where)
        try:
            array = np.fromiter(data, dtype=np.uint64 if dtype == np.uint64 else np.int64, count=len(data))
        except OverflowError:  # beyond 64 bits (or negative for UINT64)
            return _tensor_array_exact(tensor["data"], shape, dtype, where)
        info = np.iinfo(dtype)
        low, high = int(array.min()), int(array.max())
        if low < info.min or high > info.max:
            raise RequestError(f"{where}/data: {low if low < info.min else high} is out of range for {tensor['datatype']}")
        return array.astype(dtype, copy=False)

    # Floating point: every JSON number (int or float) is rounded to the datatype, and must stay finite.
    if not types <= {int, float}:
        return _tensor_array_exact(tensor["data"], shape, dtype, where)
    try:
        array = np.fromiter(data, dtype=np.float64, count=len(data))
    except OverflowError:  # an integer beyond the double range
        return _tensor_array_exact(tensor["data"], shape, dtype, where)
    with np.errstate(over="ignore"):
        array = array.astype(dtype, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        raise RequestError(f"{where}/data: element {int(np.argmin(finite))} is out of range for {tensor['datatype']}")
    return array


def _nested_leaves(data: list, shape: list) -> list | None:
    """The scalars of data nested exactly as ``shape``, in row-major order; None if the nesting is wrong."""
    level = [data]
    for size in shape:
        if not all(type(item) is list and len(item) == size for item in level):
            return None
        level = list(itertools.chain.from_iterable(level))
    return level


def _flatten_exact(data: list, shape: list, where: str) -> list:
    """The elements of flat or exactly-nested ``data`` in row-major order, or a RequestError saying why not."""
    count = math.prod(shape)
    if not any(isinstance(item, list) for item in data):
        if len(data) != count:
            raise RequestError(f"{where}/data: {len(data)} elements, shape {shape} needs {count}")
        return data
    if len(shape) < 2:
        raise RequestError(f"{where}/data: nested deeper than shape {shape}")
    flat: list = []

    def walk(value: list, depth: int, path: str) -> None:
        if not isinstance(value, list):
            raise RequestError(f"{where}/data{path}: expected an array (shape {shape})")
        if len(value) != shape[depth]:
            raise RequestError(f"{where}/data{path}: {len(value)} elements, shape {shape} needs {shape[depth]}")
        if depth == len(shape) - 1:
            for j, item in enumerate(value):
                if isinstance(item, list):
                    raise RequestError(f"{where}/data{path}/{j}: nested deeper than shape {shape}")
            flat.extend(value)
        else:
            for j, item in enumerate(value):
                walk(item, depth + 1, f"{path}/{j}")

    walk(data, 0, "")
    return flat


def _tensor_array_exact(data: list, shape: list, dtype: np.dtype, where: str) -> np.ndarray:
    """Element-by-element version of ``tensor_array`` (slow, exact, precise messages)."""
    flat = _flatten_exact(data, shape, where)
    name = next(k for k, v in NUMERIC_DTYPES.items() if v == dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        for j, x in enumerate(flat):
            if type(x) is not int:
                raise RequestError(f"{where}/data: element {j} ({_short(x)}) is not an integer ({name})")
            if not info.min <= x <= info.max:
                raise RequestError(f"{where}/data: element {j} ({x}) is out of range for {name}")
        return np.array(flat, dtype=dtype)
    values = []
    for j, x in enumerate(flat):
        if type(x) not in (int, float):
            raise RequestError(f"{where}/data: element {j} ({_short(x)}) is not a number ({name})")
        try:
            values.append(float(x))
        except OverflowError:  # an integer beyond the double range
            raise RequestError(f"{where}/data: element {j} is out of range for {name}") from None
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.array(values, dtype=np.float64).astype(dtype)
    finite = np.isfinite(result)
    if not finite.all():
        raise RequestError(f"{where}/data: element {int(np.argmin(finite))} is out of range for {name}")
    return result


# --------------------------------------------------------------------------------------------------------------
# The model: multiply in the tensor's datatype
# --------------------------------------------------------------------------------------------------------------


def multiply(array: np.ndarray, multiplier: int) -> np.ndarray:
    """``array * multiplier`` computed in ``array.dtype`` (integers wrap; floats rounded once, may be inf)."""
    dtype = array.dtype
    if dtype.kind in "iu":
        # Reduce the multiplier modulo 2^bits into the dtype; numpy's array multiply then wraps the same way.
        bits = dtype.itemsize * 8
        wrapped = multiplier % (1 << bits)
        if dtype.kind == "i" and wrapped >= 1 << (bits - 1):
            wrapped -= 1 << bits
        return np.multiply(array, dtype.type(wrapped), out=array)

    precision = FLOAT_FORMATS[dtype.itemsize][0]
    magnitude = abs(multiplier)
    odd_part = magnitude >> ((magnitude & -magnitude).bit_length() - 1) if magnitude else 0
    exact_in_double = magnitude.bit_length() <= 1024 and odd_part.bit_length() <= 53
    if dtype == np.float64 and exact_in_double:
        # float64(m) is exact, so IEEE multiplication rounds the exact product once.
        with np.errstate(over="ignore"):
            return np.multiply(array, np.float64(multiplier), out=array)
    if dtype != np.float64 and exact_in_double and odd_part.bit_length() <= 53 - precision:
        # x has `precision` significant bits, m at most 53 - precision: the float64 product is exact,
        # and the cast to the datatype is the single rounding.
        with np.errstate(over="ignore"):
            return (array.astype(np.float64) * np.float64(multiplier)).astype(dtype)
    return _multiply_exact(array, multiplier)


def _multiply_exact(array: np.ndarray, multiplier: int) -> np.ndarray:
    """Slow path for huge multipliers: exact rational product, rounded to nearest-even in the datatype."""
    result = np.empty_like(array)
    for j, x in enumerate(array.tolist()):
        if x == 0:
            result[j] = math.copysign(0.0, x) * (1 if multiplier > 0 else -1)
        else:
            result[j] = _round_to_format(Fraction(x) * multiplier, array.dtype)
    return result


def _round_to_format(value: Fraction, dtype: np.dtype) -> float:
    """Round a non-zero rational to nearest, ties to even, in the IEEE format of ``dtype`` (inf on overflow)."""
    precision, min_exp, max_exp = FLOAT_FORMATS[dtype.itemsize]
    sign = -1.0 if value < 0 else 1.0
    value = abs(value)
    num, den = value.numerator, value.denominator
    exp = num.bit_length() - den.bit_length()  # 2^(exp-1) <= value < 2^(exp+1)
    if Fraction(2) ** exp > value:
        exp -= 1  # now 2^exp <= value < 2^(exp+1)
    quantum_exp = max(exp, min_exp) - (precision - 1)  # spacing of representable numbers there
    steps = round(value / Fraction(2) ** quantum_exp)  # Fraction rounds half to even
    largest = ((1 << precision) - 1) * Fraction(2) ** (max_exp - precision + 1)
    if steps * Fraction(2) ** quantum_exp > largest:
        return sign * math.inf
    return sign * math.ldexp(steps, quantum_exp)


# --------------------------------------------------------------------------------------------------------------
# One request -> one response
# --------------------------------------------------------------------------------------------------------------


def predict(read, multiplier: int, model_name: str, model_version: str) -> bytes:
    """Serve one request: ``read()`` returns the request file's bytes; return the response file's bytes.

    Any problem with the request becomes an error response. Memory: the raw bytes are dropped as soon as
    they are parsed, and each tensor's Python list as soon as it is converted to numpy (``read`` is called
    again only in the rare case where duplicate keys need the exact check).
    """
    request_id = None
    try:
        raw = read()
        colons = raw.count(b":")  # for the duplicate-key check
        doc, duplicates_checked = parse_request(raw)
        del raw
        if isinstance(doc, dict) and isinstance(doc.get("id"), str):
            request_id = doc["id"]
        inputs, selected = validate_request(doc)
        if not duplicates_checked and _has_duplicate_keys(read, colons, doc):
            raise RequestError("request is not strict JSON: an object has a duplicate key")
        arrays = {}
        for i, tensor in enumerate(inputs):
            arrays[tensor["name"]] = tensor_array(tensor, f"/inputs/{i}")
            tensor["data"] = None  # free the Python list before converting the next tensor
        del doc

        outputs = []
        by_name = {tensor["name"]: tensor for tensor in inputs}
        for name in selected:
            tensor = by_name[name]
            result = multiply(arrays.pop(name), multiplier)
            if result.dtype.kind == "f" and not np.isfinite(result).all():
                index = int(np.argmin(np.isfinite(result)))
                raise RequestError(
                    f"output {name!r}: element {index} overflows {tensor['datatype']} (input x {multiplier})"
                )
            outputs.append({"name": name, "datatype": tensor["datatype"], "shape": tensor["shape"], "data": result})
        del arrays

        response: dict = {"model_name": model_name, "model_version": model_version}
        if request_id is not None:
            response["id"] = request_id
        response["outputs"] = outputs
        return orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    except RequestError as e:
        return error_response(str(e), request_id)


def error_response(message: str, request_id: str | None) -> bytes:
    """``{"error": message}``, with the request's id when it had a string id."""
    body: dict = {"error": _one_line(message) or "request cannot be served"}
    if request_id is not None:
        body["id"] = request_id
    return orjson.dumps(body)


def write_atomically(directory: str, file_name: str, content: bytes) -> None:
    """Write ``directory/file_name`` so that it appears complete or not at all."""
    temporary = os.path.join(directory, f".{file_name}.partial")  # does not end in .json
    try:
        with open(temporary, "wb") as f:
            f.write(content)
        os.replace(temporary, os.path.join(directory, file_name))
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def request_files(input_dir: str) -> list[str]:
    """Names of the regular files ``*.json`` directly in ``input_dir``, sorted."""
    with os.scandir(input_dir) as entries:
        return sorted(e.name for e in entries if e.name.endswith(".json") and e.is_file())


def run_batch(model_dir: str, input_dir: str, output_dir: str, log=sys.stdout) -> int:
    """Process every request in ``input_dir``. Return the exit status (ConfigError propagates)."""
    multiplier, model_name, model_version = load_model(model_dir)
    try:
        names = request_files(input_dir)
    except OSError as e:
        raise ConfigError(f"{input_dir}: cannot list the requests: {_one_line(e)}") from None
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{output_dir}: cannot create the output folder: {_one_line(e)}") from None

    served = errors = unwritten = 0
    for name in names:
        path = os.path.join(input_dir, name)

        def read(path=path) -> bytes:
            with open(path, "rb") as f:
                return f.read()

        try:
            response = predict(read, multiplier, model_name, model_version)
        except OSError as e:
            response = error_response(f"cannot read the request: {e}", None)
        except Exception as e:  # a bug must not cost the rest of the batch its responses
            response = error_response(f"internal error: {type(e).__name__}: {e}", None)
        if response.startswith(b'{"error"'):
            errors += 1
            print(f"{name}: error: {orjson.loads(response)['error']}", file=log)
        else:
            served += 1
        try:
            write_atomically(output_dir, name, response)
        except OSError as e:
            unwritten += 1
            print(f"{name}: cannot write the response: {_one_line(e)}", file=sys.stderr)
        del response  # do not hold this response while the next request is parsed
    print(f"{len(names)} request(s): {served} served, {errors} error response(s), {unwritten} not written", file=log)
    return 1 if unwritten else 0


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _short(value: object) -> str:
    text = orjson.dumps(value).decode() if isinstance(value, (bool, str, type(None))) else repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="predictor.py",
        description="ODAHU batch predictor for the multiplier model (Open Inference Protocol / KServe V2 JSON): "
        "multiplies every input tensor of every request by the integer in the model's multiplier.txt.",
        epilog=USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    try:
        paths = []
        for variable in (ENV_MODEL, ENV_INPUT, ENV_OUTPUT):
            value = os.environ.get(variable, "")
            if not value:
                raise ConfigError(f"{variable} is not set (see --help)")
            paths.append(value)
        return run_batch(*paths)
    except ConfigError as e:
        print(f"predictor: {_one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
