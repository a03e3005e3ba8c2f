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
- One request at a time, and never a whole response in memory: memory is bounded by the largest request.
- Fast path (``stream_response``): pysimdjson parses the file into its compact tape; everything but the tensor
  data becomes Python objects and goes through the same checks as always. The data is then read again from the
  file's text, a block (SPAN_BLOCK bytes) at a time: each block, cut at a comma, is parsed by a small second
  simdjson parser and copied out of its tape in bulk (``as_buffer``), checked and multiplied with numpy, and
  written to the response file as it goes (orjson serializes each chunk). Where each data array starts and ends
  in the text is told by counting "[" and "]" bytes (``_data_spans``), which is exact when no string of the
  envelope holds one; otherwise the data is read from the first parse's tape an element at a time (slower, same
  answer). Neither a Python object per element nor a full copy of a tensor ever exists: the peak is simdjson's
  parse (the file itself plus about 24 bytes per number for its index and tape) on top of the interpreter.
- Exact path (``predict``): whenever the fast path has any doubt (a parse error, a byte order mark, a duplicate
  key, an element that is not a number of the right kind or is out of range, a product that overflows...), what
  it wrote is discarded and the request is served again from scratch: orjson parses, numpy converts and
  multiplies. Cheap whole-array checks (Python types, min/max, isfinite) replace per-element Python loops; an
  exact pure-Python path takes over only when a cheap check cannot decide. Every error response comes from this
  path, so the fast path changes what a request costs, never its answer.
- Strict JSON: simdjson and orjson both reject NaN/Infinity tokens, invalid UTF-8 and lone surrogates (the
  standard library has the last word on what orjson refuses, see ``parse_request``); a leading byte order mark,
  which simdjson skips, is looked for; duplicate object keys, which both parsers accept, are detected by
  comparing keys (fast path) or by counting (``_has_duplicate_keys``).
- Responses are written atomically: a temporary name that does not end in ".json", then os.replace, so
  the platform never uploads a half-written file.

Only the standard library, numpy, orjson, pysimdjson and PyYAML are used.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator

import numpy as np
import orjson
import simdjson
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
  {ENV_MODEL}=model {ENV_INPUT}=requests {ENV_OUTPUT}=responses python fast.py
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
        if not isinstance(datatype, str) or datatype not in NUMERIC_DTYPES:
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
    """Return the tensor's data (Python lists) as a flat numpy array of its datatype, or raise RequestError.

    Flat or exactly nested data goes through ``numbers_array`` (whole-array checks); whenever that cannot
    decide, ``_tensor_array_exact`` checks element by element and names the first problem.
    """
    data, shape, dtype = tensor["data"], tensor["shape"], NUMERIC_DTYPES[tensor["datatype"]]
    elements = data
    if list in set(map(type, data)):  # nested: flatten level by level, checking every length against the shape
        elements = _nested_leaves(data, shape)
        if elements is None:
            return _tensor_array_exact(data, shape, dtype, where)
    elif len(data) != math.prod(shape):
        raise RequestError(f"{where}/data: {len(data)} elements, shape {shape} needs {math.prod(shape)}")
    if not elements:
        return np.zeros(0, dtype)
    array = numbers_array(elements, dtype)
    return array if array is not None else _tensor_array_exact(data, shape, dtype, where)


