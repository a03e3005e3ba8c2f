"""The predictor under test and how to run it: a local command or an image, its model, its timeout.

A :class:`Candidate` is built once from the options (pytest's or the CLI's, the same names) and then runs any
number of batches: each run gets a fresh workspace staged like an InferenceJob pod (requests through the
platform's input filter, the model copied or unpacked, the output folder absent), then the runner, then the
collected result. Workspaces of runs that passed are removed; the caller keeps those of runs that failed.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conformance.contract.problems import ConformanceProblem
from conformance.odahu import manifests
from conformance.odahu.model import (
    Model,
    ModelProblem,
    OtherModel,
    is_multiplier,
    load_model,
    load_other_model,
)
from conformance.oracle.signature import (
    SIGNATURE_FILE,
    SignatureProblem,
    read_signature,
)
from conformance.oracle.sources import (
    KINDS,
    Oracle,
    OracleProblem,
    Tolerance,
    load_reference,
)
from conformance.paths import kit_model
from conformance.run import DEFAULT_TIMEOUT, staging
from conformance.run.container import ContainerRunner, engine_available
from conformance.run.decoys import stage_decoys
from conformance.run.local import LocalRunner
from conformance.run.online import OnlineRunner, Served, write_answers
from conformance.run.process import Runner
from conformance.run.workspace import RunResult, Workspace

#: What the kept workspaces of failed runs may hold in all: disk space their outputs take (allocated blocks, not
#: sizes: 200,000 one-byte files take 800 MB) and files and folders in their outputs (inodes).
KEEP_DISK_BYTES, KEEP_ENTRIES = 1 << 30, 10_000
#: A run taking longer than this many seconds is reported while it runs, then every PROGRESS_EVERY seconds.
SLOW_RUN, PROGRESS_EVERY = 5.0, 30.0


class CandidateProblem(ConformanceProblem):
    """The candidate cannot be set up as asked (bad option, unreadable manifest, unusable model); one line."""


@dataclass
class Candidate:
    """A predictor to test.

    ``kind`` is ``cmd`` or ``image`` and ``ref`` the command line or image name (for the report). ``model_source``
    is the model folder or archive staged for every run; when the model is inside the image, ``model_source`` is
    None, ``model_in_image`` is its path there and ``embedded`` its name and version from the manifest.
    ``model`` is what the oracle assumes the candidate runs: the multiplier model (multiplier, name, version), or
    another model, whose expected answers then come from ``oracle``.
    """

    kind: str
    ref: str
    runner: Runner
    model: Model | OtherModel
    model_source: Path | None
    model_in_image: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    workspace_base: Path | None = None
    kept: list[Path] = field(default_factory=list)
    runs: int = 0  # how many times the candidate ran (for the report's stats)
    keep_limit: int = 3  # workspaces of failed runs kept at most (--keep-workspaces)
    keep_bytes: int = KEEP_DISK_BYTES  # disk space their outputs may take in all
    keep_entries: int = KEEP_ENTRIES  # files and folders their outputs may hold in all
    kept_bytes: int = 0
    kept_entries: int = 0
    not_kept: int = 0  # failed runs whose workspace was removed because of the limits
    #: why a failed run's workspace was not kept (the limit it hit, one line), by workspace root
    not_kept_reasons: dict[Path, str] = field(default_factory=dict)
    hung: str | None = None  # why further runs are not worth waiting for (set after timeouts)
    progress: Callable[[str], None] | None = None  # told about runs that take long (one line each time)
    left_behind: list[Path] = field(default_factory=list)  # workspaces that could not be removed (warned once each)
    oracle: Oracle | None = None  # where a model other than the multiplier gets its expected answers

    @property
    def model_is_embedded(self) -> bool:
        return self.model_source is None

    @property
    def online(self) -> bool:
        """Whether the candidate is a V2 server (``--url``, ``--grpc`` or ``--serve``): answers come as exchanges."""
        return isinstance(self.runner, OnlineRunner)

    @property
    def model_is_fixed(self) -> str | None:
        """Why no other model (another multiplier, name or version) can be staged for a run, or None when it can:
        the model is inside the image, or the server is one the user runs (``--url``)."""
        if isinstance(self.runner, OnlineRunner) and self.runner.fixed_model:
            flag = "--url" if self.runner.url is not None else "--grpc"
            return f"the server at {flag} serves the model it was started with (--serve lets the kit start it on another)"
        if self.model_is_embedded:
            return "the model is inside the image"
        return None

    @property
    def is_multiplier(self) -> bool:
        """Whether the candidate runs the multiplier model (the M-* requirements apply)."""
        return isinstance(self.model, Model)

    @property
    def multiplier_model(self) -> Model:
        """The multiplier model the candidate runs; only asked for where :attr:`is_multiplier` holds."""
        assert isinstance(self.model, Model), "not the multiplier model"
        return self.model

    def run(
        self,
        requests: list[tuple[str, bytes]] | Path,
        multiplier: int | None = None,
        model_files: dict[str, str | bytes] | None = None,
        output_exists: bool = False,
        output_parents_missing: bool = False,
        timeout: float | None = None,
        decoys: bool = False,
        model_changes: dict[str, bytes] | None = None,
        concurrency: int = 1,
    ) -> RunResult:
        """Stage a workspace and run the candidate once.

        ``multiplier`` stages a copy of the model with another ``multiplier.txt``; ``model_files`` stages a synthetic
        model instead (for bad-model tests); ``model_changes`` (``{relative path: content}``) stages a copy of the
        model with those files replaced (another name in its project file), the others unchanged; ``output_exists`` creates the output folder beforehand;
        ``output_parents_missing`` puts the output folder two missing folders deeper (local commands only: a
        container's output path is fixed by the pod layout). A V2 server (:attr:`online`) gets the requests over
        ``concurrency`` connections at once; a run with its own model stages no model copy (the server holds it).
        """
        ws = staging.new_workspace(self.workspace_base)
        try:
            own_model = model_files is None and multiplier is None and not model_changes
            if self.online:  # sent from memory; written into the workspace only when it is kept
                delivered = staging.filter_requests(ws, requests)
            else:
                staging.stage_requests(ws, requests)
            if self.online and own_model:
                ws.model = None  # the server serves its own model
            elif model_files is not None:
                staging.stage_model_text(ws, model_files)
            elif self.model_source is not None:
                staging.stage_model(ws, self.model_source, multiplier, model_changes)
            else:
                if multiplier is not None:
                    raise CandidateProblem("the model is inside the image: its multiplier cannot be changed")
                if model_changes:
                    raise CandidateProblem("the model is inside the image: its files cannot be changed")
                ws.model, ws.model_in_image = None, self.model_in_image
            if output_parents_missing:
                ws.output = ws.output / "nested" / "deeper"
            if output_exists:
                ws.output.mkdir(parents=True)
            if decoys:
                stage_decoys(ws)
        except staging.StagingProblem as problem:
            self._remove(ws)
            raise CandidateProblem(str(problem)) from None
        self.runs += 1
        limit = self.timeout if timeout is None else timeout
        if isinstance(self.runner, OnlineRunner):
            runner = self.runner
            return self._watched(lambda: runner.run(ws, limit, own_model, concurrency, delivered), limit)
        return self._watched(lambda: self.runner.run(ws, limit), limit)

    def _watched(self, run: Callable[[], RunResult], limit: float) -> RunResult:
        """``run()``, saying through ``progress`` when it takes long."""
        if self.progress is None:
            return run()
        started, number, done = time.monotonic(), self.runs, threading.Event()

        def report_progress() -> None:  # one line after SLOW_RUN s, then every PROGRESS_EVERY s
            wait = SLOW_RUN
            while not done.wait(wait):
                assert self.progress is not None
                self.progress(f"predictor run {number}: still running after {time.monotonic() - started:.0f} s "
                              f"(timeout {limit:g} s)")
                wait = PROGRESS_EVERY

        watcher = threading.Thread(target=report_progress, daemon=True)
        watcher.start()
        try:
            return run()
        finally:
            done.set()
            watcher.join()

    def preflight(self) -> str | None:
        """Why the candidate cannot start at all, one line, or None; cheap enough to call once before judging.

        A local command: the program is not found or not executable (resolved as the runner will), or its runs
        cannot be contained here. An image: the engine cannot run containers, the image is not available
        locally, or it has neither ENTRYPOINT nor CMD and no command is given. A run that cannot start for any
        of these reasons also comes back with ``RunResult.start_error`` set."""
        check = getattr(self.runner, "preflight", None)
        return check() if check is not None else None

    def model_with(self, multiplier: int | None) -> Model:
        """The model the oracle assumes for a run with ``multiplier`` (None: the candidate's own)."""
        return self.multiplier_model if multiplier is None else self.multiplier_model.with_multiplier(multiplier)

    def discard(self, result: RunResult) -> None:
        """Remove a run's workspace (a run that passed). Never raises: a workspace that cannot be removed (a
        candidate made a file immutable, say) is left in place with one warning line (:meth:`warn`) and listed
        in ``left_behind``; the run's verdict stands."""
        self._remove(result.workspace)

    def _remove(self, ws: Workspace) -> None:
        try:
            staging.remove_workspace(ws)
        except staging.StagingProblem as problem:
            if ws.root not in self.left_behind:
                self.left_behind.append(ws.root)
                self.warn(f"warning: {problem}; left in place")

    def warn(self, line: str) -> None:
        """Say ``line`` now: through ``progress`` when set (the terminal, past pytest's capture), else on stderr."""
        if self.progress is not None:
            self.progress(line)
        else:
            print(f"odahu-conformance: {line}", file=sys.stderr, flush=True)

    def keep(self, result: RunResult) -> Path | None:
        """Keep a failed run's workspace for the report and return its path; or, once ``keep_limit`` workspaces
        are kept, or when their outputs would take more than ``keep_bytes`` of disk or hold more than
        ``keep_entries`` files and folders in all, remove it, count it in ``not_kept``, say which limit it hit in
        ``not_kept_reasons`` and return None (a failing run must not pile up workspaces)."""
        disk, count = _footprint(result)
        reason = ""
        if len(self.kept) >= self.keep_limit:
            reason = (f"the workspaces of the first {self.keep_limit} failed runs are kept (--keep-workspaces N)"
                      if self.keep_limit else "--keep-workspaces 0: no workspace is kept")
        elif self.kept_bytes + disk > self.keep_bytes:
            reason = (f"its output takes {_size(disk)} of disk; the kept workspaces' outputs may take "
                      f"{_size(self.keep_bytes)} in all ({_size(self.kept_bytes)} taken)")
        elif self.kept_entries + count > self.keep_entries:
            reason = (f"its output holds {count} files and folders; the kept workspaces' outputs may hold "
                      f"{self.keep_entries} in all ({self.kept_entries} held)")
        if reason:
            self.not_kept_reasons[result.workspace.root] = reason
            self.discard(result)
            self.not_kept += 1
            return None
        self.kept.append(result.workspace.root)
        try:
            write_answers(result)  # an online run's answers, beside its requests (a batch run wrote its own)
        except OSError as problem:
            self.warn(f"warning: the answers could not be written into the kept workspace {result.workspace.root}: {problem}")
        self.kept_bytes += disk
        self.kept_entries += count
        return result.workspace.root

    def release(self, result: RunResult) -> None:
        """Remove a kept workspace after all (a smaller failure replaced it) and give back its share of the
        limits, so that later failures can be kept."""
        root = result.workspace.root
        if root in self.kept:
            self.kept.remove(root)
            disk, count = _footprint(result)
            self.kept_bytes -= disk
            self.kept_entries -= count
        self.discard(result)

    def reproduce(self, result: RunResult) -> str:
        """A command line that runs the candidate again on the kept workspace's requests."""
        return self.runner.describe(result.workspace)


def _footprint(result: RunResult) -> tuple[int, int]:
    """``(disk bytes, entries)`` the run's output takes: allocated blocks and files and folders."""
    return sum(entry.disk for entry in result.entries), len(result.entries)


def _size(count: int) -> str:
    """Bytes as people read them: ``1.0 GiB``, ``3.5 MiB``, ``812 bytes``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift:
            return f"{count / (1 << shift):.1f} {unit}"
    return f"{count} bytes"


def from_options(
    cmd: str | None = None,
    image: str | None = None,
    engine: str = "docker",
    service_manifest: Path | None = None,
    model: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    workspace_base: Path | None = None,
    oracle: str = "auto",
    signature: Path | None = None,
    tolerance: Tolerance | None = None,
    url: str | None = None,
    model_name: str | None = None,
    model_version: str | None = None,
    serve: bool = False,
    port: int | None = None,
    grpc: str | None = None,
    grpc_port: int | None = None,
) -> Candidate:
    """Build the candidate from the suite's options (see the interfaces doc); raise :class:`CandidateProblem`.

    ``oracle`` says where the expected answers come from: ``multiplier`` (the kit's oracle), ``recorded``,
    ``python:MODULE:FUNCTION`` or ``signature`` (see :mod:`conformance.oracle.sources`); ``auto`` is
    ``multiplier`` when the model folder holds ``multiplier.txt`` and a usage error otherwise (a model that lost
    its ``multiplier.txt`` must not be gated as another model without being told). ``signature`` is the declared
    signature (default: the model folder's ``model-settings.json`` when it has one).

    Online (a V2 REST server): ``url`` names a server already running; ``serve`` starts the command or image as a
    server on the model (on ``port``) and stops it at the end. ``model_name`` / ``model_version`` name the model
    the server serves (default: the model folder's metadata). ``grpc`` (``HOST:PORT``) is a running server's gRPC
    endpoint: alone, the batches go over gRPC; beside ``url``, the same server's. ``grpc_port`` (with ``serve``;
    0: a free one, 8081 in a container) asks the started server to serve gRPC too, on that port."""
    if grpc_port is not None and not serve:
        raise CandidateProblem("--grpc-port is the gRPC port of a server started by the kit: give --serve (a running "
                               "server's gRPC endpoint is --grpc HOST:PORT)")
    if grpc is not None and (cmd or image or service_manifest or serve):
        raise CandidateProblem("--grpc names a running server's gRPC endpoint: give it alone, or with --url (the "
                               "same server's REST endpoint)")
    if grpc is not None and url is None:
        return _online(None, None, "grpc", grpc, model, timeout, workspace_base, oracle, signature, tolerance,
                       model_name, model_version, grpc=grpc)
    if url is not None:
        if cmd or image or service_manifest or serve:
            raise CandidateProblem("give one candidate: --url (a running server), or --predictor-cmd / "
                                   "--predictor-image (with --serve to start it as a server)")
        return _online(url, None, "url", url, model, timeout, workspace_base, oracle, signature, tolerance,
                       model_name, model_version, grpc=grpc)
    if (model_name is not None or model_version is not None) and not serve:
        raise CandidateProblem("--model-name and --model-version name the model a server serves: give --url, or --serve")
    if port is not None and not serve:
        raise CandidateProblem("--port is the port a server started by the kit listens on: give --serve")
    if bool(cmd) == bool(image or service_manifest):
        raise CandidateProblem("give exactly one candidate: --predictor-cmd CMD, or --predictor-image IMAGE "
                               "(or --service-manifest FILE)")
    if timeout <= 0:
        raise CandidateProblem(f"--run-timeout must be positive, got {timeout}")
    model_source = Path(model) if model else kit_model()
    if serve:
        return _served(cmd, image, engine, service_manifest, model, timeout, workspace_base, oracle, signature,
                       tolerance, model_name, model_version, port, grpc_port)
    if cmd:
        try:
            runner: Runner = LocalRunner.from_string(cmd)
        except ValueError as exc:
            raise CandidateProblem(f"--predictor-cmd: {exc}") from None
        model_read, chosen = model_and_oracle(model_source, oracle, signature, tolerance)
        return Candidate("cmd", cmd, runner, model_read, model_source,
                         timeout=timeout, workspace_base=workspace_base, oracle=chosen)
    if engine not in ("docker", "podman"):
        raise CandidateProblem(f"--engine must be docker or podman, got {engine!r}")
    command = args = None
    model_in_image = None
    embedded: tuple[str, str] | None = None
    if service_manifest is not None:
        spec = _service_spec(Path(service_manifest))
        image = image or spec["image"]
        command, args = spec.get("command"), spec.get("args")
        local = (spec.get("modelRegistry") or {}).get("local")
        if local:
            model_in_image = local["modelPath"]
            embedded = (local["meta"]["name"], str(local["meta"]["version"]))
    available, reason = engine_available(engine)
    if not available:
        raise CandidateProblem(f"--engine {engine}: cannot run containers here: {reason}")
    assert image is not None  # checked first: without a command, an image or a manifest (which names one)
    runner = ContainerRunner(engine, image, command=command, args=args)
    model_read, chosen = model_and_oracle(model_source, oracle, signature, tolerance)
    if embedded is not None:
        # The model inside the image is not visible from outside: the oracle assumes --model's (default: the
        # kit's model, which the kit's embedded image bakes in); name and version come from the manifest.
        if isinstance(model_read, Model):
            model_read = Model(model_read.multiplier, *embedded)
        else:
            model_read = OtherModel(*embedded, folder=model_read.folder)
            if chosen is not None:
                chosen.model = model_read
        return Candidate("image", image, runner, model_read, None, model_in_image,
                         timeout=timeout, workspace_base=workspace_base, oracle=chosen)
    return Candidate("image", image, runner, model_read, model_source,
                     timeout=timeout, workspace_base=workspace_base, oracle=chosen)


def _online(url: str | None, serve: Callable[[Path, tuple[str, bytes] | None], Served] | None, kind: str, ref: str, model: Path | None,
            timeout: float, workspace_base: Path | None, oracle: str, signature: Path | None,
            tolerance: Tolerance | None, model_name: str | None, model_version: str | None,
            served_model: Path | None = None, grpc: str | None = None) -> Candidate:
    """A V2 server candidate: the model read from ``model`` (the kit's by default) names what the oracle
    assumes, under ``model_name`` / ``model_version`` when given; ``grpc`` its gRPC endpoint."""
    from conformance.transport.http import UrlProblem

    if grpc is not None:
        from conformance.transport.grpc_v2.client import GrpcTargetProblem, parse_target

        try:
            parse_target(grpc)
        except GrpcTargetProblem as problem:
            raise CandidateProblem(f"--grpc {problem}") from None

    for flag, value in (("--model-name", model_name), ("--model-version", model_version)):
        if value is not None and not value.strip():
            raise CandidateProblem(f"{flag} is empty")
    model_source = Path(model) if model else kit_model()
    model_read, chosen = model_and_oracle(model_source, oracle, signature, tolerance)
    name = model_name if model_name is not None else model_read.name
    version = model_version if model_version is not None else model_read.version
    if isinstance(model_read, Model):
        model_read = Model(model_read.multiplier, name, version)
    else:
        model_read = OtherModel(name, version, folder=model_read.folder)
        if chosen is not None:
            chosen.model = model_read
    try:
        runner = OnlineRunner(url, name, model_version, serve=serve, model=served_model, timeout=timeout, grpc=grpc)
    except UrlProblem as problem:
        raise CandidateProblem(f"--url {problem}") from None
    runner.probe = _probe_request(chosen)
    return Candidate(kind, ref, runner, model_read, model_source, timeout=timeout,
                     workspace_base=workspace_base, oracle=chosen)


def _probe_request(oracle: Oracle | None) -> bytes | None:
    """A small request the model serves (the multiplier's, or one made from another model's declared signature),
    sent to a server the kit starts while it says it is not ready yet; None when none is known."""
    from conformance.generate import fromsignature
    from conformance.v2.strictjson import dumps

    if oracle is None:
        return dumps({"id": "probe", "inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1, 2]}]})
    if oracle.signature is not None:
        return fromsignature.good_requests(oracle.signature)[0][1]
    return None


def _served(cmd: str | None, image: str | None, engine: str, service_manifest: Path | None, model: Path | None,
            timeout: float, workspace_base: Path | None, oracle: str, signature: Path | None,
            tolerance: Tolerance | None, model_name: str | None, model_version: str | None,
            port: int | None, grpc_port: int | None = None) -> Candidate:
    """``--serve``: the command or image started as a V2 server by :mod:`conformance.run.serving`, on a staged
    copy of the model for the session (another copy, and another server, for a run with another model)."""
    from conformance.run import serving

    if service_manifest is not None:
        raise CandidateProblem("--serve takes --predictor-cmd or --predictor-image (an InferenceService manifest "
                               "describes a batch predictor)")
    if cmd:
        try:
            argv = LocalRunner.from_string(cmd).argv
        except ValueError as exc:
            raise CandidateProblem(f"--predictor-cmd: {exc}") from None

        def start(folder: Path, probe: tuple[str, bytes] | None) -> Served:
            return serving.serve_command(list(argv), folder, port, ready_timeout=timeout, probe=probe,
                                         grpc_port=grpc_port)
        kind, ref = "cmd", cmd
    else:
        if engine not in ("docker", "podman"):
            raise CandidateProblem(f"--engine must be docker or podman, got {engine!r}")
        available, reason = engine_available(engine)
        if not available:
            raise CandidateProblem(f"--engine {engine}: cannot run containers here: {reason}")
        assert image is not None

        def start(folder: Path, probe: tuple[str, bytes] | None) -> Served:
            return serving.serve_image(engine, image, folder, port or 8080, ready_timeout=timeout, probe=probe,
                                       grpc_port=grpc_port)
        kind, ref = "image", image
    source = Path(model) if model else kit_model()
    scratch = staging.new_workspace(workspace_base)
    atexit.register(staging.remove_workspace, scratch)
    try:
        folder = staging.stage_model(scratch, source)
    except staging.StagingProblem as problem:
        raise CandidateProblem(f"--model: {problem}") from None
    return _online(None, start, kind, ref, model, timeout, workspace_base, oracle, signature, tolerance,
                   model_name, model_version, served_model=folder)


def model_and_oracle(source: Path, oracle: str, signature: Path | None = None,
                     tolerance: Tolerance | None = None) -> tuple[Model | OtherModel, Oracle | None]:
    """Read the model the candidate will be given (a folder, or an archive unpacked into a scratch folder: removed
    at once for the multiplier, kept as long as the process for another model, whose folder is read again) and
    set up the oracle ``oracle`` names (None for the multiplier's)."""
    kind = oracle.split(":", 1)[0]
    if kind not in ("auto", "multiplier", *KINDS):
        raise CandidateProblem(f"--oracle {oracle}: expected multiplier, recorded, python:MODULE:FUNCTION or signature")
    scratch = None if source.is_dir() else staging.new_workspace()
    try:
        folder = source if scratch is None else staging.stage_model(scratch, source)
        if kind == "auto":
            if not is_multiplier(folder):
                raise CandidateProblem(
                    f"--model {source}: no multiplier.txt, so not the multiplier model: say where its expected answers "
                    "come from with --oracle recorded, --oracle python:MODULE:FUNCTION or --oracle signature")
            kind = "multiplier"
        if kind == "multiplier":
            if signature is not None:  # (refused, not ignored: the multiplier's answers come from its oracle)
                raise CandidateProblem(f"--signature {signature}: the multiplier's oracle takes any tensor and needs no "
                                       "signature; give --oracle signature to check this model by a signature only")
            return load_model(folder), None  # (what the oracle needs is read: the scratch copy goes below)
        model = load_other_model(folder)
        declared = signature or (folder / SIGNATURE_FILE if (folder / SIGNATURE_FILE).exists() else None)
        read = read_signature(declared) if declared is not None else None
        if kind == "signature" and read is None:
            raise CandidateProblem(f"--oracle signature: no signature: {folder / SIGNATURE_FILE} is missing and no "
                                   "--signature FILE is given")
        reference = load_reference(oracle) if kind == "python" else None
        if scratch is not None:  # another model's folder is read again (reference function, broken copies)
            atexit.register(staging.remove_workspace, scratch)
            scratch = None
        return model, Oracle(kind, oracle, model, read, tolerance or Tolerance(), reference)
    except (ModelProblem, staging.StagingProblem) as problem:
        raise CandidateProblem(f"--model: {problem}") from None
    except (SignatureProblem, OracleProblem) as problem:
        raise CandidateProblem(str(problem)) from None
    finally:
        if scratch is not None:
            staging.remove_workspace(scratch)


def _service_spec(path: Path) -> dict:
    """The ``spec`` of a valid InferenceService manifest (K-SERVICE), or a one-line CandidateProblem (also for a
    file of another kind, such as an InferenceJob)."""
    try:
        document = manifests.read_yaml(path)
    except manifests.ManifestProblem as problem:
        raise CandidateProblem(f"--service-manifest: {problem}") from None
    if not isinstance(document, dict) or document.get("kind") != manifests.SERVICE_KIND:
        kind = document.get("kind") if isinstance(document, dict) else None
        raise CandidateProblem(f"--service-manifest: {path}: kind is {kind!r}; expected {manifests.SERVICE_KIND}")
    findings = manifests.service_findings(document, str(path))
    if findings:
        raise CandidateProblem(f"--service-manifest: {findings[0].line()}")
    spec: dict = document["spec"]
    return spec
