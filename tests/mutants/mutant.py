#!/usr/bin/env python3
"""Deliberately broken predictors, for showing that the suite rejects each kind of defect.

    python tests/mutants/mutant.py NAME

runs the reference predictor (predictor/fast.py) with one defect, chosen by NAME (see ``MUTANTS``: each
names the requirement it breaks). Most mutants let the reference write its responses into a scratch folder and
then spoil them on the way to the real output folder; the rest break the protocol around the run. Responses
are rewritten with the standard library's json, which happily writes NaN and Infinity tokens.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "predictor" / "fast.py"


# ------------------------------------------------------------------------------------ response rewrites
# Each takes (response dict, request dict or None) and returns the response to write (or None: write nothing).

def _outputs(response):
    return response.get("outputs", []) if "error" not in response else []


def first_tensor_only(response, request):
    if "outputs" in response:
        response["outputs"] = response["outputs"][:1]
    return response


def ignore_outputs(response, request):
    return response  # the defect is in the input: see without_outputs()


def without_outputs(inputs: str, scratch: str) -> str:
    """A copy of the request folder with every "outputs" selection removed (the model then answers all inputs);
    other files stay byte for byte."""
    def drop_selection(request: dict) -> bool:
        if "outputs" not in request:
            return False
        del request["outputs"]
        return True

    return rewritten_inputs(inputs, scratch, drop_selection)


def flat_shape(response, request):
    for tensor in _outputs(response):
        if len(tensor["shape"]) != 1:
            size = 1
            for side in tensor["shape"]:
                size *= side
            tensor["shape"] = [size]
            tensor["data"] = _flatten(tensor["data"])
    return response


def _flatten(data):
    flat = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def fp32_as_fp64(response, request):
    for tensor in _outputs(response):
        if tensor["datatype"] == "FP32":
            tensor["datatype"] = "FP64"
    return response


def int64_through_double(response, request):
    for tensor in _outputs(response):
        if tensor["datatype"] == "INT64":
            tensor["data"] = [int(float(x)) for x in _flatten(tensor["data"])]
    return response


def reject_nested(response, request):
    if request and any(any(isinstance(x, list) for x in t.get("data", [])) for t in request.get("inputs", [])):
        return {"error": "nested data is not supported"}
    return response


def reject_scalars_and_empty(response, request):
    if request and any(not t.get("shape") or 0 in t.get("shape", []) for t in request.get("inputs", [])):
        return {"error": "scalars and empty tensors are not supported"}
    return response


def _answer(request, outputs):
    """A success response to ``request`` (its id echoed) holding ``outputs``."""
    answer = {"model_name": "multiplier", "model_version": "1", "outputs": outputs}
    if "id" in request:
        answer["id"] = request["id"]
    return answer


def clip_overflow(response, request):
    if "error" in response and "overflow" in response["error"] and request:
        return _answer(request, [
            {"name": t["name"], "shape": t["shape"], "datatype": t["datatype"],
             "data": [65504.0 if t["datatype"] == "FP16" else 3.4028234663852886e38 for _ in _flatten(t["data"])]}
            for t in request["inputs"]])
    return response


def echo_unsupported(response, request):
    if "error" in response and "not supported" in response["error"] and request:
        return _answer(request, request["inputs"])
    return response


def infinity_tokens(response, request):
    if "error" in response and "overflow" in response["error"] and request:
        return _answer(request, [
            {"name": t["name"], "shape": t["shape"], "datatype": t["datatype"],
             "data": [float("inf") for _ in _flatten(t["data"])]} for t in request["inputs"]])
    return response


def drop_id(response, request):
    response.pop("id", None)
    return response


def wrong_model_name(response, request):
    if "model_name" in response:
        response["model_name"] = "model"
    return response


def no_model_version(response, request):
    response.pop("model_version", None)
    return response


def no_model_name(response, request):
    response.pop("model_name", None)
    return response


def short_data(response, request):
    for tensor in _outputs(response):
        flat = _flatten(tensor["data"])
        if len(flat) > 1:
            tensor["data"] = flat[:-1]
    return response


def ints_as_floats(response, request):
    for tensor in _outputs(response):
        if tensor["datatype"].startswith(("INT", "UINT")):
            tensor["data"] = [float(x) for x in _flatten(tensor["data"])]
    return response


def rank_over_three(response, request):
    """Assumes at most three dimensions: the trailing ones of a higher-rank tensor are merged."""
    for tensor in _outputs(response):
        if len(tensor["shape"]) > 3:
            size = 1
            for side in tensor["shape"][2:]:
                size *= side
            tensor["shape"] = tensor["shape"][:2] + [size]
            tensor["data"] = _flatten(tensor["data"])
    return response


def chunk_boundary(response, request):
    """Reads 65,536 elements at a time and repeats the last of a chunk as the first of the next."""
    for tensor in _outputs(response):
        flat = _flatten(tensor["data"])
        if len(flat) > 65536:
            flat[65536] = flat[65535]
            tensor["data"] = flat
    return response


def hardcoded_model_name(response, request):
    """Writes the kit's model name and version whatever the model says."""
    if "model_name" in response:
        response["model_name"], response["model_version"] = "multiplier", "1"
    return response


