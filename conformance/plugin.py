"""The pytest plugin (entry point ``pytest11``): the suite's options, its fixtures, and the requirement report.

Options are registered here and nowhere else; the suite's tests (``conformance/suite/``) get the candidate and the
other settings from the ``conformance`` fixture, and hand their findings to the ``verdict`` fixture, which
records them for the report and fails the test on any MUST finding (and SHOULD findings under ``--strict``).
The plugin is inert for other test suites: it only adds options and reads markers.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _pytest import junitxml
from _pytest.terminal import TerminalReporter

# Only light modules here: the plugin is loaded by every pytest run where the kit is installed. The judge, the
# runners and what they import (numpy, jsonschema...) are imported when the suite needs them.
from conformance import arguments, report
from conformance import report as report_module  # (``report`` is a hook argument's name below)
from conformance.contract.requirements import REQUIREMENTS
from conformance.generate.profiles import PROFILES, Profile
from conformance.paths import kit_fixtures
from conformance.run import DEFAULT_TIMEOUT
from conformance.run.process import interrupt_on_sigterm
from conformance.text import bounded

if TYPE_CHECKING:
    from conformance.contract.baseline import Baseline
    from conformance.contract.findings import Finding
    from conformance.judge import Judgement
    from conformance.run.candidate import Candidate

GROUPS = {
    "schema": "every response strictly valid V2 (F-*)",
    "golden": "the golden pairs through the candidate",
    "property": "hypothesis-generated batches checked against the oracle",
    "protocol": "how the image is run (P-*)",
    "manifest": "manifests, model metadata and golden fixtures (K-*)",
    "online": "a V2 server's own routes: health, metadata, refusals, unknown models (H-*)",
}


def marker_name(requirement_id: str) -> str:
    """The underscore spelling of a requirement's marker: ``M-VALUE`` -> ``M_VALUE``. Both ``-m M-VALUE`` and
    ``-m M_VALUE`` select the requirement's tests."""
    return requirement_id.replace("-", "_")


def _checked(check: Callable[[str], object], flag: str) -> Callable[[str], object]:
    """``check`` (from :mod:`conformance.arguments`) as an option's type: a bad value stops pytest with one usage
    error line naming ``flag`` (argparse's own error would be pytest's usage text, then the error)."""
    def convert(text: str) -> object:
        try:
            return check(text)
        except arguments.ArgumentProblem as problem:
            raise pytest.UsageError(f"odahu-conformance: {flag}: {problem}") from None

    convert.__name__ = check.__name__
    return convert


