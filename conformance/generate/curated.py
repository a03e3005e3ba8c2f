"""The kit's curated golden requests: one case per behaviour the contract names.

Each entry is ``(file name, request)``; the expected responses are computed by the oracle. ``odahu-conformance
fixtures generate --curated`` writes them into ``fixtures/``.
"""

from __future__ import annotations

from conformance.v2.datatypes import DATATYPES


def _t(name: str, datatype: str, shape: list[int], data: list, **extra: object) -> dict:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data, **extra}


def _one(name: str, datatype: str, shape: list[int], data: list, request_id: str | None = None,
         **extra: object) -> dict:
    request: dict = {}
    if request_id is not None:
        request["id"] = request_id
    request["inputs"] = [_t(name, datatype, shape, data)]
    request.update(extra)
    return request


def _wrap_case(datatype: str) -> tuple[str, dict]:
    dt = DATATYPES[datatype]
    values = [dt.minimum, dt.minimum + 1, -1 if dt.minimum < 0 else 1, 0, dt.maximum // 2 + 1, dt.maximum - 1, dt.maximum]
    return f"wrap-{datatype.lower()}.json", _one("x", datatype, [len(values)], values, f"wrap-{datatype.lower()}")


def cases() -> list[tuple[str, dict]]:
    """All curated cases, in a stable order with unique file names."""
    out: list[tuple[str, dict]] = [
        ("request.json", {"inputs": [_t("input-0", "INT32", [2], [10, 20])]}),
    ]
    simple: dict[str, list] = {
        "UINT8": [0, 1, 7, 100], "UINT16": [0, 1, 300, 30000], "UINT32": [0, 1, 70000, 2000000000],
        "UINT64": [0, 1, 5000000000, 9000000000000000000], "INT8": [-5, 0, 5, 60], "INT16": [-300, 0, 300, 16000],
        "INT32": [-70000, 0, 70000, 1000000000], "INT64": [-5000000000, 0, 5000000000, 4000000000000000000],
        "FP16": [-1.5, 0.0, 0.25, 1000.0], "FP32": [-1.5, 0.0, 0.25, 1.0e30], "FP64": [-1.5, 0.0, 0.25, 1.0e300],
    }
    for datatype, values in simple.items():
        out.append((f"dtype-{datatype.lower()}.json", _one("values", datatype, [4], values, f"dtype-{datatype.lower()}")))
    out += [
        ("unsupported-bool.json", _one("flags", "BOOL", [3], [True, False, True], "unsupported-bool")),
        ("unsupported-bytes.json", _one("text", "BYTES", [2], ["abc", "def"], "unsupported-bytes")),
        ("unsupported-bool-among-numbers.json", {"id": "bool-among-numbers", "inputs": [
            _t("numbers", "INT32", [2], [1, 2]), _t("flags", "BOOL", [1], [False])]}),
        ("scalar-int32.json", _one("scalar", "INT32", [], [21], "scalar-int32")),
        ("scalar-fp64.json", _one("scalar", "FP64", [], [-0.5], "scalar-fp64")),
        ("zero-size-1d.json", _one("empty", "FP32", [0], [], "zero-size-1d")),
        ("zero-size-nested.json", _one("empty", "INT16", [2, 0], [[], []], "zero-size-nested")),
        ("zero-size-middle.json", _one("empty", "UINT8", [3, 0, 2], [], "zero-size-middle")),
        ("nested-2d-int32.json", _one("matrix", "INT32", [2, 3], [[1, 2, 3], [4, 5, 6]], "nested-2d")),
        ("nested-3d-fp32.json", _one("cube", "FP32", [2, 2, 2], [[[0.5, 1.5], [2.5, 3.5]], [[-0.5, -1.5], [-2.5, -3.5]]], "nested-3d")),
        ("flat-2d-int64.json", _one("matrix", "INT64", [3, 2], [1, 2, 3, 4, 5, 6], "flat-2d")),
        ("multi-tensor.json", {"id": "multi-tensor", "inputs": [
            _t("a", "INT8", [2], [1, -1]), _t("b", "FP64", [2, 2], [[0.1, 0.2], [0.3, 0.4]]),
            _t("c", "UINT32", [], [4000000000])]}),
        ("select-subset-reordered.json", {"id": "select-subset", "inputs": [
            _t("a", "INT32", [1], [1]), _t("b", "INT32", [1], [2]), _t("c", "INT32", [1], [3])],
            "outputs": [{"name": "c"}, {"name": "a"}]}),
        ("select-unknown-name.json", {"id": "select-unknown", "inputs": [_t("a", "INT32", [1], [1])],
                                      "outputs": [{"name": "a"}, {"name": "missing"}]}),
        ("select-empty-list.json", {"id": "select-empty", "inputs": [
            _t("a", "UINT16", [1], [7]), _t("b", "INT8", [1], [-7])], "outputs": []}),
        ("select-skips-overflow.json", {"id": "select-skips-overflow", "inputs": [
            _t("big", "FP16", [1], [60000.0]), _t("ok", "FP16", [1], [1.0])], "outputs": [{"name": "ok"}]}),
        ("select-with-parameters.json", {"id": "select-parameters", "inputs": [_t("a", "FP32", [2], [1.25, -2.5])],
                                         "outputs": [{"name": "a", "parameters": {"binary_data": False}}]}),
    ]
    out += [_wrap_case(name) for name in ("UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64")]
    out += [
        ("int64-beyond-2p53.json", _one("big", "INT64", [4], [2**53 + 1, -(2**53) - 3, 2**62 + 12345, 9007199254740993], "int64-beyond-2p53")),
        ("uint64-beyond-2p53.json", _one("big", "UINT64", [3], [2**53 + 1, 2**63 + 7, 2**64 - 3], "uint64-beyond-2p53")),
        ("fp16-rounding.json", _one("h", "FP16", [5], [0.1, 1.0009765625, 2049.0, 0.333, 65504.0 / 4], "fp16-rounding")),
        ("fp32-rounding.json", _one("f", "FP32", [4], [0.1, 16777217.0, 3.4028234663852886e38 / 2, 1.1754943508222875e-38], "fp32-rounding")),
        ("fp64-extremes.json", _one("d", "FP64", [3], [1.7976931348623157e308 / 2, 5e-324, -2.2250738585072014e-308], "fp64-extremes")),
        ("fp16-overflow.json", _one("h", "FP16", [2], [1.0, 40000.0], "fp16-overflow")),
        ("fp32-overflow.json", _one("f", "FP32", [1], [3.0e38], "fp32-overflow")),
        ("fp64-overflow.json", _one("d", "FP64", [1], [-1.7e308], "fp64-overflow")),
        ("fp-subnormals.json", {"id": "fp-subnormals", "inputs": [
            _t("h", "FP16", [2], [6e-08, -1.2e-07]), _t("f", "FP32", [2], [1.4e-45, -2.8e-45])]}),
        ("negative-zero.json", _one("z", "FP64", [3], [-0.0, 0.0, -0.0], "negative-zero")),
        ("ints-as-floats-data.json", _one("f", "FP32", [3], [1, -2, 3], "ints-in-float-tensor")),
        ("with-parameters.json", {"id": "with-parameters", "parameters": {"batch": "nightly", "priority": 3, "debug": False},
                                  "inputs": [_t("a", "INT16", [2], [5, -5], parameters={"content_type": "np"})]}),
        ("without-id.json", {"inputs": [_t("a", "UINT8", [3], [1, 2, 3])]}),
        ("invalid-count.json", _one("a", "INT32", [2, 2], [1, 2, 3], "invalid-count")),
        ("invalid-nesting.json", _one("a", "INT32", [2, 2], [[1, 2], [3]], "invalid-nesting")),
        ("invalid-out-of-range.json", _one("a", "INT8", [2], [1, 200], "invalid-out-of-range")),
        ("invalid-float-in-int.json", _one("a", "INT32", [2], [1, 2.0], "invalid-float-in-int")),
        ("invalid-duplicate-names.json", {"id": "invalid-duplicate-names", "inputs": [
            _t("a", "INT32", [1], [1]), _t("a", "INT32", [1], [2])]}),
        ("large-1000.json", _one("long", "INT32", [10, 100], list(range(-500, 500)), "large-1000")),
    ]
    names = [name for name, _ in out]
    assert len(names) == len(set(names)), "curated file names must be unique"
    return out
