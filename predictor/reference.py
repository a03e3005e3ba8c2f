#!/usr/bin/env python3
"""Short reference batch predictor for ODAHU: the "multiplier" model, Open Inference Protocol (KServe V2) JSON.

Copy this one. (predictor/fast.py gives the same answers, streamed and faster; it is what the images run.)

    ODAHU_MODEL_PATH   the model: multiplier.txt (a base-10 integer, whitespace around it allowed) and
                       odahuflow.project.yaml or .yml (model: {name, version}; a number version is its string)
    ODAHU_INPUT_PATH   the requests: every regular file NAME.json directly in it (not recursive)
    ODAHU_OUTPUT_PATH  the responses: created with parents if missing; one NAME.json per request

Request  {id?, parameters?, inputs: [{name, shape, datatype, parameters?, data}], outputs?: [{name, parameters?}]}
Response {model_name, model_version, id?, outputs: [{name, datatype, shape, data}]}   (data written flat)
Error    {error: "one line", id?}   (id: the request's "id" when it is a string and the file parsed as JSON)

Each input tensor (or each one named in "outputs", in that order) comes back with its name, shape and datatype,
every element times the multiplier in the tensor's datatype: integer types wrap modulo 2^bits (two's complement,
as numpy does), FP16/FP32/FP64 are the exact product rounded once to nearest-even in that precision. A request
gets an error response, and the batch goes on, when it is not strict JSON (NaN/Infinity, a duplicate key, a byte
order mark, invalid UTF-8 or a lone surrogate, nesting deeper than 1024), breaks the schema, holds an element
that is not of its datatype (2.0 or true in INT32, 128 in INT8, 1e400 anywhere in data), uses BOOL or BYTES,
names an output that is not an input, or when a returned float product overflows to infinity.
Floats are written as their exact value (FP32 0.1 as 0.10000000149011612): read as a double and cast to the
datatype, they give the same bits back. Responses are written atomically (a temporary name, then a rename).
Exit status: 0 after the batch (also an empty one); 2 and one line on stderr when the model or the environment
is unusable (nothing written); 1 when a response could not be written.
Only the standard library, numpy and PyYAML are used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from fractions import Fraction

import numpy as np
import yaml

DTYPES = {name: np.dtype(name.lower().replace("fp", "float")) for name in
          ("UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64")}
EXACT_IN_DOUBLE = {np.dtype(np.float16): 2**42, np.dtype(np.float32): 2**29, np.dtype(np.float64): 2**53}
MAX_DEPTH = 1024  # deepest nesting of arrays and objects accepted (orjson's limit, which fast.py has)
HUGE = 2**1024 - 2**970  # from here on a JSON number is infinity as a double


class ConfigError(Exception):
    """The model or the environment is unusable: exit status 2."""


class RequestError(Exception):
    """This request gets an error response."""


def load_model(model_dir: str) -> tuple[int, str, str]:
    """(multiplier, model name, model version) from the model folder, or ConfigError."""
    path = os.path.join(model_dir, "multiplier.txt")
    try:
        with open(path, "rb") as f:
            digits = f.read().decode("utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing (the model needs a multiplier.txt holding an integer)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {one_line(e)}") from None
    if not re.fullmatch(r"[+-]?[0-9]+", digits):
        raise ConfigError(f"{path}: not a base-10 integer: {digits if len(digits) <= 40 else digits[:40] + '...'!r}")
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # the multiplier may have any number of digits
    multiplier = int(digits)
    sys.set_int_max_str_digits(limit)
    paths = [os.path.join(model_dir, f"odahuflow.project.{ext}") for ext in ("yaml", "yml")]
    path = next((p for p in paths if os.path.isfile(p)), None)
    if path is None:
        raise ConfigError(f"{paths[0]}: missing (needs model: {{name, version}})")
    try:
        with open(path, "rb") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read: {one_line(e)}") from None
    model = doc.get("model") if isinstance(doc, dict) else None
    if not isinstance(model, dict):
        raise ConfigError(f"{path}: needs a 'model' mapping with 'name' and 'version'")
    name, version = model.get("name"), model.get("version")
    if isinstance(version, (int, float)) and not isinstance(version, bool):
        version = str(version)  # `version: 1` is the string "1"
    for key, value in (("name", name), ("version", version)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: model.{key} must be a non-empty string, got {value!r}")
    return multiplier, name, version


def parse(raw: bytes) -> tuple[object, bool, bool]:
    """Strict JSON -> (document, has a duplicate key, has a number beyond the double range such as 1e400)."""
    seen = {"duplicate": False, "huge": False}

    def pairs(items: list) -> dict:
        result = dict(items)  # the last of duplicates wins; the request is refused all the same (see serve)
        seen["duplicate"] |= len(result) != len(items)
        return result

    def constant(token: str) -> None:
        raise RequestError(f"request is not strict JSON: {token} is not a JSON number")

    def number(token: str, convert) -> int | float:
        value = convert(token) if len(token) <= 4000 else float(token)  # a 4000-digit integer is inf anyway
        seen["huge"] |= abs(value) >= HUGE  # (int and float compare exactly)
        return value

    def loads(watch_numbers: bool) -> object:  # a hook on every number is slow: only when it matters
        hooks = {"parse_int": lambda t: number(t, int), "parse_float": lambda t: number(t, float)}
        return json.loads(raw.decode("utf-8"), parse_constant=constant, object_pairs_hook=pairs,
                          **(hooks if watch_numbers else {}))

    try:
        try:
            doc = loads(watch_numbers=False)
        except ValueError as e:
            if type(e) is not ValueError:  # JSONDecodeError (a BOM too), UnicodeDecodeError: not JSON
                raise
            doc = loads(watch_numbers=True)  # int() refused an integer of over 4300 digits
        else:
            if seen["duplicate"]:
                loads(watch_numbers=True)  # is there also a 1e400? (see serve)
    except (ValueError, RecursionError) as e:
        raise RequestError(f"request is not valid JSON: {one_line(e)}") from None
    stack = [(doc, 1)]  # every string must be valid UTF-8 (no lone surrogate); nesting at most MAX_DEPTH
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise RequestError("request is not valid JSON text: a string holds a lone surrogate") from None
        elif depth > MAX_DEPTH:
            raise RequestError(f"request is nested deeper than {MAX_DEPTH} levels")
        elif isinstance(value, (list, dict)):  # (the document itself may be a bare number, true or null)
            items = value if isinstance(value, list) else [*value.keys(), *value.values()]
            if not set(map(type, items)) <= {int, float, bool, type(None)}:  # (a quick look at tensor data)
                stack.extend((item, depth + 1) for item in items if type(item) in (str, list, dict))
    return doc, seen["duplicate"], seen["huge"]


def check_parameters(value: object, where: str) -> None:
    if not isinstance(value, dict):
        raise RequestError(f"{where}: parameters must be an object")
    for key, item in value.items():
        if not isinstance(item, (str, int, float)):  # bool is an int
            raise RequestError(f"{where}/{key}: a parameter must be a string, number or boolean")


def validate(doc: object) -> tuple[list, list]:
    """The request's structure (not the tensor data): (inputs, names of the tensors to return)."""
    if not isinstance(doc, dict):
        raise RequestError("request must be a JSON object")
    if "id" in doc and not isinstance(doc["id"], str):
        raise RequestError("/id: must be a string")
    if "parameters" in doc:
        check_parameters(doc["parameters"], "/parameters")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError("/inputs: must be a non-empty array of tensors")
    names: list = []
    for i, tensor in enumerate(inputs):
        where = f"/inputs/{i}"
        if not isinstance(tensor, dict) or not {"name", "shape", "datatype", "data"} <= tensor.keys():
            raise RequestError(f"{where}: a tensor must be an object with name, shape, datatype and data")
        if not isinstance(tensor["name"], str) or not tensor["name"] or tensor["name"] in names:
            raise RequestError(f"{where}/name: must be a non-empty string, unique among the inputs")
        names.append(tensor["name"])
        shape = tensor["shape"]
        if not isinstance(shape, list) or not all(type(n) is int and 0 <= n < 2**64 for n in shape):
            raise RequestError(f"{where}/shape: must be an array of integers 0..2^64-1")
        if tensor["datatype"] in ("BOOL", "BYTES"):
            raise RequestError(f"{where}/datatype: {tensor['datatype']} is not supported by the multiplier model")
        if not isinstance(tensor["datatype"], str) or tensor["datatype"] not in DTYPES:
            raise RequestError(f"{where}/datatype: unknown datatype {tensor['datatype']!r}")
        if "parameters" in tensor:
            check_parameters(tensor["parameters"], f"{where}/parameters")
        if not isinstance(tensor["data"], list):
            raise RequestError(f"{where}/data: must be an array")
    outputs = doc.get("outputs", [])
    if not isinstance(outputs, list):
        raise RequestError("/outputs: must be an array")
    selected: list = []
    for i, output in enumerate(outputs):
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise RequestError(f"/outputs/{i}: must be an object with a string 'name'")
        if "parameters" in output:
            check_parameters(output["parameters"], f"/outputs/{i}/parameters")
        if output["name"] in selected or output["name"] not in names:
            raise RequestError(f"/outputs/{i}/name: {output['name']!r} is not an input tensor, or is asked twice")
        selected.append(output["name"])
    return inputs, selected or names