def _path(flag: str) -> Callable[[str], object]:
    """A path option's type: blank is refused (it would mean the current folder)."""
    return _checked(arguments.path, flag)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("odahu-conformance", "ODAHU predictor conformance (odahu-conformance)")
    group.addoption("--conformance-predictor-cmd", "--predictor-cmd", dest="predictor_cmd", metavar="CMD", default=None,
                    help="the candidate is a local program (split like a shell would, run without a shell)")
    group.addoption("--conformance-predictor-image", "--predictor-image", dest="predictor_image", metavar="IMAGE", default=None, help="the candidate is an OCI image")
    group.addoption("--conformance-url", "--url", dest="url", metavar="http://HOST:PORT", default=None,
                    help="the candidate is a V2 REST server already running (online; batch-only requirements skipped)")
    group.addoption("--conformance-grpc", "--grpc", dest="grpc", metavar="HOST:PORT", default=None,
                    help="the V2 server's gRPC endpoint: alone, the suite goes over gRPC; with --url, the gRPC "
                         "requirements (G-*) are checked beside the REST ones (needs the grpc extra)")
    group.addoption("--conformance-model-name", "--model-name", dest="model_name", metavar="NAME", default=None,
                    help="the model the server serves (default: the model folder's name)")
    group.addoption("--conformance-model-version", "--model-version", dest="model_version", metavar="V", default=None,
                    help="its version, sent in the versioned routes (default: the plain routes; the model folder's "
                         "version is still expected in responses)")
    group.addoption("--conformance-serve", "--serve", dest="serve", action="store_true", default=False,
                    help="start --predictor-cmd / --predictor-image as a V2 server on the model (KServe's /mnt/models), "
                         "test it over HTTP, stop it")
    group.addoption("--conformance-port", "--port", dest="port", metavar="N", type=_checked(arguments.port, "--port"),
                    default=None, help="with --serve: the port the server listens on (default: a free one; 8080 in a "
                                       "container)")
    group.addoption("--conformance-grpc-port", "--grpc-port", dest="grpc_port", metavar="N|auto",
                    type=_checked(arguments.grpc_port, "--grpc-port"), default=None,
                    help="with --serve: the server serves gRPC too, on this port ({grpc_port} in a command; auto: a "
                         "free one, 8081 in a container), and the suite goes over both")
    group.addoption("--conformance-engine", "--engine", dest="engine", choices=("docker", "podman"), default="docker",
                    help="container engine for --predictor-image (default: docker)")
    group.addoption("--conformance-service-manifest", "--service-manifest", dest="service_manifest", metavar="FILE",
                    type=_path("--service-manifest"), default=None,
                    help="InferenceService manifest: image, command, args and model registry")
    group.addoption("--conformance-model", "--model", dest="model", metavar="PATH",
                    type=_path("--model"), default=None,
                    help="model folder or .tar.gz/.zip archive (default: the kit's model/)")
    # pytest owns --fixtures (it lists fixtures), so the plugin's option is --fixtures-dir; the CLI's `run`
    # takes --fixtures as the interfaces doc says and passes it on.
    group.addoption("--conformance-fixtures-dir", "--fixtures-dir", dest="fixtures_dir", metavar="DIR",
                    type=_path("--fixtures-dir"), default=None,
                    help="golden pairs: DIR/input, DIR/output (default: the kit's fixtures/)")
    group.addoption("--conformance-oracle", "--oracle", dest="oracle", metavar="KIND", default="auto",
                    help="where the expected answers come from: multiplier (the default for a model with "
                         "multiplier.txt), recorded (the golden pairs of --fixtures-dir), python:MODULE:FUNCTION "
                         "(a reference function) or signature (format and declared signature only)")
    group.addoption("--conformance-signature", "--signature", dest="signature", metavar="FILE",
                    type=_path("--signature"), default=None,
                    help="the model's declared inputs and outputs (MLServer's model-settings.json; default: the model "
                         "folder's)")
    group.addoption("--conformance-rtol", "--rtol", dest="rtol", metavar="R",
                    type=_checked(arguments.tolerance, "--rtol"), default=1e-5,
                    help="relative tolerance for float outputs of other models (default 1e-5)")
    group.addoption("--conformance-atol", "--atol", dest="atol", metavar="A",
                    type=_checked(arguments.tolerance, "--atol"), default=1e-8,
                    help="absolute tolerance for float outputs of other models (default 1e-8)")
    group.addoption("--conformance-output-tolerance", "--output-tolerance", dest="output_tolerance",
                    metavar="NAME=RTOL[,ATOL]", action="append", default=[],
                    help="another tolerance for one float output, e.g. probabilities=1e-4 (repeatable)")
    group.addoption("--conformance-oracle-timeout", "--oracle-timeout", dest="oracle_timeout", metavar="SECONDS",
                    type=_checked(arguments.seconds, "--oracle-timeout"), default=None,
                    help="per call of a python: oracle's reference function (default 60)")
    group.addoption("--conformance-run-timeout", "--run-timeout", dest="run_timeout", metavar="SECONDS",
                    type=_checked(arguments.run_timeout, "--run-timeout"), default=DEFAULT_TIMEOUT,
                    help=f"per predictor run (default {DEFAULT_TIMEOUT:g}, at least {arguments.MIN_RUN_TIMEOUT:g})")
    group.addoption("--conformance-strict", action="store_true", default=False,
                    help="SHOULD failures fail the run too (pytest's own --strict does the same)")
    group.addoption("--conformance-report", metavar="FILE.json",
                    type=_path("--conformance-report"), default=None,
                    help="write the requirement report here, and FILE.md beside it")
    group.addoption("--conformance-keep-workspaces", "--keep-workspaces", dest="keep_workspaces", metavar="N",
                    type=_checked(arguments.count, "--keep-workspaces"), default=3,
                    help="keep the workspaces of at most N failed runs (default 3)")
    group.addoption("--conformance-baseline", "--baseline", dest="baseline", metavar="FILE.json",
                    type=_path("--baseline"), default=None,
                    help="known failures (requirement IDs, optionally per file): the run fails only on new ones, and "
                         "names known ones that no longer occur")
    group.addoption("--conformance-write-baseline", "--write-baseline", dest="write_baseline", metavar="FILE.json",
                    type=_path("--write-baseline"), default=None,
                    help="write this run's failures as a baseline file")
    group.addoption("--conformance-profile", choices=sorted(PROFILES), default="ci",
                    help="how many generated requests: dev (quick), ci (default), thorough")
    group.addoption("--conformance-workspace-dir", "--workspace-dir", dest="workspace_dir", metavar="DIR",
                    type=_path("--workspace-dir"), default=None,
                    help="where run workspaces are made (default: the system's temporary folder)")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in GROUPS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    for requirement in REQUIREMENTS:
        config.addinivalue_line("markers", f"{marker_name(requirement.id)}: {requirement.id} {requirement.title}")
        config.addinivalue_line("markers", f"{requirement.id}: {requirement.title} (also -m {marker_name(requirement.id)})")
    config.addinivalue_line("markers", "requirement(*ids): the contract requirements a test checks")
    config.stash[RECORDER] = report.Recorder()
    if not xdist_worker(config):  # a pytest-xdist controller merges what the workers record (no-op without xdist)
        config.pluginmanager.register(_WorkersMerged(config), "odahu-conformance-xdist")
    # A cancelled CI job sends SIGTERM: stop as on Ctrl-C (candidate stopped, report written as incomplete).
    config.stash[RESTORE_SIGTERM] = interrupt_on_sigterm()
    baseline_file = config.getoption("baseline", None)
    if baseline_file is not None:
        from conformance.contract.baseline import BaselineProblem, load

        try:
            config.stash[BASELINE] = load(baseline_file)
        except BaselineProblem as problem:
            raise pytest.UsageError(f"odahu-conformance: --baseline {problem}") from None
    _check_targets(config)


def _check_targets(config: pytest.Config) -> None:
    """The files and the folder the run will write can be written, made at most one folder deep (as the command
    line's ``run`` checks them): a usage error now, not after the whole run, and nothing made at ``/``."""
    for dest, flag in (("conformance_report", "--conformance-report"), ("write_baseline", "--write-baseline")):
        target = config.getoption(dest, None)
        problem = arguments.file_problem(Path(target)) if target is not None else None
        if problem is not None:
            raise pytest.UsageError(f"odahu-conformance: {flag} {target}: {problem}")
    workspace_dir = config.getoption("workspace_dir", None)
    problem = arguments.folder_problem(Path(workspace_dir)) if workspace_dir is not None else None
    if problem is not None:
        raise pytest.UsageError(f"odahu-conformance: --workspace-dir {workspace_dir}: {problem}")