#: The staged model's multiplier (set in main for the mutants that need it).
MULTIPLIER = 2


def float64_product(response, request):
    """FP16/FP32/FP64 computed as float64(x) * float64(m), then cast: rounds twice (and rounds m itself)."""
    import numpy as np

    types = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
    if not request or "error" in response:
        return response
    inputs = {t["name"]: t for t in request["inputs"]}
    for tensor in _outputs(response):
        if tensor["datatype"] in types:
            dtype = types[tensor["datatype"]]
            x = np.array(_flatten(inputs[tensor["name"]]["data"]), dtype=np.float64).astype(dtype)
            with np.errstate(over="ignore", invalid="ignore"):
                product = (x.astype(np.float64) * np.float64(MULTIPLIER)).astype(dtype)
            if np.isfinite(product).all():
                tensor["data"] = product.astype(np.float64).tolist()
    return response


REWRITES = {
    "first-tensor-only": ("M-EVERY", first_tensor_only),
    "ignore-outputs": ("M-SELECT", ignore_outputs),
    "flat-shape": ("M-SHAPE", flat_shape),
    "fp32-as-fp64": ("M-DTYPE", fp32_as_fp64),
    "int64-through-double": ("M-VALUE", int64_through_double),
    "reject-nested": ("M-LAYOUT", reject_nested),
    "reject-scalars-and-empty": ("M-EMPTY", reject_scalars_and_empty),
    "clip-overflow": ("M-FINITE", clip_overflow),
    "echo-unsupported": ("M-UNSUPPORTED", echo_unsupported),
    "infinity-tokens": ("F-JSON", infinity_tokens),
    "no-model-name": ("F-SCHEMA", no_model_name),
    "drop-id": ("F-ID", drop_id),
    "wrong-model-name": ("F-MODEL", wrong_model_name),
    "no-model-version": ("F-MODEL", no_model_version),  # the SHOULD part: fails only under --strict
    "short-data": ("F-COUNT", short_data),
    "ints-as-floats": ("F-TYPED", ints_as_floats),
    # defects only the inputs of conformance/suite/test_inputs.py show
    "rank-over-three": ("M-SHAPE", rank_over_three),
    "chunk-boundary": ("M-VALUE", chunk_boundary),
    "hardcoded-model-name": ("F-MODEL", hardcoded_model_name),
    "float64-product": ("M-VALUE", float64_product),
}