def numbers_array(elements: list, dtype: np.dtype) -> np.ndarray | None:
    """``elements`` (a non-empty flat list of parsed JSON scalars) as an array of ``dtype``, or None when a
    whole-array check fails (the element-by-element path then decides and explains).

    ``set(map(type, elements))`` tells exactly which Python types occur (bools are ``bool``, not ``int`` here,
    while numpy would silently turn them into 1/0); ``np.fromiter`` converts; min/max (integers) or isfinite
    (floats, every JSON number rounded once to the datatype) check the range on the whole array at once.
    """
    types = set(map(type, elements))
    if dtype.kind in "iu":
        if types != {int}:
            return None
        try:
            array = np.fromiter(elements, dtype=np.uint64 if dtype == np.uint64 else np.int64, count=len(elements))
        except OverflowError:  # beyond 64 bits (or negative for UINT64)
            return None
        info = np.iinfo(dtype)
        if int(array.min()) < info.min or int(array.max()) > info.max:
            return None
        return array.astype(dtype, copy=False)
    if not types <= {int, float}:
        return None
    try:
        array = np.fromiter(elements, dtype=np.float64, count=len(elements))
    except OverflowError:  # an integer beyond the double range
        return None
    with np.errstate(over="ignore"):
        array = array.astype(dtype, copy=False)
    return array if np.isfinite(array).all() else None


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
    from fractions import Fraction  # imported here: most runs never need it (it costs start-up time)

    result = np.empty_like(array)
    for j, x in enumerate(array.tolist()):
        if x == 0:
            result[j] = math.copysign(0.0, x) * (1 if multiplier > 0 else -1)
        else:
            result[j] = _round_to_format(Fraction(x) * multiplier, array.dtype)
    return result


def _round_to_format(value: Fraction, dtype: np.dtype) -> float:
    """Round a non-zero rational to nearest, ties to even, in the IEEE format of ``dtype`` (inf on overflow)."""
    from fractions import Fraction

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
# Fast path: simdjson's tape -> numpy chunks -> the response file
# --------------------------------------------------------------------------------------------------------------

#: Elements converted, multiplied and serialized at a time when they are read as Python objects (and by the exact
#: path): enough for numpy and orjson to run at full speed, few enough not to count next to the parse.
CHUNK = 4096
UTF8_BOM = b"\xef\xbb\xbf"


class Undecided(Exception):
    """The fast path cannot vouch for this request as it is: the exact path serves it."""


def stream_response(
    f, path: str, parser: simdjson.Parser, multiplier: int, model_name: str, model_version: str
) -> bool:
    """Serve the request file ``path`` without ever holding a tensor in Python objects or in full, writing the
    response into ``f`` as it is computed. Return True when served; False when the exact path must decide
    (``f`` then holds part of a response, to be discarded).

    No proxy into the parsed document outlives this call, so ``parser`` can parse the next request: its
    buffers, sized for the largest request so far, are reused instead of being allocated and faulted in again.
    """
    try:
        raw = open(path, "rb")
    except OSError:
        return False
    with raw:
        try:
            if raw.read(len(UTF8_BOM)) == UTF8_BOM:  # simdjson skips a byte order mark, strict JSON forbids it
                return False
            document = parser.load(path)
        except Exception:  # unreadable, not JSON, or a number simdjson does not hold (beyond 64 bits, 1e400...)
            return False
        try:
            request = _envelope(document)
            inputs, selected = validate_request(request)
            for tensor, proxy in zip(inputs, document["inputs"]):
                tensor["data"] = proxy["data"]  # keys are unique and free of NUL (see _keys): the array just checked
            spans = _data_spans(raw, request, inputs)
            for tensor in inputs:
                if tensor["name"] not in selected:  # not returned, but its data must be valid all the same
                    for _ in _data_chunks(tensor, raw, spans):
                        pass
            by_name = {tensor["name"]: tensor for tensor in inputs}
            outputs = [
                _output(by_name[name], _product_chunks(by_name[name], multiplier, raw, spans)) for name in selected
            ]
            write_response(f, _response(request.get("id"), model_name, model_version, outputs))
        except (Undecided, RequestError, RecursionError):  # RecursionError: an envelope nested deeper than Python goes
            return False
    return True


def _envelope(document: object) -> dict:
    """The request as Python objects, except tensor data: each tensor's "data" array stays in simdjson's tape
    and reads as ``[]`` here (the schema checks only that it is an array)."""
    if not isinstance(document, simdjson.Object):
        raise Undecided
    request = {}
    for key in _keys(document):
        value = document[key]
        if key == "inputs" and isinstance(value, simdjson.Array):
            request[key] = [_python(tensor, data_placeholder=True) for tensor in value]
        else:
            request[key] = _python(value)
    return request