RECORDER = pytest.StashKey[report.Recorder]()
BASELINE = pytest.StashKey["Baseline"]()
SUITE = pytest.StashKey["Suite"]()
RESTORE_SIGTERM = pytest.StashKey["Callable[[], None] | None"]()
SUITE_IDS = pytest.StashKey[set[str]]()  # node ids of the conformance suite's tests in this session


@dataclass
class Suite:
    """What the suite's tests share: the candidate (None with ``problem`` saying why), the settings, and the
    runs shared between tests (``cache``)."""

    candidate: Candidate | None
    problem: str | None
    fixtures: Path | None  # None: no golden pairs (a model other than the multiplier, no --fixtures-dir)
    strict: bool
    profile: Profile
    cache: dict = field(default_factory=dict)
    generated_requests: int = 0  # requests the property tests generated and ran
    sent: dict[str, int] = field(default_factory=dict)  # requests sent per class of input (report's stats)

    def count(self, kind: str, requests: int) -> None:
        """Count ``requests`` sent as inputs of class ``kind`` (shown in the report's summary)."""
        self.sent[kind] = self.sent.get(kind, 0) + requests

    def require_candidate(self) -> Candidate:
        """The candidate, or skip the test with the reason there is none."""
        if self.candidate is None:
            pytest.skip(self.problem or "no candidate")
        return self.candidate


def is_strict(config: pytest.Config) -> bool:
    return bool(config.getoption("conformance_strict") or getattr(config.option, "strict", False))


NO_CANDIDATE = ("no candidate: give --predictor-cmd CMD or --predictor-image IMAGE (or --service-manifest FILE), "
                "or --url http://HOST:PORT (or --grpc HOST:PORT) for a V2 server")
CANDIDATE_OPTIONS = {"predictor_cmd": "--predictor-cmd", "predictor_image": "--predictor-image",
                     "service_manifest": "--service-manifest", "url": "--url", "grpc": "--grpc"}


def has_candidate(config: pytest.Config) -> bool:
    """Whether the command line names a candidate (an option given, even if blank: that is a usage error)."""
    return any(config.getoption(dest) is not None for dest in CANDIDATE_OPTIONS)


def blank_candidate_option(config: pytest.Config) -> str | None:
    """The usage error for a candidate option given but empty (``--predictor-cmd ""``, an unset variable), or
    None. A blank option never falls back to the reference: a gate must test what it was told to."""
    for dest, flag in CANDIDATE_OPTIONS.items():
        value = config.getoption(dest)
        if value is not None and not str(value).strip():
            return f"{flag} is empty: give the candidate to test (a blank value, e.g. an unset variable, is refused)"
    return None


def fixtures_of(config: pytest.Config) -> Path | None:
    """The golden pairs' folder: ``--fixtures-dir``; without it, the kit's fixtures for the multiplier model and
    none for another model (the kit's goldens are the multiplier's)."""
    given = config.getoption("fixtures_dir")
    if given is not None:
        return Path(given)
    return kit_fixtures() if config.getoption("oracle") in ("auto", "multiplier") else None


def _suite(config: pytest.Config) -> Suite:
    if SUITE not in config.stash:
        candidate, problem = None, None
        option = config.getoption
        if not has_candidate(config):
            problem = NO_CANDIDATE
        else:
            blank = blank_candidate_option(config)
            if blank:
                raise pytest.UsageError(f"odahu-conformance: {blank}")
            if option("grpc") is not None or option("grpc_port") is not None:  # loaded for a gRPC target only
                from conformance.transport.grpc_v2 import GrpcUnavailable, require

                try:
                    require()
                except GrpcUnavailable as unavailable:
                    flag = "--grpc" if option("grpc") is not None else "--grpc-port"
                    raise pytest.UsageError(f"odahu-conformance: {flag}: {unavailable}") from None
            from conformance.run.candidate import CandidateProblem, from_options

            from conformance.oracle.sources import Tolerance, parse_output_tolerance

            try:
                per_output = tuple(parse_output_tolerance(text) for text in option("output_tolerance"))
            except ValueError as exc:
                raise pytest.UsageError(f"odahu-conformance: {exc}") from None
            try:
                candidate = from_options(
                    cmd=option("predictor_cmd"), image=option("predictor_image"), engine=option("engine"),
                    service_manifest=option("service_manifest"), model=option("model"),
                    timeout=option("run_timeout"), workspace_base=option("workspace_dir"),
                    oracle=option("oracle"), signature=option("signature"),
                    tolerance=Tolerance(option("rtol"), option("atol"), per_output),
                    url=option("url"), model_name=option("model_name"), model_version=option("model_version"),
                    serve=option("serve"), port=option("port"), grpc=option("grpc"), grpc_port=option("grpc_port"),
                )
            except CandidateProblem as exc:
                raise pytest.UsageError(f"odahu-conformance: {exc}") from None
            oracle_timeout = option("oracle_timeout")
            if oracle_timeout is not None and candidate.oracle is not None:  # (checked as parsed: arguments.seconds)
                candidate.oracle.timeout = oracle_timeout
            fixtures = fixtures_of(config)
            if candidate.oracle is not None:
                folder = fixtures / "input" if fixtures is not None else None
                golden = folder is not None and folder.is_dir() and any(folder.glob("*.json"))
                if candidate.oracle.kind == "recorded" and not golden:
                    where = f"no golden requests in {folder}" if folder is not None else "no --fixtures-dir"
                    raise pytest.UsageError(f"odahu-conformance: --oracle recorded: {where} (record them with "
                                            "`odahu-conformance fixtures record`)")
                if candidate.oracle.signature is None and fixtures is not None:  # its good requests
                    from conformance.generate.goldens import answered_requests

                    candidate.oracle.golden_requests = answered_requests(fixtures, 3)
            candidate.keep_limit = option("keep_workspaces")  # (0 or more: arguments.count)
            candidate.progress = _progress_line(config)
            cannot_start = candidate.preflight() if hasattr(candidate, "preflight") else None
            if cannot_start:
                raise pytest.UsageError(f"odahu-conformance: the candidate cannot start: {cannot_start}")
            workspace_dir = option("workspace_dir")
            if workspace_dir is not None:  # made when missing (checked at configure), once nothing is refused
                Path(workspace_dir).mkdir(exist_ok=True)
        config.stash[SUITE] = Suite(
            candidate, problem, fixtures_of(config), is_strict(config),
            PROFILES[option("conformance_profile")],
        )
    return config.stash[SUITE]