def tensor_array(tensor: dict, where: str) -> np.ndarray:
    """The tensor's elements (flat, or nested exactly as its shape) as a flat array of its datatype."""
    data, shape, dtype = tensor["data"], tensor["shape"], DTYPES[tensor["datatype"]]
    if list not in set(map(type, data)):
        if len(data) != math.prod(shape):
            raise RequestError(f"{where}/data: {len(data)} elements, shape {shape} needs {math.prod(shape)}")
    else:  # nested: every level a list of arrays of the shape's size; an array left at the bottom is no number
        rows = [data]
        for size in shape:
            if not all(type(row) is list and len(row) == size for row in rows):
                raise RequestError(f"{where}/data: not nested as shape {shape}")
            rows = [item for row in rows for item in row]
        data = rows
    allowed = {int} if dtype.kind in "iu" else {int, float}  # bool is not int here
    if not set(map(type, data)) <= allowed:
        j = next(j for j, x in enumerate(data) if type(x) not in allowed)
        raise RequestError(f"{where}/data: element {j} ({str(data[j])[:40]}) is not {tensor['datatype']}")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if data and not (info.min <= min(data) and max(data) <= info.max):
            raise RequestError(f"{where}/data: an element is out of range for {tensor['datatype']}")
        return np.array(data, dtype=dtype)
    try:
        with np.errstate(over="ignore"):  # each JSON number to float64, then to the datatype
            array = np.array(data, dtype=np.float64).astype(dtype)
    except OverflowError:  # an integer beyond the double range
        array = np.array([math.inf])
    if not np.isfinite(array).all():
        raise RequestError(f"{where}/data: an element is out of range for {tensor['datatype']}")
    return array