def _python(value: object, data_placeholder: bool = False) -> object:
    """A simdjson value as Python objects (with ``data_placeholder``, an object's "data" array as ``[]``)."""
    if isinstance(value, simdjson.Array):
        return [_python(item) for item in value]
    if not isinstance(value, simdjson.Object):
        return value
    result = {}
    for key in _keys(value):
        item = value[key]
        if data_placeholder and key == "data" and isinstance(item, simdjson.Array):
            result[key] = []
        else:
            result[key] = _python(item)
    return result


def _keys(value: simdjson.Object) -> list[str]:
    """The object's keys. Undecided on a duplicate (which simdjson keeps: strict JSON rejects it) or on a NUL
    character, which cuts a ``value[key]`` lookup short (``.items()`` is no way out: it would convert the tensor
    data to Python lists)."""
    keys = list(value)
    if len(set(keys)) != len(keys) or any("\x00" in key for key in keys):
        raise Undecided
    return keys


def _data_chunks(tensor: dict, raw=None, spans: dict | None = None) -> Iterator[np.ndarray]:
    """The tensor's elements (``tensor["data"]``, a simdjson array) as arrays of its datatype, a chunk at a time;
    raises Undecided as soon as an element or the nesting is not what the exact path accepts as is.

    With the array's place in the request file (``spans``, see ``_data_spans``) the elements are read from the
    file's text: ``_span_chunks``, without a Python object per element. Otherwise from simdjson's proxies.
    """
    dtype = NUMERIC_DTYPES[tensor["datatype"]]
    if spans is not None:
        yield from _span_chunks(raw, spans[id(tensor["data"])], tensor, dtype)
        return
    elements = _leaves(tensor["data"], tensor["shape"])
    while chunk := list(itertools.islice(elements, CHUNK)):
        array = numbers_array(chunk, dtype)
        if array is None:
            raise Undecided
        yield array


def _product_chunks(tensor: dict, multiplier: int, raw=None, spans: dict | None = None) -> Iterator[np.ndarray]:
    """``_data_chunks`` multiplied; raises Undecided when a float product overflows (the exact path names it)."""
    for array in _data_chunks(tensor, raw, spans):
        product = multiply(array, multiplier)
        if product.dtype.kind == "f" and not np.isfinite(product).all():
            raise Undecided
        yield product


#: Bytes of the request file scanned at a time (``_data_spans``) and of tensor text parsed at a time
#: (``_span_chunks``): large enough for numpy, simdjson and orjson to run at full speed, small next to the parse.
SCAN_BLOCK = 1 << 18
SPAN_BLOCK = 1 << 15
OPEN, CLOSE = ord("["), ord("]")
_CHUNK_PARSER: list = []  # one simdjson.Parser for the chunks of tensor text, made when first needed