def _progress_line(config: pytest.Config) -> Callable[[str], None]:
    """Write one line to the terminal now, even while a test's output is captured (a long predictor run must
    not look like a hang)."""
    def write(line: str) -> None:
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if terminal is None:
            return
        if capture is None:
            terminal.write_line(f"odahu-conformance: {line}")
            return
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"odahu-conformance: {line}")

    return write


def pytest_sessionstart(session: pytest.Session) -> None:
    # The candidate is set up once, before collection: a bad option (no engine, unusable --model, unreadable
    # manifest) stops the run with one line and pytest's usage-error status, instead of erroring every test.
    # Under pytest-xdist the controller does it too, before any worker starts (xdist starts them last): a
    # candidate that cannot start stops the run once, with one line.
    if has_candidate(session.config):
        _suite(session.config)
        if xdist_controller(session.config):
            _keep_the_suite_together(session.config)


#: The pytest-xdist scope of every test of the conformance suite. The suite's tests share runs of the candidate
#: (the good and the golden batches that the differential checks compare with, the lone and batched good requests
#: of B-DETERMINISTIC / B-INDEPENDENT, the hang detector that stops waiting on a hung candidate, the kept
#: workspaces' budget), so under ``-n N`` they run on one worker, in their order, as without ``-n``: the same
#: verdict on the same seed. The kit's own tests and a project's other tests spread over the other workers.
XDIST_GROUP = "odahu-conformance-suite"


def xdist_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker (it runs tests; its controller reports them)."""
    return hasattr(config, "workerinput")


def xdist_controller(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist controller (``-n N``: it runs no test, the workers do)."""
    return config.pluginmanager.has_plugin("dsession")


#: The conformance suite's test modules (``conformance/suite/test_*.py``).
SUITE_MODULES = frozenset(path.name for path in Path(__file__).parent.joinpath("suite").glob("test_*.py"))


def suite_scope(nodeid: str) -> bool:
    """Whether the test ``nodeid`` is one of the conformance suite's: its module is one of :data:`SUITE_MODULES`,
    in a folder named ``suite`` (``conformance/suite/test_golden.py::...``) or at the rootdir (``--pyargs``
    from the suite's folder: ``test_golden.py::...``). pytest-xdist's controller knows tests by their ids alone."""
    module = nodeid.split("::", 1)[0].replace("\\", "/")
    folder, _, name = module.rpartition("/")
    return name in SUITE_MODULES and (folder == "" or folder.rsplit("/", 1)[-1] == "suite")


def _keep_the_suite_together(config: pytest.Config) -> None:
    """Refuse a pytest-xdist distribution that would split or repeat the suite's tests; under the default
    (``load``) and ``loadgroup`` the controller schedules them as one scope on one worker
    (:meth:`_WorkersMerged.pytest_xdist_make_scheduler`)."""
    dist = config.getoption("dist", "no")
    if dist not in ("load", "loadgroup"):
        raise pytest.UsageError(f"odahu-conformance: --dist {dist} would split or repeat the conformance suite's tests "
                                "across workers: use -n N with the default --dist load (or loadgroup)")


@pytest.fixture(scope="session")
def conformance(pytestconfig: pytest.Config) -> Suite:
    """The suite's shared state: candidate, fixtures folder, strictness, profile."""
    return _suite(pytestconfig)