def multiply(array: np.ndarray, multiplier: int) -> np.ndarray:
    """array * multiplier in array's dtype: integers wrap; floats are the exact product rounded once."""
    dtype = array.dtype
    if dtype.kind in "iu":  # the multiplier modulo 2^bits, as the dtype; numpy's product wraps the same way
        return array * np.array(multiplier % 2 ** (8 * dtype.itemsize), dtype=f"u{dtype.itemsize}").astype(dtype)
    if abs(multiplier) <= EXACT_IN_DOUBLE[dtype]:  # the float64 product is exact: the cast is the one rounding
        with np.errstate(over="ignore"):
            return (array.astype(np.float64) * np.float64(multiplier)).astype(dtype)
    return np.array([round_product(x, multiplier, dtype) for x in array.tolist()], dtype=dtype)


def round_product(x: float, multiplier: int, dtype: np.dtype) -> float:
    """x * multiplier exactly (Fraction), rounded to nearest-even in dtype's IEEE format; inf on overflow."""
    if x == 0:
        return math.copysign(0.0, x) * (-1.0 if multiplier < 0 else 1.0)
    info = np.finfo(dtype)
    exact = abs(Fraction(x) * multiplier)
    exponent = exact.numerator.bit_length() - exact.denominator.bit_length()
    if Fraction(2) ** exponent > exact:
        exponent -= 1  # now 2^exponent <= exact < 2^(exponent + 1)
    quantum = max(exponent, info.minexp) - info.nmant  # the spacing of the format there is 2^quantum
    steps = round(exact / Fraction(2) ** quantum)  # Fraction rounds half to even
    value = math.inf if steps * Fraction(2) ** quantum > Fraction(float(info.max)) else math.ldexp(steps, quantum)
    return -value if (x < 0) != (multiplier < 0) else value


