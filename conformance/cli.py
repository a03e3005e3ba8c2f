"""``odahu-conformance``: the command line over the same engine as the pytest plugin.

Exit codes: 0 everything passed; 1 something failed a check; 2 the command could not run (bad arguments,
missing folder, unwritable target, refused overwrite): then one line on stderr says why, never a traceback.
Option values are checked as they are parsed (:mod:`conformance.arguments`: no blank path, finite numbers in range,
a run timeout of at least 1 s), and a folder a command writes (``--out``, ``-d``, ``--workspace-dir``, a report's)
is made only once the command is accepted, and only when the folder it goes in exists: a refusal makes nothing.
Exit status 5 (``run`` only, pytest's "no tests ran"): nothing about the candidate was checked: no verdict,
never a pass.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from conformance import __version__, arguments
from conformance.contract.problems import ConformanceProblem
from conformance.generate import goldens
from conformance.odahu import archives, platform_rules, validate
from conformance.odahu.model import ModelProblem, load_model
from conformance.paths import kit_fixtures, kit_model
from conformance.text import one_line, short_integer
from conformance.v2.documents import DEFAULT_MAX_BYTES

if TYPE_CHECKING:
    from conformance.run.candidate import Candidate

OK, FAILED, UNUSABLE, NOTHING_CHECKED = 0, 1, 2, 5


#: Where ``fixtures generate`` writes without ``--out``: a new folder in the current one, never the kit's own
#: golden fixtures (which the suite uses).
DEFAULT_GENERATE_OUT = Path("fixtures-generated")


class UsageProblem(ConformanceProblem):
    """The command cannot run; the message is one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one :class:`UsageProblem` line (argparse's own are two: usage, then error)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):  # about one option's value: the line says what is wrong with it
            raise UsageProblem(message.removeprefix("argument "))
        raise UsageProblem(f"{message} (see {self.prog} --help)")


PATH = arguments.path  # every path option: a blank value is refused, never read as the current folder


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="odahu-conformance", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser(
        "validate", help="the platform's validate step, done strictly",
        description="Check every entry of SRC as V2 requests (input) or responses (output); copy the files that "
        "pass to DEST; print one line per entry: ok or its first finding (requirement ID and JSON pointer), and "
        "what the platform would do with it (kept, dropped silently, fails the whole step). Exit 1 if any entry "
        "failed or the platform's whole step would fail.",
    )
    check.add_argument("side", choices=["input", "output"])
    check.add_argument("source", metavar="SRC", type=PATH)
    check.add_argument("-d", "--dest", metavar="DEST", type=PATH, help="copy the passing files here")
    check.add_argument("--force", action="store_true", help="overwrite files that already exist in DEST")
    check.add_argument("--max-bytes", type=arguments.positive, default=DEFAULT_MAX_BYTES, help="refuse files larger than this")
    check.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")

    fixtures = commands.add_parser("fixtures", help="generate or check golden fixtures")
    fixture_commands = fixtures.add_subparsers(dest="fixtures_command", required=True)
    generate = fixture_commands.add_parser(
        "generate", help="write new golden pairs computed by the oracle",
        description="Write request/response pairs: --curated writes the kit's curated cases; --count N --seed S "
        "writes N random requests, the same for the same seed. Responses come from the oracle, never from a "
        "candidate. Existing files are never overwritten without --force.",
    )
    generate.add_argument("--count", type=int, default=0)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--curated", action="store_true", help="also write the kit's curated cases")
    generate.add_argument("--multiplier", type=int, help="another multiplier (writes OUT/model/ so the set is self-describing)")
    generate.add_argument("--model", type=PATH, default=None, help="model folder (default: the kit's model)")
    generate.add_argument("--out", type=PATH, default=DEFAULT_GENERATE_OUT,
                          help=f"fixture folder (default: ./{DEFAULT_GENERATE_OUT}; the kit's own is never the default)")
    generate.add_argument("--force", action="store_true", help="overwrite existing files")
    check_fixtures = fixture_commands.add_parser(
        "check", help="every pair valid and equal to the oracle (K-GOLDEN)",
    )
    check_fixtures.add_argument("--fixtures", type=PATH, default=None, help="fixture folder (default: the kit's)")
    check_fixtures.add_argument("--model", type=PATH, default=None, help="model folder (default: FIXTURES/model, else the kit's)")
    check_fixtures.add_argument("--oracle", metavar="KIND", default=None,
                                help="another model's goldens: python:MODULE:FUNCTION (each answer compared within the "
                                     "tolerance), or recorded / signature (valid, following the declared signature)")
    check_fixtures.add_argument("--signature", metavar="FILE", type=PATH, default=None,
                                help="the declared signature (default: the model folder's model-settings.json)")

    recorder = fixture_commands.add_parser(
        "record", help="record golden pairs from an approved predictor (any model)",
        description="Run an approved predictor twice over the requests in --requests, as the suite runs a "
        "candidate (a V2 server: --url, or --serve); if both runs pass every MUST requirement they can show (P-* or "
        "H-*, F-*, B-SIGNATURE with a declared signature) and give the same answers, write OUT/input/NAME.json and OUT/output/NAME.json (the response "
        "as the predictor wrote it). Nothing is written otherwise, and existing files only with --force.",
    )
    who = recorder.add_mutually_exclusive_group(required=True)
    who.add_argument("--cmd", metavar="CMD", help="the approved predictor is a local program")
    who.add_argument("--image", metavar="IMAGE", help="the approved predictor is an OCI image")
    who.add_argument("--service-manifest", metavar="FILE", type=PATH, help="InferenceService manifest")
    who.add_argument("--url", metavar="http://HOST:PORT", help="the approved predictor is a V2 server already running")
    recorder.add_argument("--model-name", metavar="NAME", help="with --url or --serve: the model the server serves")
    recorder.add_argument("--model-version", metavar="V", help="with --url or --serve: its version (versioned routes)")
    recorder.add_argument("--serve", action="store_true", help="start --cmd / --image as a V2 server and record its answers")
    recorder.add_argument("--port", metavar="N", type=arguments.port, default=None, help="with --serve: the server's port")
    recorder.add_argument("--engine", choices=("docker", "podman"), default="docker")
    recorder.add_argument("--model", metavar="PATH", type=PATH, required=True, help="model folder or archive")
    recorder.add_argument("--signature", metavar="FILE", type=PATH, default=None,
                          help="declared signature (default: the model folder's model-settings.json, if any)")
    recorder.add_argument("--requests", metavar="DIR", type=PATH, required=True, help="the requests to record (*.json)")
    recorder.add_argument("--out", metavar="DIR", type=PATH, required=True, help="fixture folder to write")
    recorder.add_argument("--run-timeout", metavar="SECONDS", type=arguments.run_timeout, default=60.0,
                          help=f"per predictor run (default 60, at least {arguments.MIN_RUN_TIMEOUT:g})")
    recorder.add_argument("--force", action="store_true", help="overwrite existing files")

    pack = commands.add_parser("model", help="the kit's model: pack it as an archive")
    model_commands = pack.add_subparsers(dest="model_command", required=True)
    pack_command = model_commands.add_parser(
        "pack", help="build model.tar.gz or model.zip from a model folder, reproducibly",
        description="Pack a model folder into TARGET (.tar.gz, .tgz or .zip, by its name) with members at the "
        "archive root, as the platform unpacks them. The same folder always gives the same bytes. An existing "
        "TARGET is never overwritten without --force.",
    )
    pack_command.add_argument("target", metavar="TARGET", type=PATH)
    pack_command.add_argument("--model", type=PATH, default=None, help="model folder (default: the kit's model/)")
    pack_command.add_argument("--force", action="store_true", help="overwrite TARGET")

    run = commands.add_parser(
        "run", help="run the conformance suite against a candidate (same options as the pytest plugin)",
        description="Run the conformance suite (pytest --pyargs conformance.suite) against a local command or an "
        "image. Exit 0 when the candidate conforms, 1 when it does not, 2 when the suite could not run. Arguments "
        "after -- go to pytest unchanged.",
    )
    # The same combinations as the pytest plugin: --cmd alone, or --image and/or --service-manifest (an image
    # given beside a manifest replaces the manifest's spec.image).
    run.add_argument("--cmd", metavar="CMD", help="the candidate is a local program")
    run.add_argument("--image", metavar="IMAGE", help="the candidate is an OCI image")
    run.add_argument("--service-manifest", metavar="FILE", type=PATH,
                     help="InferenceService manifest (image, command, args, model registry)")
    run.add_argument("--url", metavar="http://HOST:PORT", help="the candidate is a V2 REST server already running")
    run.add_argument("--conformance-grpc", "--grpc", dest="grpc", metavar="HOST:PORT",
                     help="its V2 gRPC endpoint (alone: the suite goes over gRPC; needs the grpc extra)")
    run.add_argument("--model-name", metavar="NAME", help="the model the server serves (default: the model folder's)")
    run.add_argument("--model-version", metavar="V", help="its version, sent in the versioned routes")
    run.add_argument("--serve", action="store_true", help="start --cmd / --image as a V2 server and test it over HTTP")
    run.add_argument("--port", metavar="N", type=arguments.port, default=None, help="with --serve: the server's port")
    run.add_argument("--grpc-port", metavar="N|auto", type=arguments.grpc_port, default=None,
                     help="with --serve: the server serves gRPC too, on this port ({grpc_port}; auto: a free one, "
                          "8081 in a container)")
    run.add_argument("--engine", choices=("docker", "podman"), default="docker")
    run.add_argument("--model", metavar="PATH", type=PATH, help="model folder or .tar.gz/.zip (default: the kit's)")
    run.add_argument("--fixtures", metavar="DIR", type=PATH, help="golden pairs DIR/input, DIR/output")
    run.add_argument("--oracle", metavar="KIND", default=None,
                     help="multiplier (default with multiplier.txt), recorded, python:MODULE:FUNCTION or signature")
    run.add_argument("--signature", metavar="FILE", type=PATH, default=None,
                     help="the model's declared inputs and outputs (default: the model folder's model-settings.json)")
    run.add_argument("--rtol", metavar="R", type=arguments.tolerance, default=None, help="relative tolerance for float outputs")
    run.add_argument("--atol", metavar="A", type=arguments.tolerance, default=None, help="absolute tolerance for float outputs")
    run.add_argument("--output-tolerance", metavar="NAME=RTOL[,ATOL]", action="append", default=[],
                     help="another tolerance for one output (repeatable)")
    run.add_argument("--run-timeout", metavar="SECONDS", type=arguments.run_timeout, default=None,
                     help=f"per predictor run (default 60, at least {arguments.MIN_RUN_TIMEOUT:g})")
    run.add_argument("--oracle-timeout", metavar="SECONDS", type=arguments.seconds, default=None,
                     help="per call of a python: oracle's reference function (default 60)")
    run.add_argument("--strict", action="store_true", help="SHOULD failures fail the run too")
    run.add_argument("--report", metavar="FILE.json", type=PATH, help="requirement report (and FILE.md)")
    run.add_argument("--profile", choices=("dev", "ci", "thorough"), default=None, help="generated-request volume")
    run.add_argument("--workspace-dir", metavar="DIR", type=PATH, default=None,
                     help="where run workspaces are made (default: the system's temporary folder)")
    run.add_argument("--keep-workspaces", metavar="N", type=arguments.count, default=None,
                     help="keep the workspaces of at most N failed runs (default 3)")
    run.add_argument("--baseline", metavar="FILE.json", type=PATH, default=None,
                     help="known failures: the run fails only on new ones, and names known ones that no longer occur")
    run.add_argument("--write-baseline", metavar="FILE.json", type=PATH, default=None,
                     help="write this run's failures as a baseline file")
    run.add_argument("-n", dest="workers", metavar="N", type=arguments.workers, default=None,
                     help="run under pytest-xdist with N workers (auto: one per core); the suite's tests run on one "
                          "worker, the report is the same as without -n (needs pytest-xdist)")
    run.add_argument("-m", dest="select", metavar="EXPR", help="select groups: schema, golden, property, protocol, manifest")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then extra pytest arguments")

    job = commands.add_parser(
        "job", help="run a whole InferenceJob locally, as the platform would",
        description="Stage the job's input and model from local folders standing in for the connections, validate "
        "the input, run the service's image (or --cmd), validate the output strictly and copy it to the output "
        "destination; one progress line per step. Exit 0 when everything passed, 1 when a check failed, 2 when "
        "the job could not run.",
    )
    job.add_argument("--service", metavar="FILE", type=PATH, required=True, help="InferenceService manifest")
    job.add_argument("--job", metavar="FILE", type=PATH, required=True, help="InferenceJob manifest")
    job.add_argument("--connection", metavar="NAME=DIR", action="append", default=[],
                     help="a local folder standing in for connection NAME (repeat for each connection)")
    job.add_argument("--engine", choices=("docker", "podman"), default="docker")
    job.add_argument("--image", metavar="IMAGE", help="use this image instead of the manifest's spec.image")
    job.add_argument("--cmd", metavar="CMD", help="run this local command instead of the image")
    job.add_argument("--run-timeout", metavar="SECONDS", type=arguments.run_timeout, default=600.0,
                     help=f"the predictor's run (default 600, at least {arguments.MIN_RUN_TIMEOUT:g})")
    job.add_argument("--force", action="store_true", help="overwrite files in the output destination")
    job.add_argument("--keep", action="store_true", help="keep the workspace even when the job passed")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from conformance.run.process import interrupt_on_sigterm

    restore = interrupt_on_sigterm()  # a cancelled CI job sends SIGTERM: stop as on Ctrl-C
    try:
        args = _parser().parse_args(argv)
        if args.command == "validate":
            return _validate(args)
        if args.command == "model":
            return _pack(args)
        if args.command == "run":
            return _run(args)
        if args.command == "job":
            return _job(args)
        if args.fixtures_command == "generate":
            return _generate(args)
        if args.fixtures_command == "record":
            return _record(args)
        return _check_fixtures(args)
    except (ConformanceProblem, ModelProblem, goldens.Refused, archives.ArchiveProblem) as problem:
        print(f"odahu-conformance: {one_line(problem, limit=None)}", file=sys.stderr)
        return UNUSABLE
    except OSError as problem:  # a file-system failure nobody worded: still one line, never a traceback
        print(f"odahu-conformance: {_os_error(problem)}", file=sys.stderr)
        return UNUSABLE
    except KeyboardInterrupt:
        return 130
    finally:
        if restore is not None:
            restore()


def _os_error(problem: OSError) -> str:
    where = f"{problem.filename}: " if problem.filename is not None else ""
    return one_line(f"{where}{problem.strerror or problem}", limit=None)


def _writable_folder(folder: Path, what: str) -> Path:
    """Files can be written in ``folder``, which exists or can be made in a folder that exists; else UsageProblem.
    Nothing is made here: the command makes the folder when it writes (so a refused command leaves nothing)."""
    problem = arguments.folder_problem(folder)
    if problem is not None:
        raise UsageProblem(f"{what} {folder}: {problem}")
    return folder


def _writable_file(path: Path, what: str) -> None:
    """``path`` can be written: not a folder, and its folder exists or can be made in a folder that exists."""
    problem = arguments.file_problem(path)
    if problem is not None:
        raise UsageProblem(f"{what} {path}: {problem}")


def _validate(args: argparse.Namespace) -> int:
    source: Path = args.source
    if not source.is_dir():
        raise UsageProblem(f"{source}: not a folder")
    if args.dest is not None:
        if args.dest.exists() and not args.dest.is_dir():
            raise UsageProblem(f"{args.dest}: exists and is not a folder")
        if args.dest.resolve() == source.resolve():
            raise UsageProblem(f"{args.dest}: DEST must differ from SRC")
        if not args.force:
            clashes = [p.name for p in validate.entries(source) if (args.dest / p.name).exists()]
            if clashes:
                more = f" and {len(clashes) - 1} more" if len(clashes) > 1 else ""
                raise UsageProblem(f"{args.dest / clashes[0]} exists{more}; nothing copied (use --force to overwrite)")
        _writable_folder(args.dest, "-d")
        args.dest.mkdir(exist_ok=True)
    passed = failed = dropped = not_judged = 0
    step_failures: list[validate.Verdict] = []  # entries on which the platform's whole step fails
    for verdict in validate.validate_folder(source, args.side, args.max_bytes):
        if verdict.ok:
            passed += 1
            if args.dest is not None:
                validate.copy_atomically(verdict.path, args.dest / verdict.path.name)
            if not args.quiet:
                print(verdict.line())
        else:
            failed += 1
            dropped += verdict.outcome == platform_rules.DROPPED  # not the entries that fail the whole step
            not_judged += verdict.outcome == platform_rules.NOT_JUDGED
            print(verdict.line())
        if verdict.fails_step:
            step_failures.append(verdict)
    copied = f", {passed} copied to {args.dest}" if args.dest is not None else ""
    fate = f"the platform would have dropped {dropped} of them silently"
    if step_failures:
        fate += f", and {len(step_failures)} would fail its whole validate step"
    if not_judged:
        fate += f"; {not_judged} over the size limit not judged"
    print(f"{passed + failed} entries: {passed} passed, {failed} failed{copied}; {fate}")
    fatal = validate.step_failure(step_failures)
    if fatal is not None:
        more = f" (and {len(step_failures) - 1} more entries)" if len(step_failures) > 1 else ""
        print(f"the platform's validate step fails on {fatal.path.name}{more}: {fatal.platform_reason}; "
              f"the job would fail and every file be lost")
    return FAILED if failed or fatal is not None else OK


def _generate(args: argparse.Namespace) -> int:
    if args.count < 0:
        raise UsageProblem("--count must not be negative")
    if args.seed < 0:
        raise UsageProblem("--seed must not be negative")
    if not args.curated and args.count == 0:
        raise UsageProblem("nothing to generate: give --count N (with --seed S) and/or --curated")
    model = load_model(args.model if args.model is not None else kit_model())
    if args.multiplier is not None:
        model = model.with_multiplier(args.multiplier)
    out: Path = args.out
    _writable_folder(out, "--out")
    for side in ("input", "output", "model"):
        if (out / side).exists() and not (out / side).is_dir():
            raise UsageProblem(f"--out {out}: {out / side} exists and is not a folder")
    pairs, files = goldens.generate(out, model, curated_cases=args.curated, count=args.count, seed=args.seed,
                                    write_model=args.multiplier is not None, force=args.force,
                                    progress=_Progress(sys.stderr))
    print(f"wrote {pairs} golden pairs to {out} ({files} files, multiplier {short_integer(model.multiplier)})")
    return OK


def _record(args: argparse.Namespace) -> int:
    from conformance.odahu.model import is_multiplier
    from conformance.oracle.signature import SIGNATURE_FILE
    from conformance.record import RecordProblem, read_request_folder, record
    from conformance.run.candidate import from_options

    _refuse_blank_candidate(args, "the predictor to record from")
    if args.url is not None and not args.url.strip():
        raise UsageProblem("--url is empty: give the server to record from (a blank value, e.g. an unset variable, is refused)")
    requests = read_request_folder(args.requests)
    _writable_folder(args.out, "--out")  # (made only when the recording is accepted)
    model: Path = args.model
    declared = args.signature is not None or (model.is_dir() and (model / SIGNATURE_FILE).is_file())
    candidate = from_options(cmd=args.cmd, image=args.image, engine=args.engine, service_manifest=args.service_manifest,
                             model=model, timeout=args.run_timeout, oracle="signature" if declared else "recorded",
                             signature=args.signature, url=args.url, model_name=args.model_name,
                             model_version=args.model_version, serve=args.serve, port=args.port)
    try:
        return _record_from(candidate, requests, args, model)
    finally:
        close = getattr(candidate.runner, "close", None)
        if close is not None:  # a server the kit started (--serve) is stopped
            close()


def _record_from(candidate: Candidate, requests: list[tuple[str, bytes]], args: argparse.Namespace, model: Path) -> int:
    from conformance.odahu.model import is_multiplier
    from conformance.record import RecordProblem, record

    cannot_start = candidate.preflight()
    if cannot_start:
        raise UsageProblem(f"the predictor cannot start: {cannot_start}")
    try:
        done = record(candidate, requests, args.out, force=args.force)
    except RecordProblem as problem:
        if not problem.findings:
            raise
        for finding in problem.findings[:20]:
            print(finding.line())
        if len(problem.findings) > 20:
            print(f"... and {len(problem.findings) - 20} more")
        print(f"odahu-conformance: {one_line(problem, limit=None)}", file=sys.stderr)
        return FAILED
    print(f"recorded {done.pairs} golden pairs to {done.out} (model {candidate.model.name} {candidate.model.version}, "
          f"from {candidate.kind} {candidate.ref})")
    if model.is_dir() and is_multiplier(model):
        print("note: the multiplier model's goldens can also come from its oracle (`fixtures generate`), never from a "
              "predictor; recorded ones are checked with --oracle recorded")
    return OK


class _Progress:
    """``generated DONE/TOTAL pairs`` on ``stream``, at most once every ``interval`` seconds (nothing for a run
    shorter than that)."""

    def __init__(self, stream: TextIO, interval: float = 1.0):
        self.stream, self.interval = stream, interval
        self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            print(f"generated {done}/{total} pairs", file=self.stream, flush=True)


def _check_fixtures(args: argparse.Namespace) -> int:
    fixtures = args.fixtures if args.fixtures is not None else kit_fixtures()
    if not fixtures.is_dir():
        raise UsageProblem(f"{fixtures}: not a folder")
    if args.oracle is not None and args.oracle != "multiplier":
        from conformance.run.candidate import model_and_oracle

        if args.model is None:
            raise UsageProblem("--oracle needs --model (the model folder the goldens belong to)")
        other, oracle = model_and_oracle(args.model, args.oracle, args.signature)
        pairs, findings = goldens.check(fixtures, None, oracle)
        for finding in findings:
            print(finding.line())
        print(f"{pairs} golden pairs of model {other.name} {other.version} checked (--oracle {args.oracle}): "
              f"{'all valid' if not findings else f'{len(findings)} problems'}")
        return FAILED if findings or pairs == 0 else OK
    from conformance.odahu.model import is_multiplier

    if args.signature is not None:
        raise UsageProblem(f"--signature {args.signature}: the multiplier's goldens are checked against its oracle, "
                           "which needs no signature; give --oracle signature (with --model) to check them by one")
    if args.model is not None and args.model.is_dir() and not is_multiplier(args.model):
        raise UsageProblem(f"--model {args.model}: no multiplier.txt, so not the multiplier model: check its goldens "
                           "with --oracle python:MODULE:FUNCTION, recorded or signature")
    model = goldens.model_for(fixtures, args.model)
    pairs, findings = goldens.check(fixtures, model)
    for finding in findings:
        print(finding.line())
    print(f"{pairs} golden pairs checked against the oracle (multiplier {short_integer(model.multiplier)}): "
          f"{'all equal' if not findings else f'{len(findings)} problems'}")
    return FAILED if findings or pairs == 0 else OK


def _pack(args: argparse.Namespace) -> int:
    model = args.model if args.model is not None else kit_model()
    load_model(model)  # refuse to pack a model the predictor could not use
    if args.target.is_dir():
        raise UsageProblem(f"{args.target}: is a folder; give the archive's file name")
    if args.target.parent.is_dir():
        _writable_folder(args.target.parent, f"{args.target}: its folder")
    try:
        target = archives.pack(model, args.target, force=args.force)
    except OSError as exc:
        raise UsageProblem(f"{args.target}: cannot write the archive: {exc.strerror or exc}") from None
    print(f"packed {model} into {target}")
    return OK


def _run(args: argparse.Namespace) -> int:
    """The suite through pytest, in this process; pytest's exit status mapped onto 0 / 1 / 2, and 5 (no test ran,
    or none checked anything about the candidate) kept as it is."""
    import pytest

    _check_run_paths(args)
    # Every option is passed as --option=VALUE: pytest picks its rootdir (and so the test ids) before it knows the
    # plugin's options, and takes a separate value that names an existing folder (--workspace-dir DIR) for a test
    # path, which made the ids read ../test_golden.py. The ids are now the same with and without such options.
    argv = ["--pyargs", "conformance.suite", "-p", "no:cacheprovider"]
    if args.cmd:
        argv.append(f"--predictor-cmd={args.cmd}")
    if args.image:
        argv.append(f"--predictor-image={args.image}")
    if args.service_manifest:
        argv.append(f"--service-manifest={args.service_manifest}")
    if args.url is not None:
        argv.append(f"--url={args.url}")
    if args.grpc is not None:
        argv.append(f"--grpc={args.grpc}")
    if args.serve:
        argv.append("--serve")
    argv.append(f"--engine={args.engine}")
    for option, value in (("--model", args.model), ("--fixtures-dir", args.fixtures),
                          ("--run-timeout", args.run_timeout), ("--conformance-report", args.report),
                          ("--conformance-profile", args.profile), ("--workspace-dir", args.workspace_dir),
                          ("--keep-workspaces", args.keep_workspaces), ("-m", args.select),
                          ("--oracle", args.oracle), ("--signature", args.signature), ("--rtol", args.rtol),
                          ("--atol", args.atol), ("--conformance-baseline", args.baseline),
                          ("--conformance-write-baseline", args.write_baseline),
                          ("--oracle-timeout", args.oracle_timeout), ("--model-name", args.model_name),
                          ("--model-version", args.model_version), ("--port", args.port),
                          ("--grpc-port", None if args.grpc_port is None else args.grpc_port or "auto")):
        if value is not None:
            argv += [option, str(value)] if option == "-m" else [f"{option}={value}"]
    if args.workers is not None:
        if importlib.util.find_spec("xdist") is None:
            raise UsageProblem("-n: pytest-xdist is not installed (pip install pytest-xdist)")
        argv += ["-n", args.workers]
    for each in args.output_tolerance:
        argv.append(f"--output-tolerance={each}")
    if args.strict:
        argv.append("--conformance-strict")
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    with _hypothesis_home():
        status = pytest.main(argv + extra)
    return {0: OK, 1: FAILED, 5: NOTHING_CHECKED}.get(int(status), UNUSABLE)


@contextlib.contextmanager
def _hypothesis_home() -> Iterator[None]:
    """hypothesis's storage (``.hypothesis/`` in the current folder by default: its caches and example database) in
    a temporary folder for the run, removed afterwards, so that ``run`` leaves nothing where it was started. The
    suite keeps no example database anyway (each run draws afresh from its own seed)."""
    variable = "HYPOTHESIS_STORAGE_DIRECTORY"  # read when hypothesis first stores something
    before = os.environ.get(variable)
    # (not imported here when not yet loaded: pytest must import hypothesis's plugin itself to rewrite its asserts)
    loaded = sys.modules.get("hypothesis.configuration")
    home_before = getattr(loaded, "__hypothesis_home_directory", None)
    with tempfile.TemporaryDirectory(prefix="odahu-conformance-hypothesis.") as home:
        os.environ[variable] = home
        if loaded is not None:
            loaded.set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = before
            configuration = sys.modules.get("hypothesis.configuration")
            if configuration is not None:
                configuration.set_hypothesis_home_dir(home_before)


def _refuse_blank_candidate(args: argparse.Namespace, what: str) -> None:
    """A ``--cmd`` or ``--image`` given blank (an unset variable) is a usage error naming ``what`` to give."""
    for name, value in (("--cmd", args.cmd), ("--image", args.image)):
        if value is not None and not value.strip():
            raise UsageProblem(f"{name} is empty: give {what} (a blank value, e.g. an unset variable, is refused)")


def _check_run_paths(args: argparse.Namespace) -> None:
    """What the CLI can check before pytest starts, so that a bad path is one line, not a pytest usage error."""
    from conformance.run.candidate import CandidateProblem, _service_spec

    given = [name for name, value in (("--cmd", args.cmd), ("--image", args.image),
                                      ("--service-manifest", args.service_manifest), ("--url", args.url))
             if value is not None]
    if args.grpc is not None:
        other = [name for name in given if name != "--url"]
        if other:
            raise UsageProblem(f"--grpc cannot be combined with {other[0]}: it names a running server's gRPC "
                               f"endpoint (alone, or with --url)")
        if not args.grpc.strip():
            raise UsageProblem("--grpc is empty: give the server to test (a blank value, e.g. an unset variable, is "
                               "refused)")
        from conformance.transport.grpc_v2 import GrpcUnavailable, require

        try:
            require()
        except GrpcUnavailable as problem:
            raise UsageProblem(f"--grpc: {problem}") from None
        given = given or ["--grpc"]
    if not given:
        raise UsageProblem("give the candidate: --cmd CMD, or --image IMAGE and/or --service-manifest FILE, or "
                           "--url http://HOST:PORT (a V2 server; --grpc HOST:PORT for its gRPC endpoint)")
    if args.url is not None and len(given) > 1:
        raise UsageProblem(f"--url cannot be combined with {given[0] if given[0] != '--url' else given[1]}: a "
                           f"running server, or a predictor (with --serve to start it as a server), not both")
    if args.url is not None and not args.url.strip():
        raise UsageProblem("--url is empty: give the server to test (a blank value, e.g. an unset variable, is refused)")
    if args.cmd is not None and len(given) > 1:
        raise UsageProblem(f"--cmd cannot be combined with {given[1]}: a local program or an image, not both")
    _refuse_blank_candidate(args, "the candidate to test")

    if args.service_manifest is not None:
        try:
            _service_spec(args.service_manifest)
        except CandidateProblem as problem:
            raise UsageProblem(str(problem)) from None
    if args.model is not None and not args.model.exists():
        raise UsageProblem(f"--model {args.model}: no such folder or archive")
    _check_oracle_options(args)
    if args.fixtures is not None and not args.fixtures.is_dir():
        raise UsageProblem(f"--fixtures {args.fixtures}: not a folder")
    if args.report is not None:
        _writable_file(args.report, "--report")
    if args.baseline is not None:
        from conformance.contract.baseline import BaselineProblem, load

        try:
            load(args.baseline)
        except BaselineProblem as problem:
            raise UsageProblem(f"--baseline {problem}") from None
    if args.write_baseline is not None:
        _writable_file(args.write_baseline, "--write-baseline")
    if args.workspace_dir is not None:
        _writable_folder(args.workspace_dir, "--workspace-dir")


def _check_oracle_options(args: argparse.Namespace) -> None:
    """The model folder, the oracle, the signature and the tolerances, read as the suite will read them (one line
    on a problem)."""
    from conformance.oracle.sources import parse_output_tolerance
    from conformance.paths import kit_model
    from conformance.run.candidate import CandidateProblem, model_and_oracle

    for text in args.output_tolerance:
        try:
            parse_output_tolerance(text)
        except ValueError as exc:
            raise UsageProblem(str(exc)) from None
    if args.signature is not None and not args.signature.is_file():
        raise UsageProblem(f"--signature {args.signature}: no such file")
    model = args.model or kit_model()
    if not model.is_dir():
        return  # an archive is unpacked and read once, by the suite (a problem there is one line too)
    try:
        model_and_oracle(model, args.oracle or "auto", args.signature)
    except CandidateProblem as problem:
        raise UsageProblem(str(problem)) from None


def _job(args: argparse.Namespace) -> int:
    from conformance import job

    try:
        connections = job.parse_connections(args.connection)
    except ValueError as problem:
        raise UsageProblem(str(problem)) from None
    # What can be refused before the first progress line is refused as one line on stderr, like every command.
    job.read_plan(args.service, args.job)
    for name, folder in connections.items():
        if not folder.is_dir():
            state = "is not a folder" if os.path.lexists(folder) else "does not exist"
            raise UsageProblem(f"--connection {name}={folder}: {state}")
    return job.run_job(args.service, args.job, connections, engine=args.engine, cmd=args.cmd, image=args.image,
                       timeout=args.run_timeout, force=args.force, keep=args.keep)
