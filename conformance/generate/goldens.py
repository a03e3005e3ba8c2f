"""Golden fixtures: pairs ``DIR/input/NAME.json`` -> ``DIR/output/NAME.json`` whose responses come from the oracle.

A fixture set may carry its own model in ``DIR/model/`` (written when generated with another multiplier);
otherwise it belongs to the kit's model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
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
from conformance.oracle.match import examine_any
from conformance.oracle.sources import Oracle, OracleProblem
from conformance.paths import kit_model
from conformance.text import integer_text
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


def plan(out: Path, requests: Iterable[tuple[str, dict]], model: Model, write_model: bool) -> Plan:
    """Everything a generation writes: each request, its oracle response and, if asked, the model folder."""
    return Plan(dict(planned_files(out, requests, model, write_model)))


def planned_files(out: Path, requests: Iterable[tuple[str, dict]], model: Model,
                  write_model: bool) -> Iterator[tuple[Path, bytes]]:
    """:func:`plan`'s files one by one, in the same order (request, response, ...; the model folder last), each
    computed only when asked for: what :func:`generate` streams to disk."""
    for name, request in requests:
        yield out / "input" / name, dumps(request, indent=True)
        yield out / "output" / name, dumps(expect(request, model, name).document(), indent=True)
    if write_model:
        yield out / "model" / MULTIPLIER_FILE, f"{integer_text(model.multiplier)}\n".encode()
        yield out / "model" / PROJECT_FILES[0], f"model:\n  name: {model.name}\n  version: \"{model.version}\"\n".encode()


def generated_name(seed: int, index: int) -> str:
    return f"gen-{seed}-{index:04d}.json"


def generated_requests(count: int, seed: int) -> list[tuple[str, dict]]:
    """``count`` random requests, the same for the same ``seed``."""
    return list(iter_generated_requests(count, seed))


def iter_generated_requests(count: int, seed: int) -> Iterator[tuple[str, dict]]:
    """:func:`generated_requests` one at a time (the same requests in the same order), in constant memory."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        yield generated_name(seed, i), random_request(rng, i)


def generate(out: Path, model: Model, *, curated_cases: bool, count: int, seed: int, write_model: bool,
             force: bool, progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
    """Write the curated cases (if asked) and ``count`` generated pairs to ``out``, streaming: each pair is
    computed, written and forgotten before the next, so memory does not grow with ``count``. The same files,
    bytes and order as :func:`write` of :func:`plan`. Refuses (writing nothing) when any target exists and not
    ``force``. ``progress(done, total)`` is called after each pair. Returns (pairs, files) written."""
    curated_list = curated_requests() if curated_cases else []
    total = len(curated_list) + count
    if not force:
        _refuse_existing(out, [name for name, _ in curated_list], count, seed, write_model)
    requests = _chain(curated_list, iter_generated_requests(count, seed))
    files = 0
    folders: set[Path] = set()
    for path, data in planned_files(out, requests, model, write_model):
        if path.parent not in folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            folders.add(path.parent)
        write_atomically(path, data)
        files += 1
        if progress is not None and files % 2 == 0 and files // 2 <= total:
            progress(files // 2, total)
    return total, files


def _chain(first: list[tuple[str, dict]], then: Iterator[tuple[str, dict]]) -> Iterator[tuple[str, dict]]:
    yield from first
    first.clear()  # a curated case is not kept once written
    yield from then


def _refuse_existing(out: Path, curated_names: list[str], count: int, seed: int, write_model: bool) -> None:
    """:class:`Refused` naming the first existing target in writing order (and how many more), as :func:`write`
    would; looks only at the files already in ``out``, never at one path per pair (``count`` may be huge)."""
    position = {name: index for index, name in reversed(list(enumerate(curated_names)))}
    generated = re.compile(rf"gen-{re.escape(str(seed))}-([0-9]+)\.json")
    order: list[tuple[int, int, Path]] = []
    for side, rank in (("input", 0), ("output", 1)):
        try:
            names = os.listdir(out / side)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            index = position.get(name)
            if index is None:
                match = generated.fullmatch(name)
                if match is None or int(match.group(1)) >= count or generated_name(seed, int(match.group(1))) != name:
                    continue
                index = len(curated_names) + int(match.group(1))
            if (out / side / name).exists():
                order.append((index, rank, out / side / name))
    if write_model:
        last = len(curated_names) + count
        order += [(last, rank, path) for rank, path in enumerate((out / "model" / MULTIPLIER_FILE,
                                                                  out / "model" / PROJECT_FILES[0])) if path.exists()]
    if order:
        order.sort(key=lambda item: item[:2])
        more = f" and {len(order) - 1} more" if len(order) > 1 else ""
        raise Refused(f"{order[0][2]} exists{more}; nothing written (use --force to overwrite)")


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


def answered_requests(fixtures: Path, count: int) -> list[tuple[str, bytes]]:
    """The first ``count`` golden requests (by name) whose golden response holds outputs with at least one
    element: requests the model serves with values (an error or an empty answer shows little), as ``(name,
    bytes)``. Responses are read one at a time until enough are found."""
    found: list[tuple[str, bytes]] = []
    for request in sorted((fixtures / "input").glob("*.json")) if (fixtures / "input").is_dir() else []:
        response = fixtures / "output" / request.name
        if len(found) == count:
            break
        if response.is_file():
            document = load(response, RESPONSE)
            if document.ok and any(len(t.values) for t in document.tensors):
                found.append((request.name, request.read_bytes()))
    return found


def check(fixtures: Path, model: Model | None, oracle: Oracle | None = None) -> tuple[int, list[Finding]]:
    """``K-GOLDEN``: every pair present on both sides, the request schema-valid and kept by the platform, the
    response strictly valid and equal to what the oracle computes for the multiplier ``model``; for another model
    (``oracle`` given), valid, following the declared signature and, with a reference function, equal to its
    answer within the tolerance. Returns (pairs, findings)."""
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
        findings += _check_pair(inputs / name, outputs / name, model, oracle)
    return pairs, findings


def _check_pair(request_path: Path, response_path: Path, model: Model | None, oracle: Oracle | None) -> list[Finding]:
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
    if oracle is not None:
        try:
            expected = oracle.expect(request, raw)
        except OracleProblem as problem:
            return [Finding("K-GOLDEN", str(request_path), "", str(problem))]
        found = examine_any(actual, expected, request, oracle.signature, oracle.tolerance).findings
        return [golden(f) for f in found]
    assert model is not None  # the multiplier's goldens are checked against its model
    return [golden(f) for f in compare(actual, expect(request, model), request)]