#: Mutants that break the protocol around the run (handled in ``main``).
PROTOCOL = {
    "hardcoded-multiplier": "M-MULTIPLIER",
    "doc-env-names": "P-ENV",
    "no-makedirs": "P-OUTDIR",
    "mkdir-without-parents": "P-OUTDIR",
    "skip-last": "P-EVERY",
    "not-json-names": "P-NAME",
    "renamed-responses": "P-NAME",  # the SHOULD part
    "writes-input": "P-READONLY",
    "exit-one": "P-EXIT",
    "ignores-bad-model": "P-CONFIG",
    "stops-at-first-error": "P-ISOLATE",
    "hangs": "P-TIMELY",
    "needs-network": "P-OFFLINE",
    # mutants for the verdict itself (each states its exact report in tests/test_mutants.py)
    "writes-nothing": "P-EVERY",
    "numbered-responses": "P-NAME",  # the ODAHU example's response0.json, response1.json...: the SHOULD part
    "off-by-one-multiplier": "M-VALUE",
    "huge-extra-file": "P-EVERY",
    "daemonises": "P-EXIT",
    # requests the platform delivers although a strict reading refuses them
    "crashes-on-empty-request": "P-ISOLATE",
    # reads multiplier.txt with Python's int(), which also takes "1_0" and other scripts' digits
    "python-int-multiplier": "P-CONFIG",
    # defects only the inputs of conformance/suite/test_inputs.py show
    "caps-at-256": "P-EVERY",  # serves the first 256 files of a batch
    "quadratic-time": "P-TIMELY",  # time grows with the square of a tensor's size
    "strict-multiplier-regex": "P-CONFIG",  # refuses multiplier.txt with CRLF, spaces or "+"
    "multiplier-int64": "M-VALUE",  # keeps the multiplier in a signed 64-bit integer (wraps beyond 2**63)
    "dedupes-repeated-selection": "P-EVERY",  # answers outputs [a, a] instead of an error
    "flattens-before-checking": "P-EVERY",  # counts elements only: answers data nested against its shape
    # refuses an unusable model as it must (exit 1, nothing written), but with a traceback: the SHOULD part
    "traceback-on-bad-model": "P-CONFIG",
    # as the ODAHU example's predictor: responses numbered response0.json, response1.json... in the order it lists
    # its folder (a hash order, as ext4's), and body["inputs"] read unguarded: a request the platform delivers
    # without it ({}, null, keys in other case) stops the whole batch
    "odahu-example": "P-ISOLATE",
    # writes each response as NAME.txt (the platform drops it), its id echoed
    "txt-names-with-ids": "P-NAME",
    # hangs when a request has no "inputs" ({}, null, keys in other case): a batch it would otherwise finish
    "hangs-on-missing-inputs": "P-ISOLATE",
    # hangs on any batch of more than 12 files, whatever they hold: P-TIMELY, never P-ISOLATE
    "hangs-on-big-batches": "P-TIMELY",
    "repairs-invalid-utf8": "P-EVERY",  # reads requests as Go does (invalid UTF-8, lone surrogates -> U+FFFD)
    "chunks-of-100": "P-EVERY",  # serves whole chunks of 100 files (a smaller batch is one chunk), loses the rest
}

MUTANTS = {name: requirement for name, (requirement, _) in REWRITES.items()} | PROTOCOL


