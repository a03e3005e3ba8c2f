"""Golden fixtures: pairs ``DIR/input/NAME.json`` -> ``DIR/output/NAME.json`` whose responses come from the oracle.

A fixture set may carry its own model in ``DIR/model/`` (written when generated with another multiplier);
otherwise it belongs to the kit's model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from conformance._fs import write_atomically
from conformance.contract.findings import Finding
from conformance.generate import curated
from conformance.generate.randomreq import random_request
from conformance.odahu import platform_rules
from conformance.odahu.model import MULTIPLIER_FILE, PROJECT_FILES, Model, load_model
from conformance.oracle.compare import compare
from conformance.oracle.expect import expect
from conformance.paths import kit_model
from conformance.v2 import jsonschemas
from conformance.v2.documents import REQUEST, RESPONSE, inspect, load, read_bytes
from conformance.v2.strictjson import JSONProblem, dumps, loads


class Refused(Exception):
    """Generation would overwrite existing files; nothing was written."""


@dataclass
class Plan:
    """Files a generation run would write: ``{path: bytes}``."""

    files: dict[Path, bytes] = field(default_factory=dict)


def model_for(fixtures: Path, model_folder: Path | None = None) -> Model:
    """The model a fixture set belongs to: ``model_folder``, else ``fixtures/model``, else the kit's model."""
    if model_folder is not None:
        return load_model(model_folder)
    if (fixtures / "model").is_dir():
        return load_model(fixtures / "model")
    return load_model(kit_model())


def plan(out: Path, requests: list[tuple[str, dict]], model: Model, write_model: bool) -> Plan:
    """Everything a generation writes: each request, its oracle response and, if asked, the model folder."""
    result = Plan()
    for name, request in requests:
        result.files[out / "input" / name] = dumps(request, indent=True)
        result.files[out / "output" / name] = dumps(expect(request, model, name).document(), indent=True)
    if write_model:
        result.files[out / "model" / MULTIPLIER_FILE] = f"{model.multiplier}\n".encode()
        result.files[out / "model" / PROJECT_FILES[0]] = (
            f"model:\n  name: {model.name}\n  version: \"{model.version}\"\n".encode()
        )
    return result


def generated_requests(count: int, seed: int) -> list[tuple[str, dict]]:
    """``count`` random requests, the same for the same ``seed``."""
    rng = np.random.default_rng(seed)
    return [(f"gen-{seed}-{i:04d}.json", random_request(rng, i)) for i in range(count)]


def write(result: Plan, force: bool) -> list[Path]:
    """Write the plan atomically, file by file; refuse (writing nothing) if any target exists and not ``force``."""
    existing = [path for path in result.files if path.exists()]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise Refused(f"{existing[0]} exists{more}; nothing written (use --force to overwrite)")
    for path, data in result.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)
    return list(result.files)


def curated_requests() -> list[tuple[str, dict]]:
    return curated.cases()


def check(fixtures: Path, model: Model) -> tuple[int, list[Finding]]:
    """``K-GOLDEN``: every pair present on both sides, the request schema-valid and kept by the platform, the
    response strictly valid and equal to what the oracle computes for ``model``. Returns (pairs, findings)."""
    inputs, outputs = fixtures / "input", fixtures / "output"
    findings: list[Finding] = []
    for folder in (inputs, outputs):
        if not folder.is_dir():
            return 0, [Finding("K-GOLDEN", str(folder), "", "folder missing")]
    in_names = {p.name for p in inputs.iterdir()}
    out_names = {p.name for p in outputs.iterdir()}
    for name in sorted(in_names ^ out_names):
        side = "output" if name in in_names else "input"
        findings.append(Finding("K-GOLDEN", str((inputs if side == "output" else outputs) / name), "", f"has no {side} twin"))
    pairs = 0
    for name in sorted(in_names & out_names):
        pairs += 1
        findings += _check_pair(inputs / name, outputs / name, model)
    return pairs, findings


def _check_pair(request_path: Path, response_path: Path, model: Model) -> list[Finding]:
    golden = lambda f: Finding("K-GOLDEN", f.file, f.pointer, f"{f.requirement}: {f.message}")  # noqa: E731
    if not request_path.name.endswith(".json"):
        return [Finding("K-GOLDEN", str(request_path), "", "golden file names end in .json")]
    try:
        raw = read_bytes(request_path)
        body = loads(raw)
    except (OSError, JSONProblem) as exc:
        return [Finding("K-GOLDEN", str(request_path), "", f"F-JSON: {exc}")]
    keeps, reason = platform_rules.accepts(raw, REQUEST)
    problems = [Finding("K-GOLDEN", str(request_path), w, f"F-SCHEMA: {m}") for w, m in jsonschemas.errors(jsonschemas.REQUEST, body)]
    if not keeps:
        problems.append(Finding("K-GOLDEN", str(request_path), "", f"the platform would skip it: {reason}"))
    if problems:
        return problems
    request = inspect(body, REQUEST, str(request_path))
    actual = load(response_path, RESPONSE)
    return [golden(f) for f in compare(actual, expect(request, model), request)]