class Verdict:
    """A test's judge: records what the test covers, what it checked on evidence, what it could not check and
    why, and its findings; fails the test on blocking findings."""

    def __init__(self, record: report.TestRecord, strict: bool, baseline: Baseline | None = None):
        self._record = record
        self._strict = strict
        self._baseline = baseline

    def covers(self, *ids: str) -> None:
        """Declare the requirement IDs this test checks (beyond its markers)."""
        self._record.covers.update(ids)

    def ran(self, *ids: str) -> None:
        """A check of each of ``ids`` ran on real evidence (whatever it found)."""
        self._record.checked.update(ids)

    def not_checked(self, requirement: str, reason: str) -> None:
        """``requirement`` applies but this test could not show it, because ``reason``."""
        self._record.not_checked.setdefault(requirement, reason)

    def not_applicable(self, ids: tuple[str, ...] | list[str], reason: str, skip: bool = True) -> None:
        """``ids`` cannot apply to this candidate: record why and skip the test (or go on, when ``skip`` is
        False: the test checks other requirements)."""
        for requirement in ids:
            self._record.not_applicable.setdefault(requirement, reason)
        if skip:
            pytest.skip(reason)

    def judge(self, judgement: Judgement, details: str = "", where: str | None = None,
              ids: tuple[str, ...] | None = None, extra: list[Finding] | None = None,
              explained: tuple[str, ...] = ()) -> None:
        """Record what ``judgement`` shows (about the response to ``where`` only, when given; about ``ids`` only,
        when given) and fail the test on blocking findings, ``extra`` ones included. When ``extra`` holds a
        finding, the judgement's findings of the ``explained`` requirements are its consequences in this run
        (e.g. no responses because the network was cut) and are not counted again."""
        def wanted(requirement: str) -> bool:
            return ids is None or requirement in ids

        findings = judgement.for_file(where) if where is not None else list(judgement.findings)
        if extra:
            findings = [f for f in findings if f.requirement not in explained]
        self.ran(*(r for r in judgement.checked_at(where) if wanted(r)))
        for requirement, reason in judgement.blocked_at(where).items():
            if wanted(requirement):
                self.not_checked(requirement, reason)
        self.check([f for f in findings if wanted(f.requirement)] + list(extra or []), details)

    def check(self, findings: list[Finding], details: str = "") -> None:
        """Record ``findings`` (each also counts as a check of its requirement); fail the test when any blocks
        (MUST, or SHOULD under strict), with one line per finding and ``details`` (a diff, a kept workspace, a
        reproduction command) after them."""
        self._record.findings += findings
        self._record.covers.update(f.requirement for f in findings)
        self._record.checked.update(f.requirement for f in findings)
        if findings and self._record.reproduce is None:
            self._record.reproduce = next((line.split(": ", 1)[1] for line in details.splitlines()
                                           if line.startswith("reproduce: ")), None)
        from conformance.judge import blocking

        failing = [f for f in blocking(findings, self._strict) if self._baseline is None or not self._baseline.covers(f)]
        if failing:
            lines = [f.line() for f in failing]
            message = "\n".join(lines[:20] + ([f"... and {len(lines) - 20} more"] if len(lines) > 20 else []))
            pytest.fail(message + ("\n" + details if details else ""), pytrace=False)