def _network_interfaces() -> list[str]:
    """Interfaces other than loopback in this process's network namespace (/proc/net/dev, unlike /sys, is
    per namespace)."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return [line.split(":")[0].strip() for line in lines if line.split(":")[0].strip() != "lo"]


def run_reference(model: str, inputs: str, output: str) -> int:
    """Run the reference predictor in this process (a second interpreter would double every run's cost)."""
    spec = importlib.util.spec_from_file_location("odahu_reference_predictor", REFERENCE)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    saved = dict(os.environ)
    os.environ.update(ODAHU_MODEL_PATH=model, ODAHU_INPUT_PATH=inputs, ODAHU_OUTPUT_PATH=output)
    try:
        return reference.main([])
    finally:
        os.environ.clear()
        os.environ.update(saved)


def rewritten_inputs(inputs: str, scratch: str, change) -> str:
    """A copy of the request folder with ``change(request)`` applied to every request that parses."""
    copy = os.path.join(scratch, "input")
    os.mkdir(copy)
    for file_name in os.listdir(inputs):
        data = Path(inputs, file_name).read_bytes()
        try:
            request = json.loads(data)
        except ValueError:
            request = None
        if isinstance(request, dict) and change(request):
            data = json.dumps(request).encode()
        Path(copy, file_name).write_bytes(data)
    return copy


def dedupe_outputs(request) -> bool:
    names = [o.get("name") for o in request.get("outputs") or [] if isinstance(o, dict)]
    if len(names) == len(set(map(str, names))):
        return False
    seen = set()
    request["outputs"] = [o for o in request["outputs"] if not (str(o.get("name")) in seen or seen.add(str(o.get("name"))))]
    return True


#: A \\uXXXX surrogate escape: a valid pair (group 1) or a lone one.
_SURROGATE_ESCAPE = re.compile(r"(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def replaced_inputs(inputs: str, scratch: str) -> str:
    """A copy of the request folder read as Go's encoding/json reads strings: each byte that is not UTF-8 and
    each lone surrogate escape becomes U+FFFD, so such a request is served instead of refused."""
    copy = os.path.join(scratch, "input")
    os.mkdir(copy)
    for file_name in os.listdir(inputs):
        text = Path(inputs, file_name).read_bytes().decode("utf-8", "replace")
        text = _SURROGATE_ESCAPE.sub(lambda m: m.group(1) or "\\ufffd", text)
        Path(copy, file_name).write_bytes(text.encode("utf-8"))
    return copy


def flatten_data(request) -> bool:
    changed = False
    for tensor in request.get("inputs") or []:
        if isinstance(tensor, dict) and isinstance(tensor.get("data"), list) and any(isinstance(x, list) for x in tensor["data"]):
            tensor["data"] = _flatten(tensor["data"])
            changed = True
    return changed


def _largest_tensor(inputs: str) -> int:
    largest = 0
    for file_name in os.listdir(inputs):
        try:
            request = json.loads(Path(inputs, file_name).read_bytes())
            largest = max([largest] + [len(_flatten(t["data"])) for t in request["inputs"]])
        except (ValueError, TypeError, KeyError, AttributeError, OSError):
            pass
    return largest


def model_with_two(model: str, scratch: str) -> str:
    """A copy of the model whose multiplier is 2, whatever the real one says."""
    copy = os.path.join(scratch, "model")
    shutil.copytree(model, copy)
    Path(copy, "multiplier.txt").write_text("2\n")
    return copy


def main(name: str) -> int:
    if name not in MUTANTS:
        print(f"mutant.py: unknown mutant {name!r}; one of: {', '.join(sorted(MUTANTS))}", file=sys.stderr)
        return 2
    if name == "doc-env-names":
        names = ("ODAHU_MODEL", "ODAHU_MODEL_INPUT", "ODAHU_MODEL_OUTPUT")
    else:
        names = ("ODAHU_MODEL_PATH", "ODAHU_INPUT_PATH", "ODAHU_OUTPUT_PATH")
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        print(f"mutant: {', '.join(missing)} not set", file=sys.stderr)
        return 1
    model, inputs, output = (os.environ[n] for n in names)
    if name == "needs-network" and not _network_interfaces():
        print("mutant: no network interface: cannot fetch the model's weights", file=sys.stderr)
        return 1
    if name == "crashes-on-empty-request":
        for file_name in sorted(os.listdir(inputs)):
            try:
                request = json.loads(Path(inputs, file_name).read_bytes())
            except ValueError:
                continue
            if isinstance(request, dict) and not request.get("inputs", ["missing"]):
                raise KeyError(f"{file_name}: inputs")  # a traceback and exit 1, as an unguarded predictor does
    if name == "traceback-on-bad-model":
        text = Path(model, "multiplier.txt").read_text()  # no file: FileNotFoundError, a traceback
        if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text, re.ASCII):
            raise ValueError(f"multiplier.txt holds {text!r}, not an integer")
        if not any(Path(model, p).is_file() for p in ("odahuflow.project.yaml", "odahuflow.project.yml")):
            raise FileNotFoundError(f"{model}: no odahuflow.project.yaml")
    if name == "hangs-on-big-batches" and len(os.listdir(inputs)) > 12:
        time.sleep(3600)
    if name == "hangs-on-missing-inputs":
        for file_name in os.listdir(inputs):
            try:
                request = json.loads(Path(inputs, file_name).read_bytes())
            except ValueError:
                continue
            if not isinstance(request, dict) or "inputs" not in request:
                time.sleep(3600)  # waits for an input that never comes
    global MULTIPLIER
    try:
        MULTIPLIER = int(Path(model, "multiplier.txt").read_text().strip())
    except (OSError, ValueError):
        pass
    if name == "strict-multiplier-regex":
        try:
            text = Path(model, "multiplier.txt").read_text().rstrip("\n")
        except OSError:
            text = ""
        if not re.fullmatch(r"-?[0-9]+", text):
            print(f"mutant: multiplier.txt is not an integer: {text!r}", file=sys.stderr)
            return 2
    if name == "quadratic-time":
        time.sleep((_largest_tensor(inputs) / 200_000) ** 2)  # stands for an O(n^2) loop over the elements
    with tempfile.TemporaryDirectory() as scratch:
        kit_reads = Path(model, "multiplier.txt").is_file() and re.fullmatch(
            r"\s*[+-]?[0-9]+\s*", Path(model, "multiplier.txt").read_text(), re.ASCII)
        if name == "multiplier-int64" and kit_reads:
            copy = os.path.join(scratch, "model")
            shutil.copytree(model, copy)
            wrapped = (MULTIPLIER + 2**63) % 2**64 - 2**63
            Path(copy, "multiplier.txt").write_text(f"{wrapped}\n")
            model = copy
        if name == "dedupes-repeated-selection":
            inputs = rewritten_inputs(inputs, scratch, dedupe_outputs)
        if name == "flattens-before-checking":
            inputs = rewritten_inputs(inputs, scratch, flatten_data)
        if name == "repairs-invalid-utf8":
            inputs = replaced_inputs(inputs, scratch)
        if name == "python-int-multiplier":
            try:
                value = int(Path(model, "multiplier.txt").read_text())
            except (OSError, ValueError):
                pass  # the reference refuses it
            else:
                copy = os.path.join(scratch, "model")
                shutil.copytree(model, copy)
                Path(copy, "multiplier.txt").write_text(f"{value}\n")
                model = copy
        if name == "hardcoded-multiplier":
            model = model_with_two(model, scratch)
        if name == "off-by-one-multiplier":
            copy = os.path.join(scratch, "model")
            shutil.copytree(model, copy)
            try:
                text = Path(copy, "multiplier.txt").read_text().strip()
            except OSError:
                text = ""
            if not re.fullmatch(r"[+-]?[0-9]+", text, re.ASCII):
                pass  # an unusable model: the reference refuses it
            else:
                value = int(text)
                Path(copy, "multiplier.txt").write_text(f"{value + 1}\n")
                model = copy
        if name == "ignores-bad-model":
            try:
                int(Path(model, "multiplier.txt").read_text().strip())
            except (OSError, ValueError):
                model = model_with_two(model, scratch)
                Path(model, "odahuflow.project.yaml").write_text("model:\n  name: multiplier\n  version: '1'\n")
        raw = os.path.join(scratch, "raw")
        status = run_reference(model, without_outputs(inputs, scratch) if name == "ignore-outputs" else inputs, raw)
        if status != 0:
            return status
        if name == "mkdir-without-parents":
            if not os.path.isdir(output):
                os.mkdir(output)  # works on the platform, whose output folder's parent exists
        elif name != "no-makedirs":
            os.makedirs(output, exist_ok=True)
        names_out = sorted(os.listdir(raw))
        if name == "caps-at-256":
            names_out = names_out[:256]
        if name == "chunks-of-100":
            names_out = names_out[:max(1, len(names_out) // 100) * 100]
        if name == "skip-last" and names_out:
            names_out = names_out[:-1]
        if name == "writes-nothing":
            names_out = []
        if name == "huge-extra-file":
            with open(os.path.join(output, "zz-extra.json"), "wb") as extra:
                extra.truncate(600 << 20)  # 600 MB, sparse: no disk used
        if name == "daemonises" and os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(120)
            os._exit(0)
        if name == "odahu-example":
            names_out.sort(key=lambda n: zlib.crc32(n.encode()))  # the same listing order on every machine
        rewrite = REWRITES.get(name, (None, None))[1]
        for file_name in names_out:
            if name == "odahu-example":
                request = json.loads(Path(inputs, file_name).read_bytes())
                request["inputs"]  # KeyError or TypeError: a traceback and exit 1, the rest of the batch lost
            data = Path(raw, file_name).read_bytes()
            if name == "stops-at-first-error" and b'"error"' in data[:20]:
                print(f"mutant: {file_name}: giving up on the batch", file=sys.stderr)
                return 1
            if rewrite is not None:
                try:
                    request = json.loads(Path(inputs, file_name).read_bytes())
                except (OSError, ValueError):
                    request = None
                try:
                    data = json.dumps(rewrite(json.loads(data), request)).encode()
                except (TypeError, KeyError, AttributeError):
                    pass  # the defect is about valid requests: an odd one keeps the reference's answer
            target = file_name
            if name == "not-json-names":
                target = file_name + ".out"
            elif name == "renamed-responses":
                target = "response-" + file_name
            elif name in ("numbered-responses", "odahu-example"):
                target = f"response{names_out.index(file_name)}.json"
            elif name == "txt-names-with-ids":
                target = file_name[: -len(".json")] + ".txt"
            Path(output, target).write_bytes(data)
    if name == "writes-input":
        Path(inputs, "predictor.lock").write_text("busy\n")
    if name == "exit-one":
        return 1
    if name == "hangs":
        time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