def _data_spans(raw, request: dict, inputs: list) -> dict | None:
    """Where each tensor's "data" array is in the request file: {id(array): (offset of its "[", offset of its
    "]", arrays in it)}, or None when that cannot be told from bracket counts alone (a "[" or "]" in a string
    of the envelope); raises Undecided when the file holds arrays the checked structure has no room for.

    Every "[" and "]" byte of JSON text opens or closes an array, or sits in a string (UTF-8 never uses these
    bytes inside a multi-byte character, and escapes do not contain them). The envelope (everything but the
    data) is known as Python objects in document order, and each data array's nesting is checked against its
    shape with simdjson's proxies: so the n-th "[" of the file is known to open the n-th array of that
    structure, provided the file holds exactly as many "[" and "]" bytes as the structure has arrays and no
    string of the envelope holds one. A data array that hides an array (or a string with a bracket) in it
    breaks the count: the exact path then decides (and refuses). Strings in the data are refused by the
    conversion (``_span_chunks``).
    """
    arrays: dict[int, int] = {}
    for tensor in inputs:
        data, shape = tensor["data"], tensor["shape"]
        if len(shape) < 2 or not len(data) or not isinstance(data[0], simdjson.Array):
            if len(data) != math.prod(shape):
                raise Undecided
            arrays[id(data)] = 1
        else:
            for _ in _rows(data, shape):  # checks the nesting level by level (the innermost rows' lengths too)
                pass
            arrays[id(data)] = sum(math.prod(shape[:depth]) for depth in range(len(shape)))

    openers: list[int] = []  # ordinal of the "[" opening each data array, in document order
    closers: list[int] = []
    keys: list[int] = []
    count = [0, 0]  # "[" and "]" so far, in document order

    def walk(value: object) -> bool:
        if isinstance(value, simdjson.Array):
            inside = arrays[id(value)]
            keys.append(id(value))
            openers.append(count[0])
            count[0] += inside
            count[1] += inside
            closers.append(count[1] - 1)
        elif isinstance(value, list):
            count[0] += 1
            if not all(map(walk, value)):
                return False
            count[1] += 1
        elif isinstance(value, dict):
            if any("[" in key or "]" in key for key in value):
                return False
            return all(map(walk, value.values()))
        elif isinstance(value, str):
            return "[" not in value and "]" not in value
        return True

    if not walk(request):
        return None
    raw.seek(0)
    found = _bracket_offsets(raw, openers, closers, count)
    if found is None:
        raise Undecided
    opened, closed = found
    return {key: (start, end, arrays[key]) for key, start, end in zip(keys, opened, closed)}


def _bracket_offsets(raw, openers: list[int], closers: list[int], totals: list[int]):
    """Scan the file: the offsets of the "[" and "]" of the given (ascending) ordinals, or None unless the file
    holds exactly ``totals`` of each."""
    raw.seek(0)
    buffer = bytearray(SCAN_BLOCK)
    kinds = [(OPEN, openers, [], [0, 0]), (CLOSE, closers, [], [0, 0])]  # [seen, next target]
    position = 0
    while size := raw.readinto(buffer):
        block = np.frombuffer(buffer, np.uint8, size)
        for byte, wanted, offsets, state in kinds:
            hits = block == byte
            seen, target = state
            here = int(np.count_nonzero(hits))
            if target < len(wanted) and wanted[target] < seen + here:
                where = np.flatnonzero(hits)
                while target < len(wanted) and wanted[target] < seen + here:
                    offsets.append(position + int(where[wanted[target] - seen]))
                    target += 1
            state[:] = seen + here, target
        position += size
    for (_, wanted, _, (seen, target)), total in zip(kinds, totals):
        if seen != total or target != len(wanted):
            return None
    return kinds[0][2], kinds[1][2]


def _span_chunks(raw, span: tuple[int, int, int], tensor: dict, dtype: np.dtype) -> Iterator[np.ndarray]:
    """The elements of a data array read from its text in the file (``span``: see ``_data_spans``), parsed a
    block at a time by simdjson, cut at commas (a number holds none), with the brackets of nested rows removed
    (the nesting was checked: see ``_data_spans``), and copied out of simdjson's tape in bulk (``as_buffer``)."""
    start, end, arrays = span
    expected = math.prod(tensor["shape"])
    if not expected:  # the structure and the bracket count leave no room for an element
        return
    if not _CHUNK_PARSER:
        _CHUNK_PARSER.append(simdjson.Parser())
    parser = _CHUNK_PARSER[0]
    if dtype.kind == "f":
        of_type, base = "d", np.float64
    elif dtype == np.uint64:
        of_type, base = "u", np.uint64
    else:
        of_type, base = "i", np.int64
    raw.seek(start + 1)
    remaining = end - start - 1  # the text between the brackets
    carry = b""
    total = 0
    while remaining or carry:
        block = raw.read(min(SPAN_BLOCK, remaining))
        if len(block) != min(SPAN_BLOCK, remaining):
            raise Undecided  # the file changed under us
        remaining -= len(block)
        text = carry + block if carry else block
        if remaining:
            cut = text.rfind(b",")
            if cut < 0:
                carry = text
                continue
            carry, text = text[cut + 1 :], text[:cut]
        else:
            carry = b""
        if arrays > 1:
            text = text.translate(None, b"[]")
        try:
            array = np.frombuffer(parser.parse(b"[" + text + b"]").as_buffer(of_type=of_type), base)
        except Exception:  # not numbers of the kind (a string, true, an integer for a float...): exact path
            raise Undecided from None
        total += array.size
        if total > expected:
            raise Undecided
        if not array.size:
            continue
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if int(array.min()) < info.min or int(array.max()) > info.max:
                raise Undecided
            array = array.astype(dtype, copy=False)
        else:
            with np.errstate(over="ignore"):
                array = array.astype(dtype, copy=False)
            if not np.isfinite(array).all():
                raise Undecided
        yield array
    if total != expected:
        raise Undecided