@pytest.fixture
def verdict(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> Verdict:
    """Record findings for the report; fail the test on any MUST finding (SHOULD too under --strict).

    The requirements of the test that cannot apply to the candidate's transport (the batch protocol's ``P-*`` to
    a V2 server, the server's ``H-*`` to a batch predictor) are recorded as such; a test that covers nothing
    else is skipped with the reason."""
    made = Verdict(pytestconfig.stash[RECORDER].record(request.node.nodeid), is_strict(pytestconfig),
                   pytestconfig.stash.get(BASELINE, None))
    suite = pytestconfig.stash.get(SUITE, None)
    candidate = suite.candidate if suite is not None else None
    if candidate is not None:
        covered = _covered(request.node)
        apart: dict[str, str] = {}
        for other, reason in inapplicable_prefixes(candidate):
            apart.update((r, reason) for r in sorted(covered) if r.startswith(other) and r not in apart)
        for reason in dict.fromkeys(apart.values()):
            made.not_applicable([r for r, why in apart.items() if why == reason], reason, skip=False)
        if apart and len(apart) == len(covered):
            pytest.skip(next(iter(apart.values())))
    return made


#: Why the gRPC requirements cannot apply: no gRPC endpoint was given; why the REST ones cannot: only one was.
NO_GRPC = "no gRPC target: the server's V2 gRPC endpoint is given by --grpc HOST:PORT"
NO_REST = "no REST target: the server is given by its gRPC endpoint alone (--grpc; --url adds REST)"


def inapplicable_prefixes(candidate: Candidate) -> list[tuple[str, str]]:
    """The prefixes of the requirements that cannot apply to ``candidate``, each with why: the batch protocol's
    (``P-``) to a server, a server's (``H-``, ``G-``) to a batch predictor, the gRPC ones (``G-``) without a gRPC
    endpoint, the REST ones (``H-``) to a server given by its gRPC endpoint alone."""
    other, reason = transport_inapplicable(candidate.online)
    if not candidate.online:
        return [(other, reason), ("G-", reason)]
    found = [(other, reason)]
    runner = candidate.runner
    if getattr(runner, "grpc", None) is None:
        found.append(("G-", NO_GRPC))
    if getattr(runner, "transport", None) == "grpc":
        found += [("H-", NO_REST), ("G-AGREE", NO_REST)]  # (one transport: nothing to agree with)
    return found


def transport_inapplicable(online: bool) -> tuple[str, str]:
    """The prefix of the requirements that cannot apply to a candidate of this transport, and why."""
    if online:
        return "P-", "a V2 server: the batch protocol (folders, files, exit status) does not apply online"
    return "H-", "a batch predictor: the V2 server requirements (HTTP statuses, health, metadata) apply online only"


def _covered(item: pytest.Item) -> set[str]:
    ids: set[str] = set()
    for mark in item.iter_markers("requirement"):
        ids.update(mark.args)
    return ids


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for requirement_id in _covered(item):
            item.add_marker(marker_name(requirement_id))
            item.add_marker(requirement_id)  # -m M-VALUE works as the docs spell the ID
    suite_ids = {item.nodeid for item in items
                 if item.path.parent.name == "suite" and item.path.parent.parent.name == "conformance"}
    config.stash[SUITE_IDS] = suite_ids  # the digest tells the suite's verdict from other tests of the session
    in_suite = bool(suite_ids)
    if in_suite and not has_candidate(config):
        # A gate that forgot its candidate must not pass with every test skipped.
        raise pytest.UsageError(f"odahu-conformance: {NO_CANDIDATE}")



@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    nodeid = item.nodeid
    if call.when == "call" and _covered(item):
        # JUnit XML (--junitxml) carries these as <property name="requirements" value="..."/>
        covered = _covered(item) | item.config.stash[RECORDER].record(nodeid).covers
        item.user_properties.append(("requirements", " ".join(sorted(covered))))
    result = yield
    broken = _oracle_problem(call)
    if broken is not None:  # the kit's setup broke, not the candidate: one line, and the run stops (exit status 2)
        line = f"the oracle broke, so the run stops (a problem of the kit's setup, not a finding): {broken}"
        item.config.stash.setdefault(ORACLE_BROKE, line)
        item.session.shouldstop = "odahu-conformance: the oracle broke (the line above says how)"
        result.longrepr = line
        if xdist_worker(item.config):
            result.conformance_oracle_broke = line  # type: ignore[attr-defined]  # (to the controller)
    ids = _covered(item)
    if not ids and nodeid not in item.config.stash[RECORDER].records:
        return result
    record = item.config.stash[RECORDER].record(nodeid)
    record.covers.update(ids)
    if call.when == "call" or (call.when == "setup" and result.outcome != "passed"):
        record.outcome = result.outcome
        if result.skipped and isinstance(result.longrepr, tuple):
            record.skip_reason = bounded(str(result.longrepr[2]).removeprefix("Skipped: "))
            if record.skip_reason.startswith(report.NOT_CHECKED_SKIP):
                for requirement_id in record.covers - record.not_applicable.keys():  # (those cannot apply anyway)
                    record.not_checked.setdefault(requirement_id, record.skip_reason[len(report.NOT_CHECKED_SKIP):])
        if result.failed and call.excinfo is not None and not record.findings:
            record.error = _one_line_error(call.excinfo)
    if xdist_worker(item.config):  # the record so far travels with the report; the controller keeps the last
        result.conformance_record = record.to_wire()  # type: ignore[attr-defined]
        result.conformance_suite = nodeid in item.config.stash.get(SUITE_IDS, set())  # type: ignore[attr-defined]
    return result


ORACLE_BROKE = pytest.StashKey[str]()  # the first problem of the oracle (the run stopped on it)


def _oracle_problem(call: pytest.CallInfo[None]) -> str | None:
    """The one line of an :class:`~conformance.oracle.sources.OracleProblem` the call raised (a reference function
    that raised, timed out or answered no V2 response; an invalid golden response), else None."""
    sources = sys.modules.get("conformance.oracle.sources")  # loaded by whoever made an oracle: no import here
    if call.excinfo is None or sources is None or not call.excinfo.errisinstance(sources.OracleProblem):
        return None
    return str(call.excinfo.value)


def _one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    text = str(excinfo.value).strip().splitlines()
    first = bounded(text[0]) if text else excinfo.typename
    if excinfo.typename in ("Failed", "AssertionError"):
        return first
    frame = traceback.extract_tb(excinfo.tb)[-1]
    return f"{excinfo.typename}: {first} ({os.path.basename(frame.filename)}:{frame.lineno})"


def run_facts(config: pytest.Config) -> dict:
    """What the candidate's runs in this process left, as plain data: ``runs``, ``generated_requests``,
    ``sent`` (requests per class), ``kept`` workspaces, ``not_kept``, ``left_behind`` workspaces and the
    ``containment`` of a local run (None when nothing says). A pytest-xdist worker sends these to its controller
    at its end (``workeroutput``); the controller's own are the workers' summed (:class:`_WorkersMerged`)."""
    merged = config.stash.get(WORKER_FACTS, None)
    if merged is not None:
        return merged
    suite = config.stash.get(SUITE, None)
    candidate = suite.candidate if suite else None
    contained = getattr(candidate.runner, "containment", None) if candidate is not None else None
    return {"runs": candidate.runs if candidate else 0,
            "generated_requests": suite.generated_requests if suite else 0,
            "sent": dict(suite.sent) if suite else {},
            "kept": [str(path) for path in candidate.kept] if candidate else [],
            "not_kept": candidate.not_kept if candidate else 0,
            "left_behind": [str(path) for path in candidate.left_behind] if candidate else [],
            "containment": contained() if contained is not None else None}


def _report(config: pytest.Config, completed: bool) -> dict | None:
    records = list(config.stash[RECORDER].records.values())
    if not records:
        return None
    suite = config.stash.get(SUITE, None)
    candidate = suite.candidate if suite else None
    kind, ref = (candidate.kind, candidate.ref) if candidate else ("none", "")
    note = str(getattr(config, "_conformance_default_note", "") or "")
    facts = run_facts(config)
    stats = {"predictor_runs": facts["runs"], "generated_requests": facts["generated_requests"],
             "requests_sent_by_class": dict(sorted(facts["sent"].items()))}
    made = report.build(records, kind, ref, is_strict(config), completed=completed, note=note,
                        baseline=config.stash.get(BASELINE, None), stats=stats)
    if candidate is not None:  # where the expected answers came from: a PASSED means only what they could show
        made["candidate"]["oracle"] = candidate.oracle.spec if candidate.oracle is not None else "multiplier"
        if facts["containment"] is not None:  # what of an image's limits a local run was held to, and what was not enforced
            made["candidate"]["containment"] = facts["containment"]
    if ORACLE_BROKE in config.stash:
        made["kit_problem"] = config.stash[ORACLE_BROKE]
    return made


@pytest.hookimpl(tryfirst=True)  # before junitxml writes its file, so the requirement statuses reach it
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if xdist_worker(config):  # the controller reports: it has every test's record (with its report) and these
        if SUITE in config.stash:
            config.workeroutput["odahu_conformance"] = run_facts(config)  # type: ignore[attr-defined]
        return
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop) or bool(session.shouldfail)
    made = _report(config, completed=not interrupted)
    if made is None:
        return
    config.stash[REPORT] = made
    path = config.getoption("conformance_report")
    if path is not None:
        report.write(made, path)
    write_baseline = config.getoption("write_baseline")
    if write_baseline is not None:
        from conformance.contract.baseline import write
        from conformance.judge import blocking

        findings = blocking([f for r in config.stash[RECORDER].records.values() for f in r.findings], is_strict(config))
        made["baseline_written"] = {"file": str(write_baseline), "entries": write(write_baseline, findings)}
    xml = config.stash.get(junitxml.xml_key, None)
    if xml is not None:
        xml.add_global_property("conformance_status", made["status"])
        for row in made["requirements"]:
            xml.add_global_property(f"requirement {row['id']}", row["status"])
    if not report.verdict(made) and session.exitstatus == 0:
        session.exitstatus = (NOTHING_CHECKED_EXIT if made["status"] == "nothing-checked"
                              else pytest.ExitCode.TESTS_FAILED)


