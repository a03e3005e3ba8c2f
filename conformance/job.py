"""``odahu-conformance job``: one ODAHU InferenceJob run on this machine, step by step as the platform runs it.

The platform runs a batch job as one pod: sync the input and the model, validate the input (only ``*.json`` files
that parse as requests go on), run the predictor image with the service's ``command`` and ``args``, validate the
output (only ``*.json`` files that parse as responses are kept; the rest is dropped silently), upload. Here each
connection named by the manifests is a local folder (``--connection NAME=DIR``): the data source is
``DIR/path``, the model ``DIR/modelPath`` (a folder or a ``.tar.gz`` / ``.zip`` archive), the output destination
``DIR/path``. The output is checked strictly (the contract, not the platform's lax check), every file the
platform would lose is named, and only strictly valid responses are uploaded.

The job has no oracle for an arbitrary model, so it judges what does not depend on the model: the run-level
checks of :mod:`conformance.judge` (P-TIMELY, P-EXIT, P-READONLY, P-NAME, P-EVERY; the same functions the suite
runs, each finding printed as its one line) and the strict per-file checks (F-*) of every response.

Exit codes: 0 everything succeeded; 1 the job ran but something failed a check (the predictor's exit status, its
timeout, a response, a dropped file, a missing response); 2 the job could not run (bad manifest, unknown
connection, unusable model archive, engine or image missing, refused overwrite at upload).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import cast

from conformance import _fs
from conformance.contract.findings import Finding
from conformance.contract.problems import ConformanceProblem
from conformance.judge import (
    blocking,
    ended,
    exits_zero,
    finishes_in_time,
    leaves_inputs_alone,
    one_response_each,
    pair_responses,
    platform_keeps_every_file,
)
from conformance.odahu import manifests, platform_rules, validate
from conformance.odahu.model import (
    ModelProblem,
    is_multiplier,
    load_model,
    load_other_model,
)
from conformance.run import staging
from conformance.run.container import ContainerRunner
from conformance.run.local import LocalRunner
from conformance.run.workspace import RunResult, Workspace
from conformance.text import bounded, quote, short_integer
from conformance.v2.documents import REQUEST, RESPONSE, Document, DocumentKind, load

OK, FAILED, UNUSABLE = 0, 1, 2
STEPS = 6
#: How many lines of a failed predictor's stderr are shown.
STDERR_TAIL = 10
#: How many names a summary line lists before it says "and N more".
SHOWN_NAMES = 10


class JobProblem(ConformanceProblem):
    """The job cannot run as asked; ``str()`` is one line naming the file or connection."""


@dataclass
class Binding:
    """A ``{connection, path}`` pair of a manifest, and which manifest it came from."""

    connection: str
    path: str
    origin: str  # "job" or "service"


@dataclass
class JobPlan:
    """What the two manifests ask for, checked."""

    service_id: str
    job_id: str | None
    image: str
    command: list[str]
    args: list[str]
    data_source: Binding
    output_destination: Binding
    model_connection: str | None  # remote model: the connection holding it
    model_path: str  # remote: path inside the connection; embedded: path inside the image
    meta: dict | None  # embedded model: local.meta

    @property
    def remote(self) -> bool:
        return self.model_connection is not None


# ------------------------------------------------------------------------------------------------ arguments


def parse_connection(text: str) -> tuple[str, Path]:
    """``"NAME=DIR"`` -> ``(NAME, Path(DIR))``; ValueError with a one-line message when it is not that."""
    name, equals, folder = str(text).partition("=")
    name = name.strip()
    if not equals:
        raise ValueError(f"connection {text!r}: expected NAME=DIR")
    if not name:
        raise ValueError(f"connection {text!r}: the NAME before '=' is empty")
    if any(c.isspace() for c in name):
        raise ValueError(f"connection {text!r}: the NAME holds whitespace")
    if not folder.strip():  # (a blank DIR would be the current folder)
        raise ValueError(f"connection {text!r}: the DIR after '=' is blank")
    return name, Path(folder)


def parse_connections(texts: list[str]) -> dict[str, Path]:
    """Every ``NAME=DIR`` of ``texts`` as a dict; ValueError (one line) for a bad one or a NAME given twice."""
    connections: dict[str, Path] = {}
    for text in texts:
        name, folder = parse_connection(text)
        if name in connections and connections[name] != folder:
            raise ValueError(f"connection {name!r} given twice ({connections[name]} and {folder})")
        connections[name] = folder
    return connections


# ------------------------------------------------------------------------------------------------ manifests


#: How much of a manifest's content an error quotes (a file given by mistake, /etc/passwd say, is not echoed).
EXCERPT = 40


def _first(findings: list[Finding]) -> str:
    more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
    return bounded(findings[0].line(), 300) + more


def _not_a_mapping(path: Path, document: object, kind: str) -> JobProblem:
    """The error for a manifest whose YAML is not a mapping at all: what it is, with a short excerpt only."""
    what = {str: "a text", list: "a list", type(None): "empty"}.get(type(document), type(document).__name__)
    excerpt = f" ({quote(document, EXCERPT)})" if document is not None else ""
    return JobProblem(f"{path}: not an {kind} manifest: the file's YAML is {what}{excerpt}, not a mapping")


def read_plan(service: Path, job: Path) -> JobPlan:
    """Read and check both manifests (K-SERVICE, K-JOB against the service); raise :class:`JobProblem`."""
    try:
        service_doc = manifests.read_yaml(service)
        job_doc = manifests.read_yaml(job)
    except manifests.ManifestProblem as exc:
        raise JobProblem(str(exc)) from None
    for path, document, kind in ((service, service_doc, "InferenceService"), (job, job_doc, "InferenceJob")):
        if not isinstance(document, dict):
            raise _not_a_mapping(path, document, kind)
    findings = manifests.service_findings(service_doc, str(service))
    if findings:
        raise JobProblem(f"invalid InferenceService manifest: {_first(findings)}")
    findings = manifests.job_findings(job_doc, str(job), service_doc)
    if findings:
        raise JobProblem(f"invalid InferenceJob manifest: {_first(findings)}")
    service_doc, job_doc = cast(dict, service_doc), cast(dict, job_doc)  # both schemas checked their shape
    spec, job_spec = service_doc["spec"], job_doc["spec"]

    def binding(key: str) -> Binding:
        if isinstance(job_spec.get(key), dict):
            raw, origin = job_spec[key], "job"
        else:
            raw, origin = spec[key], "service"
        connection, path = raw.get("connection"), raw.get("path", "")
        where = f"{job if origin == 'job' else service}: /spec/{key}"
        if not isinstance(connection, str) or not connection:
            raise JobProblem(f"{where}/connection: missing or not a non-empty string")
        if path is None:
            path = ""
        if not isinstance(path, str):
            raise JobProblem(f"{where}/path: not a string")
        return Binding(connection, path, origin)

    registry = spec["modelRegistry"]
    if "remote" in registry:
        remote = registry["remote"]
        model_connection, model_path, meta = remote["modelConnection"], remote.get("modelPath") or "", None
    else:
        local = registry["local"]
        model_connection, model_path, meta = None, local["modelPath"], local["meta"]
    return JobPlan(
        service_id=service_doc["id"],
        job_id=job_doc.get("id") if isinstance(job_doc.get("id"), str) else None,
        image=spec["image"],
        command=list(spec["command"]),
        args=list(spec.get("args") or []),
        data_source=binding("dataSource"),
        output_destination=binding("outputDestination"),
        model_connection=model_connection,
        model_path=model_path,
        meta=meta,
    )


# ---------------------------------------------------------------------------------------------- connections


def resolve(connections: dict[str, Path], connection: str, path: str, what: str) -> Path:
    """``DIR/path`` for a connection; raise :class:`JobProblem` for an unknown connection or a path that leaves
    the connection's folder. A leading ``/`` is the connection's root, as in an object store."""
    if connection not in connections:
        given = ", ".join(sorted(connections)) or "none"
        raise JobProblem(
            f"unknown connection {connection!r} ({what}): give it with --connection {connection}=DIR "
            f"(connections given: {given})"
        )
    root = Path(connections[connection])
    if not root.is_dir():
        state = "is not a folder" if os.path.lexists(root) else "does not exist"
        raise JobProblem(f"connection {connection!r}: {root} {state}")
    parts = [p for p in PurePosixPath(path.replace("\\", "/")).parts if p not in ("/", ".")]
    if ".." in parts:
        raise JobProblem(f"{what} path {path!r} of connection {connection!r} leaves the connection's folder ('..')")
    return root.joinpath(*parts)


# ------------------------------------------------------------------------------------------------- the job


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


def _plural(count: int, word: str) -> str:
    if count == 1:
        return f"1 {word}"
    return f"{count} {word[:-1]}ies" if word.endswith("y") else f"{count} {word}s"


class _Job:
    """One run of :func:`run_job`; ``out`` gets every line."""

    def __init__(self, out: Callable[[str], object]):
        self.out = out
        self.ws: Workspace | None = None
        self.ran = False

    def step(self, number: int, text: str) -> None:
        self.out(f"[{number}/{STEPS}] {text}")

    def note(self, text: str) -> None:
        self.out(f"  {text}")

    def error(self, text: str) -> None:
        self.out(f"error: {text}")


def run_job(
    service: Path,
    job: Path,
    connections: dict[str, Path],
    *,
    engine: str = "docker",
    cmd: str | None = None,
    image: str | None = None,
    timeout: float = 600.0,
    force: bool = False,
    keep: bool = False,
    out: Callable[[str], object] = print,
) -> int:
    """Run the InferenceJob ``job`` of the InferenceService ``service`` locally, as the platform would.

    ``connections`` maps connection names to local folders. The predictor runs as ``service``'s image under
    ``engine`` (``image`` replaces ``spec.image``), or, with ``cmd``, as that local command instead (for machines
    without a container engine). Strictly valid responses are copied into the output destination; an existing
    file there is overwritten only with ``force``. Prints one progress line per step (and details indented under
    it) through ``out``; returns 0, 1 or 2 (see the module's docstring). The workspace is removed after a
    successful job and kept (its path printed) after a failed run or with ``keep``."""
    state = _Job(out)
    try:
        code = _run(state, Path(service), Path(job), dict(connections), engine, cmd, image, timeout, force)
    except JobProblem as problem:
        state.error(str(problem))
        code = UNUSABLE
    if state.ws is not None:
        if keep or (state.ran and code != OK):
            state.out(f"workspace kept: {state.ws.root}")
        else:
            try:
                staging.remove_workspace(state.ws)
            except staging.StagingProblem as problem:
                state.out(f"note: {problem}")
    return code


def _run(state: _Job, service: Path, job: Path, connections: dict[str, Path], engine: str, cmd: str | None,
         image: str | None, timeout: float, force: bool) -> int:
    # -- 1. manifests ------------------------------------------------------------------------------------------
    plan = read_plan(service, job)
    if image is not None:
        if not image.strip():
            raise JobProblem("the image given to replace the service's image is empty")
        plan.image = image
    kind = "remote model" if plan.remote else f"model in the image at {plan.model_path}"
    state.step(1, f"manifests: service {plan.service_id} ({kind}), job {plan.job_id or '(no id)'}")
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        raise JobProblem(f"timeout must be a positive number of seconds, not {timeout!r}")

    # -- 2. connections ----------------------------------------------------------------------------------------
    wanted = [(plan.data_source.connection, "dataSource"), (plan.output_destination.connection, "outputDestination")]
    if plan.model_connection is not None:  # plan.remote
        wanted.append((plan.model_connection, "modelRegistry.remote.modelConnection"))
    missing = [f"{name!r} ({what})" for name, what in wanted if name not in connections]
    if missing:
        raise JobProblem(
            f"unknown connection{'s' if len(missing) > 1 else ''} {', '.join(missing)}: give "
            + ", ".join(f"--connection {name}=DIR" for name, what in wanted if name not in connections)
        )
    source = resolve(connections, plan.data_source.connection, plan.data_source.path, "dataSource")
    destination = resolve(connections, plan.output_destination.connection, plan.output_destination.path,
                          "outputDestination")
    model_source = (resolve(connections, plan.model_connection, plan.model_path, "model")
                    if plan.model_connection is not None else None)  # plan.remote
    parts = [f"data {source} (from the {plan.data_source.origin})",
             f"output {destination} (from the {plan.output_destination.origin})"]
    if model_source is not None:
        parts.append(f"model {model_source}")
    state.step(2, "connections: " + ", ".join(parts))

    # -- 3. stage ------------------------------------------------------------------------------------------------
    runner = _runner(plan, engine, cmd)
    decisions = _decide(source, "request")
    failure = platform_rules.step_failure(decisions)
    if failure is not None:
        state.step(3, f"validate input: the platform's step fails on {failure.name} ({failure.reason}): the job "
                      f"fails here and every file is lost; nothing is staged and the predictor is not run")
        for decision in decisions:
            state.note(decision.line())
        return FAILED
    try:
        state.ws = ws = staging.new_workspace()
        staged = staging.stage_requests(ws, source)
        if model_source is not None:
            staging.stage_model(ws, model_source)
        else:
            ws.model = None
            ws.model_in_image = plan.model_path
    except staging.StagingProblem as problem:
        raise JobProblem(str(problem)) from None
    lax = [check for check in (_check(source / name, REQUEST) for name in staged) if not check.ok]
    state.step(3, f"stage: {_plural(len(staged), 'request')} to the predictor, {len(ws.skipped)} skipped by the "
                  f"platform's input filter, {len(lax)} not strictly valid but passed on (as the platform does); "
                  f"workspace {ws.root}")
    for line in ws.skipped:
        state.note(f"skipped {line}")
    for decision in decisions:
        state.note(f"platform: {decision.line()}")
    kept = [decision.name for decision in decisions if decision.kept]
    if kept != list(staged):
        state.note(f"note: the platform would pass on {_names(kept) or 'nothing'}, the kit staged "
                   f"{_names(list(staged)) or 'nothing'}")
    for check in lax:
        state.note(f"not strictly valid: {check.line()}")
    state.note(_model_line(plan, ws))

    # -- 4. run --------------------------------------------------------------------------------------------------
    if cmd is not None:
        where = ""
        if not plan.remote and not Path(plan.model_path).exists():
            where = f"; ODAHU_MODEL_PATH={plan.model_path} is the image's path, which does not exist on this machine"
        state.step(4, f"run: local command {cmd!r} (--cmd) instead of the image {plan.image}{where}; "
                      f"timeout {timeout:g} s")
    else:
        state.step(4, f"run: {engine} image {plan.image}, {shlex.join(plan.command + plan.args)}; timeout {timeout:g} s")
    result = runner.run(ws, timeout)
    if result.start_error is not None:
        raise JobProblem(f"the predictor could not start: {result.start_error}")
    state.ran = True
    finished = ended(result) and result.exit_code == 0
    run_findings = finishes_in_time(result) + exits_zero(result) + leaves_inputs_alone(result)
    if finished:
        state.note(f"exit status 0 after {result.duration:.1f} s")
    for finding in run_findings:
        state.note(finding.line())
    if not finished and not result.timed_out:
        _stderr_tail(state, result)
    failed = bool(blocking(run_findings, strict=False))

    # -- 5. validate output ----------------------------------------------------------------------------------------
    valid, output_failed, step_failure = _validate_output(state, result, staged)
    failed = failed or output_failed
    if step_failure is not None and finished:
        state.step(6, f"upload: skipped: the platform's validate-output step fails on {step_failure.path.name} "
                      f"({step_failure.platform_reason}), so the job fails and every response is lost")
        return FAILED

    # -- 6. upload ---------------------------------------------------------------------------------------------------
    if not finished:
        state.step(6, "upload: skipped: the predictor did not finish successfully, so the platform uploads nothing")
        return FAILED
    clashes = sorted(name for name in valid if os.path.lexists(destination / name))
    if clashes and not force:
        raise JobProblem(
            f"upload refused: {_plural(len(clashes), 'file')} already {'exists' if len(clashes) == 1 else 'exist'} "
            f"in {destination}: {_names(clashes)} "
            f"(nothing was written; use --force to overwrite)"
        )
    folders = [name for name in clashes if (destination / name).is_dir() and not (destination / name).is_symlink()]
    if folders:
        raise JobProblem(f"upload refused: {destination} holds folders named like responses: {_names(folders)} "
                         f"(nothing was written; a response cannot replace a folder)")
    try:
        destination.mkdir(parents=True, exist_ok=True)
        for name in valid:
            _fs.copy_atomically(ws.output / name, destination / name)
    except OSError as exc:
        raise JobProblem(f"upload to {destination} failed: {exc.strerror or exc}") from None
    overwritten = f", {len(clashes)} overwritten" if clashes else ""
    state.step(6, f"upload: {_plural(len(valid), 'response')} copied to {destination}{overwritten}")
    return FAILED if failed else OK


def _runner(plan: JobPlan, engine: str, cmd: str | None) -> LocalRunner | ContainerRunner:
    if cmd is not None:
        try:
            return LocalRunner.from_string(cmd)
        except ValueError as exc:
            raise JobProblem(f"--cmd: {exc}") from None
    try:
        return ContainerRunner(engine, plan.image, command=plan.command, args=plan.args)
    except ValueError as exc:
        raise JobProblem(str(exc)) from None


def _model_line(plan: JobPlan, ws: Workspace) -> str:
    if ws.model is None:
        meta = plan.meta or {}
        return f"model: inside the image at {plan.model_path} (manifest meta: name {meta.get('name')!r}, version {meta.get('version')!r})"
    try:
        if not is_multiplier(ws.model):  # another model: only its project file is the kit's to read
            other = load_other_model(ws.model)
            return f"model: name {other.name!r}, version {other.version!r} (not the multiplier model)"
        model = load_model(ws.model)
    except ModelProblem as problem:
        return f"model: staged as is, but unusable ({problem}); a conforming predictor refuses it (P-CONFIG)"
    return f"model: name {model.name!r}, version {model.version!r}, multiplier {short_integer(model.multiplier)}"


def _decide(folder: Path, kind: str) -> list[platform_rules.Decision]:
    """The platform's decision for every entry of ``folder``; :class:`JobProblem` when it cannot be listed."""
    try:
        return platform_rules.decide_folder(folder, kind)
    except OSError as exc:
        raise JobProblem(f"{folder}: cannot list: {exc.strerror or exc}") from None


def _check(path: Path, kind: DocumentKind) -> validate.Verdict:
    """:func:`validate.check_entry`, but a crash of the kit's own checker on odd content becomes a failing
    verdict naming the crash (the job must never end in a traceback because of what a candidate wrote)."""
    try:
        return validate.check_entry(path, kind)
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed: the file fails
        decision = platform_rules.decide_entry(path, kind)
        message = f"the kit's checker failed on this file ({type(exc).__name__}: {str(exc)[:200]}); please report it"
        return validate.Verdict(path, [Finding("F-SCHEMA", str(path), "", message)], decision.kept, decision.reason,
                                decision.outcome)


def _stderr_tail(state: _Job, result: RunResult) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if not lines:
        state.note("stderr: (empty)")
        return
    state.note(f"stderr (last {min(len(lines), STDERR_TAIL)} of {len(lines)} lines):")
    for line in lines[-STDERR_TAIL:]:
        state.note(f"  | {line[:300]}")


def _validate_output(state: _Job, result: RunResult, staged: list[str]) -> tuple[list[str], bool, validate.Verdict | None]:
    """Check every top-level entry the run left: the judge's P-NAME (what the platform drops) and P-EVERY (one
    response per request, renamed ones paired as the judge pairs them), and the strict per-file checks (F-*) of
    the ``*.json`` files. Return the strictly valid response names, whether any MUST check failed, and the entry
    on which the platform's whole validate-output step would fail (``None`` if none)."""
    ws = result.workspace
    top = sorted({entry.path.split("/", 1)[0] for entry in result.entries})
    inside = {name: sum(1 for e in result.entries if e.path.startswith(name + "/")) for name in top}
    name_findings = platform_keeps_every_file(result)
    valid: list[str] = []
    failing: list[validate.Verdict] = []
    dropped: list[str] = []
    lines: list[str] = []
    for name in top:
        check = _check(ws.output / name, RESPONSE)
        named = [f for f in name_findings if f.file in (name, name + "/") or f.file.startswith(name + "/")]
        if check.ok and not named:
            valid.append(name)
            continue
        failing.append(check)
        lines += _entry_lines(named, check)
        if check.outcome == platform_rules.DROPPED:
            path = ws.output / name
            if path.is_dir() and not path.is_symlink():
                dropped.append(f"{name}/ (folder, {_plural(inside[name], 'entry')} inside)")
            else:
                dropped.append(name)
    if not result.output_exists:
        summary = "the predictor did not create the output folder"
    else:
        summary = (f"{_plural(len(top), 'entry')} in the output folder: {len(valid)} strictly valid, "
                   f"{len(failing)} failing, {len(dropped)} the platform would drop silently")
    state.step(5, f"validate output: {summary}")
    for line in lines:
        state.note(line)
    if dropped:
        state.note(f"dropped silently by the platform (data loss): {_names(dropped)}")
    step_failure = validate.step_failure(failing)
    if step_failure is not None:
        state.note(f"the platform's validate-output step fails on {step_failure.path.name} "
                   f"({step_failure.platform_reason}): the job fails and every response is lost")
    findings = list(name_findings)
    if ended(result):  # as the judge does: a killed run's output is partial, so P-EVERY is not shown
        requests = {name: load(ws.input / name, REQUEST, label=name) for name in staged}
        read = _reader(result)
        pairing, renamed = pair_responses(result, requests, read)
        every = one_response_each(result, staged, pairing)
        for finding in renamed + every:
            state.note(finding.line())
        findings += renamed + every
    elif staged:
        state.note("P-EVERY not checked: the run did not end by itself, so what it wrote is partial")
    return valid, bool(failing) or bool(blocking(findings, strict=False)), step_failure


def _entry_lines(named: list[Finding], check: validate.Verdict) -> list[str]:
    """The lines for one failing top-level entry: the judge's P-NAME findings about it (those inside a folder
    are capped at :data:`SHOWN_NAMES`), else the strict per-file check's line; the platform's decision is
    appended to the first."""
    if not named:
        return [check.line()]
    lines = [f"{named[0].line()} [{check.fate()}]"] + [f.line() for f in named[1:SHOWN_NAMES]]
    if len(named) > SHOWN_NAMES:
        lines.append(f"and {len(named) - SHOWN_NAMES} more P-NAME findings in {named[0].file.split('/', 1)[0]}/")
    return lines


def _reader(result: RunResult) -> Callable[[str], Document]:
    """An output file as a response document, each read at most once (only files that might answer a renamed
    request are read)."""
    documents: dict[str, Document] = {}

    def read(written: str) -> Document:
        if written not in documents:
            documents[written] = load(result.workspace.output / written, RESPONSE, label=written)
        return documents[written]

    return read