def _leaves(data: simdjson.Array, shape: list) -> Iterator:
    """The elements of flat or exactly nested ``data`` in row-major order, the nesting checked row by row.

    An array where the shape has no room for one comes out as an element, and is refused as not a number:
    every array of the data is seen, so nothing nested can hide in it.
    """
    if len(shape) < 2 or not len(data) or not isinstance(data[0], simdjson.Array):
        if len(data) != math.prod(shape):
            raise Undecided
        return iter(data)
    return itertools.chain.from_iterable(_rows(data, shape))


def _rows(array: simdjson.Array, shape: list) -> Iterator[simdjson.Array]:
    """The innermost rows of ``array``, checked to be nested exactly as ``shape`` (at least two dimensions)."""
    if len(array) != shape[0]:
        raise Undecided
    for row in array:
        if not isinstance(row, simdjson.Array):
            raise Undecided
        if len(shape) > 2:
            yield from _rows(row, shape[1:])
        elif len(row) != shape[1]:
            raise Undecided
        else:
            yield row


# --------------------------------------------------------------------------------------------------------------
# Exact path: orjson -> Python lists -> numpy
# --------------------------------------------------------------------------------------------------------------


def predict(read, multiplier: int, model_name: str, model_version: str) -> dict:
    """Serve one request: ``read()`` returns the request file's bytes; return the response (to be written by
    ``write_response``), an error response for any problem with the request, including an unreadable file.

    Memory: the raw bytes are dropped as soon as they are parsed, and each tensor's Python list as soon as it
    is converted to numpy (``read`` is called again only in the rare case where duplicate keys need the exact
    check).
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
                    f"output {name!r}: element {index} overflows {tensor['datatype']} (input x the multiplier)"
                )
            outputs.append(_output(tensor, _pieces(result)))
        return _response(request_id, model_name, model_version, outputs)
    except RequestError as e:
        return error_response(str(e), request_id)
    except OSError as e:
        return error_response(f"cannot read the request: {e}", request_id)


# --------------------------------------------------------------------------------------------------------------
# Responses and the batch
# --------------------------------------------------------------------------------------------------------------


def _pieces(array: np.ndarray) -> Iterator[np.ndarray]:
    return (array[i : i + CHUNK] for i in range(0, array.size, CHUNK))


def _output(tensor: dict, chunks: Iterable[np.ndarray]) -> dict:
    return {"name": tensor["name"], "datatype": tensor["datatype"], "shape": tensor["shape"], "data": chunks}


def _response(request_id: object, model_name: str, model_version: str, outputs: list) -> dict:
    response: dict = {"model_name": model_name, "model_version": model_version}
    if isinstance(request_id, str):
        response["id"] = request_id
    response["outputs"] = outputs
    return response


def error_response(message: str, request_id: str | None) -> dict:
    """``{"error": message}``, with the request's id when it had a string id."""
    body: dict = {"error": _one_line(message) or "request cannot be served"}
    if request_id is not None:
        body["id"] = request_id
    return body