def serve(raw: bytes, multiplier: int, model_name: str, model_version: str) -> dict:
    """The response (or error response) to one request file's bytes."""
    request_id = None
    try:
        doc, duplicate, huge = parse(raw)
        if isinstance(doc, dict) and isinstance(doc.get("id"), str) and not (duplicate and huge):
            request_id = doc["id"]  # (fast.py's first parser, orjson, refuses 1e400 and echoes no id then)
        inputs, selected = validate(doc)
        if duplicate:
            raise RequestError("request is not strict JSON: an object has a duplicate key")
        arrays = {t["name"]: tensor_array(t, f"/inputs/{i}") for i, t in enumerate(inputs)}
        tensors = {t["name"]: t for t in inputs}
        outputs = []
        for name in selected:
            result = multiply(arrays[name], multiplier)
            if not np.isfinite(result).all():
                raise RequestError(f"output {name!r}: a product overflows {tensors[name]['datatype']}")
            outputs.append({"name": name, "datatype": tensors[name]["datatype"], "shape": tensors[name]["shape"],
                            "data": result.tolist()})
        response = {"model_name": model_name, "model_version": model_version, "id": request_id, "outputs": outputs}
        return {key: value for key, value in response.items() if value is not None}
    except RequestError as e:
        return {"error": one_line(e)} if request_id is None else {"error": one_line(e), "id": request_id}


def encode(response: dict) -> bytes:
    """A response (or error response) as the UTF-8 JSON bytes written for it."""
    return json.dumps(response, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def run_batch(model_dir: str, input_dir: str, output_dir: str) -> int:
    multiplier, model_name, model_version = load_model(model_dir)
    try:
        with os.scandir(input_dir) as entries:
            names = sorted(e.name for e in entries if e.name.endswith(".json") and e.is_file())
    except OSError as e:
        raise ConfigError(f"{input_dir}: cannot list the requests: {one_line(e)}") from None
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{output_dir}: cannot create the output folder: {one_line(e)}") from None
    errors = unwritten = 0
    for name in names:
        try:
            with open(os.path.join(input_dir, name), "rb") as f:
                response = serve(f.read(), multiplier, model_name, model_version)
        except OSError as e:
            response = {"error": f"cannot read the request: {one_line(e)}"}
        except Exception as e:  # a bug must not cost the rest of the batch its responses
            response = {"error": f"internal error: {type(e).__name__}: {one_line(e)}"}
        body = encode(response)
        temporary = os.path.join(output_dir, f".{name}.partial")  # not *.json: the platform never takes it
        try:
            with open(temporary, "wb") as f:
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
          f"{unwritten} not written")
    return 1 if unwritten else 0


def one_line(value: object) -> str:
    return " ".join(str(value).split())


def main(argv: list[str] | None = None) -> int:
    parts = __doc__.split("\n\n")  # --help: the first line and the three variables
    argparse.ArgumentParser(prog="reference.py", description=parts[0], epilog=parts[2],
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), MAX_DEPTH + 500))  # json must reach MAX_DEPTH
    variables = ("ODAHU_MODEL_PATH", "ODAHU_INPUT_PATH", "ODAHU_OUTPUT_PATH")
    try:
        missing = [name for name in variables if not os.environ.get(name)]
        if missing:
            raise ConfigError(f"{missing[0]} is not set (see --help)")
        return run_batch(*(os.environ[name] for name in variables))
    except ConfigError as e:
        print(f"predictor: {one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