WORKER_FACTS = pytest.StashKey[dict]()  # a pytest-xdist controller's: the workers' run facts, merged


class _WorkersMerged:
    """In a pytest-xdist controller: every suite test's record as the worker that ran it last sent it (with the
    test's report), and the workers' run facts summed as they end, so that the controller makes the one report,
    digest and JUnit properties, from the same records a run without ``-n`` makes. Inert without xdist."""

    def __init__(self, config: pytest.Config):
        self.config = config

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: object) -> object:
        """Under ``-n N`` (``--dist load`` or ``loadgroup``): xdist's scheduling by scopes, each test its own
        scope but the conformance suite's, which is one (:func:`suite_scope`); the biggest scope first."""
        if not has_candidate(config):
            return None
        from xdist.scheduler import LoadScopeScheduling

        class SuiteTogether(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return XDIST_GROUP if suite_scope(nodeid) else nodeid

        config.option.loadscopereorder = True  # the suite's scope (the biggest) goes out first
        return SuiteTogether(config, log)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        wire = getattr(report, "conformance_record", None)
        if wire is None or xdist_worker(self.config):
            return
        record = report_module.TestRecord.from_wire(wire)
        self.config.stash[RECORDER].records[record.nodeid] = record
        if getattr(report, "conformance_suite", False):
            self.config.stash.setdefault(SUITE_IDS, set()).add(record.nodeid)
        broke = getattr(report, "conformance_oracle_broke", None)
        if broke:
            self.config.stash.setdefault(ORACLE_BROKE, broke)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: object, error: object) -> None:
        facts = getattr(node, "workeroutput", {}).get("odahu_conformance")
        if not facts:
            return
        merged = self.config.stash.setdefault(WORKER_FACTS, {
            "runs": 0, "generated_requests": 0, "sent": {}, "kept": [], "not_kept": 0, "left_behind": [],
            "containment": None})
        for key in ("runs", "generated_requests", "not_kept"):
            merged[key] += facts[key]
        for kind, count in facts["sent"].items():
            merged["sent"][kind] = merged["sent"].get(kind, 0) + count
        merged["kept"] += facts["kept"]
        merged["left_behind"] += facts["left_behind"]
        merged["containment"] = merged["containment"] or facts["containment"]


#: The exit status of a run that is no verdict about the candidate (it never ran, or nothing about it was
#: checked): pytest's own "no tests ran", which ``odahu-conformance run`` passes on unchanged.
NOTHING_CHECKED_EXIT = pytest.ExitCode.NO_TESTS_COLLECTED


REPORT = pytest.StashKey[dict]()

#: What each oracle's expected answers are, for the digest's oracle line.
ORACLE_SAYS = {"recorded": "the recorded golden pairs only", "python": "the reference function's, for every request",
               "signature": "none: format, declared signature, determinism and batch independence only"}


DIGEST_PRINTED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outside pytest's own: after its short summary
def pytest_terminal_summary(terminalreporter: TerminalReporter, config: pytest.Config) -> Generator[None, None, None]:
    # The digest comes after pytest's own failure blocks and its short summary, so that a failing run's last
    # screen says what broke and how to reproduce it; and before pytest's totals line, which stays the last line
    # (it counts every test of the session, the project's own beside the suite's).
    try:
        return (yield)
    finally:
        print_digest(terminalreporter, config)
        config.stash[DIGEST_PRINTED] = True


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    suite = config.stash.get(SUITE, None)
    close = getattr(suite.candidate.runner, "close", None) if suite is not None and suite.candidate else None
    if close is not None:  # a server the kit started (--serve) is stopped; connections closed
        close()
    # Where pytest wrote no terminal summary (an internal error): the digest still comes, last.
    terminalreporter = config.pluginmanager.get_plugin("terminalreporter")
    if terminalreporter is not None and not config.stash.get(DIGEST_PRINTED, False):
        print_digest(terminalreporter, config)
    restore = config.stash.get(RESTORE_SIGTERM, None)
    if restore is not None:
        restore()