def write_response(f, response: dict) -> None:
    """Write ``response`` to ``f`` as the compact JSON ``orjson.dumps`` gives, with each output's "data" (the
    last key, as "outputs" is the response's) taken from an iterable of numpy arrays and written piece by piece:
    the response never exists in memory as a whole."""
    if "outputs" not in response:
        f.write(orjson.dumps(response))
        return
    head = {key: value for key, value in response.items() if key != "outputs"}
    f.write(orjson.dumps(head)[:-1] + b',"outputs":[')  # [:-1] drops the closing brace
    for i, output in enumerate(response["outputs"]):
        fields = {key: value for key, value in output.items() if key != "data"}
        f.write((b"," if i else b"") + orjson.dumps(fields)[:-1] + b',"data":[')
        separator = b""
        for chunk in output["data"]:
            if chunk.size:
                f.write(separator)
                f.write(memoryview(orjson.dumps(chunk, option=orjson.OPT_SERIALIZE_NUMPY))[1:-1])  # without [ ]
                separator = b","
        f.write(b"]}")
    f.write(b"]}")


def respond(
    f, path: str, parser: simdjson.Parser, multiplier: int, model_name: str, model_version: str
) -> str | None:
    """Write the response to the request file ``path`` into ``f``: on the fast path when it can vouch for the
    request, else on the exact path. Return the error message of an error response, None for a served one."""
    try:
        if stream_response(f, path, parser, multiplier, model_name, model_version):
            return None
        response = predict(functools.partial(read_file, path), multiplier, model_name, model_version)
        _rewrite(f, response)
    except OSError:
        raise  # writing to f failed (predict answers an unreadable request with an error response)
    except Exception as e:  # a bug must not cost the rest of the batch its responses
        response = error_response(f"internal error: {type(e).__name__}: {e}", None)
        _rewrite(f, response)
    return response.get("error")


def _rewrite(f, response: dict) -> None:
    f.seek(0)
    f.truncate()  # whatever was written before the fast path gave up
    write_response(f, response)


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write_atomically(directory: str, file_name: str, write) -> object:
    """Create ``directory/file_name`` with ``write(f)`` so that it appears complete or not at all; return what
    ``write`` returns."""
    temporary = os.path.join(directory, f".{file_name}.partial")  # does not end in .json
    try:
        with open(temporary, "wb") as f:
            result = write(f)
        os.replace(temporary, os.path.join(directory, file_name))
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return result


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

    parser = simdjson.Parser()  # one for the batch (see stream_response)
    served = errors = unwritten = 0
    for name in names:
        path = os.path.join(input_dir, name)
        write = functools.partial(
            respond,
            path=path,
            parser=parser,
            multiplier=multiplier,
            model_name=model_name,
            model_version=model_version,
        )
        try:
            error = write_atomically(output_dir, name, write)
        except OSError as e:
            unwritten += 1
            print(f"{name}: cannot write the response: {_one_line(e)}", file=sys.stderr)
            continue
        if error is None:
            served += 1
        else:
            errors += 1
            print(f"{name}: error: {error}", file=log)
    print(f"{len(names)} request(s): {served} served, {errors} error response(s), {unwritten} not written", file=log)
    return 1 if unwritten else 0


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _short(value: object) -> str:
    text = orjson.dumps(value).decode() if isinstance(value, (bool, str, type(None))) else repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments:  # --help, or a usage error; without arguments argparse has nothing to do (and costs start-up time)
        _argument_parser().parse_args(arguments)
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


def _argument_parser():
    import argparse

    return argparse.ArgumentParser(
        prog="fast.py",
        description="ODAHU batch predictor for the multiplier model (Open Inference Protocol / KServe V2 JSON): "
        "multiplies every input tensor of every request by the integer in the model's multiplier.txt.",
        epilog=USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


if __name__ == "__main__":
    sys.exit(main())