def print_digest(terminalreporter: TerminalReporter, config: pytest.Config) -> None:
    """The requirement summary: the candidate, each failed requirement with its first finding, how many more and
    one command that reproduces it, each not-checked one with why, where the evidence is, and the verdict."""
    made = config.stash.get(REPORT, None)
    if made is None:
        return
    summary = made["summary"]
    write = terminalreporter.write_line
    terminalreporter.section("odahu conformance")
    candidate = made["candidate"]
    write(f"candidate: {candidate['kind']} {candidate['ref']}" + (f" ({candidate['note']})" if candidate.get("note") else ""))
    if "host writable" in candidate.get("containment", "") or "cannot contain" in candidate.get("containment", ""):
        write(f"not enforced: {candidate['containment']} (the candidate could write outside its output folder, "
              f"which an image cannot)", yellow=True)
    if candidate.get("oracle", "multiplier") != "multiplier":
        write(f"oracle: {candidate['oracle']} (expected answers: {ORACLE_SAYS.get(candidate['oracle'].split(':')[0], '')})")
    if made.get("kit_problem"):  # not a verdict about the candidate: the one line says what broke, nothing else
        write(f"NOT A VERDICT: {made['kit_problem']}; exit status 2", bold=True, red=True)
        return
    for row in made["requirements"]:
        if row["status"] == "failed" and row.get("baselined"):
            write(f"{row['id']:<14} KNOWN ({row['failed_level']}, in the baseline): {row['failures'][0]}")
    for row in made["requirements"]:
        if row["status"] == "failed" and not row.get("baselined"):
            more = f" (+{row['failure_count'] - 1} more)" if row.get("failure_count", 1) > 1 else ""
            write(f"{row['id']:<14} FAILED ({row['failed_level']}): {row['failures'][0]}{more}", red=True)
            if row.get("reproduce"):
                write(f"{'':<14} reproduce: {row['reproduce']}")
    for row in made["requirements"]:
        if row["status"] == "not-checked":
            write(f"{row['id']:<14} NOT CHECKED ({row['level']}): {row['reason']}", yellow=True)
    if not made.get("completed", True):
        write("the run was interrupted: the results are partial", yellow=True)
    stale = made.get("baseline", {}).get("no_longer_failing")
    if stale:
        write(f"no longer failing, remove from the baseline {made['baseline']['file']}: {', '.join(stale)}", green=True)
    if made.get("baseline_written"):
        written = made["baseline_written"]
        write(f"baseline written: {written['entries']} known failures to {written['file']}")
    stats = made.get("stats", {})
    if stats.get("predictor_runs"):
        write(f"predictor runs: {stats['predictor_runs']}; generated requests checked: {stats['generated_requests']}")
        if stats.get("requests_sent_by_class"):
            write("requests sent by class: " + ", ".join(f"{kind} {count}"
                                                          for kind, count in stats["requests_sent_by_class"].items()))
    path = config.getoption("conformance_report")
    if path is not None:
        write(f"report: {path} and {Path(path).with_suffix('.md')}")
    facts = run_facts(config)
    if facts["kept"]:
        more = f"; {facts['not_kept']} more failed runs not kept (over --keep-workspaces or the budget)" \
            if facts["not_kept"] else ""
        write(f"workspaces of failed runs kept (each with expected/ beside raw-output/): "
              f"{', '.join(facts['kept'])}{more}")
    if facts["left_behind"]:
        left = facts["left_behind"]
        write(f"{len(left)} workspaces could not be removed and are left in place (first: {left[0]})")
    status = made["status"]
    alone = _suite_alone(terminalreporter, config)
    if status == "nothing-checked":  # no verdict: say so first on the line, never a count that reads as a pass
        write(f"NOTHING CHECKED, NOT PASSED: {report.why_nothing_checked(made)}; exit status "
              f"{int(NOTHING_CHECKED_EXIT)}{alone}", bold=True, red=True)
        return
    write(f"{status.upper()}: {summary['passed']} requirements passed, {summary['must_failed']} MUST failed, "
          f"{summary['should_failed']} SHOULD failed, {summary['not_checked']} not checked, "
          f"{summary['skipped']} skipped{alone}", bold=True, green=status == "passed", red=status == "failed",
          yellow=status == "incomplete")


def _suite_alone(terminalreporter: TerminalReporter, config: pytest.Config) -> str:
    """When the session ran other tests beside the conformance suite's (the project's own), the words that say the
    verdict covers the suite alone, and how many of the others failed: under ``-qq`` pytest prints no totals, and
    the verdict line must not read as the session's."""
    suite_ids = config.stash.get(SUITE_IDS, set())
    others = [r for key in ("passed", "failed", "error", "skipped") for r in terminalreporter.stats.get(key, [])
              if getattr(r, "nodeid", None) and r.nodeid not in suite_ids]
    if not others:
        return ""
    failed = {r.nodeid for r in others if r.outcome == "failed"}  # errors and collection errors too
    return (f" (the conformance suite alone; {len(failed)} other {'test' if len(failed) == 1 else 'tests'} failed)" if failed
            else " (the conformance suite alone)")
